package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Close tears the cluster down: thaws and kills every node, saves the
// journals if the run failed, then removes the nft table, bridges,
// overlays, cgroups and temp dir. New registers it with the Env; calling it
// again does nothing.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		start := time.Now()
		var errs []error
		for _, n := range c.nodes {
			if len(n.cgroups) > 0 && exists(n.cgroups[0]) { // gone after Kill
				if err := killCgroup(n.cgroups[0]); err != nil {
					errs = append(errs, err)
				}
			}
			n.mu.Lock()
			done := n.done
			n.leader = 0
			n.mu.Unlock()
			if done != nil {
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					errs = append(errs, fmt.Errorf("%s: systemd-nspawn did not exit", n.Hostname))
				}
			}
		}
		if c.env.Failed() {
			c.saveArtifacts()
		}
		if c.tag != "" {
			exec.Command("nft", "delete", "table", "bridge", c.tag).Run()
		}
		for _, br := range c.bridges {
			if err := run("ip", "link", "del", br); err != nil {
				errs = append(errs, err)
			}
		}
		for _, n := range c.nodes {
			if n.mounted {
				if err := unmount(n.root); err != nil {
					errs = append(errs, err)
				}
			}
			for _, d := range n.cgroups {
				if err := removeCgroup(d); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for _, d := range nodeCgroups("concord-" + c.tag) {
			removeCgroup(d)
		}
		if c.dir != "" {
			if err := removeTree(c.dir); err != nil {
				errs = append(errs, err)
			}
		}
		c.Timings.Teardown = time.Since(start)
		if err := errors.Join(errs...); err != nil {
			c.logf("%s: teardown: %v", c.tag, err)
		}
		c.logf("%s: torn down in %v", c.tag, c.Timings.Teardown.Round(time.Millisecond))
	})
}

// saveArtifacts copies every node's journal (all boots, read from its disk
// so it works for killed and frozen nodes) and console log.
func (c *Cluster) saveArtifacts() {
	dir := os.Getenv("CONCORD_ARTIFACTS")
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", "concord-artifacts-")
	} else {
		dir = filepath.Join(dir, c.tag)
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		c.logf("cannot save journals: %v", err)
		return
	}
	for _, n := range c.nodes {
		out, err := exec.Command("journalctl", "-D", filepath.Join(n.root, "var/log/journal"),
			"--no-pager", "-o", "short-precise").CombinedOutput()
		if err != nil {
			out = append(out, fmt.Sprintf("\njournalctl: %v\n", err)...)
		}
		os.WriteFile(filepath.Join(dir, n.Hostname+".journal"), out, 0o644)
		if b, err := os.ReadFile(filepath.Join(n.dir, "console.log")); err == nil {
			os.WriteFile(filepath.Join(dir, n.Hostname+".console"), b, 0o644)
		}
	}
	c.logf("test failed: journals of %d nodes saved in %s", len(c.nodes), dir)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func unmount(p string) error {
	err := syscall.Unmount(p, 0)
	if err == nil || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("umount %s: %w", p, err)
	}
	return nil
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var ms []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) < 5 {
			continue
		}
		mp, err := strconv.Unquote(`"` + strings.ReplaceAll(fs[4], `"`, `\"`) + `"`)
		if err != nil {
			mp = fs[4]
		}
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			ms = append(ms, mp)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i]) > len(ms[j]) })
	return ms
}

// removeTree unmounts whatever is mounted below dir, then removes it. It
// refuses while anything stays mounted: removing files through an overlay
// would be wrong, through a bind mount disastrous.
func removeTree(dir string) error {
	for _, m := range mountsUnder(dir) {
		unmount(m)
	}
	if ms := mountsUnder(dir); len(ms) > 0 {
		return fmt.Errorf("not removing %s: %s still mounted", dir, strings.Join(ms, ", "))
	}
	return os.RemoveAll(dir)
}
