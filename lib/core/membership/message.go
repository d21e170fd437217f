package membership

import (
	"encoding/binary"
	"fmt"
)

// MsgType is the kind of a protocol message.
type MsgType uint8

// Message types.
const (
	MsgHeartbeat  MsgType = iota + 1 // liveness, view, alive set, stability
	MsgPropose                       // coordinator → members: start of a transition round
	MsgFlush                         // member → coordinator: old view and what it holds of it
	MsgSync                          // coordinator → members: the cut of every old view
	MsgCommit                        // member → coordinator: holds everything up to the cut
	MsgInstall                       // coordinator → members: install the new view
	MsgData                          // sender → sequencer: a message to order
	MsgOrdered                       // sequencer → all: a message with its place in the order
	MsgNack                          // ask for ordered messages again
	MsgUnicast                       // reliable FIFO point-to-point message
	MsgUnicastAck                    // cumulative acknowledgement of unicasts
	MsgLeave                         // graceful leave announcement
	MsgAck                           // what the sender received of the view's order, for stability
	msgTypeEnd
)

var msgTypeNames = [...]string{"", "heartbeat", "propose", "flush", "sync", "commit", "install", "data", "ordered", "nack", "unicast", "unicast-ack", "leave", "ack"}

func (t MsgType) String() string {
	if t > 0 && t < msgTypeEnd {
		return msgTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// OpKind is what an ordered message does.
type OpKind uint8

// Operations carried through the total order.
const (
	OpData  OpKind = iota // deliver Payload to the group's members
	OpJoin                // sender joins Group
	OpLeave               // sender leaves Group
	opEnd
)

// Flags are per-message bits.
type Flags uint8

// Message flags.
const (
	FlagRefuse  Flags = 1 << iota // Flush: proposal Seq is not above the sender's view
	FlagDone                      // Commit: the sender holds everything up to its cut
	FlagLeaving                   // Heartbeat: the sender is leaving
)

// Round identifies a transition round: Seq and Coord become the ViewID of
// the view the round installs; Attempt counts restarts with a reduced set.
type Round struct {
	Seq     uint64
	Coord   NodeID
	Attempt uint32
}

// Less orders rounds: higher Seq wins, then the lower coordinator, then the later attempt.
func (r Round) Less(o Round) bool {
	if r.Seq != o.Seq {
		return r.Seq < o.Seq
	}
	if r.Coord != o.Coord {
		return r.Coord > o.Coord
	}
	return r.Attempt < o.Attempt
}

func (r Round) String() string { return fmt.Sprintf("%d.%d/%d", r.Seq, r.Coord, r.Attempt) }

// Cut says how the survivors of an old view finish it: they deliver every
// message up to Stable, and the messages up to Seq whose origin is one of
// Survivors. Holder holds all messages up to Seq.
type Cut struct {
	View      ViewID
	Seq       uint64
	Stable    uint64
	Holder    NodeID
	Survivors []NodeID
}

// GroupMembers is one named group and its member nodes.
type GroupMembers struct {
	Name    string
	Members []NodeID
}

// Message is one protocol message. Which fields are meaningful depends on
// Type; the encoding carries only those.
//
//	all        From To Incarnation
//	heartbeat  View Round(followed) Members(view) Alive Seq(received) Last(sequenced) Stamp Flags
//	propose    Round Members
//	flush      Round View Seq(received in View) Last(known stable in View) Flags(refuse)
//	sync       Round Cuts
//	commit     Round Flags(done) Groups(names of the sender's groups)
//	install    Round Members Cuts Groups Alive(members removed because they left)
//	data       View MsgID Seq(oldest msgid the sender still queues) Op Group Payload
//	ordered    View Seq Origin OriginInc MsgID Op Group Payload
//	nack       View Seq(first missing) Last(last missing)
//	unicast    Seq Last(oldest unacked) Payload
//	unicast-ack Seq(acked up to) OriginInc(the acked sender's incarnation)
//	leave      -
//	ack        View Seq(received in View)
type Message struct {
	Type        MsgType
	From        NodeID
	To          NodeID // 0: all peers
	Incarnation uint64 // sender's
	View        ViewID
	Round       Round
	Members     []NodeID
	Alive       []NodeID
	Seq         uint64
	Last        uint64
	Stamp       uint64
	Origin      NodeID
	OriginInc   uint64
	MsgID       uint64
	Op          OpKind
	Group       string
	Payload     []byte
	Cuts        []Cut
	Groups      []GroupMembers
	Flags       Flags
}

// wireVersion is the first byte of every encoded message.
const wireVersion = 1

// MarshalBinary encodes m. Layout: version(1)=1, type(1), from(2), to(2),
// incarnation(uvarint), then the type's fields in the order of the table on
// Message: integers as uvarints, node ids as 2 bytes big-endian, lists and
// strings with a uvarint length. Decoders ignore trailing bytes, so later
// versions may append fields.
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, 64+len(m.Payload)))
}

