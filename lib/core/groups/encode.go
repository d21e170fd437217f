package groups

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// wireVersion is the first byte of an encoded Msg.
const wireVersion = 1

// MarshalBinary encodes m for membership's payload: version byte 1, kind
// byte, the id (node as 2 bytes, incarnation and number as uvarints), the
// sender (node as 2 bytes; incarnation, client, pid, uid as uvarints),
// then the kind's fields. Strings and byte strings are a uvarint length
// and the bytes; lists a uvarint count and the items.
func (m *Msg) MarshalBinary() ([]byte, error) {
	b := []byte{wireVersion, byte(m.Kind)}
	b = binary.BigEndian.AppendUint16(b, uint16(m.ID.Node))
	b = binary.AppendUvarint(b, m.ID.Inc)
	b = binary.AppendUvarint(b, m.ID.Seq)
	b = appendMember(b, m.Sender)
	switch m.Kind {
	case MsgJoin, MsgLeave:
		b = appendString(b, m.Group)
	case MsgGone:
		b = append(b, byte(m.Change))
		b = appendString(b, m.Reason)
	case MsgData:
		b = appendString(b, m.Group)
		b = append(b, byte(m.Order))
		b = appendBytes(b, m.Payload)
	case MsgDirect:
		b = appendString(b, m.Group)
		b = appendMember(b, m.To)
		b = appendBytes(b, m.Payload)
	case MsgBarrier:
		b = appendString(b, m.Group)
		b = appendString(b, m.Barrier)
	case MsgTx:
		b = append(b, byte(m.Order))
		b = binary.AppendUvarint(b, m.Tx)
		b = binary.AppendUvarint(b, uint64(len(m.Parts)))
		for _, p := range m.Parts {
			b = appendString(b, p.Group)
			b = appendBytes(b, p.Payload)
		}
	case MsgSync:
		b = binary.AppendUvarint(b, m.View.Seq)
		b = binary.BigEndian.AppendUint16(b, uint16(m.View.Coord))
		b = binary.AppendUvarint(b, uint64(len(m.Sync)))
		for _, g := range m.Sync {
			b = appendString(b, g.Group)
			b = appendMembers(b, g.Members)
			b = binary.AppendUvarint(b, uint64(len(g.Barriers)))
			for _, x := range g.Barriers {
				b = appendString(b, x.Name)
				b = appendMembers(b, x.Entered)
			}
		}
	default:
		return nil, fmt.Errorf("%w: cannot encode kind %d", ErrBadMsg, m.Kind)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendMember(b []byte, x Member) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(x.Node))
	b = binary.AppendUvarint(b, x.Inc)
	b = binary.AppendUvarint(b, uint64(x.Client))
	b = binary.AppendUvarint(b, uint64(x.PID))
	return binary.AppendUvarint(b, uint64(x.UID))
}

func appendMembers(b []byte, xs []Member) []byte {
	b = binary.AppendUvarint(b, uint64(len(xs)))
	for _, x := range xs {
		b = appendMember(b, x)
	}
	return b
}

// decoder reads fields and keeps the first error, naming the field.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (d *decoder) fail(field string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %v", ErrBadMsg, field, err)
	}
}

