package fencepeer

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Redfish is the shared Python Redfish fixture on 127.0.0.1: HTTPS with a
// self-signed certificate and Basic auth, its one system a Node.
type Redfish struct {
	Port int
	Node Node
	pid  int
}

// StartRedfish runs the fixture with its files under dir and the node
// powered off. A missing tool gives an error wrapping exec.ErrNotFound
// (Debian packages python3, openssl, iproute2, util-linux).
func StartRedfish(dir, user, password string) (*Redfish, error) {
	for _, tool := range []string{"python3", "openssl", "ss", "setsid"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, err
		}
	}
	if err := writeFiles(dir, "ipmi/chassis.sh", "redfish/run-redfish.sh", "redfish/redfish_fixture.py"); err != nil {
		return nil, err
	}
	node, err := NewNode(filepath.Join(dir, "node"))
	if err != nil {
		return nil, err
	}
	port, err := FreeTCPPort()
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("sh", filepath.Join(dir, "redfish", "run-redfish.sh"), strconv.Itoa(port), node.Dir,
		filepath.Join(dir, "rf"), user, password).Output()
	if err != nil {
		return nil, fmt.Errorf("run-redfish.sh: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return nil, fmt.Errorf("run-redfish.sh printed %q", out)
	}
	return &Redfish{Port: port, Node: node, pid: pid}, nil
}

// Stop ends the fixture and the node, by PID, and waits a moment for the
// fixture to exit so its folder can go.
func (r *Redfish) Stop() {
	syscall.Kill(r.pid, syscall.SIGTERM)
	r.Node.Kill()
	for i := 0; i < 50 && syscall.Kill(r.pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
}
