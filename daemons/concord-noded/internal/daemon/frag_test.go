package daemon

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestFragmentRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 100, 1194, 1195, 5000, 20000} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(r.IntN(256))
		}
		frags := fragment(uint32(size), msg, 1200)
		if frags == nil {
			t.Fatalf("size %d: not fragmented", size)
		}
		// Out of order and with a duplicate: still one whole message.
		r.Shuffle(len(frags), func(i, j int) { frags[i], frags[j] = frags[j], frags[i] })
		frags = append(frags, frags[0])
		var re reassembly
		var got []byte
		for _, f := range frags {
			if len(f) > 1200 {
				t.Fatalf("size %d: fragment of %d bytes", size, len(f))
			}
			w, err := re.add(f)
			if err != nil {
				t.Fatal(err)
			}
			if w != nil {
				got = w
			}
		}
		if !bytes.Equal(got, msg) && !(size == 0 && got != nil) {
			t.Fatalf("size %d: reassembled %d bytes", size, len(got))
		}
	}
}

func TestFragmentTooLargeAndBadInput(t *testing.T) {
	if fragment(1, make([]byte, 100000), 1200) != nil {
		t.Fatal("a message needing more than 64 fragments must be refused")
	}
	var re reassembly
	for _, bad := range [][]byte{nil, {1, 2, 3}, {0, 0, 0, 1, 0, 0}, {0, 0, 0, 1, 5, 3}, {0, 0, 0, 1, 0, 200}} {
		if _, err := re.add(bad); err == nil {
			t.Errorf("fragment %v accepted", bad)
		}
	}
}

func FuzzReassembly(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 'a'}, []byte{0, 0, 0, 1, 1, 2, 'b'})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var re reassembly
		re.add(a)
		re.add(b)
	})
}
