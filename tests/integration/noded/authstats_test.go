package noded

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/tests/harness/cluster"
	"github.com/concord-ha/concord/tests/harness/concordtest"
)

// linkStatsOf is `concordctl --json status --links` on node i.
func linkStatsOf(t *testing.T, ctx context.Context, c *concordtest.Cluster, i int) []nodebus.LinkStat {
	t.Helper()
	out, err := c.Exec(ctx, i, "concordctl", "--json", "status", "--links")
	if err != nil {
		t.Fatal(err)
	}
	var s nodebus.Status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("node%d: concordctl --json status --links: %v: %q", i, err, out)
	}
	return s.LinkStats
}

func linkRow(ls []nodebus.LinkStat, node uint16, link uint8) (nodebus.LinkStat, bool) {
	for _, l := range ls {
		if l.Node == node && l.Link == link {
			return l, true
		}
	}
	return nodebus.LinkStat{}, false
}

// authLines are node i's journal lines that say frames from node `from`
// fail authentication, naming the node, one of its links and the key.
func authLines(ctx context.Context, c *concordtest.Cluster, i, from int) ([]string, error) {
	out, err := c.Exec(ctx, i, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat")
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		for li, mac := range c.Node(from).MACs {
			prefix := fmt.Sprintf("frames from %s (%s %s) fail authentication: its /etc/concord/authkey differs from this node's",
				c.Node(from).Hostname, cluster.LinkName(li), mac)
			if strings.HasPrefix(l, prefix) {
				lines = append(lines, l)
			}
		}
	}
	return lines, nil
}

