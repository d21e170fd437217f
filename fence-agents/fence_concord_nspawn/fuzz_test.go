package main

import (
	"strings"
	"testing"
)

func FuzzMachineName(f *testing.F) {
	for _, s := range []string{
		"systemd-nspawn\x00-M\x00web",
		"systemd-nspawn\x00--directory=/var/lib/machines/n1/\x00-b",
		"systemd-nspawn\x00--image=/i/vm.raw",
		"systemd-nspawn\x00-D",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		n := machineName(strings.Split(joined, "\x00"))
		if strings.Contains(n, "\x00") {
			t.Fatalf("machine name %q holds NUL", n)
		}
	})
}
