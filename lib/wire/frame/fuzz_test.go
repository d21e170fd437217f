package frame

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen checks that Open never panics and that every frame it accepts
// is exactly what a Sealer with the test key makes for that header and
// payload, apart from the unauthenticated link byte and Ethernet padding.
func FuzzOpen(f *testing.F) {
	s, _ := newPair(f)
	for i, p := range [][]byte{nil, {1}, []byte("membership"), bytes.Repeat([]byte{0x55}, 300)} {
		f.Add(mustSeal(f, s, uint8(i%3+1), p))
	}
	flagged, _, err := s.SealFlags(nil, KindMembership, FlagAllLinks, []byte("hb"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(flagged)
	// A join request comes from sender 0, a node not yet a member.
	s0, err := NewSealer(testKey(0), testCluster, 0, testIncarnation)
	if err != nil {
		f.Fatal(err)
	}
	jr, err := JoinRequest{RequestID: 1, Name: "node4"}.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mustSeal(f, s0, KindJoinRequest, jr))
	f.Add([]byte("CC"))
	f.Add(make([]byte, Overhead))

	_, o := newPair(f)
	f.Fuzz(func(t *testing.T, fr []byte) {
		clear(o.senders) // each input starts with no replay state
		h, payload, err := o.Open(nil, append([]byte{}, fr...))
		if err != nil {
			if payload != nil {
				t.Fatalf("error %v with payload %x", err, payload)
			}
			return
		}
		if h.Cluster != testCluster || h.Version != Version || h.Seq == 0 {
			t.Fatalf("opened header %+v", h)
		}
		re, err := NewSealer(testKey(0), h.Cluster, h.Sender, h.Incarnation)
		if err != nil {
			t.Fatal(err)
		}
		re.seq.Store(h.Seq - 1)
		want, _, err := re.SealFlags(nil, h.Kind, h.Flags, payload)
		if err != nil {
			t.Fatal(err)
		}
		SetLink(want, h.Link)
		got := fr
		if len(got) > len(want) && len(got) == ethMinPayload && bytes.Count(got[len(want):], []byte{0}) == len(got)-len(want) {
			got = got[:len(want)]
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("accepted a frame no Sealer made:\n got %x\nwant %x", fr, want)
		}
	})
}

// FuzzReassembly fragments msg into fragments of a size taken from the
// input, delivers them in an order taken from the input with repeats,
// after a stray payload, and checks that the message comes back whole,
// once, exactly when its last missing fragment arrives.
func FuzzReassembly(f *testing.F) {
	f.Add([]byte("hello, concord"), uint16(10), []byte{2, 0, 0, 1}, []byte{})
	f.Add([]byte{}, uint16(0), []byte{}, []byte{0, 0, 0, 1, 0, 2, 'a'})
	f.Add(bytes.Repeat([]byte{0xaa}, 5000), uint16(MaxPayload), []byte{3, 1, 4, 1, 5}, []byte{0, 0, 0, 1, 1, 2})
	f.Add(bytes.Repeat([]byte("x"), 70), uint16(1), []byte{9, 9, 9}, []byte("garbage"))
	f.Fuzz(func(t *testing.T, msg []byte, size uint16, order, stray []byte) {
		size = FragHeaderLen + 1 + size%(MaxPayload-FragHeaderLen)
		var r Reassembly
		id := uint32(1)
		if h, chunk, err := ParseFragment(stray); err == nil {
			id = h.ID + 1 // the stray payload belongs to another message
			if w, _ := r.Add(stray); w != nil && (h.Count != 1 || !bytes.Equal(w, chunk)) {
				t.Fatalf("stray fragment %x gave the message %x", stray, w)
			}
		} else if w, err := r.Add(stray); w != nil || err == nil {
			t.Fatalf("a payload ParseFragment refuses gave %x, %v", w, err)
		}
		frags, err := Fragment(id, msg, int(size))
		if errors.Is(err, ErrTooLarge) {
			if chunk := int(size) - FragHeaderLen; len(msg) <= MaxFragments*chunk {
				t.Fatalf("%d bytes in chunks of %d refused as too large", len(msg), chunk)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		seq := make([]int, 0, len(order)+len(frags))
		for _, o := range order {
			seq = append(seq, int(o)%len(frags))
		}
		for i := range frags {
			seq = append(seq, i)
		}
		have := map[int]bool{}
		for _, i := range seq {
			if len(frags[i]) > int(size) {
				t.Fatalf("fragment of %d bytes, size %d", len(frags[i]), size)
			}
			have[i] = true
			w, err := r.Add(frags[i])
			if err != nil {
				t.Fatalf("fragment %d: %v", i, err)
			}
			if w == nil {
				if len(have) == len(frags) {
					t.Fatalf("every fragment given, no message")
				}
				continue
			}
			if len(have) != len(frags) {
				t.Fatalf("a message with %d of %d fragments", len(have), len(frags))
			}
			if !bytes.Equal(w, msg) {
				t.Fatalf("reassembled %x, fragmented %x", w, msg)
			}
			return
		}
		t.Fatal("the message never completed")
	})
}

// FuzzPayloads decodes arbitrary bytes as each payload: an accepted one
// encodes back to the same bytes, a refused one is ErrMalformed.
func FuzzPayloads(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{0, 3, 0, 0, 0, 0, 0, 0, 0, 42})
	f.Add([]byte{0, 0, 0, 1, 0, 2, 'a', 'b'})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 42})
	f.Add([]byte("\x00\x02\x00\x00\x00\x00\x00\x00\x00\x07n4"))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x01{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(what string, err error, back []byte) {
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("%s: %v does not wrap ErrMalformed", what, err)
				}
				return
			}
			if !bytes.Equal(back, b) {
				t.Fatalf("%s: %x decodes and encodes to %x", what, b, back)
			}
		}
		p, err := DecodeProbe(b)
		check("probe", err, p.Encode())
		n, err := DecodeNotMember(b)
		check("not member", err, n.Encode())
		s, err := DecodeStateLost(b)
		check("state lost", err, s.Encode())
		e, err := DecodeEcho(b)
		check("echo", err, e.Encode())
		jr, err := DecodeJoinRequest(b)
		var jrBack []byte
		if err == nil {
			if jrBack, err = jr.Encode(); err != nil {
				t.Fatalf("join request %x decodes to %+v, which does not encode: %v", b, jr, err)
			}
		}
		check("join request", err, jrBack)
		jc, err := DecodeJoinConfig(b)
		check("join configuration", err, jc.Encode())
		h, chunk, err := ParseFragment(b)
		var back []byte
		if err == nil {
			back = append([]byte{byte(h.ID >> 24), byte(h.ID >> 16), byte(h.ID >> 8), byte(h.ID), h.Index, h.Count}, chunk...)
		}
		check("fragment", err, back)
	})
}
