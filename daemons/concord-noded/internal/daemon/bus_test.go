package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/daemons/concord-noded/internal/busapi"
	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/api/nodebus/nodebustest"
)

// tee hands the loop's events to two listeners.
type tee struct{ a, b Events }

func (t tee) StatusChanged(s nodebus.Status, c map[string]uint64) {
	t.a.StatusChanged(s, c)
	t.b.StatusChanged(s, c)
}
func (t tee) ViewChanged(v nodebus.ViewInfo, r string) { t.a.ViewChanged(v, r); t.b.ViewChanged(v, r) }
func (t tee) QuorumChanged(q nodebus.QuorumInfo)       { t.a.QuorumChanged(q); t.b.QuorumChanged(q) }
func (t tee) LinkChanged(n uint16, l uint8, up bool) {
	t.a.LinkChanged(n, l, up)
	t.b.LinkChanged(n, l, up)
}
func (t tee) ConfigChanged(i uint64, w string)      { t.a.ConfigChanged(i, w); t.b.ConfigChanged(i, w) }
func (t tee) JobNew(j nodebus.Job)                  { t.a.JobNew(j); t.b.JobNew(j) }
func (t tee) JobChanged(j nodebus.Job)              { t.a.JobChanged(j); t.b.JobChanged(j) }
func (t tee) JobRemoved(j nodebus.Job, r, m string) { t.a.JobRemoved(j, r, m); t.b.JobRemoved(j, r, m) }
func (t tee) GroupChanged(g nodebus.GroupInfo)      { t.a.GroupChanged(g); t.b.GroupChanged(g) }
func (t tee) GroupGone(g nodebus.GroupInfo)         { t.a.GroupGone(g); t.b.GroupGone(g) }
func (t tee) SessionChanged(s nodebus.SessionInfo)  { t.a.SessionChanged(s); t.b.SessionChanged(s) }
func (t tee) SessionClosed(c uint32)                { t.a.SessionClosed(c); t.b.SessionClosed(c) }

// The status is whole before the loop runs: the D-Bus adapter exports it
// then (Version and LocalNodeNumber were once 0 and "" for good).
func TestStatusBeforeRun(t *testing.T) {
	c := testConfig(t, 3)
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	var ports []Port
	for i, l := range c.Node(2).Links {
		ports = append(ports, h.port(i, l.MAC))
	}
	d, err := NewWith(Options{NodeName: "n2", StateDir: t.TempDir(), Version: "v9"}, c, testKey, ports)
	if err != nil {
		t.Fatal(err)
	}
	s := d.Status()
	if s.Version != "v9" || s.LocalNode != 2 || s.LocalName != "n2" || s.State != "starting" || len(s.Nodes) != 3 || s.Cluster.Name != "memtest" {
		t.Fatalf("status before Run: %+v", s)
	}
}

// The real loop behind the real adapter on a private bus, seen through the
// client: every property is the status JSON, and changes are jobs.
func TestOverTheBus(t *testing.T) {
	addr := nodebustest.Bus(t)
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	c := testConfig(t, 3)
	ns := []*testNode{startNodeWith(t, h, c, "n1", t.TempDir(), func(d *Daemon) {
		b, err := busapi.Open(d, busapi.Options{Conn: nodebustest.Conn(t, addr)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		d.SetEvents(tee{d.events, b})
	})}
	for _, name := range []string{"n2", "n3"} {
		ns = append(ns, startNode(t, h, c, name, t.TempDir()))
	}
	agreeOn(t, ns, "[1 2 3]")
	cl, err := nodebus.DialAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	conn := nodebustest.Conn(t, addr)
	// The status moves (link states, counters); the properties follow
	// within a refresh.
	eventually(t, "every property is the status", func() (bool, string) {
		s, err := cl.Status()
		if err != nil {
			return false, err.Error()
		}
		if s.Config.Leader == 0 || s.Heartbeats != "alternating" {
			return false, fmt.Sprintf("not steady yet: leader %d, heartbeats %q", s.Config.Leader, s.Heartbeats)
		}
		bad := nodebustest.StatusMismatches(conn, s)
		return len(bad) == 0, strings.Join(bad, "; ")
	})
	var num uint16
	var ver string
	obj := conn.Object(nodebus.BusName, nodebus.ManagerPath)
	if err := obj.Call("org.freedesktop.DBus.Properties.Get", 0, nodebus.ManagerIface, "LocalNodeNumber").Store(&num); err != nil || num != 1 {
		t.Errorf("LocalNodeNumber %d %v, want 1", num, err)
	}
	if err := obj.Call("org.freedesktop.DBus.Properties.Get", 0, nodebus.ManagerIface, "Version").Store(&ver); err != nil || ver != "test" {
		t.Errorf("Version %q %v, want test", ver, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job, n4, err := cl.AddNode("n4", 0, 1, []string{"hb0 02:00:00:00:00:04"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n4 != 4 {
		t.Errorf("the new node's number: %d, want 4", n4)
	}
	if end, err := cl.Wait(ctx, job); err != nil || end.Message != "add node 4 (n4)" {
		t.Fatalf("AddNode job: %+v %v", end, err)
	}
	// Done means in force here: the next read sees it.
	s, err := cl.Status()
	if err != nil || len(s.Nodes) != 4 {
		t.Fatalf("after the job, %d nodes (%v)", len(s.Nodes), err)
	}
	cf, err := cl.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cc, err := config.Parse([]byte(cf)); err != nil || cc.NodeByName("n4") == nil {
		t.Fatalf("GetConfig after the job: %v\n%s", err, cf)
	}
	// A bad change is refused at once, named.
	_, _, err = cl.AddNode("n4", 0, 1, []string{"hb0 02:00:00:00:00:05"}, nil)
	var e *nodebus.Error
	if !errors.As(err, &e) || e.Name != nodebus.ErrInvalidArgs {
		t.Fatalf("adding n4 twice: %#v, want %s", err, nodebus.ErrInvalidArgs)
	}
	job, err = cl.DeleteNode("n4")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Wait(ctx, job); err != nil {
		t.Fatal(err)
	}
}
