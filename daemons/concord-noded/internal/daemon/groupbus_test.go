package daemon

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/daemons/concord-noded/internal/busapi"
	"github.com/concord-ha/concord/lib/api/groupwire"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/api/nodebus/nodebustest"
)

// groupSignal is a signal about groups as a test reads it.
type groupSignal struct {
	name    string // ViewChanged, GroupAdded, GroupRemoved, ...
	path    dbus.ObjectPath
	view    string
	members []nodebus.GroupMember
	changes []nodebus.GroupChange
	body    []any
}

// nextGroupSignal reads the next Group or Manager group signal.
func nextGroupSignal(t *testing.T, ch <-chan *dbus.Signal) groupSignal {
	t.Helper()
	for {
		select {
		case s := <-ch:
			g := groupSignal{path: s.Path, body: s.Body}
			switch s.Name {
			case nodebus.GroupIface + ".ViewChanged":
				g.name = "ViewChanged"
				if err := dbus.Store(s.Body, &g.view, &g.members, &g.changes); err != nil {
					t.Fatalf("ViewChanged %v: %v", s.Body, err)
				}
			case nodebus.ManagerIface + ".GroupAdded", nodebus.ManagerIface + ".GroupRemoved":
				g.name = s.Name[len(nodebus.ManagerIface)+1:]
			default:
				continue
			}
			return g
		case <-time.After(20 * time.Second):
			t.Fatal("no group signal within 20 s")
		}
	}
}

func busMemberOf(m groupwire.Member) nodebus.GroupMember {
	return nodebus.GroupMember{Node: m.Node, Inc: m.Inc, Client: m.Client, PID: m.PID, UID: m.UID}
}

