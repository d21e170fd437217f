package fenceredfish

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/concord-ha/concord/tests/harness/fencepeer"
)

// startPyFixture runs the shared Python fixture on a free loopback port,
// switching a dummy node process. It returns the port and the node
// directory.
func startPyFixture(t *testing.T) (int, string) {
	t.Helper()
	r, err := fencepeer.StartRedfish(t.TempDir(), "admin", "s3cret-pw")
	if errors.Is(err, exec.ErrNotFound) {
		t.Skipf("SKIP: %v (Debian packages python3, openssl, iproute2, util-linux)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r.Port, r.Node.Dir
}

// TestPythonFixture runs both agents through the same sequence against the
// shared Python fixture, which really starts and kills a node process.
func TestPythonFixture(t *testing.T) {
	steps := []struct {
		action string
		code   int
		out    string
	}{
		{"status", 2, "Status: OFF\n"}, // the fixture's node starts powered off
		{"on", 0, "Success: Powered ON\n"},
		{"status", 0, "Status: ON\n"},
		{"off", 0, "Success: Powered OFF\n"},
		{"reboot", 0, "Success: Rebooted\n"},
		{"reboot", 0, "Success: Rebooted\n"},
		{"status", 0, "Status: ON\n"},
		{"off", 0, "Success: Powered OFF\n"},
	}
	logs := map[string]string{}
	for _, agent := range agents(t) {
		name := filepath.Base(agent)
		t.Run(name, func(t *testing.T) {
			port, node := startPyFixture(t)
			for _, st := range steps {
				res := call(t, agent, st.action, params(port))
				if res.ExitCode != st.code || res.Stdout != st.out {
					t.Errorf("%s: exit %d stdout %q, want %d %q (stderr %q)", st.action, res.ExitCode, res.Stdout, st.code, st.out, res.Stderr)
				}
			}
			b, _ := os.ReadFile(filepath.Join(node, "redfish.log"))
			logs[name] = string(b)
			if _, err := os.Stat(filepath.Join(node, "pid")); err == nil {
				t.Errorf("node still has a pid file after off")
			}
		})
	}
	if len(logs) == 2 && logs["fence_concord_redfish"] != logs["fence_redfish"] {
		t.Errorf("ResetTypes differ:\nours:\n%s\nreference:\n%s", logs["fence_concord_redfish"], logs["fence_redfish"])
	}
}
