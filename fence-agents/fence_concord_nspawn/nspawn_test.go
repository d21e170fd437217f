package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRealNspawn fences a real systemd-nspawn container (the host's /usr on
// a volatile root, running sleep as its PID 1) through the pid backend.
func TestRealNspawn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: systemd-nspawn needs root")
	}
	nspawn, err := exec.LookPath("systemd-nspawn")
	if err != nil {
		t.Skip("SKIP: systemd-nspawn missing (Debian package systemd-container)")
	}
	name := fmt.Sprintf("cctest%d", os.Getpid())
	start := nspawn + " --register=no --keep-unit -q -D / --volatile=yes -M {plug} /bin/sleep 1000 </dev/null >/dev/null 2>&1 &"
	common := []string{"-n", name, "--backend=pid", "--start-command=" + start, "--power-timeout=15"}
	t.Cleanup(func() {
		// Whatever happened, leave no container behind.
		if p, ok := nspawnProcs()[name]; ok {
			syscall.Kill(p, syscall.SIGKILL)
			if l := childOf(p); l > 0 {
				syscall.Kill(l, syscall.SIGKILL)
			}
		}
	})
	steps := []struct {
		action string
		code   int
		out    string
	}{
		{"status", 2, "Status: OFF\n"},
		{"on", 0, "Success: Powered ON\n"},
		{"status", 0, "Status: ON\n"},
		{"reboot", 0, "Success: Rebooted\n"},
		{"off", 0, "Success: Powered OFF\n"},
		{"status", 2, "Status: OFF\n"},
	}
	for _, st := range steps {
		code, out, errs := run(t, append([]string{"-o", st.action}, common...)...)
		if code != st.code || out != st.out {
			t.Fatalf("%s: exit %d stdout %q stderr %q", st.action, code, out, errs)
		}
		if st.action == "on" {
			if _, out, _ := run(t, "-o", "list", "--backend=pid"); !strings.Contains(out, name+","+name+"\n") {
				t.Errorf("list %q lacks %s", out, name)
			}
		}
	}
	// systemd-nspawn itself exits once its container's PID 1 is killed.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := nspawnProcs()[name]; !ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("systemd-nspawn for %s still running after off", name)
}
