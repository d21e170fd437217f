package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCrashHelper is the crashing test binary of TestSweepAfterCrash.
func TestCrashHelper(t *testing.T) {
	if os.Getenv("CONCORD_CLUSTER_CRASH") != "1" {
		t.Skip("helper process of TestSweepAfterCrash")
	}
	c, err := New(context.Background(), t, Options{Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("CLUSTER %s %d\n", c.Tag(), c.Leader(1))
	select {} // killed by the parent
}

// A test binary killed mid-run (as by go test -timeout) runs no cleanup; the
// next cluster's New sweeps what it left.
func TestSweepAfterCrash(t *testing.T) {
	requireHost(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "CONCORD_CLUSTER_CRASH=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var tag string
	var leader int
	s := bufio.NewScanner(out)
	for s.Scan() {
		if _, err := fmt.Sscanf(s.Text(), "CLUSTER %s %d", &tag, &leader); err == nil {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if tag == "" {
		t.Fatal("helper did not boot a cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	SweepStale(t)
	if err := Eventually(ctx, func() (bool, string) {
		if !Dead(leader) {
			return false, fmt.Sprintf("node PID 1 (%d) still runs", leader)
		}
		return true, ""
	}); err != nil {
		t.Error(err)
	}
	if left := leftovers(tag); len(left) > 0 {
		t.Errorf("after SweepStale, %s left: %s", tag, strings.Join(left, ", "))
	}
}

func leftovers(tag string) []string {
	var left []string
	for _, l := range hostLinks() {
		if strings.HasPrefix(l, tag) {
			left = append(left, "link "+l)
		}
	}
	for _, tb := range bridgeTables() {
		if strings.HasPrefix(tb, tag) {
			left = append(left, "nft table "+tb)
		}
	}
	for _, g := range []string{filepath.Join(os.TempDir(), "concord-"+tag+"*"), filepath.Join(cgroupBase, "*", "concord-"+tag)} {
		ms, _ := filepath.Glob(g)
		left = append(left, ms...)
	}
	for _, m := range mountsUnder("/") {
		if strings.Contains(m, "concord-"+tag) {
			left = append(left, "mount "+m)
		}
	}
	return left
}
