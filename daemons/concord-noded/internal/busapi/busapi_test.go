package busapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/api/nodebus/nodebustest"
)

// fake is a backend that acts as the daemon's loop would: a change
// announces its job on the bus before it returns.
type fake struct {
	addr   string // of the private bus
	mu     sync.Mutex
	status nodebus.Status
	bus    *Bus // the adapter, to announce jobs on
	next   uint32
	err    error    // returned by every request, if set
	calls  []string // what was asked, in order
}

func (f *fake) Status() nodebus.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fake) set(s nodebus.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = s
}

func (f *fake) called(format string, a ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
	return f.err
}

func (f *fake) job(kind, target string) nodebus.Job {
	f.mu.Lock()
	f.next++
	j := nodebus.Job{ID: f.next, Kind: kind, Target: target, State: nodebus.JobWaiting}
	b := f.bus
	f.mu.Unlock()
	b.JobNew(j)
	return j
}

func (f *fake) Config() (string, error) { return "[cluster]\nname = fake\n", f.called("Config") }
func (f *fake) AddNode(name string, number uint16, votes uint32, links []string, attrs map[string]string) (nodebus.Job, uint16, error) {
	if err := f.called("AddNode %s %d %d %v %v", name, number, votes, links, attrs); err != nil {
		return nodebus.Job{}, 0, err
	}
	return f.job(nodebus.JobAddNode, name), 4, nil
}
func (f *fake) DeleteNode(name string) (nodebus.Job, error) {
	if err := f.called("DeleteNode %s", name); err != nil {
		return nodebus.Job{}, err
	}
	return f.job(nodebus.JobDeleteNode, name), nil
}
func (f *fake) EditNode(name string, changes map[string]any) (nodebus.Job, error) {
	keys := make([]string, 0, len(changes))
	for k, v := range changes {
		keys = append(keys, fmt.Sprintf("%s=%T:%v", k, v, v))
	}
	sort.Strings(keys)
	if err := f.called("EditNode %s %v", name, keys); err != nil {
		return nodebus.Job{}, err
	}
	return f.job(nodebus.JobEditNode, name), nil
}
func (f *fake) SetOption(key, value string) (nodebus.Job, error) {
	if err := f.called("SetOption %s %s", key, value); err != nil {
		return nodebus.Job{}, err
	}
	return f.job(nodebus.JobSetOption, key), nil
}
func (f *fake) SetQuorum(key, value string) (nodebus.Job, error) {
	if err := f.called("SetQuorum %s %s", key, value); err != nil {
		return nodebus.Job{}, err
	}
	return f.job(nodebus.JobSetQuorum, key), nil
}
func (f *fake) LinkStats() ([]nodebus.LinkStat, error) {
	if err := f.called("LinkStats"); err != nil {
		return nil, err
	}
	return fakeLinkStats(), nil
}

func (f *fake) UnblockQuorum(who string) (nodebus.QuorumInfo, error) {
	return nodebus.QuorumInfo{}, f.called("UnblockQuorum %s", who)
}

