package fencepeer

import (
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The fixtures as in /work/shared/fencing-peers: ipmi/chassis.sh switches a
// node, ipmi/dummy-node-start is the node, redfish/ serves Redfish over
// ../ipmi/chassis.sh.
//
//go:embed testdata/ipmi testdata/redfish
var files embed.FS

// writeFiles copies the named fixtures (paths under testdata) to the same
// paths under dir, executable.
func writeFiles(dir string, names ...string) error {
	for _, name := range names {
		b, err := files.ReadFile("testdata/" + name)
		if err != nil {
			return err
		}
		to := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(to, b, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// Chassis writes chassis.sh under dir and returns its path. It is called
// as `chassis.sh NODE_DIR get power` or `set power 0|1`, `set reset 1`...
func Chassis(dir string) (string, error) {
	const name = "ipmi/chassis.sh"
	return filepath.Join(dir, name), writeFiles(dir, name)
}

// Node is a dummy node that chassis.sh switches: Dir/start runs it and
// writes its PID to Dir/pid, and chassis.sh logs its actions to
// Dir/events.log.
type Node struct {
	Dir string
}

// NewNode makes dir a node, powered off.
func NewNode(dir string) (Node, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Node{}, err
	}
	b, err := files.ReadFile("testdata/ipmi/dummy-node-start")
	if err != nil {
		return Node{}, err
	}
	return Node{Dir: dir}, os.WriteFile(filepath.Join(dir, "start"), b, 0o755)
}

// Powered reports whether the node process is alive (not a zombie).
func (n Node) Powered() bool {
	pid, ok := n.pid()
	if !ok {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

func (n Node) pid() (int, bool) {
	b, err := os.ReadFile(filepath.Join(n.Dir, "pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 1
}

// Events returns the chassis actions logged so far, e.g. "power 0",
// "power 1", "reset 1", without their timestamps.
func (n Node) Events() []string {
	b, err := os.ReadFile(filepath.Join(n.Dir, "events.log"))
	if err != nil {
		return nil
	}
	var ev []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if _, rest, ok := strings.Cut(line, " "); ok {
			ev = append(ev, rest)
		}
	}
	return ev
}

// ClearEvents empties the events log.
func (n Node) ClearEvents() error {
	err := os.Remove(filepath.Join(n.Dir, "events.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Kill SIGKILLs the node's process group, by PID.
func (n Node) Kill() {
	// Only a live dummy node: a stale pid file may name a recycled PID.
	if pid, ok := n.pid(); ok && n.Powered() {
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmd), "while :; do sleep 1; done") {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
}