func (d *decoder) byte(field string) byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail(field, errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u16(field string) uint16 {
	if d.err != nil || len(d.b) < 2 {
		d.fail(field, errShort)
		return 0
	}
	v := binary.BigEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(field, errors.New("bad uvarint"))
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u32(field string) uint32 {
	v := d.uvarint(field)
	if v > 1<<32-1 {
		d.fail(field, fmt.Errorf("%d does not fit 32 bits", v))
	}
	return uint32(v)
}

func (d *decoder) string(field string) string {
	n := d.uvarint(field)
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail(field, fmt.Errorf("length %d, %d bytes left", n, len(d.b)))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// bytes reads a length-prefixed byte string; it aliases the input, which
// the caller must not change afterwards.
func (d *decoder) bytes(field string) []byte {
	n := d.uvarint(field)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(field, fmt.Errorf("length %d, %d bytes left", n, len(d.b)))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

// count reads a list length; every item takes at least min bytes, so a
// count beyond what is left is refused before anything is allocated.
func (d *decoder) count(field string, min int) int {
	n := d.uvarint(field)
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.fail(field, fmt.Errorf("count %d, %d bytes left", n, len(d.b)))
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

func (d *decoder) member(field string) Member {
	return Member{Node: NodeID(d.u16(field + " node")), Inc: d.uvarint(field + " incarnation"),
		Client: d.u32(field + " client"), PID: d.u32(field + " pid"), UID: d.u32(field + " uid")}
}

// memberSize is the least bytes a member takes.
const memberSize = 6

func (d *decoder) members(field string) []Member {
	n := d.count(field+" count", memberSize)
	var xs []Member
	for i := 0; i < n && d.err == nil; i++ {
		xs = append(xs, d.member(field))
	}
	return xs
}

// UnmarshalBinary decodes a Msg; bytes after the known fields are ignored
// so later versions may append. Deliver still checks the fields.
// Payloads alias b, which must not change afterwards.
func (m *Msg) UnmarshalBinary(b []byte) error {
	d := &decoder{b: b}
	if v := d.byte("version"); d.err == nil && v != wireVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrBadMsg, v, wireVersion)
	}
	var x Msg
	x.Kind = MsgKind(d.byte("kind"))
	x.ID = MsgID{Node: NodeID(d.u16("id node")), Inc: d.uvarint("id incarnation"), Seq: d.uvarint("id number")}
	x.Sender = d.member("sender")
	switch x.Kind {
	case MsgJoin, MsgLeave:
		x.Group = d.string("group")
	case MsgGone:
		x.Change = ChangeKind(d.byte("change"))
		x.Reason = d.string("reason")
	case MsgData:
		x.Group = d.string("group")
		x.Order = Order(d.byte("order"))
		x.Payload = d.bytes("payload")
	case MsgDirect:
		x.Group = d.string("group")
		x.To = d.member("to")
		x.Payload = d.bytes("payload")
	case MsgBarrier:
		x.Group = d.string("group")
		x.Barrier = d.string("barrier")
	case MsgTx:
		x.Order = Order(d.byte("order"))
		x.Tx = d.uvarint("transaction")
		n := d.count("part count", 2)
		for i := 0; i < n && d.err == nil; i++ {
			x.Parts = append(x.Parts, Part{Group: d.string("part group"), Payload: d.bytes("part payload")})
		}
	case MsgSync:
		x.View = ViewID{Seq: d.uvarint("view seq"), Coord: NodeID(d.u16("view coordinator"))}
		n := d.count("sync group count", 3)
		for i := 0; i < n && d.err == nil; i++ {
			g := SyncGroup{Group: d.string("sync group"), Members: d.members("sync members")}
			nb := d.count("sync barrier count", 2)
			for j := 0; j < nb && d.err == nil; j++ {
				g.Barriers = append(g.Barriers, SyncBarrier{Name: d.string("sync barrier"), Entered: d.members("sync entered")})
			}
			x.Sync = append(x.Sync, g)
		}
	default:
		if d.err == nil {
			return fmt.Errorf("%w: unknown kind %d", ErrBadMsg, x.Kind)
		}
	}
	if d.err != nil {
		return d.err
	}
	*m = x
	return nil
}

// batchMark starts a payload holding several Msgs; a single Msg starts
// with wireVersion.
const batchMark = 0x80

// AppendBatch appends msgs to b as one membership payload: the mark byte,
// then each Msg as a uvarint length and its encoding. Daemons batch what
// their clients sent between two turns of their loop, so the order costs
// one broadcast for many messages.
func AppendBatch(b []byte, msgs []Msg) ([]byte, error) {
	b = append(b, batchMark)
	for i := range msgs {
		m, err := msgs[i].MarshalBinary()
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(len(m)))
		b = append(b, m...)
	}
	return b, nil
}

// SplitBatch decodes a membership payload made by AppendBatch, or a single
// MarshalBinary encoding.
func SplitBatch(p []byte) ([]Msg, error) {
	if len(p) == 0 || p[0] != batchMark {
		var m Msg
		if err := m.UnmarshalBinary(p); err != nil {
			return nil, err
		}
		return []Msg{m}, nil
	}
	p = p[1:]
	var out []Msg
	for len(p) > 0 {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return out, fmt.Errorf("%w: batch entry %d: bad length", ErrBadMsg, len(out))
		}
		var m Msg
		if err := m.UnmarshalBinary(p[k : k+int(n)]); err != nil {
			return out, fmt.Errorf("batch entry %d: %w", len(out), err)
		}
		out = append(out, m)
		p = p[k+int(n):]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrBadMsg)
	}
	return out, nil
}
