package groupwire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

var (
	m1 = Member{Node: 1, Inc: 1 << 40, Client: 7, PID: 4242, UID: 0}
	m2 = Member{Node: 3, Inc: 99, Client: 1, PID: 17, UID: 1000}
	v1 = ViewID{Seq: 12, Coord: 1, N: 3}
	id = MsgID{Node: 2, Inc: 5, Seq: 77}
)

// samples has one record of every type, with its fields filled.
func samples() []Record {
	return []Record{
		{Type: THello, Tag: 1, Version: 1, Name: "pgbench"},
		{Type: TJoin, Tag: 2, Group: "db"},
		{Type: TLeave, Tag: 3, Group: "db"},
		{Type: TSend, Tag: 4, Group: "db", Order: Safe, Payload: []byte("hello")},
		{Type: TSendTo, Tag: 5, Group: "db", To: m2, Payload: []byte{0, 1, 2}},
		{Type: TBarrier, Tag: 6, Group: "db", Barrier: "ready"},
		{Type: TTxBegin, Tag: 7},
		{Type: TTxAdd, Tag: 8, Group: "a", Payload: []byte("x")},
		{Type: TTxCommit, Tag: 9, Order: Agreed},
		{Type: TGroups, Tag: 10},
		{Type: TMembers, Tag: 11, Group: "db"},
		{Type: TBye, Tag: 12},
		{Type: TWelcome, Tag: 1, Version: 1, Self: m1, Window: 256, MaxPayload: 65536, MaxQueue: 4096, Name: "alpha"},
		{Type: TReply, Tag: 2, Code: NotMember, Text: "not a member of group \"db\""},
		{Type: TView, Group: "db", View: v1, Members: []Member{m1, m2}, Changes: []Change{{Member: m2, Kind: Joined}, {Member: m1, Kind: Lost, Reason: "lost with its node"}}},
		{Type: TMessage, Group: "db", View: v1, From: m2, Order: Agreed, Direct: true, ID: id, Payload: []byte("hi")},
		{Type: TTx, From: m1, Order: Safe, Tx: 3, ID: id, Parts: []Part{{Group: "a", Payload: []byte("1")}, {Group: "b", Payload: []byte{}}}},
		{Type: TBarrierDone, Group: "db", Barrier: "ready", Failed: true, Text: "1/7(pid 4242) left"},
		{Type: TSendFailed, Tag: 4, Code: WouldBlock, Text: "no credit"},
		{Type: TCredit, Count: 12},
		{Type: TGroupList, Tag: 10, Groups: []GroupInfo{{Group: "db", View: v1, Members: 2}, {Group: "web", Members: 1}}},
		{Type: TMemberList, Tag: 11, Group: "db", View: v1, Members: []Member{m1}},
	}
}

// norm makes decoded and built records comparable: empty lists and
// payloads as nil.
func norm(r Record) Record {
	if len(r.Payload) == 0 {
		r.Payload = nil
	}
	for i := range r.Parts {
		if len(r.Parts[i].Payload) == 0 {
			r.Parts[i].Payload = nil
		}
	}
	if len(r.Members) == 0 {
		r.Members = nil
	}
	return r
}

func TestRoundTrip(t *testing.T) {
	seen := map[Type]bool{}
	var packet []byte
	for _, r := range samples() {
		b, err := Append(nil, &r)
		if err != nil {
			t.Fatalf("%s: %v", r.Type, err)
		}
		got, rest, err := Next(b)
		if err != nil || len(rest) != 0 {
			t.Fatalf("%s: decode: %v, %d bytes left", r.Type, err, len(rest))
		}
		if !reflect.DeepEqual(norm(got), norm(r)) {
			t.Errorf("%s: got\n%+v\nwant\n%+v", r.Type, got, r)
		}
		seen[r.Type] = true
		packet = append(packet, b...)
	}
	for ty := THello; ty < requestEnd; ty++ {
		if !seen[ty] {
			t.Errorf("no sample of %s", ty)
		}
	}
	for ty := TWelcome; ty < eventEnd; ty++ {
		if !seen[ty] {
			t.Errorf("no sample of %s", ty)
		}
	}
	// Batched: every record back from one packet, in order.
	rs, err := Records(packet)
	if err != nil || len(rs) != len(samples()) {
		t.Fatalf("batched packet: %d records, %v", len(rs), err)
	}
	for i, r := range rs {
		if r.Type != samples()[i].Type {
			t.Errorf("record %d is %s, want %s", i, r.Type, samples()[i].Type)
		}
	}
}

