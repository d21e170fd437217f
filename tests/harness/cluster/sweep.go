package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

var tagRE = regexp.MustCompile(`^` + namePrefix + `[0-9a-z]{6}`)

// Sweep removes what earlier runs of this harness left behind, found by
// name only: cgroups concord-<prefix>* (their processes are killed first),
// mounts and temp dirs concord-<prefix>*, links <prefix>* and nft bridge
// tables <prefix>*. Sweep(log, "cc") removes every cluster on the host,
// running ones included; a cluster's Tag removes just that one.
func Sweep(log Logger, prefix string) error {
	if !strings.HasPrefix(prefix, namePrefix) {
		return fmt.Errorf("cluster: sweep prefix %q does not start with %q", prefix, namePrefix)
	}
	var errs []error
	cgs, _ := filepath.Glob(filepath.Join(freezerRoot, "concord-"+prefix+"*"))
	for _, cg := range cgs {
		nodes, _ := filepath.Glob(filepath.Join(cg, "*"))
		for _, n := range nodes {
			if st, err := os.Stat(n); err == nil && st.IsDir() {
				errs = append(errs, killCgroup(n))
			}
		}
	}
	tmps, _ := filepath.Glob(filepath.Join(os.TempDir(), "concord-"+prefix+"*"))
	for _, d := range tmps {
		errs = append(errs, removeTree(d))
	}
	for _, h := range nodeHierarchies {
		cgs, _ := filepath.Glob(filepath.Join(cgroupBase, h, "concord-"+prefix+"*"))
		for _, cg := range cgs {
			errs = append(errs, removeCgroup(cg))
		}
	}
	for _, l := range hostLinks() {
		if strings.HasPrefix(l, prefix) {
			errs = append(errs, run("ip", "link", "del", l))
		}
	}
	for _, t := range bridgeTables() {
		if strings.HasPrefix(t, prefix) {
			errs = append(errs, run("nft", "delete", "table", "bridge", t))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster: sweep %s: %w", prefix, err)
	}
	return nil
}

// SweepStale sweeps the clusters whose owning process is gone, leaving
// those of running test binaries alone. New calls it.
func SweepStale(log Logger) {
	tags := map[string]bool{}
	add := func(name string) {
		if t := tagRE.FindString(name); t != "" {
			tags[t] = true
		}
	}
	for _, l := range hostLinks() {
		add(l)
	}
	for _, t := range bridgeTables() {
		add(t)
	}
	for _, g := range []string{filepath.Join(os.TempDir(), "concord-cc*"), filepath.Join(freezerRoot, "concord-cc*"),
		filepath.Join(cgroupBase, "systemd", "concord-cc*"), filepath.Join(cgroupBase, "unified", "concord-cc*")} {
		ms, _ := filepath.Glob(g)
		for _, m := range ms {
			add(strings.TrimPrefix(filepath.Base(m), "concord-"))
		}
	}
	for t := range tags {
		pid, err := strconv.ParseInt(t[len(namePrefix):len(namePrefix)+5], 36, 64)
		if err != nil || pid == int64(os.Getpid()) || syscall.Kill(int(pid), 0) == nil {
			continue
		}
		log.Logf("cluster: sweeping leftovers of %s (process %d is gone)", t, pid)
		if err := Sweep(log, t); err != nil {
			log.Logf("%v", err)
		}
	}
}

func hostLinks() []string {
	var names []string
	ents, _ := os.ReadDir("/sys/class/net")
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func bridgeTables() []string {
	out, _ := exec.Command("nft", "list", "tables", "bridge").Output()
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "table" {
			names = append(names, f[2])
		}
	}
	return names
}
