package noded

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/tests/harness/cluster"
	"github.com/concord-ha/concord/tests/harness/concordtest"
)

// Generous bounds: they only stop a broken run, they are not measurements
// (make bench measures).
const (
	formTimeout   = 60 * time.Second
	changeTimeout = 30 * time.Second
)

func boot(t *testing.T, o concordtest.Options) (*concordtest.Cluster, context.Context) {
	t.Helper()
	return concordtest.BootTest(t, o, 15*time.Minute)
}

func ids(ns ...int) []uint16 {
	var r []uint16
	for _, n := range ns {
		r = append(r, uint16(n))
	}
	return r
}

func mustView(t *testing.T, ctx context.Context, c *concordtest.Cluster, nodes []int, members []uint16) uint64 {
	t.Helper()
	seq, err := c.WaitView(ctx, nodes, members, changeTimeout)
	if err != nil {
		t.Fatalf("nodes %v never agreed on view %v: %v", nodes, members, err)
	}
	return seq
}

func mustQuorate(t *testing.T, ctx context.Context, c *concordtest.Cluster, i int, want bool) nodebus.Status {
	t.Helper()
	var s nodebus.Status
	err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
		var err error
		if s, err = c.Status(ctx, i); err != nil {
			return false, err.Error()
		}
		return s.Quorum.Quorate == want, fmt.Sprintf("node%d quorum %+v", i, s.Quorum)
	})
	if err != nil {
		t.Fatalf("node%d: want quorate=%v: %v", i, want, err)
	}
	return s
}

func withTimeout(ctx context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(ctx, d)
	_ = cancel // released when the parent ends
	return ctx
}

