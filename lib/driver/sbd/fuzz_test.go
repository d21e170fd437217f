package sbd

import (
	"bytes"
	"testing"
)

func FuzzHeader(f *testing.F) {
	h := DefaultHeader()
	b, _ := h.Marshal()
	f.Add(b[:64])
	f.Add([]byte("SBD_SBD_\x02\xff\x00\x00\x00\x00\x10\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		out, err := h.Marshal()
		if err != nil {
			t.Fatalf("parsed header does not marshal: %v", err)
		}
		again, err := ParseHeader(out)
		if err != nil || again != h {
			t.Errorf("round trip: %+v vs %+v, %v", again, h, err)
		}
		if !bytes.Equal(out[:12], b[:12]) && b[10] == 0 && b[11] == 0 {
			t.Errorf("prefix changed: % x vs % x", out[:12], b[:12])
		}
		if _, _, err := parseEntry(b); err == nil && len(b) < entryLen {
			t.Error("short entry parsed")
		}
	})
}
