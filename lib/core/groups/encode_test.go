package groups

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleMsgs() []Msg {
	a := Member{Node: 2, Inc: 1 << 40, Client: 7, PID: 4242, UID: 1000}
	b := Member{Node: 3, Inc: 5, Client: 1, PID: 1, UID: 0}
	id := MsgID{Node: 2, Inc: 1 << 40, Seq: 99}
	return []Msg{
		{Kind: MsgJoin, ID: id, Sender: a, Group: "g"},
		{Kind: MsgLeave, ID: id, Sender: a, Group: "g"},
		{Kind: MsgGone, ID: id, Sender: a, Change: Removed, Reason: "queue passed 5 unread events"},
		{Kind: MsgData, ID: id, Sender: a, Group: "g", Order: Safe, Payload: []byte("hello")},
		{Kind: MsgDirect, ID: id, Sender: a, Group: "g", To: b, Payload: []byte("psst")},
		{Kind: MsgBarrier, ID: id, Sender: a, Group: "g", Barrier: "x"},
		{Kind: MsgTx, ID: id, Sender: a, Order: Safe, Tx: 3, Parts: []Part{{Group: "g", Payload: []byte("1")}, {Group: "h", Payload: []byte("2")}}},
		{Kind: MsgSync, ID: id, Sender: Member{Node: 2, Inc: 1 << 40}, View: ViewID{Seq: 12, Coord: 1},
			Sync: []SyncGroup{{Group: "g", Members: []Member{a}, Barriers: []SyncBarrier{{Name: "x", Entered: []Member{a}}}}}},
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, m := range sampleMsgs() {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Msg
		if err := got.UnmarshalBinary(append(b, 0xff)); err != nil { // trailing bytes are ignored
			t.Fatalf("%s: %v", m.Kind, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: round trip gave %+v, want %+v", m.Kind, got, m)
		}
		// Every truncation is refused with the field named.
		for n := 0; n < len(b); n++ {
			var x Msg
			err := x.UnmarshalBinary(b[:n])
			if !errors.Is(err, ErrBadMsg) {
				t.Fatalf("%s cut to %d bytes: %v, want ErrBadMsg", m.Kind, n, err)
			}
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "version: truncated"},
		{"version 2", []byte{2, 1}, "version 2"},
		{"unknown kind", []byte{1, 99, 0, 2, 1, 1, 0, 2, 1, 1, 1, 1}, "unknown kind 99"},
		{"huge count", []byte{1, byte(MsgTx), 0, 2, 1, 1, 0, 2, 1, 1, 1, 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, "part count"},
		{"long string", []byte{1, byte(MsgJoin), 0, 2, 1, 1, 0, 2, 1, 1, 1, 1, 50, 'g'}, "group: length 50"},
		{"client over 32 bits", []byte{1, byte(MsgJoin), 0, 2, 1, 1, 0, 2, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, "sender client"},
	} {
		var m Msg
		err := m.UnmarshalBinary(tc.b)
		if !errors.Is(err, ErrBadMsg) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrBadMsg naming %q", tc.name, err, tc.want)
		}
	}
}

// FuzzUnmarshal: decoding never panics, and what decodes encodes back to
// something that decodes to the same message.
func FuzzUnmarshal(f *testing.F) {
	for _, m := range sampleMsgs() {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Msg
		if m.UnmarshalBinary(b) != nil {
			return
		}
		b2, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", m, err)
		}
		var m2 Msg
		if err := m2.UnmarshalBinary(b2); err != nil {
			t.Fatalf("decoding the re-encoding: %v", err)
		}
		if !reflect.DeepEqual(norm(m), norm(m2)) {
			t.Fatalf("round trip changed %+v into %+v", m, m2)
		}
	})
}

// norm makes empty and nil byte strings alike.
func norm(m Msg) Msg {
	if len(m.Payload) == 0 {
		m.Payload = nil
	}
	for i := range m.Parts {
		if len(m.Parts[i].Payload) == 0 {
			m.Parts[i].Payload = nil
		}
	}
	return m
}

func TestBatch(t *testing.T) {
	msgs := sampleMsgs()
	b, err := AppendBatch(nil, msgs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := SplitBatch(b)
	if err != nil || len(got) != len(msgs) {
		t.Fatalf("split: %d msgs, %v", len(got), err)
	}
	for i := range msgs {
		if !reflect.DeepEqual(norm(got[i]), norm(msgs[i])) {
			t.Errorf("msg %d: %+v, want %+v", i, got[i], msgs[i])
		}
	}
	// A single Msg is a batch of one.
	one, _ := msgs[0].MarshalBinary()
	if got, err := SplitBatch(one); err != nil || len(got) != 1 {
		t.Errorf("single: %d, %v", len(got), err)
	}
	for _, bad := range [][]byte{nil, {batchMark}, {batchMark, 5, 1}, {batchMark, 2, 1, 99}, append(b, 0x80)} {
		if _, err := SplitBatch(bad); !errors.Is(err, ErrBadMsg) {
			t.Errorf("% x: %v, want ErrBadMsg", bad, err)
		}
	}
}

// FuzzSplitBatch: never panics; what splits re-batches to the same msgs.
func FuzzSplitBatch(f *testing.F) {
	b, _ := AppendBatch(nil, sampleMsgs())
	f.Add(b)
	f.Add([]byte{batchMark})
	f.Fuzz(func(t *testing.T, p []byte) {
		ms, err := SplitBatch(p)
		if err != nil {
			return
		}
		b, err := AppendBatch(nil, ms)
		if err != nil {
			t.Fatalf("re-batching: %v", err)
		}
		ms2, err := SplitBatch(b)
		if err != nil || len(ms2) != len(ms) {
			t.Fatalf("re-split: %d, %v", len(ms2), err)
		}
	})
}