// AppendBinary appends the encoding of m to b.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	if m.Type == 0 || m.Type >= msgTypeEnd {
		return nil, fmt.Errorf("membership: marshal: unknown message type %d", m.Type)
	}
	b = append(b, wireVersion, byte(m.Type))
	b = binary.BigEndian.AppendUint16(b, uint16(m.From))
	b = binary.BigEndian.AppendUint16(b, uint16(m.To))
	b = binary.AppendUvarint(b, m.Incarnation)
	switch m.Type {
	case MsgHeartbeat:
		b = appendView(b, m.View)
		b = appendRound(b, m.Round)
		b = appendIDs(b, m.Members)
		b = appendIDs(b, m.Alive)
		b = binary.AppendUvarint(b, m.Seq)
		b = binary.AppendUvarint(b, m.Last)
		b = binary.AppendUvarint(b, m.Stamp)
		b = append(b, byte(m.Flags))
	case MsgPropose:
		b = appendRound(b, m.Round)
		b = appendIDs(b, m.Members)
	case MsgFlush:
		b = appendRound(b, m.Round)
		b = appendView(b, m.View)
		b = binary.AppendUvarint(b, m.Seq)
		b = binary.AppendUvarint(b, m.Last)
		b = append(b, byte(m.Flags))
	case MsgSync:
		b = appendRound(b, m.Round)
		b = appendCuts(b, m.Cuts)
	case MsgCommit:
		b = appendRound(b, m.Round)
		b = append(b, byte(m.Flags))
		b = appendGroups(b, m.Groups, false)
	case MsgInstall:
		b = appendRound(b, m.Round)
		b = appendIDs(b, m.Members)
		b = appendCuts(b, m.Cuts)
		b = appendGroups(b, m.Groups, true)
		b = appendIDs(b, m.Alive)
	case MsgData:
		b = appendView(b, m.View)
		b = binary.AppendUvarint(b, m.MsgID)
		b = binary.AppendUvarint(b, m.Seq)
		b = append(b, byte(m.Op))
		b = appendBytes(b, []byte(m.Group))
		b = appendBytes(b, m.Payload)
	case MsgOrdered:
		b = appendView(b, m.View)
		b = binary.AppendUvarint(b, m.Seq)
		b = binary.BigEndian.AppendUint16(b, uint16(m.Origin))
		b = binary.AppendUvarint(b, m.OriginInc)
		b = binary.AppendUvarint(b, m.MsgID)
		b = append(b, byte(m.Op))
		b = appendBytes(b, []byte(m.Group))
		b = appendBytes(b, m.Payload)
	case MsgNack:
		b = appendView(b, m.View)
		b = binary.AppendUvarint(b, m.Seq)
		b = binary.AppendUvarint(b, m.Last)
	case MsgUnicast:
		b = binary.AppendUvarint(b, m.Seq)
		b = binary.AppendUvarint(b, m.Last)
		b = appendBytes(b, m.Payload)
	case MsgUnicastAck:
		b = binary.AppendUvarint(b, m.Seq)
		b = binary.AppendUvarint(b, m.OriginInc)
	case MsgLeave:
	case MsgAck:
		b = appendView(b, m.View)
		b = binary.AppendUvarint(b, m.Seq)
	}
	return b, nil
}

