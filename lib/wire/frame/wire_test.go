package frame

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// unhex reads hex written with spaces between fields.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// The kinds' numbers are the wire format: each is frozen here.
func TestKindNumbers(t *testing.T) {
	for _, tc := range []struct {
		kind uint8
		want uint8
		name string
	}{
		{KindMembership, 1, "membership"},
		{KindConfig, 2, "config"},
		{KindProbe, 3, "probe"},
		{KindMembershipFrag, 4, "membership fragment"},
		{KindNotMember, 5, "not-member notice"},
		{KindStateLost, 6, "state-lost notice"},
		{KindEcho, 7, "echo"},
		{KindJoinRequest, 8, "join request"},
		{KindJoinConfig, 9, "join configuration"},
		{KindHeartbeat, 10, "heartbeat"},
	} {
		if tc.kind != tc.want || KindName(tc.kind) != tc.name {
			t.Errorf("kind %d %q, want %d %q", tc.kind, KindName(tc.kind), tc.want, tc.name)
		}
	}
	if n := KindName(11); n != "unknown kind 11" {
		t.Errorf("KindName(11) = %q", n)
	}
}

// The golden payloads, written by hand from the layouts in doc.go: a
// change here breaks interoperation with released daemons.
func TestPayloadGolden(t *testing.T) {
	frags := func(id uint32, msg string, size int) func() ([][]byte, error) {
		return func() ([][]byte, error) { return Fragment(id, []byte(msg), size) }
	}
	one := func(b []byte) func() ([][]byte, error) { return func() ([][]byte, error) { return [][]byte{b}, nil } }
	for _, tc := range []struct {
		name   string
		encode func() ([][]byte, error)
		want   []string
	}{
		{"fragments of 8 bytes in chunks of 4", frags(0x01020304, "abcdefgh", 10),
			[]string{"01020304 00 02 61626364", "01020304 01 02 65666768"}},
		{"fragments, short last chunk", frags(0xfffffffe, "abcde", 9),
			[]string{"fffffffe 00 02 616263", "fffffffe 01 02 6465"}},
		{"an empty message is one fragment", frags(7, "", MaxPayload), []string{"00000007 00 01"}},
		{"probe, no state", one(Probe{}.Encode()), []string{"00"}},
		{"probe, state", one(Probe{HasState: true}.Encode()), []string{"01"}},
		{"not member", one(NotMember{Node: 0x0203, ConfigIndex: 0x0a0b}.Encode()), []string{"0203 0000000000000a0b"}},
		{"not member, large index", one(NotMember{Node: 65535, ConfigIndex: 1 << 63}.Encode()), []string{"ffff 8000000000000000"}},
		{"state lost", one(StateLost{}.Encode()), []string{"00"}},
		{"echo request", one(Echo{Stamp: 0x0102030405060708}.Encode()), []string{"00 0102030405060708"}},
		{"echo reply", one(Echo{Reply: true, Stamp: 1<<64 - 1}.Encode()), []string{"01 ffffffffffffffff"}},
		{"echo request, stamp 0", one(Echo{}.Encode()), []string{"00 0000000000000000"}},
		{"join request", func() ([][]byte, error) {
			b, err := JoinRequest{RequestID: 0x0102030405060708, Name: "node4"}.Encode()
			return [][]byte{b}, err
		}, []string{"00 05 0102030405060708 6e6f646534"}},
		{"join request, longest name", func() ([][]byte, error) {
			b, err := JoinRequest{RequestID: 1, Name: strings.Repeat("a", 64)}.Encode()
			return [][]byte{b}, err
		}, []string{"00 40 0000000000000001 " + strings.Repeat("61", 64)}},
		{"join configuration", one(JoinConfig{RequestID: 0x0102030405060708, Index: 0x2a, Config: []byte("{}")}.Encode()),
			[]string{"00 0102030405060708 000000000000002a 7b7d"}},
		{"join configuration in fragments", func() ([][]byte, error) {
			return Fragment(3, JoinConfig{RequestID: 9, Index: 1, Config: []byte("{}")}.Encode(), 16)
		}, []string{"00000003 00 02 00 0000000000000009 00", "00000003 01 02 00000000000001 7b7d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.encode()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d payloads, want %d: %x", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				if want := unhex(t, w); !bytes.Equal(got[i], want) {
					t.Errorf("payload %d: %x, want %x", i, got[i], want)
				}
			}
		})
	}
}

