package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	freezerRoot = "/sys/fs/cgroup/freezer"
	cgroupBase  = "/sys/fs/cgroup"
)

// Each node's nspawn runs in its own cgroup in these hierarchies: freezer
// to freeze and kill the node at once; name=systemd and the unified one
// because nspawn --keep-unit creates its payload/supervisor groups under
// its own cgroup there, and two nodes must not share them.
var nodeHierarchies = []string{"freezer", "systemd", "unified"}

// nodeCgroups returns the per-node cgroup directories that exist on this host.
func nodeCgroups(rel string) []string {
	var dirs []string
	for _, h := range nodeHierarchies {
		if _, err := os.Stat(filepath.Join(cgroupBase, h, "cgroup.procs")); err == nil {
			dirs = append(dirs, filepath.Join(cgroupBase, h, rel))
		}
	}
	return dirs
}

func makeCgroups(dirs []string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", d, err)
		}
	}
	return nil
}

// cgroupPids lists every task in dir and its descendants.
func cgroupPids(dir string) []int {
	var pids []int
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

func freezerState(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
	return strings.TrimSpace(string(b)), err
}

// setFreezer writes FROZEN or THAWED and waits until the kernel reports it:
// FREEZING can last a moment while tasks reach a freezable point.
func setFreezer(ctx context.Context, dir, state string) error {
	if err := os.WriteFile(filepath.Join(dir, "freezer.state"), []byte(state), 0o644); err != nil {
		return fmt.Errorf("freezer %s: %w", dir, err)
	}
	return Poll(ctx, 10*time.Millisecond, func() (bool, string) {
		s, err := freezerState(dir)
		if err != nil {
			return false, err.Error()
		}
		return s == state, "freezer.state is " + s
	})
}

// killCgroup kills every task under the freezer cgroup dir at once: freeze,
// SIGKILL each task, thaw. Frozen tasks cannot fork, so nothing escapes.
func killCgroup(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	frozen := setFreezer(ctx, dir, "FROZEN") == nil
	for _, pid := range cgroupPids(dir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := setFreezer(ctx, dir, "THAWED"); err != nil {
		return err
	}
	if !frozen {
		for _, pid := range cgroupPids(dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return Poll(ctx, 10*time.Millisecond, func() (bool, string) {
		n := len(cgroupPids(dir))
		return n == 0, fmt.Sprintf("%d tasks left in %s", n, dir)
	})
}

// removeCgroup removes dir and its descendants, deepest first. Cgroup
// directories can only be removed with rmdir and only when empty.
func removeCgroup(dir string) error {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var errs []error
	for _, d := range dirs {
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
