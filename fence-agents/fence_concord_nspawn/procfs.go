package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/concord-ha/concord/lib/api/fenceproto"
)

const nspawnComm = "systemd-nspawn"

// procRoot is /proc; tests do not change it, it only names the dependency.
const procRoot = "/proc"

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, err := procState(pid)
	return err == nil && st != 'Z' && st != 'X'
}

func procState(pid int) (byte, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// "pid (comm) S ppid ..."; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return b[i+2], nil
}

func procPPID(pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return strconv.Atoi(f[1])
}

func procComm(pid int) string {
	b, _ := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "comm"))
	return strings.TrimSpace(string(b))
}

func procArgs(pid int) []string {
	b, _ := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cmdline"))
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

func pids() []int {
	ents, _ := os.ReadDir(procRoot)
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// machineName is the name systemd-nspawn gives its container: --machine /
// -M, else the basename of --directory / -D or --image / -i.
func machineName(args []string) string {
	var dir, image string
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case a == "-M" || a == "--machine":
			return next()
		case strings.HasPrefix(a, "--machine="):
			return strings.TrimPrefix(a, "--machine=")
		case strings.HasPrefix(a, "-M") && len(a) > 2:
			return a[2:]
		case a == "-D" || a == "--directory":
			dir = next()
		case strings.HasPrefix(a, "--directory="):
			dir = strings.TrimPrefix(a, "--directory=")
		case strings.HasPrefix(a, "-D") && len(a) > 2:
			dir = a[2:]
		case a == "-i" || a == "--image":
			image = next()
		case strings.HasPrefix(a, "--image="):
			image = strings.TrimPrefix(a, "--image=")
		}
	}
	if dir != "" {
		return filepath.Base(strings.TrimSuffix(dir, "/"))
	}
	if image != "" {
		b := filepath.Base(image)
		return strings.TrimSuffix(b, filepath.Ext(b))
	}
	return ""
}

// nspawnProcs maps machine names to a systemd-nspawn PID; see nspawnAll.
func nspawnProcs() map[string]int {
	out := map[string]int{}
	for n, ps := range nspawnAll() {
		out[n] = ps[0]
	}
	return out
}

// nspawnAll maps machine names to every live systemd-nspawn PID running
// them: nspawn runs as two processes of that name, and just after a
// container was killed and started again an old one may still be tearing
// down beside the new ones. Only one has the container's leader as child.
func nspawnAll() map[string][]int {
	out := map[string][]int{}
	for _, p := range pids() {
		if procComm(p) != nspawnComm {
			continue
		}
		args := procArgs(p)
		if len(args) > 0 && filepath.Base(args[0]) == "sh" { // a script named systemd-nspawn
			args = args[1:]
		}
		if n := machineName(args); n != "" && alive(p) {
			out[n] = append(out[n], p)
		}
	}
	return out
}

// childOf returns the first live child of parent, 0 if none.
func childOf(parent int) int {
	for _, p := range pids() {
		if pp, err := procPPID(p); err == nil && pp == parent && alive(p) {
			return p
		}
	}
	return 0
}

// pidBackend finds the leader from a pid file or the nspawn process.
type pidBackend struct {
	pidFile string
}

func (b *pidBackend) leader(ctx context.Context, name string) (int, error) {
	if b.pidFile != "" {
		path := strings.ReplaceAll(b.pidFile, "{plug}", name)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil // no pid file: not running
		}
		if err != nil {
			return 0, fmt.Errorf("nspawn: pid_file: %v: %w", err, fenceproto.ErrStatus)
		}
		s := strings.TrimSpace(string(data))
		if s == "" {
			return 0, nil
		}
		pid, err := strconv.Atoi(s)
		if err != nil || pid <= 1 {
			return 0, fmt.Errorf("nspawn: pid_file %s: bad pid %q: %w", path, s, fenceproto.ErrStatus)
		}
		if procComm(pid) == nspawnComm {
			return childOf(pid), nil
		}
		return pid, nil
	}
	// The supervisor whose container still has a live leader.
	for _, p := range nspawnAll()[name] {
		if l := childOf(p); l > 0 {
			return l, nil
		}
	}
	return 0, nil
}

// kill sends SIGKILL to the leader: when a PID namespace's init dies, the
// kernel kills every process in the namespace.
func (b *pidBackend) kill(ctx context.Context, name string) error {
	pid, err := b.leader(ctx, name)
	if err != nil {
		return err
	}
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		if errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("nspawn: kill leader %d of %s: %v: %w", pid, name, err, fenceproto.ErrPrivileges)
		}
		return fmt.Errorf("nspawn: kill leader %d of %s: %v", pid, name, err)
	}
	return nil
}

func (b *pidBackend) list(ctx context.Context) ([]string, error) {
	var names []string
	for n := range nspawnProcs() {
		names = append(names, n)
	}
	sortStrings(names)
	return names, nil
}

func (b *pidBackend) close() error { return nil }
