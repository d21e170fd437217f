package membership

import (
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

// goldenMessages has one message of each type with every field it carries set.
var goldenMessages = []struct {
	name string
	m    Message
	hex  string
}{
	{"heartbeat", Message{Type: MsgHeartbeat, From: 2, To: 0, Incarnation: 300, View: ViewID{7, 1}, Round: Round{7, 1, 0},
		Members: []NodeID{1, 2, 3}, Alive: []NodeID{1, 2}, Seq: 10, Last: 12, Stamp: 99, Flags: FlagLeaving}, ""},
	{"propose", Message{Type: MsgPropose, From: 1, Incarnation: 5, Round: Round{8, 1, 2}, Members: []NodeID{1, 2}}, ""},
	{"flush", Message{Type: MsgFlush, From: 2, To: 1, Incarnation: 6, Round: Round{8, 1, 2}, View: ViewID{7, 1}, Seq: 10, Last: 9, Flags: FlagRefuse}, ""},
	{"sync", Message{Type: MsgSync, From: 1, Incarnation: 5, Round: Round{8, 1, 0},
		Cuts: []Cut{{View: ViewID{7, 1}, Seq: 10, Stable: 9, Holder: 2, Survivors: []NodeID{1, 2}}}}, ""},
	{"commit", Message{Type: MsgCommit, From: 2, To: 1, Incarnation: 6, Round: Round{8, 1, 0}, Flags: FlagDone,
		Groups: []GroupMembers{{Name: "db"}}}, ""},
	{"install", Message{Type: MsgInstall, From: 1, Incarnation: 5, Round: Round{8, 1, 0}, Members: []NodeID{1, 2},
		Cuts:   []Cut{{View: ViewID{7, 1}, Seq: 10, Stable: 9, Holder: 2, Survivors: []NodeID{1, 2}}},
		Groups: []GroupMembers{{Name: "db", Members: []NodeID{2}}}, Alive: []NodeID{3}}, ""},
	{"data", Message{Type: MsgData, From: 3, To: 1, Incarnation: 7, View: ViewID{8, 1}, MsgID: 4, Seq: 3, Op: OpData, Group: "db", Payload: []byte("hi")}, ""},
	{"ordered", Message{Type: MsgOrdered, From: 1, Incarnation: 5, View: ViewID{8, 1}, Seq: 20, Origin: 3, OriginInc: 7, MsgID: 4,
		Op: OpJoin, Group: "db", Payload: []byte{0xff}}, ""},
	{"nack", Message{Type: MsgNack, From: 2, To: 1, Incarnation: 6, View: ViewID{8, 1}, Seq: 3, Last: 5}, ""},
	{"unicast", Message{Type: MsgUnicast, From: 2, To: 3, Incarnation: 6, Seq: 4, Last: 2, Payload: []byte("x")}, ""},
	{"unicast-ack", Message{Type: MsgUnicastAck, From: 3, To: 2, Incarnation: 7, Seq: 4, OriginInc: 6}, ""},
	{"leave", Message{Type: MsgLeave, From: 3, Incarnation: 7}, ""},
	{"ack", Message{Type: MsgAck, From: 3, Incarnation: 7, View: ViewID{8, 1}, Seq: 300}, ""},
}

func init() {
	golden := map[string]string{
		"heartbeat":   "010100020000ac02 070001 07000100 03000100020003 0200010002 0a 0c 63 04",
		"propose":     "010200010000050800010202000100 02",
		"flush":       "01030002000106080001020700010a0901",
		"sync":        "0104000100000508000100010700010a090002020001 0002",
		"commit":      "010500020001060800010002010264 62",
		"install":     "01060001000005080001000200010002010700010a090002020001000201026462010002010003",
		"data":        "010700030001070800010403000264620268 69",
		"ordered":     "0108000100000508000114000307040102646201ff",
		"nack":        "0109000200010608000103 05",
		"unicast":     "010a0002000306040201 78",
		"unicast-ack": "010b00030002070406",
		"leave":       "010c00030000 07",
		"ack":         "010d000300000708 0001ac02",
	}
	for i := range goldenMessages {
		goldenMessages[i].hex = golden[goldenMessages[i].name]
	}
}

func unspace(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' {
			out = append(out, s[i])
		}
	}
	return string(out)
}

