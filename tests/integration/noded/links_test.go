package noded

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/tests/harness/cluster"
	"github.com/concord-ha/concord/tests/harness/concordtest"
)

// A fresh install leaves the heartbeat NICs down: the udev rule keeps the
// network managers off them, so concord-noded must set them up, and say
// what is wrong with a NIC that is down or missing (journal, status,
// D-Bus) instead of starting "successfully" on links that carry nothing.
func TestHeartbeatNICsBroughtUp(t *testing.T) {
	c, ctx := boot(t, concordtest.Options{Nodes: 3, LinksDown: true, NoStart: true})
	all := []int{1, 2, 3}

	for _, i := range all {
		for l := range 2 {
			if up, flags := nicUp(ctx, c, i, l); up {
				t.Fatalf("node%d hb%d is up before concord-noded ran (%s): the test would prove nothing", i, l, flags)
			}
		}
	}
	// As an admin would start it.
	for _, i := range all {
		if _, err := c.Systemctl(ctx, i, "enable", "--now", "concord-noded"); err != nil {
			t.Fatal(err)
		}
	}
	err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
		for _, i := range all {
			for l := range 2 {
				if up, flags := nicUp(ctx, c, i, l); !up {
					return false, fmt.Sprintf("node%d hb%d: %s", i, l, flags)
				}
			}
		}
		return true, ""
	})
	if err != nil {
		t.Fatalf("concord-noded did not set the heartbeat NICs up: %v", err)
	}
	mustView(t, ctx, c, all, ids(1, 2, 3))
	err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
		for _, i := range all {
			s, err := c.Status(ctx, i)
			if err != nil {
				return false, err.Error()
			}
			if len(s.LocalLinks) != 2 {
				return false, fmt.Sprintf("node%d: local links %+v", i, s.LocalLinks)
			}
			for _, l := range s.LocalLinks {
				if l.State != "up" {
					return false, fmt.Sprintf("node%d: local link %+v", i, l)
				}
			}
			for _, n := range s.Nodes {
				for _, l := range n.Links {
					if l.State != "up" {
						return false, fmt.Sprintf("node%d sees node%d %s %s", i, n.Number, l.Interface, l.State)
					}
				}
			}
			if s.Heartbeats != "alternating" || s.Waiting != "" {
				return false, fmt.Sprintf("node%d: heartbeats %q, waiting %q", i, s.Heartbeats, s.Waiting)
			}
		}
		return true, ""
	})
	if err != nil {
		t.Fatalf("links not all up in the status: %v", err)
	}

	t.Run("AdminDownIsReportedAndLeftDown", func(t *testing.T) {
		if _, err := c.Exec(ctx, 2, "ip", "link", "set", "hb1", "down"); err != nil {
			t.Fatal(err)
		}
		const reason = "administratively down; set down while concord-noded runs; left down (ip link set hb1 up)"
		err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			s, err := c.Status(ctx, 2)
			if err != nil {
				return false, err.Error()
			}
			l, own := s.LocalLinks[1], s.Nodes[1].Links[1]
			return l.State == "admin-down" && l.Reason == reason && own.State == "admin-down",
				fmt.Sprintf("local %+v, own %+v", l, own)
		})
		if err != nil {
			t.Fatalf("node2 status: %v", err)
		}
		rows, err := busLocalLinks(ctx, c, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || fmt.Sprint(rows[1][3]) != "admin-down" || fmt.Sprint(rows[1][4]) != reason {
			t.Errorf("node2 D-Bus LocalLinks: %v", rows)
		}
		out, err := c.Exec(ctx, 2, "concordctl", "status")
		if err != nil || !strings.Contains(out, "NIC:      link 1 (hb1) admin-down: "+reason) {
			t.Errorf("concordctl status on node2 does not name hb1: %v\n%s", err, out)
		}
		mustJournal(t, ctx, c, 2, "link 1 (hb1): admin-down: "+reason+" (was up)")
		if up, flags := nicUp(ctx, c, 2, 1); up {
			t.Errorf("hb1 was set up again (%s); the admin set it down", flags)
		}
		// One link down changes no view.
		mustView(t, ctx, c, all, ids(1, 2, 3))

		if _, err := c.Exec(ctx, 2, "ip", "link", "set", "hb1", "up"); err != nil {
			t.Fatal(err)
		}
		mustJournal(t, ctx, c, 2, "link 1 (hb1): up (was admin-down)")
		err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			st := linkState(ctx, c, 1, 2, 1)
			return st == "up", "node1 hears node2 on hb1: " + st
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("MissingNICAtStartIsOpenedWhenItAppears", func(t *testing.T) {
		if err := c.StopDaemon(ctx, 3); err != nil {
			t.Fatal(err)
		}
		// A NIC that is not there (not plugged, not yet renamed by udev).
		if _, err := c.Exec(ctx, 3, "sh", "-c", "ip link set hb1 down && ip link set hb1 name hbz"); err != nil {
			t.Fatal(err)
		}
		if err := c.StartDaemon(ctx, 3); err != nil {
			t.Fatalf("concord-noded did not start with one of two NICs missing: %v", err)
		}
		mustJournal(t, ctx, c, 3, "link 1 (hb1): missing: no interface hb1")
		s, err := c.Status(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if l := s.LocalLinks[1]; l.State != "missing" || l.Reason == "" {
			t.Errorf("node3 local link 1: %+v, want missing with a reason", l)
		}
		mustView(t, ctx, c, all, ids(1, 2, 3))

		// The NIC appears (as a new interface it is set up, too).
		if _, err := c.Exec(ctx, 3, "ip", "link", "set", "hbz", "name", "hb1"); err != nil {
			t.Fatal(err)
		}
		err = cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
			s, err := c.Status(ctx, 3)
			if err != nil {
				return false, err.Error()
			}
			a, b := linkState(ctx, c, 1, 3, 1), s.Nodes[0].Links[1].State
			return s.LocalLinks[1].State == "up" && a == "up" && b == "up",
				fmt.Sprintf("node3 hb1 %+v; node1 hears node3 on hb1: %s; node3 hears node1: %s", s.LocalLinks[1], a, b)
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Exec(ctx, 3, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out, "receiving failed"); n > 1 {
			t.Errorf("node3 logged %d read failures:\n%s", n, out)
		}
	})
}

// nicUp reports whether heartbeat NIC l of node i is up with carrier, and
// what ip says about it.
func nicUp(ctx context.Context, c *concordtest.Cluster, i, l int) (bool, string) {
	out, err := c.Exec(ctx, i, "ip", "-o", "link", "show", cluster.LinkName(l))
	if err != nil {
		return false, err.Error()
	}
	f := strings.Fields(out)
	if len(f) < 3 {
		return false, out
	}
	flags := strings.Split(strings.Trim(f[2], "<>"), ",")
	has := func(s string) bool {
		for _, x := range flags {
			if x == s {
				return true
			}
		}
		return false
	}
	return has("UP") && has("LOWER_UP"), f[2]
}

// busLocalLinks reads the Manager's LocalLinks property on node i with
// busctl.
func busLocalLinks(ctx context.Context, c *concordtest.Cluster, i int) ([][]any, error) {
	out, err := c.Exec(ctx, i, "busctl", "--json=short", "get-property", nodebus.BusName, string(nodebus.ManagerPath),
		nodebus.ManagerIface, "LocalLinks")
	if err != nil {
		return nil, err
	}
	var v struct {
		Type string  `json:"type"`
		Data [][]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Type != "a(yssss)" {
		return nil, fmt.Errorf("busctl LocalLinks: %v: %q", err, out)
	}
	return v.Data, nil
}

// mustJournal waits until node i's concord-noded journal has a line that
// holds want.
func mustJournal(t *testing.T, ctx context.Context, c *concordtest.Cluster, i int, want string) {
	t.Helper()
	var out string
	err := cluster.Eventually(withTimeout(ctx, changeTimeout), func() (bool, string) {
		var err error
		out, err = c.Exec(ctx, i, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat")
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(out, want), "no line " + want
	})
	if err != nil {
		t.Fatalf("node%d journal: %v\n%s", i, err, out)
	}
}
