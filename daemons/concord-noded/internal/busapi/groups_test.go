package busapi

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/api/nodebus/nodebustest"
)

// groupSignals are the Manager's signals about groups and sessions,
// checked here rather than in TestEventsAreTheXMLSignals: they take
// their own path through the adapter, so their order against the other
// signals is not fixed.
var groupSignals = []string{"GroupAdded", "GroupRemoved", "SessionAdded", "SessionRemoved"}

// signals collects the signals of the Manager and of group objects as
// messages, whose headers carry the signature sent (a dbus.Signal's body
// has lost it: its structs are []any).
type signals struct {
	t   *testing.T
	ch  chan *dbus.Message
	xml map[string]string // "iface.Name" -> signature in the XML
}

func listen(t *testing.T, addr string) *signals {
	t.Helper()
	conn := nodebustest.Conn(t, addr)
	for _, iface := range []string{nodebus.ManagerIface, nodebus.GroupIface} {
		if err := conn.AddMatchSignal(dbus.WithMatchInterface(iface)); err != nil {
			t.Fatal(err)
		}
	}
	s := &signals{t: t, ch: make(chan *dbus.Message, 100), xml: map[string]string{}}
	// From here on the connection only listens.
	conn.Eavesdrop(s.ch)
	ifs, err := nodebus.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, iface := range []string{nodebus.ManagerIface, nodebus.GroupIface} {
		for _, sg := range ifs[iface].Signals {
			var sig string
			for _, a := range sg.Args {
				sig += a.Type
			}
			s.xml[iface+"."+sg.Name] = sig
		}
	}
	return s
}

// next returns the next signal, its signature checked against the XML.
func (s *signals) next() *dbus.Signal {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-s.ch:
			if m.Type != dbus.TypeSignal {
				continue
			}
			var iface, member string
			var path dbus.ObjectPath
			var sig dbus.Signature
			m.Headers[dbus.FieldInterface].Store(&iface)
			m.Headers[dbus.FieldMember].Store(&member)
			m.Headers[dbus.FieldPath].Store(&path)
			m.Headers[dbus.FieldSignature].Store(&sig)
			sg := &dbus.Signal{Path: path, Name: iface + "." + member, Body: m.Body}
			if xml, ok := s.xml[sg.Name]; !ok {
				s.t.Errorf("signal %s is not in the interface XML", sg.Name)
			} else if sig.String() != xml {
				s.t.Errorf("signal %s: (%s), XML (%s)", sg.Name, sig, xml)
			}
			return sg
		case <-deadline:
			s.t.Fatal("no signal within 10 s")
			return nil
		}
	}
}

// expect reads the next signal and checks its name and path.
func (s *signals) expect(name string, path dbus.ObjectPath) *dbus.Signal {
	s.t.Helper()
	sg := s.next()
	if sg.Name != name || sg.Path != path {
		s.t.Fatalf("signal %s from %s, want %s from %s (%v)", sg.Name, sg.Path, name, path, sg.Body)
	}
	return sg
}

// viewChanged decodes a Group.ViewChanged signal.
func viewChanged(t *testing.T, sg *dbus.Signal) (string, []nodebus.GroupMember, []nodebus.GroupChange) {
	t.Helper()
	var view string
	var ms []nodebus.GroupMember
	var cs []nodebus.GroupChange
	if err := dbus.Store(sg.Body, &view, &ms, &cs); err != nil {
		t.Fatalf("ViewChanged %v: %v", sg.Body, err)
	}
	return view, ms, cs
}

func member(node uint16, client uint32) nodebus.GroupMember {
	return nodebus.GroupMember{Node: node, Inc: 1000 + uint64(node), Client: client, PID: 100 * client, UID: 7}
}

