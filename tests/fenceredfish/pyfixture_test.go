package fenceredfish

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startPyFixture runs the shared Python fixture (copied to testdata) on a
// free loopback port, switching a dummy node process. It returns the port
// and the node directory.
func startPyFixture(t *testing.T) (int, string) {
	t.Helper()
	for _, tool := range []string{"python3", "openssl", "ss", "setsid"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s missing (Debian packages python3, openssl, iproute2, util-linux)", tool)
		}
	}
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	node := filepath.Join(dir, "node")
	os.MkdirAll(node, 0o755)
	start, _ := os.ReadFile(filepath.Join(td, "ipmi", "dummy-node-start"))
	os.WriteFile(filepath.Join(node, "start"), start, 0o755)
	port := closedPort(t)
	out, err := exec.Command("sh", filepath.Join(td, "redfish", "run-redfish.sh"), strconv.Itoa(port), node, filepath.Join(dir, "rf"), "admin", "s3cret-pw").Output()
	if err != nil {
		t.Fatalf("run-redfish.sh: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("run-redfish.sh printed %q", out)
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGTERM)
		if b, err := os.ReadFile(filepath.Join(node, "pid")); err == nil {
			if np, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && np > 1 {
				syscall.Kill(-np, syscall.SIGKILL)
			}
		}
		// Give the fixture a moment to exit before TempDir removal.
		for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	return port, node
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