// Decoding the golden bytes gives the values back.
func TestPayloadGoldenDecode(t *testing.T) {
	h, chunk, err := ParseFragment(unhex(t, "01020304 01 02 656667"))
	if err != nil || h != (FragHeader{ID: 0x01020304, Index: 1, Count: 2}) || string(chunk) != "efg" {
		t.Errorf("fragment: %+v %q %v", h, chunk, err)
	}
	if p, err := DecodeProbe(unhex(t, "01")); err != nil || !p.HasState {
		t.Errorf("probe 01: %+v %v", p, err)
	}
	if p, err := DecodeProbe(unhex(t, "00")); err != nil || p.HasState {
		t.Errorf("probe 00: %+v %v", p, err)
	}
	if n, err := DecodeNotMember(unhex(t, "0203 0000000000000a0b")); err != nil || n != (NotMember{Node: 0x0203, ConfigIndex: 0x0a0b}) {
		t.Errorf("not member: %+v %v", n, err)
	}
	if _, err := DecodeStateLost(unhex(t, "00")); err != nil {
		t.Errorf("state lost: %v", err)
	}
	if e, err := DecodeEcho(unhex(t, "00 0102030405060708")); err != nil || e != (Echo{Stamp: 0x0102030405060708}) {
		t.Errorf("echo request: %+v %v", e, err)
	}
	if e, err := DecodeEcho(unhex(t, "01 00000000000000ff")); err != nil || e != (Echo{Reply: true, Stamp: 255}) {
		t.Errorf("echo reply: %+v %v", e, err)
	}
	if r, err := DecodeJoinRequest(unhex(t, "00 05 0102030405060708 6e6f646534")); err != nil || r != (JoinRequest{RequestID: 0x0102030405060708, Name: "node4"}) {
		t.Errorf("join request: %+v %v", r, err)
	}
	c, err := DecodeJoinConfig(unhex(t, "00 0102030405060708 000000000000002a 7b7d"))
	if err != nil || c.RequestID != 0x0102030405060708 || c.Index != 42 || string(c.Config) != "{}" {
		t.Errorf("join configuration: %+v %v", c, err)
	}
}

// A flagged frame differs from the golden frame (frame_test.go) in the
// flags byte only, and in the tag that authenticates it.
func TestSealFlagsGolden(t *testing.T) {
	s, _ := newPair(t)
	s.seq.Store(6)
	f, _, err := s.SealFlags(nil, KindProbe, FlagAllLinks, []byte{1})
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "4343 01 03 0c0ffee1 0102 00 01 000001935a2bc0de 0000000000000007")
	if !bytes.Equal(f[:HeaderLen], want) {
		t.Fatalf("header %x, want %x", f[:HeaderLen], want)
	}
	if ref := referenceSeal(t, testKey(0), want, []byte{1}); !bytes.Equal(ref, f) {
		t.Fatalf("reference construction differs\n got %x\nwant %x", f, ref)
	}
}

// Every bad payload is an error wrapping ErrMalformed that says what is wrong.
func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		in     string
		want   string
	}{
		{"fragment, empty", fragErr, "", "fragment of 0 bytes, shorter than its 6-byte header"},
		{"fragment, truncated header", fragErr, "01020304 00", "fragment of 5 bytes"},
		{"fragment, count 0", fragErr, "01020304 00 00", "fragment count 0"},
		{"fragment, count 65", fragErr, "01020304 00 41 ff", "fragment count 65, more than 64"},
		{"fragment, count 255", fragErr, "01020304 00 ff", "fragment count 255"},
		{"fragment, index = count", fragErr, "01020304 02 02 ff", "fragment index 2 of 2"},
		{"fragment, index > count", fragErr, "01020304 05 03", "fragment index 5 of 3"},
		{"reassembly, truncated", reasmErr, "0102", "fragment of 2 bytes"},
		{"reassembly, index > count", reasmErr, "01020304 05 03", "fragment index 5 of 3"},
		{"probe, empty", probeErr, "", "probe of 0 bytes, want 1"},
		{"probe, long", probeErr, "0100", "probe of 2 bytes, want 1"},
		{"probe, bad flag", probeErr, "02", "probe with state flag 2"},
		{"not member, empty", notMemberErr, "", "not-member notice of 0 bytes, want 10"},
		{"not member, truncated", notMemberErr, "0203 00000000000a0b", "not-member notice of 9 bytes, want 10"},
		{"not member, long", notMemberErr, "0203 0000000000000a0b 00", "not-member notice of 11 bytes, want 10"},
		{"state lost, empty", stateLostErr, "", "state-lost notice of 0 bytes, want 1"},
		{"state lost, long", stateLostErr, "0000", "state-lost notice of 2 bytes, want 1"},
		{"state lost, version 1", stateLostErr, "01", "state-lost notice version 1, want 0"},
		{"echo, empty", echoErr, "", "echo of 0 bytes, want 9"},
		{"echo, truncated", echoErr, "00 01020304050607", "echo of 8 bytes, want 9"},
		{"echo, long", echoErr, "01 0102030405060708 00", "echo of 10 bytes, want 9"},
		{"echo, type 2", echoErr, "02 0102030405060708", "echo of type 2, want 0 (request) or 1 (reply)"},
		{"join request, empty", joinRequestErr, "", "join request of 0 bytes, shorter than its 10-byte header"},
		{"join request, version 1", joinRequestErr, "01 01 0000000000000001 61", "join request version 1, want 0"},
		{"join request, name cut short", joinRequestErr, "00 05 0000000000000001 61", "join request of 11 bytes for a name of 5"},
		{"join request, trailing bytes", joinRequestErr, "00 01 0000000000000001 6161", "join request of 12 bytes for a name of 1"},
		{"join request, no name", joinRequestErr, "00 00 0000000000000001", "join request name of 0 bytes, want 1..64"},
		{"join request, long name", joinRequestErr, "00 41 0000000000000001 " + strings.Repeat("61", 65), "join request name of 65 bytes"},
		{"join request, space in name", joinRequestErr, "00 03 0000000000000001 612062", "join request name with byte 0x20 at 1"},
		{"join request, newline in name", joinRequestErr, "00 02 0000000000000001 610a", "join request name with byte 0xa at 1"},
		{"join configuration, empty", joinConfigErr, "", "join configuration of 0 bytes, want more than its 17-byte header"},
		{"join configuration, no configuration", joinConfigErr, "00 0000000000000001 0000000000000001", "join configuration of 17 bytes"},
		{"join configuration, version 1", joinConfigErr, "01 0000000000000001 0000000000000001 7b7d", "join configuration version 1, want 0"},
		{"join configuration, index 0", joinConfigErr, "00 0000000000000001 0000000000000000 7b7d", "join configuration at index 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.decode(unhex(t, tc.in))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrMalformed saying %q", err, tc.want)
			}
		})
	}
}