// A group is an object from its first member to its last, at the path of
// its escaped name; its properties and ViewChanged follow each view, and
// ListGroups and GetGroupMembers agree with them.
func TestGroupObjects(t *testing.T) {
	f, b, c, conn := served(t)
	sigs := listen(t, f.addr)
	const name = "db/primary €1" // any UTF-8
	path := nodebus.GroupPath(name)
	m1, m2 := member(1, 1), member(2, 4)
	b.GroupChanged(nodebus.GroupInfo{Name: name, View: "3.1/1", Members: []nodebus.GroupMember{m1},
		Changes: []nodebus.GroupChange{{Member: m1, Kind: "joined"}}})
	b.sync()
	sg := sigs.expect(nodebus.ManagerIface+".GroupAdded", nodebus.ManagerPath)
	if sg.Body[0] != name || sg.Body[1] != path {
		t.Errorf("GroupAdded %v", sg.Body)
	}
	view, ms, cs := viewChanged(t, sigs.expect(nodebus.GroupIface+".ViewChanged", path))
	if view != "3.1/1" || !reflect.DeepEqual(ms, []nodebus.GroupMember{m1}) || !reflect.DeepEqual(cs, []nodebus.GroupChange{{Member: m1, Kind: "joined"}}) {
		t.Errorf("ViewChanged %q %v %v", view, ms, cs)
	}
	checkProps(t, conn, path, nodebus.GroupIface, map[string]any{"Name": name, "View": "3.1/1", "Members": []nodebus.GroupMember{m1}})

	b.GroupChanged(nodebus.GroupInfo{Name: name, View: "3.1/2", Members: []nodebus.GroupMember{m1, m2},
		Changes: []nodebus.GroupChange{{Member: m2, Kind: "joined"}}})
	b.sync()
	if view, ms, _ := viewChanged(t, sigs.expect(nodebus.GroupIface+".ViewChanged", path)); view != "3.1/2" || len(ms) != 2 {
		t.Errorf("second ViewChanged %q %v", view, ms)
	}
	checkProps(t, conn, path, nodebus.GroupIface, map[string]any{"Name": name, "View": "3.1/2", "Members": []nodebus.GroupMember{m1, m2}})
	rows, err := c.ListGroups()
	if err != nil || !reflect.DeepEqual(rows, []nodebus.GroupRow{{Name: name, Path: path, View: "3.1/2", Members: 2}}) {
		t.Errorf("ListGroups: %+v %v", rows, err)
	}
	if v, ms, err := c.GroupMembers(name); err != nil || v != "3.1/2" || !reflect.DeepEqual(ms, []nodebus.GroupMember{m1, m2}) {
		t.Errorf("GroupMembers: %q %v %v", v, ms, err)
	}
	if p, err := c.GetGroup(name); err != nil || p != path {
		t.Errorf("GetGroup: %q %v", p, err)
	}
	var x string
	if err := conn.Object(nodebus.BusName, nodebus.GroupDirectory).Call("org.freedesktop.DBus.Introspectable.Introspect", 0).Store(&x); err != nil ||
		!strings.Contains(x, `<node name="`+nodebus.EscapeLabel(name)+`">`) {
		t.Errorf("the group directory does not list the group: %v\n%s", err, x)
	}

	// The last member closes: a last ViewChanged without members but with
	// the reason, GroupRemoved, and the object is gone.
	b.GroupChanged(nodebus.GroupInfo{Name: name, View: "3.1/3", Members: []nodebus.GroupMember{m2},
		Changes: []nodebus.GroupChange{{Member: m1, Kind: "closed", Reason: "session closed"}}})
	b.GroupGone(nodebus.GroupInfo{Name: name, View: "3.1/4", Changes: []nodebus.GroupChange{{Member: m2, Kind: "died", Reason: "process died"}}})
	b.sync()
	// The two came faster than the bus took them: one signal, both changes.
	view, ms, cs = viewChanged(t, sigs.expect(nodebus.GroupIface+".ViewChanged", path))
	want := []nodebus.GroupChange{{Member: m1, Kind: "closed", Reason: "session closed"}, {Member: m2, Kind: "died", Reason: "process died"}}
	if view != "3.1/4" || len(ms) != 0 || !reflect.DeepEqual(cs, want) {
		t.Errorf("last ViewChanged %q %v %v, want 3.1/4, no members, %v", view, ms, cs, want)
	}
	if sg := sigs.expect(nodebus.ManagerIface+".GroupRemoved", nodebus.ManagerPath); sg.Body[0] != name {
		t.Errorf("GroupRemoved %v", sg.Body)
	}
	if err := conn.Object(nodebus.BusName, path).Call("org.freedesktop.DBus.Properties.Get", 0, nodebus.GroupIface, "View").Store(&x); err == nil {
		t.Errorf("the group object outlived its last member: View %q", x)
	}
	if rows, err := c.ListGroups(); err != nil || len(rows) != 0 {
		t.Errorf("ListGroups after the last member: %+v %v", rows, err)
	}
	var e *nodebus.Error
	if _, _, err := c.GroupMembers(name); !errors.As(err, &e) || e.Name != nodebus.ErrNoSuchGroup {
		t.Errorf("GroupMembers of a group without members: %v", err)
	}
}

