package groupwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// ErrMalformed wraps every decoding error.
var ErrMalformed = errors.New("groupwire: malformed record")

var le = binary.LittleEndian

// Append encodes r at the end of b. It refuses what a receiver would
// reject: unknown types, bad names, oversized payloads or texts.
func Append(b []byte, r *Record) ([]byte, error) {
	if !r.Type.IsRequest() && !r.Type.IsEvent() {
		return b, fmt.Errorf("groupwire: cannot encode %s", r.Type)
	}
	start := len(b)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, uint16(r.Type))
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, r.Tag)
	e := encoder{b: b}
	switch r.Type {
	case THello:
		e.u16(r.Version)
		e.str("client name", r.Name, 0, MaxClientName)
	case TJoin, TLeave, TMembers:
		e.name("group", r.Group)
	case TSend:
		e.name("group", r.Group)
		e.order(r.Order)
		e.bytes("payload", r.Payload)
	case TSendTo:
		e.name("group", r.Group)
		e.member(r.To)
		e.bytes("payload", r.Payload)
	case TBarrier:
		e.name("group", r.Group)
		e.name("barrier", r.Barrier)
	case TTxBegin, TGroups, TBye:
	case TTxAdd:
		e.name("group", r.Group)
		e.bytes("payload", r.Payload)
	case TTxCommit:
		e.order(r.Order)
	case TWelcome:
		e.u16(r.Version)
		e.member(r.Self)
		e.u32(r.Window)
		e.u32(r.MaxPayload)
		e.u32(r.MaxQueue)
		e.str("cluster name", r.Name, 0, MaxName)
	case TReply:
		e.u16(uint16(r.Code))
		e.str("text", r.Text, 0, MaxText)
	case TView:
		e.name("group", r.Group)
		e.view(r.View)
		e.members(r.Members)
		e.count(len(r.Changes))
		for _, c := range r.Changes {
			e.member(c.Member)
			if c.Kind == 0 || c.Kind >= changeEnd {
				e.fail(fmt.Errorf("change kind %d", c.Kind))
			}
			e.u8(uint8(c.Kind))
			e.str("reason", c.Reason, 0, MaxText)
		}
	case TMessage:
		e.name("group", r.Group)
		e.view(r.View)
		e.member(r.From)
		e.order(r.Order)
		e.flag(r.Direct)
		e.msgid(r.ID)
		e.bytes("payload", r.Payload)
	case TTx:
		e.member(r.From)
		e.order(r.Order)
		e.u64(r.Tx)
		e.msgid(r.ID)
		e.count(len(r.Parts))
		for _, p := range r.Parts {
			e.name("group", p.Group)
			e.bytes("payload", p.Payload)
		}
	case TBarrierDone:
		e.name("group", r.Group)
		e.name("barrier", r.Barrier)
		e.flag(r.Failed)
		e.str("reason", r.Text, 0, MaxText)
		e.members(r.Members)
	case TSendFailed:
		e.u16(uint16(r.Code))
		e.msgid(r.ID)
		e.str("reason", r.Text, 0, MaxText)
	case TCredit:
		e.u32(r.Count)
	case TGroupList:
		e.count(len(r.Groups))
		for _, g := range r.Groups {
			e.name("group", g.Group)
			e.view(g.View)
			e.u32(g.Members)
		}
	case TMemberList:
		e.name("group", r.Group)
		e.view(r.View)
		e.members(r.Members)
	}
	if e.err != nil {
		return b[:start], fmt.Errorf("groupwire: encode %s: %w", r.Type, e.err)
	}
	n := len(e.b) - start
	if n > MaxPacket {
		return b[:start], fmt.Errorf("groupwire: encode %s: %d bytes, more than a packet (%d)", r.Type, n, MaxPacket)
	}
	le.PutUint32(e.b[start:], uint32(n))
	return e.b, nil
}

type encoder struct {
	b   []byte
	err error
}

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = le.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = le.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = le.AppendUint64(e.b, v) }

func (e *encoder) flag(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) order(o Order) {
	if o > Safe {
		e.fail(fmt.Errorf("order %d", o))
	}
	e.u8(uint8(o))
}

func (e *encoder) count(n int) {
	if n > math.MaxUint32 {
		e.fail(errors.New("list too long"))
	}
	e.u32(uint32(n))
}