func TestMessageGolden(t *testing.T) {
	seen := map[MsgType]bool{}
	for _, tc := range goldenMessages {
		t.Run(tc.name, func(t *testing.T) {
			seen[tc.m.Type] = true
			b, err := tc.m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := hex.EncodeToString(b), unspace(tc.hex); got != want {
				t.Fatalf("encoding\n got %s\nwant %s", got, want)
			}
			var m Message
			if err := m.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tc.m) {
				t.Fatalf("round trip\n got %+v\nwant %+v", m, tc.m)
			}
			// Decoders ignore bytes a later version may append.
			if err := m.UnmarshalBinary(append(b, 0xde, 0xad)); err != nil || !reflect.DeepEqual(m, tc.m) {
				t.Fatalf("with trailing bytes: %v, %+v", err, m)
			}
			// AppendBinary appends.
			b2, _ := tc.m.AppendBinary([]byte{0xaa})
			if b2[0] != 0xaa || hex.EncodeToString(b2[1:]) != hex.EncodeToString(b) {
				t.Fatalf("AppendBinary: %x", b2)
			}
		})
	}
	for typ := MsgHeartbeat; typ < msgTypeEnd; typ++ {
		if !seen[typ] {
			t.Errorf("no golden message for type %s", typ)
		}
	}
}

func TestUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", "0 bytes"},
		{"one byte", "01", "1 bytes"},
		{"version 0", "0001000100000000", "unsupported version 0"},
		{"version 2", "0201000100000000", "unsupported version 2"},
		{"type 0", "0100000100000000", "unknown message type 0"},
		{"type 99", "0163000100000000", "unknown message type 99"},
		{"no from", "010c00", "truncated from"},
		{"no to", "010c000300", "truncated to"},
		{"no incarnation", "010c00030000", "bad or truncated incarnation"},
		{"truncated varint", "010c0003000080", "bad or truncated incarnation"},
		{"overlong varint", "010c00030000ffffffffffffffffffff01", "bad or truncated incarnation"},
		{"heartbeat no view", "01010002000001", "bad or truncated view seq"},
		{"heartbeat huge member count", "01010002000001070001070001 00 ff0f", "member count 2047 exceeds"},
		{"heartbeat odd member bytes", "01010002000001070001070001 00 02 0001 00", "member count 2 exceeds"},
		{"heartbeat no flags", "01010002000001 070001 07000100 00 00 0a 0c 63", "truncated flags"},
		{"round attempt too big", "010200010000050800 01 8080808010 00", "round attempt 4294967296 out of range"},
		{"data unknown op", "010700030001070800010403 09", "unknown op 9"},
		{"data payload too long", "010700030001070800010403000264620568", "payload count 5 exceeds"},
		{"ordered no origin", "01080001000005080001 14 03", "truncated origin"},
		{"sync cut count lies", "0104000100000508000100 05 0700010a090002", "cut count 5 exceeds"},
		{"install groups truncated", "01060001000005080001000200010002010700010a090002020001000201 02 6462", "bad or truncated group member count"},
		{"ack no seq", "010d00030000070800 01", "bad or truncated seq"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(unspace(tc.in))
			if err != nil {
				t.Fatalf("bad test hex: %v", err)
			}
			var m Message
			m.From = 9
			err = m.UnmarshalBinary(b)
			if err == nil {
				t.Fatalf("no error, decoded %+v", m)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v is not ErrMalformed", err)
			}
			if !containsStr(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if !reflect.DeepEqual(m, Message{}) {
				t.Errorf("message not reset on error: %+v", m)
			}
		})
	}
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestMarshalRejectsUnknownType(t *testing.T) {
	for _, typ := range []MsgType{0, msgTypeEnd, 200} {
		m := Message{Type: typ}
		if _, err := m.MarshalBinary(); err == nil {
			t.Errorf("type %d: no error", typ)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, tc := range goldenMessages {
		b, _ := tc.m.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := m.UnmarshalBinary(b); err != nil {
			return
		}
		b2, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("marshal of decoded message: %v", err)
		}
		var m2 Message
		if err := m2.UnmarshalBinary(b2); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", m, m2)
		}
		// A decoded message never makes a Node panic.
		n, _ := New(Config{ID: 1, Peers: []NodeID{1, 2, 3}})
		_ = n.Step(m)
		n.Tick()
	})
}