// The admin's day-one mistake, a node with another authkey, is loud on
// both sides: node3, with another key, and node1 name each other and the
// key file in their journals, once and then at most once a minute, and
// concordctl status and D-Bus count the failures. Then, with the key
// fixed, `concordctl status --links` shows every peer on every link with
// frames in and out that grow and a round-trip time.
func TestWrongKeyIsLoudAndLinkStats(t *testing.T) {
	c, ctx := boot(t, concordtest.Options{Nodes: 3, NoStart: true})
	wrong := []byte(strings.Repeat("w", 40))
	if err := c.WriteFile(3, "/etc/concord/authkey", wrong, 0o600); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for i := 1; i <= 3; i++ {
		if err := c.StartDaemon(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	mustView(t, ctx, c, []int{1, 2}, ids(1, 2))
	name := func(i int) string { return c.Node(i).Hostname }

	t.Run("JournalsNameEachOther", func(t *testing.T) {
		for _, p := range [][2]int{{1, 3}, {2, 3}, {3, 1}, {3, 2}} {
			on, from := p[0], p[1]
			err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
				lines, err := authLines(ctx, c, on, from)
				if err != nil {
					return false, err.Error()
				}
				return len(lines) > 0, fmt.Sprintf("%s's journal does not yet say that %s's frames fail authentication", name(on), name(from))
			})
			if err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("StatusAndBusCountTheFailures", func(t *testing.T) {
		s3, err := c.Status(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(s3.View.Members) != "[3]" || s3.Quorum.Quorate {
			t.Errorf("node3, with another key: view %v, quorate %v; want alone, not quorate", s3.View.Members, s3.Quorum.Quorate)
		}
		for _, p := range [][2]int{{1, 3}, {3, 1}} {
			on, from := p[0], p[1]
			err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
				out, err := c.Exec(ctx, on, "concordctl", "status")
				if err != nil {
					return false, err.Error()
				}
				want := fmt.Sprintf("frames from %s failed authentication here, the last at ", name(from))
				return strings.Contains(out, "Warning:  ") && strings.Contains(out, want), fmt.Sprintf("%s: concordctl status:\n%s", name(on), out)
			})
			if err != nil {
				t.Error(err)
			}
		}
		s1, err := c.Status(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if n := s1.Nodes[2]; n.AuthFailures == 0 || n.LastAuthFailure == "" || s1.Nodes[1].AuthFailures != 0 {
			t.Errorf("node1's status: node2 %d auth failures, node3 %d (last %q); want none and some",
				s1.Nodes[1].AuthFailures, n.AuthFailures, n.LastAuthFailure)
		}
		out, err := c.Exec(ctx, 1, "busctl", "get-property", nodebus.BusName, string(nodebus.NodePath(3)), nodebus.NodeIface, "AuthFailures")
		var n uint64
		if _, serr := fmt.Sscanf(out, "t %d", &n); err != nil || serr != nil || n == 0 {
			t.Errorf("busctl: node3's AuthFailures on node1: %q %v", out, err)
		}
		// Node 3's frames fail on node 1 as drops of node 3's links.
		var auth uint64
		for _, l := range linkStatsOf(t, ctx, c, 1) {
			if l.Node == 3 {
				auth += l.Drops["auth"]
			}
		}
		if auth == 0 {
			t.Errorf("node1's link statistics show no auth drops from node3")
		}
	})

	t.Run("WarningsAreRateLimited", func(t *testing.T) {
		// Node 3, alone, sends a few frames a second: once some tens
		// have failed, there was still one warning a minute at most.
		err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			s1, err := c.Status(ctx, 1)
			if err != nil {
				return false, err.Error()
			}
			return s1.Nodes[2].AuthFailures >= 30, fmt.Sprintf("%d frames from node3 failed on node1", s1.Nodes[2].AuthFailures)
		})
		if err != nil {
			t.Fatal(err)
		}
		lines, err := authLines(ctx, c, 1, 3)
		if err != nil {
			t.Fatal(err)
		}
		most := 1 + int(time.Since(began)/time.Minute)
		if len(lines) == 0 || len(lines) > most {
			t.Errorf("node1 warned %d times about node3 in %v, want 1..%d:\n%s", len(lines), time.Since(began).Round(time.Second), most, strings.Join(lines, "\n"))
		}
	})

	t.Run("LinkStatsOfAHealthyCluster", func(t *testing.T) {
		if err := c.StopDaemon(ctx, 3); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteFile(3, "/etc/concord/authkey", c.Key, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.StartDaemon(ctx, 3); err != nil {
			t.Fatal(err)
		}
		mustView(t, ctx, c, []int{1, 2, 3}, ids(1, 2, 3))
		// Node 1 says so, and its status no longer warns.
		err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			j, err := c.Exec(ctx, 1, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat")
			if err != nil {
				return false, err.Error()
			}
			out, err := c.Exec(ctx, 1, "concordctl", "status")
			if err != nil {
				return false, err.Error()
			}
			again := strings.Contains(j, "frames from "+name(3)+" authenticate again (")
			earlier := strings.Contains(out, "Earlier:  ") && !strings.Contains(out, "Warning:")
			return again && earlier, fmt.Sprintf("journal says it authenticates again: %v; concordctl status:\n%s", again, out)
		})
		if err != nil {
			t.Error(err)
		}
		var before []nodebus.LinkStat
		err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			before = linkStatsOf(t, ctx, c, 1)
			for _, node := range []uint16{2, 3} {
				for link := range uint8(2) {
					l, ok := linkRow(before, node, link)
					if !ok || l.State != "up" || l.FramesIn == 0 || l.FramesOut == 0 || l.RTTMicros < 0 || l.LastHeardMs < 0 {
						return false, fmt.Sprintf("node %d link %d: %+v", node, link, l)
					}
				}
			}
			return true, ""
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		after := linkStatsOf(t, ctx, c, 1)
		for _, b := range before {
			if b.Node == 0 {
				continue
			}
			a, _ := linkRow(after, b.Node, b.Link)
			if a.FramesIn <= b.FramesIn || a.FramesOut <= b.FramesOut {
				t.Errorf("node %d link %d in a second: in %d -> %d, out %d -> %d", b.Node, b.Link, b.FramesIn, a.FramesIn, b.FramesOut, a.FramesOut)
			}
			if a.RTTMicros < 0 {
				t.Errorf("node %d link %d: RTT %d µs", b.Node, b.Link, a.RTTMicros)
			}
		}
		// The table an admin reads, and the same on D-Bus.
		out, err := c.Exec(ctx, 1, "concordctl", "status", "--links")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"PEER", "RTT", name(2) + " ", name(3) + " ", " ms ago ", " ms\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("concordctl status --links does not show %q:\n%s", want, out)
			}
		}
		t.Logf("node1: concordctl status --links:\n%s", out)
		bus, err := c.Exec(ctx, 1, "busctl", "call", nodebus.BusName, string(nodebus.ManagerPath), nodebus.ManagerIface, "GetLinkStats")
		if err != nil || !strings.HasPrefix(bus, "a(qsyssttxxa{st}) 4 2 \""+name(2)+"\" 0 \"hb0\" \"up\" ") {
			t.Errorf("busctl call GetLinkStats: %v %q", err, bus)
		}
	})
}
