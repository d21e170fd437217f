package noded

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/tests/harness/cluster"
	"github.com/concord-ha/concord/tests/harness/concordtest"
)

// ctxB is the second cluster context of TestTwoClusterContexts.
const ctxB = "b"

// numB is the number of node i in cluster b: other numbers than the
// default cluster's, so a view mixing the two clusters would show.
func numB(i int) uint16 { return uint16(10 + i) }

// statusB is `concordctl --json status` of cluster b on node i: by the
// --cluster flag on odd nodes, by CONCORD_CLUSTER on even ones.
func statusB(ctx context.Context, c *concordtest.Cluster, i int) (nodebus.Status, error) {
	var s nodebus.Status
	argv := []string{"concordctl", "--cluster", ctxB, "--json", "status"}
	if i%2 == 0 {
		argv = []string{"env", "CONCORD_CLUSTER=" + ctxB, "concordctl", "--json", "status"}
	}
	out, err := c.Exec(ctx, i, argv...)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return s, fmt.Errorf("node%d: %s: %v: %q", i, strings.Join(argv, " "), err, out)
	}
	return s, nil
}

// waitViewB waits until cluster b on every node in nodes has the same view
// with exactly members, and returns its seq.
func waitViewB(t *testing.T, ctx context.Context, c *concordtest.Cluster, nodes []int, members []uint16) uint64 {
	t.Helper()
	seq, err := c.WaitViewIn(ctx, ctxB, nodes, members, changeTimeout)
	if err != nil {
		t.Fatalf("nodes %v never agreed on cluster b's view %v: %v", nodes, members, err)
	}
	return seq
}