// TestGolden pins the byte layout the C library implements.
func TestGolden(t *testing.T) {
	for _, c := range []struct {
		r   Record
		hex string
	}{
		{Record{Type: THello, Tag: 1, Version: 1, Name: "ab"}, "12000000" + "0100" + "0000" + "01000000" + "0100" + "0200" + "6162"},
		{Record{Type: TSend, Tag: 0x0102, Group: "g", Order: Safe, Payload: []byte{0xff}}, "15000000" + "0400" + "0000" + "02010000" + "0100" + "67" + "01" + "01000000" + "ff"},
		{Record{Type: TCredit, Count: 3}, "10000000" + "4700" + "0000" + "00000000" + "03000000"},
		{Record{Type: TMemberList, Tag: 9, Group: "g", View: ViewID{Seq: 2, Coord: 1, N: 4, Branch: 0}, Members: []Member{{Node: 1, Inc: 2, Client: 3, PID: 4, UID: 5}}},
			"3f000000" + "4900" + "0000" + "09000000" + "0100" + "67" +
				"0200000000000000" + "0100" + "04000000" + "0000000000000000" +
				"01000000" + "0100" + "0200000000000000" + "03000000" + "04000000" + "05000000"},
	} {
		b, err := Append(nil, &c.r)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(b); got != c.hex {
			t.Errorf("%s:\n got %s\nwant %s", c.r.Type, got, c.hex)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good, _ := Append(nil, &Record{Type: TSend, Tag: 1, Group: "db", Payload: []byte("x")})
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", good[:5], "shorter than a record header"},
		{"length past packet", mod(func(b []byte) []byte { b[0] = 200; return b }), "length 200, packet has"},
		{"length below header", mod(func(b []byte) []byte { b[0] = 4; return b }), "length 4"},
		{"flags", mod(func(b []byte) []byte { b[6] = 1; return b }), "flags 0x1"},
		{"unknown type", mod(func(b []byte) []byte { b[4] = 40; return b }), "unknown type 40"},
		{"bad order", mod(func(b []byte) []byte { b[16] = 2; return b }), "order 2"},
		{"truncated payload", mod(func(b []byte) []byte { b[0]--; return b[:len(b)-1] }), "payload: 0 bytes left, need 1"},
		{"trailing bytes", mod(func(b []byte) []byte { b[0]++; return append(b, 0) }), "1 bytes after the last field"},
		{"empty group", mustEncodeRaw(TJoin, []byte{0, 0}), "empty group"},
		{"NUL in group", mustEncodeRaw(TJoin, []byte{1, 0, 0}), "NUL byte"},
		{"not UTF-8", mustEncodeRaw(TJoin, []byte{1, 0, 0xff}), "not UTF-8"},
		{"huge payload", mustEncodeRaw(TTxAdd, []byte{1, 0, 'g', 0, 0, 2, 0}), "more than 65536"},
		{"forged count", mustEncodeRaw(TMemberList, append([]byte{1, 0, 'g'}, append(make([]byte, 22), 0xff, 0xff, 0xff, 0x0f)...)), "items cannot fit"},
		{"bad code", mustEncodeRaw(TReply, []byte{99, 0, 0, 0}), "code 99"},
		{"bad change kind", mustEncodeRaw(TView, append(append([]byte{1, 0, 'g'}, make([]byte, 22+4)...), append([]byte{1, 0, 0, 0}, append(make([]byte, 22), 9, 0, 0)...)...)), "change kind 9"},
		{"bad flag", mustEncodeRaw(TBarrierDone, []byte{1, 0, 'g', 1, 0, 'b', 2}), "failed: 2"},
	} {
		_, _, err := Next(c.b)
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an ErrMalformed containing %q", c.name, err, c.want)
		}
	}
	if _, err := Records(nil); err == nil {
		t.Error("empty packet accepted")
	}
}

func mustEncodeRaw(t Type, body []byte) []byte {
	b := le.AppendUint32(nil, uint32(HeaderLen+len(body)))
	b = le.AppendUint16(b, uint16(t))
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, 0)
	return append(b, body...)
}

func TestEncodeRefuses(t *testing.T) {
	for _, r := range []Record{
		{Type: 0},
		{Type: 50},
		{Type: TJoin},
		{Type: TJoin, Group: strings.Repeat("g", MaxName+1)},
		{Type: TSend, Group: "g", Payload: make([]byte, MaxPayload+1)},
		{Type: TSend, Group: "g", Order: 7},
		{Type: THello, Name: strings.Repeat("n", MaxClientName+1)},
		{Type: TView, Group: "g", Changes: []Change{{Kind: 0}}},
	} {
		b, err := Append([]byte("keep"), &r)
		if err == nil {
			t.Errorf("%+v encoded", r)
		}
		if string(b) != "keep" {
			t.Errorf("%s: a refused record left bytes behind: %q", r.Type, b)
		}
	}
}

func FuzzNext(f *testing.F) {
	for _, r := range samples() {
		b, _ := Append(nil, &r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		r, rest, err := Next(p)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes.
		b, err := Append(nil, &r)
		if err != nil {
			t.Fatalf("decoded %s does not encode: %v", r.Type, err)
		}
		if !bytes.Equal(b, p[:len(p)-len(rest)]) {
			t.Fatalf("%s: re-encoded\n%x\nfrom\n%x", r.Type, b, p[:len(p)-len(rest)])
		}
	})
}
