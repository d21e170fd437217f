package frame

import (
	"bytes"
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