// Two clusters on the same three hosts and the same heartbeat NICs and
// bridges: the default context (concord-noded) and context b
// (concord-noded@b), with their own names, ids, keys, node numbers, state
// and bus names. Each forms its own view and stays apart from the other:
// stopping one cluster's daemon on a node changes that cluster's view
// only, and the other cluster sees no view change at all.
func TestTwoClusterContexts(t *testing.T) {
	c, ctx := boot(t, concordtest.Options{Nodes: 3})
	all := []int{1, 2, 3}
	seqA := mustView(t, ctx, c, all, ids(1, 2, 3))

	// Cluster b's configuration: the same hosts and NICs, another name
	// (so another cluster id) and other node numbers; its key made by
	// concordctl --cluster b keygen in /etc/concord/b.
	nameB := c.Tag() + "-b"
	var conf strings.Builder
	fmt.Fprintf(&conf, "[cluster]\nname = %s\n\n", nameB)
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&conf, "[node %s]\nnumber = %d\n", c.Node(i).Hostname, numB(i))
		for l, mac := range c.Node(i).MACs {
			fmt.Fprintf(&conf, "link = %s %s\n", cluster.LinkName(l), mac)
		}
		conf.WriteString("\n")
	}
	out, err := c.Exec(ctx, 1, "concordctl", "--cluster", ctxB, "keygen")
	if err != nil || !strings.Contains(out, "/etc/concord/b/authkey") {
		t.Fatalf("concordctl --cluster b keygen: %v: %s", err, out)
	}
	if mode, err := c.Exec(ctx, 1, "stat", "-c", "%a", "/etc/concord/b", "/etc/concord/b/authkey"); err != nil || strings.Fields(mode)[0] != "700" || strings.Fields(mode)[1] != "600" {
		t.Fatalf("keygen made /etc/concord/b and its key with modes %q (%v), want 700 and 600", mode, err)
	}
	keyB, err := c.ReadFile(1, "/etc/concord/b/authkey")
	if err != nil {
		t.Fatal(err)
	}
	if string(keyB) == string(c.Key) {
		t.Fatal("cluster b's key is the default cluster's")
	}
	for _, i := range all {
		if err := c.ConfigureIn(ctx, i, ctxB, conf.String(), keyB); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range all {
		if err := c.StartDaemonIn(ctx, i, ctxB); err != nil {
			t.Fatal(err)
		}
	}
	waitViewB(t, ctx, c, all, []uint16{numB(1), numB(2), numB(3)})

	// Each cluster's status is its own.
	var idA, idB uint32
	for _, i := range all {
		a, err := c.Status(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		b, err := statusB(ctx, c, i)
		if err != nil {
			t.Fatal(err)
		}
		idA, idB = a.Cluster.ID, b.Cluster.ID
		if a.Cluster.Name != c.Tag() || b.Cluster.Name != nameB || idA == idB {
			t.Errorf("node%d: default cluster %+v, cluster b %+v", i, a.Cluster, b.Cluster)
		}
		if a.LocalNode != uint16(i) || b.LocalNode != numB(i) || len(a.Nodes) != 3 || len(b.Nodes) != 3 {
			t.Errorf("node%d: default cluster node %d with %d nodes, cluster b node %d with %d nodes", i, a.LocalNode, len(a.Nodes), b.LocalNode, len(b.Nodes))
		}
		for _, n := range b.Nodes {
			if n.Number < numB(1) || n.Number > numB(3) {
				t.Errorf("node%d: cluster b lists node %d", i, n.Number)
			}
		}
	}
	// Each hears the other's frames on the shared links, from hosts in
	// its own view: shown as such, not as a fault (once the view has the
	// host: the first frames may come before).
	err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
		for _, i := range all {
			a, err := c.Status(ctx, i)
			if err != nil {
				return false, err.Error()
			}
			b, err := statusB(ctx, c, i)
			if err != nil {
				return false, err.Error()
			}
			for _, s := range []nodebus.Status{a, b} {
				if len(s.OtherClusters) == 0 {
					return false, fmt.Sprintf("node%d, cluster %s: no other cluster heard", i, s.Cluster.Name)
				}
				for _, o := range s.OtherClusters {
					if o.AlsoMember == "" {
						return false, fmt.Sprintf("node%d, cluster %s: frames of cluster id %d from %s not recognised as another context of a member", i, s.Cluster.Name, o.ClusterID, o.MAC)
					}
				}
			}
		}
		return true, ""
	})
	if err != nil {
		t.Error(err)
	}
	// The text status and busctl name cluster b's daemon too.
	out, err = c.Exec(ctx, 2, "concordctl", "--cluster", ctxB, "status")
	if err != nil || !strings.Contains(out, fmt.Sprintf("Cluster:  %s (id %d)", nameB, idB)) {
		t.Errorf("concordctl --cluster b status: %v\n%s", err, out)
	}
	if out, err := c.Exec(ctx, 3, "busctl", "get-property", nodebus.BusName+"."+ctxB, string(nodebus.ManagerPath), nodebus.ManagerIface, "ViewMembers"); err != nil ||
		strings.TrimSpace(out) != fmt.Sprintf("aq 3 %d %d %d", numB(1), numB(2), numB(3)) {
		t.Errorf("busctl ViewMembers of %s.%s: %q %v", nodebus.BusName, ctxB, out, err)
	}
	// Its state, runtime directory and log are its own.
	err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
		for _, path := range []string{"/var/lib/concord/b/raft.wal", "/var/lib/concord/raft.wal", "/run/concord/b"} {
			if _, err := c.Exec(ctx, 1, "test", "-e", path); err != nil {
				ls, _ := c.Exec(ctx, 1, "ls", "-lR", "/var/lib/concord", "/run/concord")
				return false, fmt.Sprintf("%s: %v\n%s", path, err, ls)
			}
		}
		return true, ""
	})
	if err != nil {
		t.Error(err)
	}
	if j, err := c.Exec(ctx, 1, "journalctl", "-u", "concord-noded@"+ctxB, "--no-pager", "-o", "cat"); err != nil || !strings.Contains(j, "concord-noded started in cluster context b (bus name org.concordha.node1.b, state /var/lib/concord/b)") {
		t.Errorf("concord-noded@b's journal does not name its context: %v\n%s", err, tail(j, 2000))
	}
	groupsApart(t, ctx, c)

	// No context that is not running, and no bad name.
	if _, err := c.Exec(ctx, 1, "concordctl", "--cluster", "c", "status"); err == nil || !strings.Contains(err.Error(), "systemctl start concord-noded@c") {
		t.Errorf("concordctl --cluster c status, with no such daemon: %v", err)
	}
	if _, err := c.Exec(ctx, 1, "concordctl", "--cluster", "B", "status"); err == nil || !strings.Contains(err.Error(), `cluster context "B": must start with a lowercase letter`) {
		t.Errorf("concordctl --cluster B status: %v", err)
	}

	// Cluster b loses node 3: only b's view changes.
	if _, err := c.Systemctl(ctx, 3, "stop", "concord-noded@"+ctxB); err != nil {
		t.Fatal(err)
	}
	waitViewB(t, ctx, c, []int{1, 2}, []uint16{numB(1), numB(2)})
	if seq := mustView(t, ctx, c, all, ids(1, 2, 3)); seq != seqA {
		t.Errorf("the default cluster changed its view (%d to %d) when cluster b lost a node", seqA, seq)
	}
	if _, err := c.Exec(ctx, 3, "test", "-d", "/run/concord/b"); err == nil {
		t.Error("/run/concord/b is left after concord-noded@b stopped")
	}
	if _, err := c.Exec(ctx, 3, "test", "-d", "/run/concord"); err != nil {
		t.Error("/run/concord went with concord-noded@b")
	}
	if err := c.StartDaemonIn(ctx, 3, ctxB); err != nil {
		t.Fatal(err)
	}
	seqB := waitViewB(t, ctx, c, all, []uint16{numB(1), numB(2), numB(3)})

	// The default cluster loses node 2: only its view changes.
	if err := c.StopDaemon(ctx, 2); err != nil {
		t.Fatal(err)
	}
	mustView(t, ctx, c, []int{1, 3}, ids(1, 3))
	if seq := waitViewB(t, ctx, c, all, []uint16{numB(1), numB(2), numB(3)}); seq != seqB {
		t.Errorf("cluster b changed its view (%d to %d) when the default cluster lost a node", seqB, seq)
	}
	// Stopping the default unit leaves the other contexts' runtime
	// directories alone.
	if _, err := c.Exec(ctx, 2, "test", "-d", "/run/concord/b"); err != nil {
		t.Error("/run/concord/b went with concord-noded on node2")
	}

	// Neither cluster warned about the other's frames.
	for _, i := range all {
		for _, unit := range []string{"concord-noded", "concord-noded@" + ctxB} {
			j, err := c.Exec(ctx, i, "journalctl", "-u", unit, "--no-pager", "-o", "cat")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(j, "frames of another cluster") {
				t.Errorf("node%d %s warned about the other context's frames:\n%s", i, unit, tail(j, 3000))
			}
		}
	}
}

