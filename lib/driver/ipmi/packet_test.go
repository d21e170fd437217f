package ipmi

import (
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Datagrams: RMCP header, RMCP+ session header, payload.
const (
	// ipmi_sim's answer to Open Session with cipher suite 17: tag, status 04.
	openRefused = "06 00 ff 07  06 11 00000000 00000000 0200  00 04"
	// RAKP2 with status 0d (unauthorized name), truncated after the status.
	rakp2Refused = "06 00 ff 07  06 13 00000000 00000000 0800  00 0d 0000 a3a2a1a0"
	// An encrypted IPMI payload of IV plus two blocks.
	encOK = "06 00 ff 07  06 c0 01000000 02000000 3000 " +
		"00000000000000000000000000000000 00000000000000000000000000000000 00000000000000000000000000000000"
	// Encrypted, but only an IV: go-ipmi would index past the end.
	encShort = "06 00 ff 07  06 c0 01000000 02000000 1000 00000000000000000000000000000000"
	// Encrypted, 20 bytes: not whole AES blocks, CryptBlocks would panic.
	encRagged = "06 00 ff 07  06 c0 01000000 02000000 1400 0000000000000000000000000000000000000000"
	// IPMI v1.5 datagram (auth type 0).
	v15 = "06 00 ff 07  00 00000000 00000000 09 81 1c 63 20 04 38 00 01 00"
	// OEM explicit payload with the status byte after the 6 OEM bytes.
	oemOpen = "06 00 ff 07  06 02 00000000 0000 00000000 00000000 0200 00 05"
)

func TestSetupStatus(t *testing.T) {
	cases := []struct {
		name   string
		pkt    string
		status byte
		ok     bool
	}{
		{"open session refused", openRefused, 0x04, true},
		{"rakp2 refused", rakp2Refused, 0x0d, true},
		{"ipmi payload", encOK, 0, false},
		{"v1.5", v15, 0, false},
		{"oem payload type is not a setup message", oemOpen, 0, false},
		{"length past the end", "06 00 ff 07 06 11 00000000 00000000 0900 00 04", 0, false},
		{"empty", "", 0, false},
		{"not RMCP", "07 00 ff 07 06 11 00000000 00000000 0200 00 04", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, ok := setupStatus(unhex(t, tc.pkt))
			if st != tc.status || ok != tc.ok {
				t.Errorf("setupStatus = %#x, %v; want %#x, %v", st, ok, tc.status, tc.ok)
			}
		})
	}
}

func TestPlausible(t *testing.T) {
	cases := []struct {
		name string
		pkt  string
		want bool
	}{
		{"whole blocks", encOK, true},
		{"IV only", encShort, false},
		{"ragged", encRagged, false},
		{"unencrypted setup", openRefused, true},
		{"v1.5", v15, true},
		{"garbage is left to go-ipmi", "0102", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := plausible(unhex(t, tc.pkt)); got != tc.want {
				t.Errorf("plausible = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzSetupStatus(f *testing.F) {
	for _, s := range []string{openRefused, rakp2Refused, encOK, encShort, encRagged, v15, oemOpen} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, ok := setupStatus(b)
		if !ok && st != 0 {
			t.Fatalf("status %#x without ok", st)
		}
		ptype, payload, ok := session20Payload(b)
		if ok {
			if len(payload) > len(b)-16 {
				t.Fatalf("payload of %d bytes from a %d-byte datagram", len(payload), len(b))
			}
			if ptype&0x80 != 0 && plausible(b) && (len(payload) < 32 || len(payload)%16 != 0) {
				t.Fatal("implausible encrypted payload passed")
			}
		}
	})
}