func (e *encoder) str(field, s string, min, max int) {
	if err := checkString(field, s, min, max); err != nil {
		e.fail(err)
	}
	e.u16(uint16(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) name(field, s string) { e.str(field, s, 1, MaxName) }

func (e *encoder) bytes(field string, p []byte) {
	if len(p) > MaxPayload {
		e.fail(fmt.Errorf("%s of %d bytes, more than %d", field, len(p), MaxPayload))
	}
	e.u32(uint32(len(p)))
	e.b = append(e.b, p...)
}

func (e *encoder) member(m Member) {
	e.u16(m.Node)
	e.u64(m.Inc)
	e.u32(m.Client)
	e.u32(m.PID)
	e.u32(m.UID)
}

func (e *encoder) members(ms []Member) {
	e.count(len(ms))
	for _, m := range ms {
		e.member(m)
	}
}

func (e *encoder) view(v ViewID) {
	e.u64(v.Seq)
	e.u16(v.Coord)
	e.u32(v.N)
	e.u64(v.Branch)
}

func (e *encoder) msgid(id MsgID) {
	e.u16(id.Node)
	e.u64(id.Inc)
	e.u64(id.Seq)
}

func checkString(field, s string, min, max int) error {
	switch {
	case len(s) < min:
		return fmt.Errorf("empty %s", field)
	case len(s) > max:
		return fmt.Errorf("%s of %d bytes, more than %d", field, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not UTF-8", field)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return fmt.Errorf("%s holds a NUL byte", field)
		}
	}
	return nil
}

// CheckName reports whether s is a valid group or barrier name, with an
// error saying what is wrong.
func CheckName(s string) error { return checkString("name", s, 1, MaxName) }

// Next decodes the first record of packet p and returns it with the rest
// of the packet. Byte slices in the record alias p.
func Next(p []byte) (Record, []byte, error) {
	var r Record
	if len(p) < HeaderLen {
		return r, nil, fmt.Errorf("%w: %d bytes, shorter than a record header (%d)", ErrMalformed, len(p), HeaderLen)
	}
	n := le.Uint32(p)
	if n < HeaderLen || uint64(n) > uint64(len(p)) {
		return r, nil, fmt.Errorf("%w: length %d, packet has %d bytes", ErrMalformed, n, len(p))
	}
	r.Type = Type(le.Uint16(p[4:]))
	if f := le.Uint16(p[6:]); f != 0 {
		return r, nil, fmt.Errorf("%w: %s: flags %#x, want 0", ErrMalformed, r.Type, f)
	}
	r.Tag = le.Uint32(p[8:])
	d := decoder{b: p[HeaderLen:n]}
	switch r.Type {
	case THello:
		r.Version = d.u16("version")
		r.Name = d.str("client name", 0, MaxClientName)
	case TJoin, TLeave, TMembers:
		r.Group = d.name("group")
	case TSend:
		r.Group = d.name("group")
		r.Order = d.order()
		r.Payload = d.bytes("payload")
	case TSendTo:
		r.Group = d.name("group")
		r.To = d.member()
		r.Payload = d.bytes("payload")
	case TBarrier:
		r.Group = d.name("group")
		r.Barrier = d.name("barrier")
	case TTxBegin, TGroups, TBye:
	case TTxAdd:
		r.Group = d.name("group")
		r.Payload = d.bytes("payload")
	case TTxCommit:
		r.Order = d.order()
	case TWelcome:
		r.Version = d.u16("version")
		r.Self = d.member()
		r.Window = d.u32("window")
		r.MaxPayload = d.u32("max payload")
		r.MaxQueue = d.u32("max queue")
		r.Name = d.str("cluster name", 0, MaxName)
	case TReply:
		r.Code = d.code()
		r.Text = d.str("text", 0, MaxText)
	case TView:
		r.Group = d.name("group")
		r.View = d.view()
		r.Members = d.members()
		n := d.count("changes", 22+1+2)
		for i := 0; i < n && d.err == nil; i++ {
			c := Change{Member: d.member()}
			c.Kind = ChangeKind(d.u8("change kind"))
			if d.err == nil && (c.Kind == 0 || c.Kind >= changeEnd) {
				d.fail(fmt.Errorf("change kind %d", c.Kind))
			}
			c.Reason = d.str("reason", 0, MaxText)
			r.Changes = append(r.Changes, c)
		}
	case TMessage:
		r.Group = d.name("group")
		r.View = d.view()
		r.From = d.member()
		r.Order = d.order()
		r.Direct = d.flag("direct")
		r.ID = d.msgid()
		r.Payload = d.bytes("payload")
	case TTx:
		r.From = d.member()
		r.Order = d.order()
		r.Tx = d.u64("transaction")
		r.ID = d.msgid()
		n := d.count("parts", 2+1+4)
		for i := 0; i < n && d.err == nil; i++ {
			r.Parts = append(r.Parts, Part{Group: d.name("group"), Payload: d.bytes("payload")})
		}
	case TBarrierDone:
		r.Group = d.name("group")
		r.Barrier = d.name("barrier")
		r.Failed = d.flag("failed")
		r.Text = d.str("reason", 0, MaxText)
		r.Members = d.members()
	case TSendFailed:
		r.Code = d.code()
		r.ID = d.msgid()
		r.Text = d.str("reason", 0, MaxText)
	case TCredit:
		r.Count = d.u32("count")
	case TGroupList:
		n := d.count("groups", 2+1+22+4)
		for i := 0; i < n && d.err == nil; i++ {
			r.Groups = append(r.Groups, GroupInfo{Group: d.name("group"), View: d.view(), Members: d.u32("member count")})
		}
	case TMemberList:
		r.Group = d.name("group")
		r.View = d.view()
		r.Members = d.members()
	default:
		return r, nil, fmt.Errorf("%w: unknown type %d", ErrMalformed, uint16(r.Type))
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail(fmt.Errorf("%d bytes after the last field", len(d.b)))
	}
	if d.err != nil {
		return r, nil, fmt.Errorf("%w: %s: %w", ErrMalformed, r.Type, d.err)
	}
	return r, p[n:], nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) take(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail(fmt.Errorf("%s: %d bytes left, need %d", field, len(d.b), n))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(field string) uint8 {
	if v := d.take(field, 1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16(field string) uint16 {
	if v := d.take(field, 2); v != nil {
		return le.Uint16(v)
	}
	return 0
}

func (d *decoder) u32(field string) uint32 {
	if v := d.take(field, 4); v != nil {
		return le.Uint32(v)
	}
	return 0
}

func (d *decoder) u64(field string) uint64 {
	if v := d.take(field, 8); v != nil {
		return le.Uint64(v)
	}
	return 0
}

func (d *decoder) flag(field string) bool {
	switch v := d.u8(field); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(fmt.Errorf("%s: %d, want 0 or 1", field, v))
		return false
	}
}

func (d *decoder) order() Order {
	o := Order(d.u8("order"))
	if o > Safe {
		d.fail(fmt.Errorf("order %d, want 0 (agreed) or 1 (safe)", o))
	}
	return o
}

func (d *decoder) code() Code {
	c := Code(d.u16("code"))
	if d.err == nil && c >= codeEnd {
		d.fail(fmt.Errorf("code %d", c))
	}
	return c
}

// count reads a list length, refusing one the rest of the body cannot
// hold at min bytes an item, so a forged count cannot make us allocate.
func (d *decoder) count(field string, min int) int {
	n := d.u32(field)
	if d.err == nil && uint64(n)*uint64(min) > uint64(len(d.b)) {
		d.fail(fmt.Errorf("%s: %d items cannot fit in %d bytes", field, n, len(d.b)))
		return 0
	}
	return int(n)
}

func (d *decoder) str(field string, min, max int) string {
	n := int(d.u16(field))
	v := d.take(field, n)
	if d.err != nil {
		return ""
	}
	s := string(v)
	if err := checkString(field, s, min, max); err != nil {
		d.fail(err)
	}
	return s
}

func (d *decoder) name(field string) string { return d.str(field, 1, MaxName) }

func (d *decoder) bytes(field string) []byte {
	n := d.u32(field)
	if d.err == nil && n > MaxPayload {
		d.fail(fmt.Errorf("%s of %d bytes, more than %d", field, n, MaxPayload))
		return nil
	}
	return d.take(field, int(n))
}

func (d *decoder) member() Member {
	return Member{Node: d.u16("member node"), Inc: d.u64("member incarnation"), Client: d.u32("member client"),
		PID: d.u32("member pid"), UID: d.u32("member uid")}
}

func (d *decoder) members() []Member {
	n := d.count("members", 22)
	var ms []Member
	for i := 0; i < n && d.err == nil; i++ {
		ms = append(ms, d.member())
	}
	return ms
}

func (d *decoder) view() ViewID {
	return ViewID{Seq: d.u64("view seq"), Coord: d.u16("view coordinator"), N: d.u32("view changes"), Branch: d.u64("view branch")}
}

func (d *decoder) msgid() MsgID {
	return MsgID{Node: d.u16("msgid node"), Inc: d.u64("msgid incarnation"), Seq: d.u64("msgid seq")}
}

// Records decodes every record of packet p, stopping at the first error.
func Records(p []byte) ([]Record, error) {
	var out []Record
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: empty packet", ErrMalformed)
	}
	for len(p) > 0 {
		r, rest, err := Next(p)
		if err != nil {
			return out, err
		}
		out = append(out, r)
		p = rest
	}
	return out, nil
}