func appendView(b []byte, v ViewID) []byte {
	b = binary.AppendUvarint(b, v.Seq)
	return binary.BigEndian.AppendUint16(b, uint16(v.Coord))
}

func appendRound(b []byte, r Round) []byte {
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.BigEndian.AppendUint16(b, uint16(r.Coord))
	return binary.AppendUvarint(b, uint64(r.Attempt))
}

func appendIDs(b []byte, ids []NodeID) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.BigEndian.AppendUint16(b, uint16(id))
	}
	return b
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendCuts(b []byte, cs []Cut) []byte {
	b = binary.AppendUvarint(b, uint64(len(cs)))
	for _, c := range cs {
		b = appendView(b, c.View)
		b = binary.AppendUvarint(b, c.Seq)
		b = binary.AppendUvarint(b, c.Stable)
		b = binary.BigEndian.AppendUint16(b, uint16(c.Holder))
		b = appendIDs(b, c.Survivors)
	}
	return b
}

func appendGroups(b []byte, gs []GroupMembers, members bool) []byte {
	b = binary.AppendUvarint(b, uint64(len(gs)))
	for _, g := range gs {
		b = appendBytes(b, []byte(g.Name))
		if members {
			b = appendIDs(b, g.Members)
		}
	}
	return b
}

// decoder reads fields and remembers the first error.
type decoder struct {
	b   []byte
	off int
	err error
	typ MsgType
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s at byte %d", ErrMalformed, d.typ, what, d.off)
	}
}

func (d *decoder) byte1(what string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("truncated " + what)
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u16(what string) uint16 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 2 {
		d.fail("truncated " + what)
		return 0
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad or truncated " + what)
		return 0
	}
	d.off += n
	return v
}