var memberRow = regexp.MustCompile(`(?m)^\d+\s+\d+\s+\d+`)

// groupsApart: both clusters have a group g; a member of each cluster's g
// on node 1 gets that cluster's messages only, sent from node 2, although
// both daemons run on the same nodes and NICs.
func groupsApart(t *testing.T, ctx context.Context, c *concordtest.Cluster) {
	t.Helper()
	ctl := map[string][]string{"a": {"concordctl"}, "b": {"concordctl", "--cluster", ctxB}}
	type watched struct {
		out string
		err error
	}
	res := map[string]chan watched{"a": make(chan watched, 1), "b": make(chan watched, 1)}
	for k, ch := range res {
		go func() {
			out, err := c.Exec(ctx, 1, append(ctl[k], "group", "watch", "g", "--count", "5", "--timeout", "30s")...)
			ch <- watched{out, err}
		}()
	}
	// The watchers are members once their view shows them.
	for _, k := range []string{"a", "b"} {
		err := cluster.Eventually(withTimeout(ctx, 20*time.Second), func() (bool, string) {
			out, _ := c.Exec(ctx, 2, append(ctl[k], "group", "members", "g")...)
			return memberRow.MatchString(out), "members: " + out
		})
		if err != nil {
			t.Fatalf("cluster %s: the watcher never joined: %v", k, err)
		}
		if _, err := c.Exec(ctx, 2, append(ctl[k], "group", "send", "g", "--count", "5", "from-"+k)...); err != nil {
			t.Fatal(err)
		}
	}
	for k, ch := range res {
		w := <-ch
		if w.err != nil {
			t.Errorf("cluster %s: group watch: %v: %s", k, w.err, w.out)
			continue
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(w.out), "\n") {
			if !strings.HasPrefix(l, "message from ") {
				continue
			}
			_, p, _ := strings.Cut(l, ": ")
			got = append(got, p)
		}
		if want := fmt.Sprintf("from-%[1]s-0 from-%[1]s-1 from-%[1]s-2 from-%[1]s-3 from-%[1]s-4", k); strings.Join(got, " ") != want {
			t.Errorf("cluster %s's watcher got %q, want %s", k, got, want)
		}
	}
}