// Reports merge while the bus is behind, and the daemon's loop does not
// wait for it: a group that came and went leaves no trace, and a session
// that came and went neither.
func TestGroupReportsDoNotWait(t *testing.T) {
	f, b, c, _ := served(t)
	sigs := listen(t, f.addr)
	running, release := make(chan struct{}), make(chan struct{})
	b.post(func() { close(running); <-release })
	<-running
	// Were a report to wait for the bus, it would wait for good: the bus
	// is released only after them.
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		for i := 0; i < 70_000; i++ { // more than the queue holds
			b.GroupChanged(nodebus.GroupInfo{Name: "g", View: "1.1/1", Members: []nodebus.GroupMember{member(1, 1)},
				Changes: []nodebus.GroupChange{{Member: member(1, 1), Kind: "joined"}}})
		}
		b.GroupGone(nodebus.GroupInfo{Name: "g", View: "1.1/2"})
		b.SessionChanged(nodebus.SessionInfo{Client: 9})
		b.SessionClosed(9)
		b.GroupChanged(nodebus.GroupInfo{Name: "h", View: "1.1/3", Members: []nodebus.GroupMember{member(1, 2)}})
	}()
	select {
	case <-reported:
	case <-time.After(60 * time.Second):
		close(release)
		t.Fatal("reports waited for a stuck bus")
	}
	close(release)
	b.sync()
	sigs.expect(nodebus.ManagerIface+".GroupAdded", nodebus.ManagerPath)
	_, _, cs := viewChanged(t, sigs.expect(nodebus.GroupIface+".ViewChanged", nodebus.GroupPath("h")))
	if len(cs) != 0 {
		t.Errorf("h's changes: %v", cs)
	}
	if rows, _ := c.ListGroups(); len(rows) != 1 || rows[0].Name != "h" {
		t.Errorf("ListGroups: %+v", rows)
	}
	if rows, _ := c.ListSessions(); len(rows) != 0 {
		t.Errorf("ListSessions: %+v", rows)
	}
	quiet := time.After(300 * time.Millisecond)
	for {
		select {
		case m := <-sigs.ch:
			if m.Type == dbus.TypeSignal {
				t.Errorf("unexpected signal %v", m)
			}
			continue
		case <-quiet:
		}
		break
	}
}

// A session is an object while it lasts; its counters follow.
func TestSessionObjects(t *testing.T) {
	f, b, c, conn := served(t)
	sigs := listen(t, f.addr)
	s := nodebus.SessionInfo{Client: 3, PID: 4242, UID: 1000, Name: "webd", Groups: []string{}}
	b.SessionChanged(s)
	b.sync()
	if sg := sigs.expect(nodebus.ManagerIface+".SessionAdded", nodebus.ManagerPath); sg.Body[0] != uint32(3) || sg.Body[1] != nodebus.SessionPath(3) {
		t.Errorf("SessionAdded %v", sg.Body)
	}
	want := map[string]any{"ClientID": uint32(3), "PID": uint32(4242), "UID": uint32(1000), "ClientName": "webd",
		"Groups": []string{}, "Queued": uint32(0), "InFlight": uint32(0)}
	checkProps(t, conn, s.Path(), nodebus.SessionIface, want)
	s.Groups, s.Queued, s.InFlight = []string{"a", "b"}, 17, 5
	b.SessionChanged(s)
	b.sync()
	want["Groups"], want["Queued"], want["InFlight"] = []string{"a", "b"}, uint32(17), uint32(5)
	checkProps(t, conn, s.Path(), nodebus.SessionIface, want)
	rows, err := c.ListSessions()
	if err != nil || !reflect.DeepEqual(rows, []nodebus.SessionRow{{Client: 3, PID: 4242, UID: 1000, Name: "webd", Path: s.Path()}}) {
		t.Errorf("ListSessions: %+v %v", rows, err)
	}
	b.SessionClosed(3)
	b.sync()
	sigs.expect(nodebus.ManagerIface+".SessionRemoved", nodebus.ManagerPath)
	var x uint32
	if err := conn.Object(nodebus.BusName, s.Path()).Call("org.freedesktop.DBus.Properties.Get", 0, nodebus.SessionIface, "PID").Store(&x); err == nil {
		t.Errorf("the session object outlived its session")
	}
	if rows, _ := c.ListSessions(); len(rows) != 0 {
		t.Errorf("ListSessions after close: %+v", rows)
	}
}