// count reads a list length and checks that at least min bytes per element remain.
func (d *decoder) count(what string, min int) int {
	n := d.uvarint(what + " count")
	if d.err != nil {
		return 0
	}
	if n > uint64((len(d.b)-d.off)/min) {
		d.fail(fmt.Sprintf("%s count %d exceeds the message", what, n))
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(what string) []byte {
	n := d.count(what, 1)
	if d.err != nil || n == 0 {
		return nil
	}
	p := make([]byte, n)
	copy(p, d.b[d.off:])
	d.off += n
	return p
}

func (d *decoder) view() ViewID {
	return ViewID{Seq: d.uvarint("view seq"), Coord: NodeID(d.u16("view coordinator"))}
}

func (d *decoder) round() Round {
	r := Round{Seq: d.uvarint("round seq"), Coord: NodeID(d.u16("round coordinator"))}
	a := d.uvarint("round attempt")
	if a > 1<<32-1 {
		d.fail(fmt.Sprintf("round attempt %d out of range", a))
	}
	r.Attempt = uint32(a)
	return r
}

func (d *decoder) ids(what string) []NodeID {
	n := d.count(what, 2)
	if d.err != nil || n == 0 {
		return nil
	}
	ids := make([]NodeID, n)
	for i := range ids {
		ids[i] = NodeID(d.u16(what))
	}
	return ids
}

func (d *decoder) cuts() []Cut {
	n := d.count("cut", 6)
	if d.err != nil || n == 0 {
		return nil
	}
	cs := make([]Cut, n)
	for i := range cs {
		cs[i] = Cut{View: d.view(), Seq: d.uvarint("cut seq"), Stable: d.uvarint("cut stable"),
			Holder: NodeID(d.u16("cut holder")), Survivors: d.ids("cut survivor")}
	}
	return cs
}

func (d *decoder) groups(members bool) []GroupMembers {
	min := 1
	if members {
		min = 2
	}
	n := d.count("group", min)
	if d.err != nil || n == 0 {
		return nil
	}
	gs := make([]GroupMembers, n)
	for i := range gs {
		gs[i].Name = string(d.bytes("group name"))
		if members {
			gs[i].Members = d.ids("group member")
		}
	}
	return gs
}

func (d *decoder) op() OpKind {
	o := OpKind(d.byte1("op"))
	if d.err == nil && o >= opEnd {
		d.fail(fmt.Sprintf("unknown op %d", o))
	}
	return o
}

// UnmarshalBinary decodes b into m. It copies what it keeps, so b may be
// reused. Trailing bytes are ignored.
func (m *Message) UnmarshalBinary(b []byte) error {
	*m = Message{}
	if len(b) < 2 {
		return fmt.Errorf("%w: %d bytes, need at least 2", ErrMalformed, len(b))
	}
	if b[0] != wireVersion {
		return fmt.Errorf("%w: unsupported version %d", ErrMalformed, b[0])
	}
	t := MsgType(b[1])
	if t == 0 || t >= msgTypeEnd {
		return fmt.Errorf("%w: unknown message type %d", ErrMalformed, b[1])
	}
	d := &decoder{b: b, off: 2, typ: t}
	m.Type = t
	m.From = NodeID(d.u16("from"))
	m.To = NodeID(d.u16("to"))
	m.Incarnation = d.uvarint("incarnation")
	switch t {
	case MsgHeartbeat:
		m.View = d.view()
		m.Round = d.round()
		m.Members = d.ids("member")
		m.Alive = d.ids("alive")
		m.Seq = d.uvarint("seq")
		m.Last = d.uvarint("last")
		m.Stamp = d.uvarint("stamp")
		m.Flags = Flags(d.byte1("flags"))
	case MsgPropose:
		m.Round = d.round()
		m.Members = d.ids("member")
	case MsgFlush:
		m.Round = d.round()
		m.View = d.view()
		m.Seq = d.uvarint("seq")
		m.Last = d.uvarint("last")
		m.Flags = Flags(d.byte1("flags"))
	case MsgSync:
		m.Round = d.round()
		m.Cuts = d.cuts()
	case MsgCommit:
		m.Round = d.round()
		m.Flags = Flags(d.byte1("flags"))
		m.Groups = d.groups(false)
	case MsgInstall:
		m.Round = d.round()
		m.Members = d.ids("member")
		m.Cuts = d.cuts()
		m.Groups = d.groups(true)
		m.Alive = d.ids("left")
	case MsgData:
		m.View = d.view()
		m.MsgID = d.uvarint("msgid")
		m.Seq = d.uvarint("seq")
		m.Op = d.op()
		m.Group = string(d.bytes("group"))
		m.Payload = d.bytes("payload")
	case MsgOrdered:
		m.View = d.view()
		m.Seq = d.uvarint("seq")
		m.Origin = NodeID(d.u16("origin"))
		m.OriginInc = d.uvarint("origin incarnation")
		m.MsgID = d.uvarint("msgid")
		m.Op = d.op()
		m.Group = string(d.bytes("group"))
		m.Payload = d.bytes("payload")
	case MsgNack:
		m.View = d.view()
		m.Seq = d.uvarint("seq")
		m.Last = d.uvarint("last")
	case MsgUnicast:
		m.Seq = d.uvarint("seq")
		m.Last = d.uvarint("last")
		m.Payload = d.bytes("payload")
	case MsgUnicastAck:
		m.Seq = d.uvarint("seq")
		m.OriginInc = d.uvarint("origin incarnation")
	case MsgLeave:
	case MsgAck:
		m.View = d.view()
		m.Seq = d.uvarint("seq")
	}
	if d.err != nil {
		*m = Message{}
		return d.err
	}
	return nil
}
