package fenceipmi

import (
	"os/exec"
	"testing"
)

func requireTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("SKIP: %s not installed (Debian packages openipmi, ipmitool, fence-agents): %v", n, err)
		}
	}
}

// startSim starts an ipmi_sim for the test and stops it in cleanup.
func startSim(t testing.TB) *Sim {
	t.Helper()
	requireTools(t, "ipmi_sim")
	s, err := StartSimFreePort(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}