// served starts a private bus, the adapter for a fake backend on it, and a
// client; the backend starts with an empty status, as the daemon's was
// before its first refresh.
func served(t *testing.T) (*fake, *Bus, *nodebus.Client, *dbus.Conn) {
	t.Helper()
	addr := nodebustest.Bus(t)
	f := &fake{addr: addr}
	b, err := Open(f, Options{Conn: nodebustest.Conn(t, addr)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	f.mu.Lock()
	f.bus = b
	f.mu.Unlock()
	c, err := nodebus.DialAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return f, b, c, nodebustest.Conn(t, addr)
}

func threeNodes() nodebus.Status {
	node := func(n uint16, name, state string, attrs map[string]string) nodebus.NodeInfo {
		return nodebus.NodeInfo{Number: n, Name: name, UUID: fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", n),
			State: state, Votes: uint32(n), InView: state == "joined", Attrs: attrs,
			Links: []nodebus.LinkInfo{{Index: 0, Interface: "hb0", MAC: fmt.Sprintf("02:00:00:00:00:0%d", n), State: "up"},
				{Index: 1, Interface: "hb1", MAC: fmt.Sprintf("02:00:00:00:01:0%d", n), State: "down"}}}
	}
	// gamma's authkey differs from this node's.
	gamma := node(3, "gamma", "down", nil)
	gamma.AuthFailures, gamma.LastAuthFailure = 1234, "2026-01-02T03:04:05Z"
	return nodebus.Status{Version: "1.2.3", Cluster: nodebus.ClusterInfo{Name: "demo", ID: 0xc0ffee}, LocalNode: 2, LocalName: "beta",
		State: "joined", View: nodebus.ViewInfo{Seq: 9, Coordinator: 1, Members: []uint16{1, 2}},
		Quorum: nodebus.QuorumInfo{Quorate: true, TotalVotes: 3, ExpectedVotes: 6, Quorum: 4, Reason: "3 of 6 votes"},
		Nodes: []nodebus.NodeInfo{node(1, "alpha", "joined", map[string]string{"rack": "r1"}), node(2, "beta", "joined", nil),
			gamma},
		Config: nodebus.ConfigInfo{Leader: 1, Index: 77}, Heartbeats: "alternating",
		LocalLinks: []nodebus.LocalLink{{Index: 0, Interface: "hb0", MAC: "02:00:00:00:00:02", State: "no-carrier", Reason: "no carrier"},
			{Index: 1, Interface: "hb1", State: "missing", Reason: "no interface hb1"}},
		Waiting: "a working heartbeat link: hb0 no-carrier, hb1 missing"}
}

// checkProps reads every property of iface at path and compares it with want.
func checkProps(t *testing.T, conn *dbus.Conn, path dbus.ObjectPath, iface string, want map[string]any) {
	t.Helper()
	for _, m := range nodebustest.Mismatches(conn, path, iface, want) {
		t.Error(m)
	}
}

// Every property of the Manager and of each Node is the status that
// concordctl shows, also those that never change (Version,
// LocalNodeNumber), although the objects were exported before the
// backend's first status.
func TestPropertiesAreTheStatus(t *testing.T) {
	f, b, c, conn := served(t)
	counters := map[string]uint64{"received": 12, "dropped_auth": 1}
	f.set(threeNodes())
	b.StatusChanged(threeNodes(), counters)
	b.sync()
	s, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	if s.LocalNode != 2 || s.Version != "1.2.3" || len(s.Nodes) != 3 {
		t.Fatalf("status JSON: %+v", s)
	}
	for _, m := range nodebustest.StatusMismatches(conn, s) {
		t.Error(m)
	}
	// And the two that are not in the status.
	want := map[string]any{"Features": features, "FrameCounters": counters}
	for name, w := range nodebustest.ManagerWant(s) {
		if _, ok := want[name]; !ok {
			want[name] = w
		}
	}
	checkProps(t, conn, nodebus.ManagerPath, nodebus.ManagerIface, want)
	// A node deleted from the status loses its object.
	two := threeNodes()
	two.Nodes = two.Nodes[:2]
	f.set(two)
	b.StatusChanged(two, counters)
	b.sync()
	var x string
	err = conn.Object(nodebus.BusName, nodebus.NodePath(3)).Call("org.freedesktop.DBus.Properties.Get", 0, nodebus.NodeIface, "Name").Store(&x)
	if err == nil {
		t.Errorf("node 3's object is still served after it left the status: Name %q", x)
	}
}

func fakeLinkStats() []nodebus.LinkStat {
	return []nodebus.LinkStat{
		{Node: 1, Name: "alpha", Link: 0, Interface: "hb0", State: "up", FramesIn: 10, FramesOut: 11, LastHeardMs: 30, RTTMicros: 250},
		{Node: 1, Name: "alpha", Link: 1, Interface: "hb1", State: "down", FramesIn: 1 << 40, FramesOut: 3,
			Drops: map[string]uint64{"auth": 2, "short": 1}, LastHeardMs: -1, RTTMicros: -1},
		{Node: 0, Link: 1, Interface: "hb1", Drops: map[string]uint64{"cluster": 5}, LastHeardMs: -1, RTTMicros: -1},
	}
}

// GetLinkStats carries every field of every row, drops by reason too.
func TestLinkStats(t *testing.T) {
	f, _, c, _ := served(t)
	got, err := c.LinkStats()
	if err != nil {
		t.Fatal(err)
	}
	if want := fakeLinkStats(); !reflect.DeepEqual(got, want) {
		t.Errorf("LinkStats over the bus:\n%+v\nwant\n%+v", got, want)
	}
	f.mu.Lock()
	f.err = nodebus.Errorf(nodebus.ErrStopping, "stopping")
	f.mu.Unlock()
	var e *nodebus.Error
	if _, err := c.LinkStats(); !errors.As(err, &e) || e.Name != nodebus.ErrStopping {
		t.Errorf("LinkStats of a stopping daemon: %v", err)
	}
}

// A change returns its job at once; the job's object is there when the
// reply comes, ListJobs lists it, and JobRemoved reaches a client that
// waits; then the object is gone.
func TestChangesAreJobs(t *testing.T) {
	f, b, c, conn := served(t)
	// The adapter's queue is behind (a slow bus): the reply must still
	// wait for the job's object.
	b.post(func() { time.Sleep(200 * time.Millisecond) })
	job, num, err := c.AddNode("delta", 0, 2, []string{"hb0 02:00:00:00:00:04"}, map[string]string{"rack": "r2"})
	if err != nil {
		t.Fatal(err)
	}
	if job != nodebus.JobPath(1) || num != 4 {
		t.Fatalf("AddNode: job %s, node %d", job, num)
	}
	checkProps(t, conn, job, nodebus.JobIface, map[string]any{"Id": uint32(1), "Kind": nodebus.JobAddNode, "Target": "delta", "State": nodebus.JobWaiting})
	jobs, err := c.ListJobs()
	if err != nil || len(jobs) != 1 || jobs[0] != (nodebus.Job{ID: 1, Kind: nodebus.JobAddNode, Target: "delta", State: nodebus.JobWaiting}) {
		t.Fatalf("ListJobs: %+v %v", jobs, err)
	}
	running := nodebus.Job{ID: 1, Kind: nodebus.JobAddNode, Target: "delta", State: nodebus.JobRunning}
	b.JobChanged(running)
	b.sync()
	checkProps(t, conn, job, nodebus.JobIface, map[string]any{"Id": uint32(1), "Kind": nodebus.JobAddNode, "Target": "delta", "State": nodebus.JobRunning})
	b.JobRemoved(running, nodebus.ResultDone, "add node 4 (delta)")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	end, err := c.Wait(ctx, job)
	if err != nil || end.Result != nodebus.ResultDone || end.Message != "add node 4 (delta)" || end.ID != 1 {
		t.Fatalf("Wait: %+v %v", end, err)
	}
	b.sync()
	var st string
	if err := conn.Object(nodebus.BusName, job).Call("org.freedesktop.DBus.Properties.Get", 0, nodebus.JobIface, "State").Store(&st); err == nil {
		t.Errorf("the job object outlived its JobRemoved: State %q", st)
	}
	if jobs, _ := c.ListJobs(); len(jobs) != 0 {
		t.Errorf("ListJobs after the end: %+v", jobs)
	}

	// Every change method reaches the backend with its arguments, and
	// returns a job.
	for _, start := range []func() (dbus.ObjectPath, error){
		func() (dbus.ObjectPath, error) { return c.DeleteNode("gamma") },
		func() (dbus.ObjectPath, error) {
			return c.EditNode("beta", map[string]any{"votes": uint32(3), "name": "b2", "links": []string{"hb0 02:00:00:00:00:09"}, "attributes": map[string]string{"a": "b"}})
		},
		func() (dbus.ObjectPath, error) { return c.SetOption("site", "paris") },
		func() (dbus.ObjectPath, error) { return c.SetQuorum("two_node", "no") },
	} {
		if p, err := start(); err != nil || !strings.HasPrefix(string(p), "/org/concordha/node1/job/") {
			t.Errorf("change: %q %v", p, err)
		}
	}
	want := []string{
		"AddNode delta 0 2 [hb0 02:00:00:00:00:04] map[rack:r2]",
		"DeleteNode gamma",
		"EditNode beta [attributes=map[string]string:map[a:b] links=[]string:[hb0 02:00:00:00:00:09] name=string:b2 votes=uint32:3]",
		"SetOption site paris",
		"SetQuorum two_node no",
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("backend calls\n%q\nwant\n%q", f.calls, want)
	}
}

// Errors keep their D-Bus names across the bus; other errors are
// ConfigConflict.
func TestErrorsKeepTheirNames(t *testing.T) {
	f, _, c, _ := served(t)
	for _, tc := range []struct {
		err  error
		name string
	}{
		{nodebus.Errorf(nodebus.ErrInvalidArgs, "edit node %q: unknown key %q", "b", "colour"), nodebus.ErrInvalidArgs},
		{nodebus.Errorf(nodebus.ErrNoSuchNode, "no node named %q", "x"), nodebus.ErrNoSuchNode},
		{nodebus.Errorf(nodebus.ErrQueueFull, "full"), nodebus.ErrQueueFull},
		{errors.New("something else"), nodebus.ErrConfigConflict},
	} {
		f.mu.Lock()
		f.err = tc.err
		f.mu.Unlock()
		for what, err := range map[string]error{
			"SetOption": func() error { _, err := c.SetOption("k", "v"); return err }(),
			"Config":    func() error { _, err := c.Config(); return err }(),
		} {
			var e *nodebus.Error
			if !errors.As(err, &e) || e.Name != tc.name || !strings.Contains(tc.err.Error(), e.Message) {
				t.Errorf("%s with %v: %#v, want %s", what, tc.err, err, tc.name)
			}
		}
	}
}

// Each event goes out as the Manager signal the interface XML declares,
// with its argument types.
func TestEventsAreTheXMLSignals(t *testing.T) {
	_, b, _, conn := served(t)
	if err := conn.AddMatchSignal(dbus.WithMatchInterface(nodebus.ManagerIface)); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *dbus.Signal, 100)
	conn.Signal(ch)
	b.ViewChanged(nodebus.ViewInfo{Seq: 3, Coordinator: 1, Members: []uint16{1, 2}}, "joined 2")
	b.QuorumChanged(nodebus.QuorumInfo{Quorate: true, TotalVotes: 2, ExpectedVotes: 3, Quorum: 2, Reason: "r"})
	b.LinkChanged(2, 1, false)
	b.ConfigChanged(5, "set option a=b")
	j := nodebus.Job{ID: 3, Kind: nodebus.JobSetOption, Target: "a", State: nodebus.JobRunning}
	b.JobNew(j)
	b.JobRemoved(j, nodebus.ResultFailed, nodebus.ErrNoLeader+": none")
	ifs, err := nodebus.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	sigs := map[string]string{}
	for _, s := range ifs[nodebus.ManagerIface].Signals {
		var sig string
		for _, a := range s.Args {
			sig += a.Type
		}
		sigs[s.Name] = sig
	}
	want := []string{"ViewChanged", "QuorumChanged", "LinkChanged", "ConfigChanged", "JobRemoved"}
	var got []string
	for len(got) < len(want) {
		select {
		case s := <-ch:
			name := strings.TrimPrefix(s.Name, nodebus.ManagerIface+".")
			got = append(got, name)
			xml, ok := sigs[name]
			if !ok {
				t.Errorf("signal %s is not in the interface XML", name)
			} else if sig := dbus.SignatureOf(s.Body...).String(); sig != xml {
				t.Errorf("signal %s: (%s), XML (%s)", name, sig, xml)
			}
			if name == "LinkChanged" && s.Body[2] != "down" {
				t.Errorf("LinkChanged %v", s.Body)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("signals %v, want %v", got, want)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("signals %v, want %v in order", got, want)
	}
	if len(sigs) != len(want)+len(groupSignals) {
		t.Errorf("the XML has %d Manager signals, the tests check %d", len(sigs), len(want)+len(groupSignals))
	}
}

// The interface XML is the API's source of truth: every method it lists
// is a method of the exported Go object with the same D-Bus signature, and
// every property it lists is exported with its type.
func TestBusImplementsTheInterfaceXML(t *testing.T) {
	ifs, err := nodebus.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	mgr := reflect.TypeOf(&manager{})
	for _, m := range ifs[nodebus.ManagerIface].Methods {
		gm, ok := mgr.MethodByName(m.Name)
		if !ok {
			t.Errorf("%s.%s is in the XML but not implemented", nodebus.ManagerIface, m.Name)
			continue
		}
		var in, out string
		for _, a := range m.Args {
			if a.Direction == "out" {
				out += a.Type
			} else {
				in += a.Type
			}
		}
		var gin, gout string
		for i := 1; i < gm.Type.NumIn(); i++ { // 0 is the receiver
			if at := gm.Type.In(i); at != reflect.TypeOf(dbus.Sender("")) {
				gin += dbus.SignatureOfType(at).String()
			}
		}
		for i := 0; i < gm.Type.NumOut(); i++ {
			if at := gm.Type.Out(i); at != reflect.TypeOf(&dbus.Error{}) {
				gout += dbus.SignatureOfType(at).String()
			}
		}
		if in != gin || out != gout {
			t.Errorf("%s: XML (%s)→(%s), Go (%s)→(%s)", m.Name, in, out, gin, gout)
		}
	}
	for i := 0; i < mgr.NumMethod(); i++ {
		name := mgr.Method(i).Name
		found := false
		for _, m := range ifs[nodebus.ManagerIface].Methods {
			found = found || m.Name == name
		}
		if !found {
			t.Errorf("the manager exports %s, which the XML does not list", name)
		}
	}
	check := func(iface string, props prop.Map) {
		var want, got []string
		for _, p := range ifs[iface].Properties {
			want = append(want, p.Name+" "+p.Type)
		}
		for name, p := range props[iface] {
			got = append(got, name+" "+dbus.SignatureOf(p.Value).String())
		}
		sort.Strings(want)
		sort.Strings(got)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s properties: XML %v, exported %v", iface, want, got)
		}
	}
	check(nodebus.ManagerIface, managerProps(nodebus.Status{}))
	check(nodebus.NodeIface, nodeProps(nodebus.NodeInfo{}))
	check(nodebus.JobIface, jobProps(nodebus.Job{}))
	check(nodebus.GroupIface, groupProps(nodebus.GroupInfo{}))
	check(nodebus.SessionIface, sessionProps(nodebus.SessionInfo{}))
}

// The adapter hands requests to the loop and never reaches into the
// protocol cores or the daemon: it must not import them, even indirectly.
func TestAdapterImportsNoCore(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for dec.More() {
		var p struct{ ImportPath string }
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		n++
		for _, bad := range []string{
			"github.com/concord-ha/concord/lib/core/",
			"github.com/concord-ha/concord/daemons/concord-noded/internal/daemon",
			"github.com/concord-ha/concord/daemons/concord-noded/internal/storerun",
			"github.com/concord-ha/concord/lib/store/",
		} {
			if strings.HasPrefix(p.ImportPath, bad) {
				t.Errorf("busapi depends on %s", p.ImportPath)
			}
		}
	}
	if n < 10 {
		t.Fatalf("go list found %d packages; it did not list busapi's dependencies", n)
	}
}

// The daemons of two cluster contexts serve on one bus, each under its
// own name; a client of one reaches that one's status only, and the name
// cannot be taken twice.
func TestTwoContextsOwnTheirNames(t *testing.T) {
	addr := nodebustest.Bus(t)
	open := func(name, cluster string) {
		f := &fake{}
		s := threeNodes()
		s.Cluster.Name = cluster
		f.set(s)
		b, err := Open(f, Options{Conn: nodebustest.Conn(t, addr), BusName: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
	}
	open("", "first")
	open(nodebus.BusName+".b", "second")
	for name, want := range map[string]string{nodebus.BusName: "first", nodebus.BusName + ".b": "second"} {
		c := nodebus.NewClientName(nodebustest.Conn(t, addr), name)
		if s, err := c.Status(); err != nil || s.Cluster.Name != want {
			t.Errorf("%s: cluster %q, %v; want %q", name, s.Cluster.Name, err, want)
		}
	}
	_, err := Open(&fake{}, Options{Conn: nodebustest.Conn(t, addr), BusName: nodebus.BusName + ".b"})
	if err == nil || !strings.Contains(err.Error(), "name org.concordha.node1.b is already owned") {
		t.Errorf("a second owner of org.concordha.node1.b: %v", err)
	}
}
