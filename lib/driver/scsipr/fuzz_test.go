package scsipr

import "testing"

func FuzzParse(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0xa1, 0, 0, 0, 0, 0, 0, 0, 0xb1})
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0xa1, 0, 0, 0, 0, 0, 5, 0, 0})
	f.Add([]byte{0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0})
	f.Add([]byte{0x72, 6, 0x2a, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := ParseReadKeys(b); err == nil && !k.Truncated && len(k.Keys)*8+8 > len(b) {
			t.Errorf("%d keys from %d bytes", len(k.Keys), len(b))
		}
		if r, err := ParseReadReservation(b); err == nil && r.Held && len(b) < 24 {
			t.Errorf("reservation from %d bytes", len(b))
		}
		if s, err := ParseSense(b); err == nil {
			_ = s.String()
		}
	})
}