// Three nodes, one cluster, scenarios in an order that leaves it usable.
func TestThreeNodes(t *testing.T) {
	// A fourth node is booted but not configured: scenario h adds it.
	c, ctx := boot(t, concordtest.Options{Nodes: 4, ConfNodes: 3})
	all := []int{1, 2, 3}

	t.Run("a/FormOneViewAndBusctlAgrees", func(t *testing.T) {
		seq, err := c.WaitView(ctx, all, ids(1, 2, 3), formTimeout)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range all {
			s := mustQuorate(t, ctx, c, i, true)
			bseq, bmem, bq, err := c.BusView(ctx, i)
			if err != nil {
				t.Fatal(err)
			}
			if bseq != seq || fmt.Sprint(bmem) != "[1 2 3]" || !bq {
				t.Errorf("node%d: busctl says view %d %v quorate=%v; concordctl says %d %v quorate=%v", i, bseq, bmem, bq, s.View.Seq, s.View.Members, s.Quorum.Quorate)
			}
			for _, n := range s.Nodes {
				if n.State != "joined" {
					t.Errorf("node%d sees %s as %s, want joined", i, n.Name, n.State)
				}
			}
		}
		// Every node names the same configuration leader, and heartbeats
		// take turns on the two links.
		err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			var leaders []uint16
			for _, i := range all {
				s, err := c.Status(ctx, i)
				if err != nil {
					return false, err.Error()
				}
				if s.Heartbeats != "alternating" {
					return false, fmt.Sprintf("node%d: heartbeats %q", i, s.Heartbeats)
				}
				leaders = append(leaders, s.Config.Leader)
			}
			ok := leaders[0] != 0 && leaders[1] == leaders[0] && leaders[2] == leaders[0]
			return ok, fmt.Sprintf("configuration leaders %v", leaders)
		})
		if err != nil {
			t.Error(err)
		}
		// The same on D-Bus, for monitoring tools.
		out, err := c.Exec(ctx, 1, "busctl", "get-property", nodebus.BusName, string(nodebus.ManagerPath), nodebus.ManagerIface, "Heartbeats", "ConfigLeader")
		if err != nil || !strings.HasPrefix(out, "s \"alternating\"\nq ") || strings.Contains(out, "q 0") {
			t.Errorf("busctl Heartbeats ConfigLeader: %v %q", err, out)
		}
	})

	t.Run("c/CutOneLinkNoViewChange", func(t *testing.T) {
		seq := mustView(t, ctx, c, all, ids(1, 2, 3))
		if err := c.CutLink(2, 1); err != nil {
			t.Fatal(err)
		}
		err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			st := linkState(ctx, c, 1, 2, 1)
			return st == "down", "node1 sees node2 hb1 " + st
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // let a wrong view change show up, if one would
		if got := mustView(t, ctx, c, all, ids(1, 2, 3)); got != seq {
			t.Fatalf("cutting one link changed the view from %d to %d", seq, got)
		}
		if err := c.RestoreLink(2, 1); err != nil {
			t.Fatal(err)
		}
		err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			st := linkState(ctx, c, 1, 2, 1)
			return st == "up", "node1 sees node2 hb1 " + st
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := mustView(t, ctx, c, all, ids(1, 2, 3)); got != seq {
			t.Fatalf("restoring the link changed the view from %d to %d", seq, got)
		}
	})

	// Heartbeats take turns on the links while all work. A link that
	// fails in one direction only (node2 cannot send on hb0, but hears on
	// it) is invisible to node2 itself; its peers' FlagAllLinks makes it
	// send every heartbeat on both links, and no view changes.
	t.Run("c2/OneWayLinkLossAnswered", func(t *testing.T) {
		seq := mustView(t, ctx, c, all, ids(1, 2, 3))
		// FrameCounters is refreshed once a second, so a count over d
		// covers at least d-1s of real time.
		rate := func(i int, name string, d time.Duration) uint64 {
			a := frameCounters(t, ctx, c, i)[name]
			time.Sleep(d)
			return frameCounters(t, ctx, c, i)[name] - a
		}
		err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			one := rate(2, "heartbeats_one_link", 3*time.Second)
			return one >= 45, fmt.Sprintf("node2 sent %d heartbeats on one link in 3 s", one)
		})
		if err != nil {
			t.Fatalf("steady state: %v", err)
		}
		if n := rate(2, "heartbeats_all_links", 3*time.Second); n != 0 {
			t.Fatalf("steady state: node2 sent %d heartbeats on every link in 3 s, want none", n)
		}
		if err := c.CutLinkTx(2, 0); err != nil {
			t.Fatal(err)
		}
		err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			st := linkState(ctx, c, 1, 2, 0)
			return st == "down", "node1 sees node2 hb0 " + st
		})
		if err != nil {
			t.Fatal(err)
		}
		if st := linkState(ctx, c, 2, 1, 0); st != "up" {
			t.Errorf("node2 sees node1's hb0 %s; only what node2 sends was cut", st)
		}
		if n := rate(2, "heartbeats_all_links", 3*time.Second); n < 45 {
			t.Errorf("node2 sent %d heartbeats on every link in 3 s after its peers lost it on hb0, want about 100", n)
		}
		if got := mustView(t, ctx, c, all, ids(1, 2, 3)); got != seq {
			t.Fatalf("a one-way link loss changed the view from %d to %d", seq, got)
		}
		if err := c.RestoreLink(2, 0); err != nil {
			t.Fatal(err)
		}
		err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			n := rate(2, "heartbeats_all_links", 2500*time.Millisecond)
			return linkState(ctx, c, 1, 2, 0) == "up" && n == 0, fmt.Sprintf("node2 sent %d heartbeats on every link in 2.5 s", n)
		})
		if err != nil {
			t.Fatalf("after restoring: %v", err)
		}
		if got := mustView(t, ctx, c, all, ids(1, 2, 3)); got != seq {
			t.Fatalf("restoring the link changed the view from %d to %d", seq, got)
		}
	})

	t.Run("e/Partition2and1", func(t *testing.T) {
		if err := c.Partition([][]int{{1, 2}, {3}}); err != nil {
			t.Fatal(err)
		}
		mustView(t, ctx, c, []int{1, 2}, ids(1, 2))
		mustView(t, ctx, c, []int{3}, ids(3))
		mustQuorate(t, ctx, c, 1, true)
		mustQuorate(t, ctx, c, 2, true)
		mustQuorate(t, ctx, c, 3, false)
		if err := c.Heal(); err != nil {
			t.Fatal(err)
		}
		mustView(t, ctx, c, all, ids(1, 2, 3))
		mustQuorate(t, ctx, c, 3, true)
	})

	t.Run("d/FreezePastDetectionThenRejoin", func(t *testing.T) {
		before := mustView(t, ctx, c, all, ids(1, 2, 3))
		if err := c.Freeze(3); err != nil {
			t.Fatal(err)
		}
		removed := mustView(t, ctx, c, []int{1, 2}, ids(1, 2))
		time.Sleep(500 * time.Millisecond)
		if err := c.Thaw(3); err != nil {
			t.Fatal(err)
		}
		after := mustView(t, ctx, c, all, ids(1, 2, 3))
		if !(before < removed && removed < after) {
			t.Fatalf("views %d -> %d -> %d: the thawed node must rejoin through a new view", before, removed, after)
		}
	})

	t.Run("h/AddRestartDeleteNode", func(t *testing.T) {
		mustView(t, ctx, c, all, ids(1, 2, 3))
		n4 := c.Node(4)
		if _, err := c.Exec(ctx, 1, nodeAdd(c, 4)...); err != nil {
			t.Fatal(err)
		}
		has4 := func(i int) (bool, string) {
			s, err := c.Status(ctx, i)
			if err != nil {
				return false, err.Error()
			}
			for _, n := range s.Nodes {
				if n.Number == 4 && n.Name == "node4" && n.Links[0].MAC == n4.MACs[0].String() {
					return true, ""
				}
			}
			return false, fmt.Sprintf("node%d has %d nodes", i, len(s.Nodes))
		}
		for _, i := range all {
			if err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) { return has4(i) }); err != nil {
				t.Fatal(err)
			}
		}
		// The new node gets the replicated configuration as an admin would
		// copy it, and joins the view.
		startAdded(t, ctx, c, 1, 4)
		four := []int{1, 2, 3, 4}
		mustView(t, ctx, c, four, ids(1, 2, 3, 4))
		if err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) { return has4(4) }); err != nil {
			t.Fatal(err)
		}
		// Restart every daemon: the added node is still configured.
		for _, i := range four {
			if _, err := c.Systemctl(ctx, i, "restart", "concord-noded"); err != nil {
				t.Fatal(err)
			}
		}
		mustView(t, ctx, c, four, ids(1, 2, 3, 4))
		for _, i := range four {
			if ok, why := has4(i); !ok {
				t.Fatalf("after restarting every daemon node4 is gone: %s", why)
			}
		}
		// Delete it: it leaves, and whatever it still sends is rejected.
		if _, err := c.Exec(ctx, 2, "concordctl", "node", "delete", "node4"); err != nil {
			t.Fatal(err)
		}
		mustView(t, ctx, c, all, ids(1, 2, 3))
		for _, i := range all {
			err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
				ok, why := has4(i)
				return !ok, why
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		unknown := func() uint64 { return frameCounters(t, ctx, c, 1)["dropped_unknown_node"] }
		// Node 4's daemon stops by itself: from Raft if the deletion
		// reaches it, else because its peers tell it.
		err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			out, _, _ := c.Cluster.Exec(ctx, 4, "systemctl", "is-active", "concord-noded")
			return strings.TrimSpace(out) == "inactive", "concord-noded on node4 is " + strings.TrimSpace(out)
		})
		if err != nil {
			t.Fatal(err)
		}
		if j, _ := c.Exec(ctx, 4, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat"); !strings.Contains(j, "deleted from the cluster configuration") {
			t.Errorf("node4's log does not say why it stopped:\n%s", j)
		}
		// Frames that node 4 would still send, sealed with the right key,
		// are dropped as from an unknown node.
		st, err := c.Status(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		before := unknown()
		if err := sendAs(c.Bridge(0), c.Key, st.Cluster.ID, 4, 20); err != nil {
			t.Fatal(err)
		}
		err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			n := unknown()
			return n >= before+20, fmt.Sprintf("dropped_unknown_node %d (was %d)", n, before)
		})
		if err != nil {
			t.Fatal(err)
		}
		mustView(t, ctx, c, all, ids(1, 2, 3))
		// Deleting a node that does not exist is a clear error.
		_, err = c.Exec(ctx, 1, "concordctl", "node", "delete", "node4")
		if err == nil || !strings.Contains(err.Error(), "NoSuchNode") {
			t.Fatalf("deleting a missing node: %v", err)
		}
	})

	t.Run("OptionSetReplicates", func(t *testing.T) {
		if _, err := c.Exec(ctx, 2, "concordctl", "config", "set", "site", "paris"); err != nil {
			t.Fatal(err)
		}
		for _, i := range all {
			err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
				out, err := c.Exec(ctx, i, "concordctl", "config", "show")
				return err == nil && strings.Contains(out, "site = paris"), fmt.Sprintf("node%d: %v", i, err)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		_, err := c.Exec(ctx, 1, "concordctl", "config", "set", "bad key!", "x")
		if err == nil || !strings.Contains(err.Error(), "bad key!") {
			t.Fatalf("a bad option key must be refused naming it: %v", err)
		}
	})

	t.Run("CleanStopIsALeaveNotAFailure", func(t *testing.T) {
		mustView(t, ctx, c, all, ids(1, 2, 3))
		since := time.Now()
		if err := c.StopDaemon(ctx, 3); err != nil {
			t.Fatal(err)
		}
		mustView(t, ctx, c, []int{1, 2}, ids(1, 2))
		lines, err := c.ViewLines(ctx, 1, since)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != 1 || !strings.Contains(lines[0], "left 3") {
			t.Fatalf("a clean stop must show as one view change with reason \"left 3\"; got %q", lines)
		}
		s, err := c.Status(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if st := s.Nodes[2].State; st != "down" && st != "configured" {
			t.Errorf("node3 after a clean stop is %q", st)
		}
		if err := c.StartDaemon(ctx, 3); err != nil {
			t.Fatal(err)
		}
		mustView(t, ctx, c, all, ids(1, 2, 3))
	})

	t.Run("j/BadInput", func(t *testing.T) {
		// Bad D-Bus arguments: a clear named error, the daemon keeps running.
		out, err := c.Exec(ctx, 1, "busctl", "call", nodebus.BusName, string(nodebus.ManagerPath), nodebus.ManagerIface,
			"AddNode", "squasa{ss}", "bad", "9", "1", "1", "hb0 not-a-mac", "0")
		if err == nil || !strings.Contains(err.Error(), "MAC") {
			t.Fatalf("AddNode with a bad MAC: err %v out %q", err, out)
		}
		_, err = c.Exec(ctx, 1, "busctl", "call", nodebus.BusName, string(nodebus.ManagerPath), nodebus.ManagerIface,
			"EditNode", "sa{sv}", "node2", "1", "colour", "s", "blue")
		if err == nil || !strings.Contains(err.Error(), "unknown key") {
			t.Fatalf("EditNode with an unknown key: %v", err)
		}
		// Garbage, truncated and wrong-key frames from a host on the bridge.
		counts := func() map[string]uint64 { return frameCounters(t, ctx, c, 1) }
		before := counts()
		st, err := c.Status(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := sendGarbage(c.Bridge(0), st.Cluster.ID); err != nil {
			t.Fatal(err)
		}
		err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			after := counts()
			var reasons []string
			for _, k := range []string{"dropped_short", "dropped_malformed", "dropped_auth", "dropped_cluster"} {
				if after[k] <= before[k] {
					reasons = append(reasons, k+" did not grow")
				}
			}
			return len(reasons) == 0, strings.Join(reasons, ", ")
		})
		if err != nil {
			t.Fatal(err)
		}
		mustView(t, ctx, c, all, ids(1, 2, 3))
		// A malformed configuration: the daemon refuses to start and says where.
		if err := c.WriteFile(3, "/etc/concord/cluster.conf", []byte("[cluster]\nname = x\nbogus_key = 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c.Systemctl(ctx, 3, "restart", "concord-noded")
		err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			j, _ := c.Exec(ctx, 3, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat", "-n", "20")
			return strings.Contains(j, "bogus_key"), "journal: " + lastLine(j)
		})
		if err != nil {
			t.Fatalf("a malformed cluster.conf must be reported naming the bad key: %v", err)
		}
		if err := c.Configure(3, c.Conf); err != nil {
			t.Fatal(err)
		}
		c.Systemctl(ctx, 3, "reset-failed", "concord-noded")
		if err := c.StartDaemon(ctx, 3); err != nil {
			t.Fatal(err)
		}
		mustView(t, ctx, c, all, ids(1, 2, 3))
	})

	t.Run("LogLevelBySystemctl", func(t *testing.T) {
		if _, err := c.Exec(ctx, 1, "systemctl", "service-log-level", "concord-noded", "debug"); err != nil {
			t.Fatal(err)
		}
		out, err := c.Exec(ctx, 1, "systemctl", "service-log-level", "concord-noded")
		if err != nil || strings.TrimSpace(out) != "debug" {
			t.Fatalf("log level after setting debug: %q %v", out, err)
		}
		if _, err := c.Exec(ctx, 1, "systemctl", "service-log-level", "concord-noded", "chatty"); err == nil {
			t.Fatal("an invalid log level was accepted")
		}
		if _, err := c.Exec(ctx, 1, "systemctl", "service-log-level", "concord-noded", "info"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("b/KillOneSurvivorsStayQuorate", func(t *testing.T) {
		// Node 3 may be dead from the previous scenario; boot it again first.
		if !c.Running(3) {
			if err := c.Start(ctx, 3); err != nil {
				t.Fatal(err)
			}
			if err := c.Configure(3, c.Conf); err != nil {
				t.Fatal(err)
			}
			if err := c.StartDaemon(ctx, 3); err != nil {
				t.Fatal(err)
			}
		}
		mustView(t, ctx, c, all, ids(1, 2, 3))
		if err := c.Kill(3); err != nil {
			t.Fatal(err)
		}
		mustView(t, ctx, c, []int{1, 2}, ids(1, 2))
		mustQuorate(t, ctx, c, 1, true)
		mustQuorate(t, ctx, c, 2, true)
	})
}

// Five nodes, two killed at the same instant: one transition, not two.
func TestFiveNodesTwoSimultaneousFailuresOneTransition(t *testing.T) {
	c, ctx := boot(t, concordtest.Options{Nodes: 5})
	all := []int{1, 2, 3, 4, 5}
	if _, err := c.WaitView(ctx, all, ids(1, 2, 3, 4, 5), formTimeout); err != nil {
		t.Fatal(err)
	}
	before, _ := c.Status(ctx, 1)
	since := time.Now()
	var wg sync.WaitGroup
	for _, i := range []int{4, 5} {
		wg.Add(1)
		go func(i int) { defer wg.Done(); c.Kill(i) }(i)
	}
	wg.Wait()
	seq := mustView(t, ctx, c, []int{1, 2, 3}, ids(1, 2, 3))
	for _, i := range []int{1, 2, 3} {
		lines, err := c.ViewLines(ctx, i, since)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != 1 {
			t.Errorf("node%d installed %d views after the double failure, want 1: %q", i, len(lines), lines)
		}
	}
	t.Logf("view %d -> %d", before.View.Seq, seq)
}

// Two-node mode: either node survives the other's death; wait_for_all
// holds a cold start until both were seen.
func TestTwoNodeMode(t *testing.T) {
	c, ctx := boot(t, concordtest.Options{Nodes: 2, Quorum: "two_node = yes", NoStart: true})
	if err := c.StartDaemon(ctx, 1); err != nil {
		t.Fatal(err)
	}
	mustView(t, ctx, c, []int{1}, ids(1))
	s := mustQuorate(t, ctx, c, 1, false)
	if !strings.Contains(s.Quorum.Reason, "wait") {
		t.Errorf("a lone node at cold start should say it waits for all; reason %q", s.Quorum.Reason)
	}
	if err := c.StartDaemon(ctx, 2); err != nil {
		t.Fatal(err)
	}
	mustView(t, ctx, c, []int{1, 2}, ids(1, 2))
	mustQuorate(t, ctx, c, 1, true)
	mustQuorate(t, ctx, c, 2, true)
	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	mustView(t, ctx, c, []int{1}, ids(1))
	mustQuorate(t, ctx, c, 1, true)
	// And the other way round: node 2 comes back, node 1 dies.
	if err := c.Start(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Configure(2, c.Conf); err != nil {
		t.Fatal(err)
	}
	if err := c.StartDaemon(ctx, 2); err != nil {
		t.Fatal(err)
	}
	mustView(t, ctx, c, []int{1, 2}, ids(1, 2))
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	mustView(t, ctx, c, []int{2}, ids(2))
	mustQuorate(t, ctx, c, 2, true)
}

// A two_node cluster grows to three: concordctl refuses the third node
// while two_node is on and says what to change; after `quorum set
// two_node no` the node is added, joins, and quorum counts its vote.
func TestTwoNodeClusterGrowsToThree(t *testing.T) {
	c, ctx := boot(t, concordtest.Options{Nodes: 3, ConfNodes: 2, Quorum: "two_node = yes"})
	mustView(t, ctx, c, []int{1, 2}, ids(1, 2))
	add := nodeAdd(c, 3)
	_, err := c.Exec(ctx, 1, add...)
	if err == nil || !strings.Contains(err.Error(), "two_node: needs exactly 2 nodes, found 3") ||
		!strings.Contains(err.Error(), "concordctl quorum set") {
		t.Fatalf("adding a third node in two_node mode: %v", err)
	}
	if _, err := c.Exec(ctx, 2, "concordctl", "quorum", "set", "two_node", "maybe"); err == nil ||
		!strings.Contains(err.Error(), `two_node: "maybe" is not yes or no`) {
		t.Fatalf("a bad value: %v", err)
	}
	if _, err := c.Exec(ctx, 2, "concordctl", "quorum", "set", "two_node", "no"); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			conf, err := c.Exec(ctx, i, "concordctl", "config", "show")
			return err == nil && strings.Contains(conf, "two_node = no"), fmt.Sprintf("node%d: %v\n%s", i, err, conf)
		})
		if err != nil {
			t.Fatal(err)
		}
		if s := mustQuorate(t, ctx, c, i, true); s.Quorum.Quorum != 2 {
			t.Errorf("node%d without two_node: quorum %d of %d votes, want 2", i, s.Quorum.Quorum, s.Quorum.ExpectedVotes)
		}
	}
	if _, err := c.Exec(ctx, 1, add...); err != nil {
		t.Fatal(err)
	}
	startAdded(t, ctx, c, 1, 3)
	mustView(t, ctx, c, []int{1, 2, 3}, ids(1, 2, 3))
	for _, i := range []int{1, 2, 3} {
		if s := mustQuorate(t, ctx, c, i, true); s.Quorum.ExpectedVotes != 3 || s.Quorum.Quorum != 2 {
			t.Errorf("node%d with three nodes: %+v, want 3 expected votes and a quorum of 2", i, s.Quorum)
		}
	}
	// Now a majority decides: one node alone is not quorate.
	if err := c.Isolate(3); err != nil {
		t.Fatal(err)
	}
	mustView(t, ctx, c, []int{1, 2}, ids(1, 2))
	mustQuorate(t, ctx, c, 1, true)
	mustQuorate(t, ctx, c, 3, false)
}

// linkState is how node i hears link l of node node: up, down or local;
// an error's text if the status cannot be read.
func linkState(ctx context.Context, c *concordtest.Cluster, i, node, l int) string {
	s, err := c.Status(ctx, i)
	if err != nil {
		return err.Error()
	}
	return s.Nodes[node-1].Links[l].State
}

// nodeAdd is the concordctl command that adds node i with its real MACs.
func nodeAdd(c *concordtest.Cluster, i int) []string {
	args := []string{"concordctl", "node", "add", fmt.Sprintf("node%d", i), "--number", fmt.Sprint(i)}
	for l, mac := range c.Node(i).MACs {
		args = append(args, "--link", fmt.Sprintf("hb%d %s", l, mac))
	}
	return args
}

// startAdded gives node i, just added, the configuration from node from,
// as an admin copies `concordctl config show`, and starts its daemon.
func startAdded(t *testing.T, ctx context.Context, c *concordtest.Cluster, from, i int) {
	t.Helper()
	conf, err := c.Exec(ctx, from, "concordctl", "config", "show")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Configure(i, conf); err != nil {
		t.Fatal(err)
	}
	if err := c.StartDaemon(ctx, i); err != nil {
		t.Fatal(err)
	}
}

func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return ls[len(ls)-1]
}