// startBusGroupCluster starts n nodes with group sockets, node 1 with the
// D-Bus adapter on a private bus, and returns a client and a connection
// to that bus.
func startBusGroupCluster(t *testing.T, n int, also Events) ([]string, *nodebus.Client, *dbus.Conn) {
	t.Helper()
	addr := nodebustest.Bus(t)
	_, socks := startGroupClusterWith(t, n, func(d *Daemon) {
		b, err := busapi.Open(d, busapi.Options{Conn: nodebustest.Conn(t, addr)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		var ev Events = tee{d.events, b}
		if also != nil {
			ev = tee{ev, also}
		}
		d.SetEvents(ev)
	})
	cl, err := nodebus.DialAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return socks, cl, nodebustest.Conn(t, addr)
}

// A group seen on D-Bus through node 1: it appears with its first member,
// a member on another node joins it (Members, ViewChanged), a closed
// session leaves it with its reason, and with nobody left the object goes.
// The sessions of node 1 are objects too.
func TestGroupsOnTheBus(t *testing.T) {
	socks, cl, conn := startBusGroupCluster(t, 2, nil)
	for _, iface := range []string{nodebus.ManagerIface, nodebus.GroupIface} {
		if err := conn.AddMatchSignal(dbus.WithMatchInterface(iface)); err != nil {
			t.Fatal(err)
		}
	}
	sigs := make(chan *dbus.Signal, 256)
	conn.Signal(sigs)
	const name = "web 1"
	path := nodebus.GroupPath(name)

	c1 := dialGroups(t, socks[0])
	c1.call(groupwire.Record{Type: groupwire.TJoin, Group: name}, groupwire.TReply)
	m1 := busMemberOf(c1.self)
	if s := nextGroupSignal(t, sigs); s.name != "GroupAdded" || s.body[0] != name || s.body[1] != path {
		t.Fatalf("first signal %+v, want GroupAdded of %s", s, path)
	}
	s := nextGroupSignal(t, sigs)
	if s.name != "ViewChanged" || s.path != path || !reflect.DeepEqual(s.members, []nodebus.GroupMember{m1}) ||
		len(s.changes) != 1 || s.changes[0].Member != m1 || s.changes[0].Kind != "joined" {
		t.Fatalf("first view: %+v", s)
	}
	view, ms, err := cl.GroupMembers(name)
	if err != nil || view != s.view || !reflect.DeepEqual(ms, []nodebus.GroupMember{m1}) {
		t.Errorf("GroupMembers: %q %v %v, want %q [%v]", view, ms, err, s.view, m1)
	}
	// Node 1's session, with the group it joined.
	eventually(t, "the session object", func() (bool, string) {
		rows, err := cl.ListSessions()
		if err != nil || len(rows) != 1 {
			return false, fmt.Sprintf("ListSessions %+v %v", rows, err)
		}
		r := rows[0]
		if r.Client != c1.self.Client || r.PID != c1.self.PID || r.Name != "test" || r.Path != nodebus.SessionPath(r.Client) {
			return false, fmt.Sprintf("session row %+v, self %+v", r, c1.self)
		}
		var groups []string
		err = conn.Object(nodebus.BusName, r.Path).Call("org.freedesktop.DBus.Properties.Get", 0, nodebus.SessionIface, "Groups").Store(&groups)
		return err == nil && slices.Equal(groups, []string{name}), fmt.Sprintf("Groups %q %v", groups, err)
	})

	// A member on node 2.
	c2 := dialGroups(t, socks[1])
	c2.call(groupwire.Record{Type: groupwire.TJoin, Group: name}, groupwire.TReply)
	m2 := busMemberOf(c2.self)
	s = nextGroupSignal(t, sigs)
	if s.name != "ViewChanged" || !reflect.DeepEqual(s.members, []nodebus.GroupMember{m1, m2}) ||
		len(s.changes) != 1 || s.changes[0].Member != m2 || s.changes[0].Kind != "joined" {
		t.Fatalf("second view: %+v, want members %v with %v joined", s, []nodebus.GroupMember{m1, m2}, m2)
	}
	var got []nodebus.GroupMember
	if err := conn.Object(nodebus.BusName, path).Call("org.freedesktop.DBus.Properties.Get", 0, nodebus.GroupIface, "Members").Store(&got); err != nil ||
		!reflect.DeepEqual(got, []nodebus.GroupMember{m1, m2}) {
		t.Errorf("Members %v %v after the second join", got, err)
	}
	if rows, err := cl.ListGroups(); err != nil || len(rows) != 1 || rows[0].Members != 2 || rows[0].View != s.view || rows[0].Path != path {
		t.Errorf("ListGroups: %+v %v, want one group of 2 in view %s", rows, err, s.view)
	}

	// Node 2's member closes its session.
	c2.c.Close()
	s = nextGroupSignal(t, sigs)
	if s.name != "ViewChanged" || !reflect.DeepEqual(s.members, []nodebus.GroupMember{m1}) ||
		len(s.changes) != 1 || s.changes[0] != (nodebus.GroupChange{Member: m2, Kind: "closed", Reason: "session closed"}) {
		t.Fatalf("after node 2's member closed: %+v", s)
	}
	// The last one: a last view without members, then the object goes.
	c1.c.Close()
	s = nextGroupSignal(t, sigs)
	if s.name != "ViewChanged" || len(s.members) != 0 || len(s.changes) != 1 || s.changes[0].Member != m1 || s.changes[0].Kind != "closed" {
		t.Fatalf("after the last member closed: %+v", s)
	}
	if s = nextGroupSignal(t, sigs); s.name != "GroupRemoved" || s.body[0] != name {
		t.Fatalf("after the last view: %+v, want GroupRemoved", s)
	}
	var v string
	if err := conn.Object(nodebus.BusName, path).Call("org.freedesktop.DBus.Properties.Get", 0, nodebus.GroupIface, "View").Store(&v); err == nil {
		t.Errorf("the group object outlived its members: View %q", v)
	}
	var e *nodebus.Error
	if _, _, err := cl.GroupMembers(name); !errors.As(err, &e) || e.Name != nodebus.ErrNoSuchGroup {
		t.Errorf("GroupMembers of the empty group: %v", err)
	}
	eventually(t, "no session left", func() (bool, string) {
		rows, err := cl.ListSessions()
		return err == nil && len(rows) == 0, fmt.Sprintf("%+v %v", rows, err)
	})
}

// groupCounts counts the loop's group reports.
type groupCounts struct {
	nopEvents
	views, sessions atomic.Int64
}

func (c *groupCounts) GroupChanged(nodebus.GroupInfo)     { c.views.Add(1) }
func (c *groupCounts) SessionChanged(nodebus.SessionInfo) { c.sessions.Add(1) }

// A session's counters reach its object within about a second: events
// pile up while its process does not read, and drain when it does. The
// messages themselves are not reported: one group view, and a session
// report at most once a second.
func TestGroupSessionCountersOnTheBus(t *testing.T) {
	cnt := &groupCounts{}
	start := time.Now()
	socks, cl, conn := startBusGroupCluster(t, 1, cnt)
	c := dialGroups(t, socks[0])
	c.call(groupwire.Record{Type: groupwire.TJoin, Group: "g"}, groupwire.TReply)
	queued := func() (uint32, string) {
		var q uint32
		err := conn.Object(nodebus.BusName, nodebus.SessionPath(c.self.Client)).Call("org.freedesktop.DBus.Properties.Get", 0, nodebus.SessionIface, "Queued").Store(&q)
		if err != nil {
			return 0, err.Error()
		}
		return q, fmt.Sprintf("Queued %d", q)
	}
	// Its own messages come back to it: more than the socket holds.
	const n = 40
	for k := 0; k < n; k++ {
		c.send(groupwire.Record{Type: groupwire.TSend, Tag: uint32(100 + k), Group: "g", Payload: make([]byte, 32<<10)})
	}
	eventually(t, "events queued", func() (bool, string) { q, why := queued(); return q > 0, why })
	k := 0
	c.until("its messages", func(r groupwire.Record) bool {
		if r.Type == groupwire.TMessage {
			k++
		}
		return k == n
	})
	eventually(t, "the queue drained", func() (bool, string) { q, why := queued(); return q == 0, why })
	if rows, err := cl.ListSessions(); err != nil || len(rows) != 1 {
		t.Errorf("ListSessions %+v %v", rows, err)
	}
	secs := int64(time.Since(start)/time.Second) + 1
	if v, s := cnt.views.Load(), cnt.sessions.Load(); v != 1 || s > 2+secs {
		t.Errorf("%d messages made %d group reports (want 1, the join) and %d session reports (want at most %d: open, join, once a second)", n, v, s, 2+secs)
	}
}
