package noded

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/tests/harness/cluster"
	"github.com/concord-ha/concord/tests/harness/concordtest"
)

// A node is added as an admin would add it, with only the key and its
// name on the new node, then deleted and started again, which it refuses.
func TestJoinWithOnlyTheKeyAndStayOutOnceDeleted(t *testing.T) {
	// node4 is booted and has the package, but is not configured yet.
	c, ctx := boot(t, concordtest.Options{Nodes: 4, ConfNodes: 3})
	all := []int{1, 2, 3}
	four := []int{1, 2, 3, 4}
	mustView(t, ctx, c, all, ids(1, 2, 3))
	err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
		s, err := c.Status(ctx, 1)
		return err == nil && s.Config.Leader != 0, fmt.Sprintf("node1: %+v %v", s.Config, err)
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a/NewNodeJoinsWithOnlyTheKey", func(t *testing.T) {
		out, err := c.Exec(ctx, 1, nodeAdd(c, 4)...)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"added node node4 as number 4", "copy /etc/concord/authkey", "[node node4]", "systemctl enable --now concord-noded"} {
			if !strings.Contains(out, want) {
				t.Errorf("node add does not say %q:\n%s", want, out)
			}
		}
		// What the steps say, and nothing more: the key, and the file
		// with only [node node4] (node4 is also its host name).
		if err := c.WriteFile(4, "/etc/concord/authkey", c.Key, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteFile(4, "/etc/concord/cluster.conf", []byte("[node node4]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Systemctl(ctx, 4, "enable", "--now", "concord-noded"); err != nil {
			j, _ := c.Exec(ctx, 4, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat")
			t.Fatalf("node4: systemctl enable --now concord-noded: %v\n%s", err, j)
		}
		mustView(t, ctx, c, four, ids(1, 2, 3, 4))
		want, err := c.Exec(ctx, 1, "concordctl", "config", "show")
		if err != nil {
			t.Fatal(err)
		}
		err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			got, err := c.Exec(ctx, 4, "concordctl", "config", "show")
			return err == nil && got == want, fmt.Sprintf("node4: %v\n%s\nnode1:\n%s", err, got, want)
		})
		if err != nil {
			t.Fatal(err)
		}
		if b, err := c.ReadFile(4, "/etc/concord/cluster.conf"); err != nil || string(b) != "[node node4]\n" {
			t.Errorf("node4's cluster.conf was changed: %q %v", b, err)
		}
		if _, err := c.ReadFile(4, "/var/lib/concord/joined.conf"); err != nil {
			t.Errorf("node4 did not keep what it fetched: %v", err)
		}
		j, _ := c.Exec(ctx, 4, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat")
		if !strings.Contains(j, "joined cluster "+c.Tag()) {
			t.Errorf("node4's journal does not say it joined:\n%s", j)
		}
	})

	t.Run("b/DeletedNodeStaysOut", func(t *testing.T) {
		ensureMember(t, ctx, c, 4)
		if _, err := c.Exec(ctx, 1, "concordctl", "node", "delete", "node4"); err != nil {
			t.Fatal(err)
		}
		mustView(t, ctx, c, all, ids(1, 2, 3))
		err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			st := unitState(ctx, c, 4)
			return st == "inactive", "concord-noded on node4 is " + st
		})
		if err != nil {
			t.Fatal(err)
		}
		since := time.Now()
		restarts := unitProp(ctx, c, 4, "NRestarts")
		// Its unit is still enabled, and it is started again.
		if out, err := c.Systemctl(ctx, 4, "start", "concord-noded"); err == nil {
			t.Errorf("node4 started again after it was deleted: %s", out)
		}
		j, _ := c.Exec(ctx, 4, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat", "--since", journalTime(since))
		for _, want := range []string{"was deleted from cluster " + c.Tag() + "'s configuration",
			"run `concordctl node add node4 --link", "then here `rm -r /var/lib/concord`", "systemctl start concord-noded"} {
			if !strings.Contains(j, want) {
				t.Errorf("node4's journal does not say %q:\n%s", want, j)
			}
		}
		if st := unitProp(ctx, c, 4, "ExecMainStatus"); st != "6" {
			t.Errorf("node4's daemon exited with %q, want 6", st)
		}
		// It stays out: systemd does not start it again.
		for range 5 {
			time.Sleep(time.Second)
			if st := unitState(ctx, c, 4); st == "active" || st == "activating" {
				t.Fatalf("node4's daemon is %s again", st)
			}
		}
		if n := unitProp(ctx, c, 4, "NRestarts"); n != restarts {
			t.Errorf("systemd restarted node4's daemon: NRestarts %s, was %s", n, restarts)
		}
		mustView(t, ctx, c, all, ids(1, 2, 3))

		// Frames that a deleted node would still send (an older version,
		// say), sealed with the key: node1 tells it, but does not log that
		// every second.
		st, err := c.Status(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		since = time.Now()
		for i := range 3 {
			if i > 0 {
				time.Sleep(1500 * time.Millisecond)
			}
			if err := sendAs(c.Bridge(0), c.Key, st.Cluster.ID, 4, 10); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second)
		out, err := c.Exec(ctx, 1, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat", "--since", journalTime(since))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out, "node 4 is not in the cluster configuration"); n > 1 {
			t.Errorf("node1 logged %d times in 4 s that node 4 is not in the configuration:\n%s", n, out)
		}
	})
}

// ensureMember makes node i a member the way an admin did before nodes
// could join with only the key, if it is not one yet: so that the part
// after it also runs where joining does not work.
func ensureMember(t *testing.T, ctx context.Context, c *concordtest.Cluster, i int) {
	t.Helper()
	if unitState(ctx, c, i) == "active" {
		if _, err := c.WaitView(ctx, []int{1, i}, ids(1, 2, 3, i), changeTimeout); err == nil {
			return
		}
	}
	t.Logf("node%d is not a member; adding it with a copy of the configuration", i)
	c.Exec(ctx, 1, nodeAdd(c, i)...) // it may be added already
	c.Systemctl(ctx, i, "stop", "concord-noded")
	startAdded(t, ctx, c, 1, i)
	mustView(t, ctx, c, []int{1, 2, 3, i}, ids(1, 2, 3, i))
}

// unitState is concord-noded's ActiveState on node i.
func unitState(ctx context.Context, c *concordtest.Cluster, i int) string {
	out, _, _ := c.Cluster.Exec(ctx, i, "systemctl", "is-active", "concord-noded")
	return strings.TrimSpace(out)
}

// unitProp is one property of concord-noded.service on node i.
func unitProp(ctx context.Context, c *concordtest.Cluster, i int, name string) string {
	out, _, _ := c.Cluster.Exec(ctx, i, "systemctl", "show", "-p", name, "--value", "concord-noded")
	return strings.TrimSpace(out)
}

// journalTime is t for journalctl --since.
func journalTime(t time.Time) string {
	return "@" + strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 6, 64)
}