func fragErr(b []byte) error      { _, _, err := ParseFragment(b); return err }
func reasmErr(b []byte) error     { var r Reassembly; _, err := r.Add(b); return err }
func probeErr(b []byte) error     { _, err := DecodeProbe(b); return err }
func notMemberErr(b []byte) error { _, err := DecodeNotMember(b); return err }
func stateLostErr(b []byte) error { _, err := DecodeStateLost(b); return err }
func echoErr(b []byte) error      { _, err := DecodeEcho(b); return err }
func joinRequestErr(b []byte) error {
	_, err := DecodeJoinRequest(b)
	return err
}
func joinConfigErr(b []byte) error { _, err := DecodeJoinConfig(b); return err }

// A name that the decoder would refuse cannot be encoded either.
func TestJoinRequestEncodeRefusesBadNames(t *testing.T) {
	for _, name := range []string{"", strings.Repeat("x", 65), "a b", "n\n", "ü"} {
		if _, err := (JoinRequest{Name: name}).Encode(); !errors.Is(err, ErrMalformed) {
			t.Errorf("name %q: %v, want ErrMalformed", name, err)
		}
	}
}

func TestFragmentLimits(t *testing.T) {
	for _, size := range []int{-1, 0, FragHeaderLen, MaxPayload + 1} {
		if _, err := Fragment(1, []byte("x"), size); err == nil || !strings.Contains(err.Error(), "fragment size") {
			t.Errorf("size %d: %v, want an error naming the fragment size", size, err)
		}
	}
	chunk := MaxPayload - FragHeaderLen
	fs, err := Fragment(1, make([]byte, MaxFragments*chunk), MaxPayload)
	if err != nil || len(fs) != MaxFragments {
		t.Fatalf("the largest message: %d fragments, %v", len(fs), err)
	}
	for _, f := range fs {
		if len(f) != MaxPayload {
			t.Fatalf("a full fragment of %d bytes, want %d", len(f), MaxPayload)
		}
	}
	if _, err := Fragment(1, make([]byte, MaxFragments*chunk+1), MaxPayload); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte more: %v, want ErrTooLarge", err)
	}
}

// Fragments out of order and repeated still give the one message; a
// fragment of another message starts over.
func TestReassembly(t *testing.T) {
	msg := bytes.Repeat([]byte("0123456789"), 30)
	fs, err := Fragment(9, msg, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 4 {
		t.Fatalf("%d fragments, want 4", len(fs))
	}
	var r Reassembly
	for i, f := range [][]byte{fs[3], fs[1], fs[3], fs[0]} {
		if w, err := r.Add(f); w != nil || err != nil {
			t.Fatalf("fragment %d: %q %v before the message is complete", i, w, err)
		}
	}
	w, err := r.Add(fs[2])
	if err != nil || !bytes.Equal(w, msg) {
		t.Fatalf("complete: %q %v", w, err)
	}
	// Another message interrupts this one: the first cannot complete.
	other, _ := Fragment(10, []byte("other message"), 10)
	r.Add(fs[0])
	r.Add(other[0])
	for _, f := range fs[1:] {
		if w, _ := r.Add(f); w != nil {
			t.Fatalf("a message completed with a fragment missing: %q", w)
		}
	}
	// A bad fragment leaves the collected ones alone.
	r = Reassembly{}
	r.Add(other[0])
	if _, err := r.Add([]byte{1}); err == nil {
		t.Fatal("a 1-byte fragment was taken")
	}
	for _, f := range other[1:] {
		if w, _ = r.Add(f); w != nil {
			break
		}
	}
	if string(w) != "other message" {
		t.Fatalf("after a bad fragment: %q", w)
	}
	// An empty message completes, as an empty non-nil slice.
	e, _ := Fragment(11, nil, 10)
	if w, err := r.Add(e[0]); w == nil || len(w) != 0 || err != nil {
		t.Fatalf("empty message: %v %v", w, err)
	}
}
