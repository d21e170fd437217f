package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/driver/link"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// hub is an in-memory Ethernet segment per link index: a fake at the port
// seam, so the daemon's wiring (frames, keys, core, store) runs fast here.
// The real links are proven on the nspawn cluster in tests/.
type hub struct {
	mu    sync.Mutex
	ports map[int][]*memPort // link index -> ports
	cut   map[string]bool    // "link/mac" frames to or from this port are dropped
	txCut map[string]bool    // "link/mac" frames from this port are dropped
	eager map[string]bool    // node names whose ports cannot hold frames (see eagerPort)
}

type memFrame struct {
	b   []byte
	src net.HardwareAddr
}

type memPort struct {
	h      *hub
	link   int
	mac    net.HardwareAddr
	in     chan memFrame
	closed chan struct{}
	once   sync.Once
	sent   atomic.Int64 // frames written, delivered or not

	// Frames with byte deferOff in deferVals wait in held for ReadDeferred
	// once Defer was called, as *link.Conn's do.
	deferring atomic.Bool
	deferOff  uint32
	deferVals []byte
	held      chan memFrame
	heldIn    atomic.Int64      // frames put in held
	heldKind  [256]atomic.Int64 // of them, per kind byte
}

func (h *hub) port(link int, mac net.HardwareAddr) *memPort {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &memPort{h: h, link: link, mac: mac, in: make(chan memFrame, 4096), held: make(chan memFrame, 4096), closed: make(chan struct{})}
	h.ports[link] = append(h.ports[link], p)
	return p
}

func (h *hub) setCut(link int, mac net.HardwareAddr, cut bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cut[fmt.Sprintf("%d/%s", link, mac)] = cut
}

func (p *memPort) WriteTo(b []byte, dst net.HardwareAddr) error {
	select {
	case <-p.closed:
		return net.ErrClosed
	default:
	}
	p.sent.Add(1)
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	if k := fmt.Sprintf("%d/%s", p.link, p.mac); p.h.cut[k] || p.h.txCut[k] {
		return nil
	}
	for _, q := range p.h.ports[p.link] {
		if q == p || p.h.cut[fmt.Sprintf("%d/%s", q.link, q.mac)] {
			continue
		}
		if dst[0]&1 == 0 && !bytes.Equal(dst, q.mac) {
			continue
		}
		in := q.in
		if q.deferring.Load() && uint32(len(b)) > q.deferOff && bytes.IndexByte(q.deferVals, b[q.deferOff]) >= 0 {
			in = q.held
			q.heldIn.Add(1)
			q.heldKind[b[q.deferOff]].Add(1)
		}
		select {
		case <-q.closed:
		case in <- memFrame{append([]byte(nil), b...), p.mac}:
		default:
		}
	}
	return nil
}

func (p *memPort) Defer(off uint32, vals ...byte) error {
	p.deferOff, p.deferVals = off, vals
	p.deferring.Store(true)
	return nil
}

func (p *memPort) ReadDeferred(frames []link.Frame) (int, error) {
	select {
	case <-p.closed:
		return 0, net.ErrClosed
	default:
	}
	for i := range frames {
		select {
		case f := <-p.held:
			frames[i].N = copy(frames[i].Buf, f.b)
			frames[i].Src = append(frames[i].Src[:0], f.src...)
		default:
			return i, nil
		}
	}
	return len(frames), nil
}

// eagerPort hides memPort's Defer: a port that delivers every frame as it
// arrives.
type eagerPort struct{ p *memPort }

func (e eagerPort) WriteTo(b []byte, dst net.HardwareAddr) error     { return e.p.WriteTo(b, dst) }
func (e eagerPort) ReadFrom(b []byte) (int, net.HardwareAddr, error) { return e.p.ReadFrom(b) }
func (e eagerPort) Close() error                                     { return e.p.Close() }

func (p *memPort) ReadFrom(b []byte) (int, net.HardwareAddr, error) {
	select {
	case f := <-p.in:
		return copy(b, f.b), f.src, nil
	case <-p.closed:
		return 0, nil, net.ErrClosed
	}
}

func (p *memPort) Close() error { p.once.Do(func() { close(p.closed) }); return nil }

type testNode struct {
	d      *Daemon
	rec    *recorder
	cancel context.CancelFunc
	done   chan error
	exited chan struct{} // closed when Run has returned
	ports  []*memPort
	dir    string // state directory
}

func testConfig(t *testing.T, n int) *config.Cluster {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("[cluster]\nname = memtest\n\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "[node n%d]\nnumber = %d\nlink = hb0 02:00:00:00:00:%02x\nlink = hb1 02:00:00:00:01:%02x\n\n", i, i, i, i)
	}
	c, err := config.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var testKey = bytes.Repeat([]byte{7}, 32)

func startNode(t *testing.T, h *hub, c *config.Cluster, name, dir string) *testNode {
	t.Helper()
	return startNodeWith(t, h, c, name, dir, nil)
}

// startNodeWith is startNode with a hook to set the daemon up before it runs.
func startNodeWith(t *testing.T, h *hub, c *config.Cluster, name, dir string, setup func(*Daemon)) *testNode {
	t.Helper()
	return startNodeOpts(t, h, c, Options{NodeName: name, StateDir: dir, Version: "test"}, setup)
}

// startNodeOpts is startNodeWith with the daemon's options (a logger, say).
func startNodeOpts(t *testing.T, h *hub, c *config.Cluster, opts Options, setup func(*Daemon)) *testNode {
	t.Helper()
	name := opts.NodeName
	self := c.NodeByName(name)
	var ports []Port
	var mps []*memPort
	for i, l := range self.Links {
		p := h.port(i, l.MAC)
		if h.eager[name] {
			ports = append(ports, eagerPort{p})
		} else {
			ports = append(ports, p)
		}
		mps = append(mps, p)
	}
	d, err := NewWith(opts, c, testKey, ports)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{d: d, ended: map[uint32]jobEnd{}}
	d.SetEvents(rec)
	if setup != nil {
		setup(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{d: d, rec: rec, cancel: cancel, done: make(chan error, 1), exited: make(chan struct{}), ports: mps, dir: opts.StateDir}
	go func() { tn.done <- d.Run(ctx); close(tn.exited) }()
	t.Cleanup(func() {
		// Run returns only once nothing writes to dir any more, which
		// TempDir's removal (a cleanup registered earlier, so run later)
		// needs.
		tn.crash()
		select {
		case <-tn.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not return 10 s after it was stopped", name)
		}
	})
	return tn
}

// crash stops the node without leaving: its ports go silent.
func (n *testNode) crash() {
	for _, p := range n.ports {
		p.Close()
	}
	n.cancel()
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not reached; last: %s", what, last)
}

func members(s nodebus.Status) string { return fmt.Sprint(s.View.Members) }

func agreeOn(t *testing.T, nodes []*testNode, want string) {
	t.Helper()
	eventually(t, "view "+want, func() (bool, string) {
		var seqs []uint64
		for _, n := range nodes {
			s := n.d.Status()
			if members(s) != want {
				return false, fmt.Sprintf("node %s has view %d %s", s.LocalName, s.View.Seq, members(s))
			}
			seqs = append(seqs, s.View.Seq)
		}
		for _, q := range seqs {
			if q != seqs[0] {
				return false, fmt.Sprintf("view seqs differ: %v", seqs)
			}
		}
		return true, ""
	})
}

// startCluster starts n daemons on one hub and waits for their first view.
func startCluster(t *testing.T, n int) (*hub, *config.Cluster, []*testNode) {
	t.Helper()
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	c := testConfig(t, n)
	var ns []*testNode
	var want []string
	for i := 1; i <= n; i++ {
		ns = append(ns, startNode(t, h, c, fmt.Sprintf("n%d", i), t.TempDir()))
		want = append(want, fmt.Sprint(i))
	}
	agreeOn(t, ns, "["+strings.Join(want, " ")+"]")
	return h, c, ns
}

func TestThreeDaemonsFormOneViewAndSurviveACrash(t *testing.T) {
	_, _, ns := startCluster(t, 3)
	ns[2].crash()
	agreeOn(t, ns[:2], "[1 2]")
	for _, n := range ns[:2] {
		if s := n.d.Status(); !s.Quorum.Quorate {
			t.Errorf("node %s not quorate after losing 1 of 3: %+v", s.LocalName, s.Quorum)
		}
	}
}

// Heartbeats have their own frame kind, which ports that can hold until
// the receiver's next tick, with Raft's frames; a node whose ports cannot
// gets them as they arrive. Both kinds of node form one view and see a
// crash.
func TestHeartbeatsWaitForTheTick(t *testing.T) {
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}, eager: map[string]bool{"n3": true}}
	c := testConfig(t, 3)
	var ns []*testNode
	for i := 1; i <= 3; i++ {
		ns = append(ns, startNode(t, h, c, fmt.Sprintf("n%d", i), t.TempDir()))
	}
	agreeOn(t, ns, "[1 2 3]")
	held := func(n *testNode) int64 { return n.ports[0].heldIn.Load() + n.ports[1].heldIn.Load() }
	heartbeats := func(n *testNode) int64 {
		return n.ports[0].heldKind[frame.KindHeartbeat].Load() + n.ports[1].heldKind[frame.KindHeartbeat].Load()
	}
	h0 := heartbeats(ns[0])
	eventually(t, "node 1's links hold heartbeats", func() (bool, string) {
		got := heartbeats(ns[0]) - h0
		return got >= 100, fmt.Sprintf("%d held since the view formed", got)
	})
	eventually(t, "node 1's links hold Raft frames", func() (bool, string) {
		got := ns[0].ports[0].heldKind[frame.KindConfig].Load() + ns[0].ports[1].heldKind[frame.KindConfig].Load()
		return got > 0, "none held"
	})
	if got := held(ns[2]); got != 0 {
		t.Errorf("node 3's ports cannot hold frames, but %d were held", got)
	}
	if got := ns[0].counter("dropped_unknown_kind") + ns[2].counter("dropped_unknown_kind"); got != 0 {
		t.Errorf("%d frames of an unknown kind", got)
	}
	ns[1].crash()
	agreeOn(t, []*testNode{ns[0], ns[2]}, "[1 3]")
}

func TestOneLinkCutChangesNoView(t *testing.T) {
	h, c, ns := startCluster(t, 3)
	seq := ns[0].d.Status().View.Seq
	h.setCut(1, c.Node(2).Links[1].MAC, true)
	eventually(t, "node 1 sees node 2's hb1 down", func() (bool, string) {
		s := ns[0].d.Status()
		st := s.Nodes[1].Links[1].State
		return st == "down", "hb1 of node 2 is " + st
	})
	if s := ns[0].d.Status(); s.View.Seq != seq || members(s) != "[1 2 3]" {
		t.Fatalf("a single link cut changed the view: %d %s (was %d)", s.View.Seq, members(s), seq)
	}
	h.setCut(1, c.Node(2).Links[1].MAC, false)
	eventually(t, "hb1 up again", func() (bool, string) {
		st := ns[0].d.Status().Nodes[1].Links[1].State
		return st == "up", "hb1 of node 2 is " + st
	})
}

// counter reads one of a daemon's frame counters on its loop.
func (n *testNode) counter(name string) uint64 {
	var v uint64
	n.d.call(func() { v = n.d.counters[name] })
	return v
}

// While both links work each heartbeat goes on one link; a link that fails
// in one direction only makes its sender use every link again, because
// the receivers ask, and no view changes throughout.
func TestHeartbeatsAlternateAndOneWayLossIsAnswered(t *testing.T) {
	h, c, ns := startCluster(t, 3)
	n1 := ns[0]
	time.Sleep(500 * time.Millisecond) // every link up everywhere
	seq := n1.d.Status().View.Seq
	eventually(t, "status: alternating, with a configuration leader", func() (bool, string) {
		st := n1.d.Status()
		return st.Heartbeats == "alternating" && st.Config.Leader != 0 && st.Config.Index > 0, fmt.Sprintf("%q %+v", st.Heartbeats, st.Config)
	})

	one, all := n1.counter("heartbeats_one_link"), n1.counter("heartbeats_all_links")
	s0, s1 := n1.ports[0].sent.Load(), n1.ports[1].sent.Load()
	time.Sleep(time.Second)
	dOne, dAll := n1.counter("heartbeats_one_link")-one, n1.counter("heartbeats_all_links")-all
	d0, d1 := uint64(n1.ports[0].sent.Load()-s0), uint64(n1.ports[1].sent.Load()-s1)
	if dOne < 15 || dAll != 0 {
		t.Fatalf("steady state, 1 s: %d heartbeats on one link and %d on all, want about 33 and 0", dOne, dAll)
	}
	// Raft and other frames still go on both links; heartbeats on both
	// would make the total twice dOne.
	if d0 < dOne/3 || d1 < dOne/3 || d0+d1 > dOne*13/10+20 {
		t.Fatalf("steady state, 1 s: %d and %d frames on the links for %d heartbeats: not alternating", d0, d1, dOne)
	}

	// Node 2's hb0 stops transmitting; it still receives on hb0, so only
	// its peers can tell.
	n2 := ns[1]
	h.mu.Lock()
	h.txCut[fmt.Sprintf("0/%s", c.Node(2).Links[0].MAC)] = true
	h.mu.Unlock()
	eventually(t, "node 1 sees node 2's hb0 down", func() (bool, string) {
		st := n1.d.Status().Nodes[1].Links[0].State
		return st == "down", "hb0 of node 2 is " + st
	})
	eventually(t, "the status says why", func() (bool, string) {
		a, b := n1.d.Status().Heartbeats, n2.d.Status().Heartbeats
		return a == "on every link (a node is missing on a link here)" && b == "on every link (a node misses this one on a link)",
			fmt.Sprintf("node 1: %q, node 2: %q", a, b)
	})
	all2 := n2.counter("heartbeats_all_links")
	time.Sleep(time.Second)
	if got := n2.counter("heartbeats_all_links") - all2; got < 15 {
		t.Errorf("node 2 sent %d heartbeats on every link in the second after its peers lost it on hb0, want about 33", got)
	}
	if st := n2.d.Status().Nodes[0].Links[0].State; st != "up" {
		t.Errorf("node 2 sees node 1's hb0 %s; only node 2's sending side was cut", st)
	}

	h.mu.Lock()
	h.txCut[fmt.Sprintf("0/%s", c.Node(2).Links[0].MAC)] = false
	h.mu.Unlock()
	eventually(t, "node 2 alternates again", func() (bool, string) {
		a := n2.counter("heartbeats_all_links")
		time.Sleep(300 * time.Millisecond)
		b := n2.counter("heartbeats_all_links")
		return a == b, fmt.Sprintf("%d heartbeats on every link in 300 ms", b-a)
	})
	for _, n := range ns {
		if s := n.d.Status(); s.View.Seq != seq || members(s) != "[1 2 3]" {
			t.Errorf("node %s: view %d %s, want %d [1 2 3] unchanged", s.LocalName, s.View.Seq, members(s), seq)
		}
	}
}

// A node deleted while it was cut off never gets the deletion from Raft;
// once it is heard again, its peers tell it, and it leaves and stops.
func TestDeletedNodeIsTold(t *testing.T) {
	h, c, ns := startCluster(t, 3)
	for l := range 2 {
		h.setCut(l, c.Node(3).Links[l].MAC, true)
	}
	agreeOn(t, ns[:2], "[1 2]")
	if err := ns[0].change(t, func(d *Daemon) (nodebus.Job, error) { return d.DeleteNode("n3") }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node 3 gone from node 2's configuration", func() (bool, string) {
		n := len(ns[1].cfg().Nodes)
		return n == 2, fmt.Sprintf("%d nodes", n)
	})
	select {
	case err := <-ns[2].done:
		t.Fatalf("node 3 stopped while cut off: %v", err)
	default:
	}
	for l := range 2 {
		h.setCut(l, c.Node(3).Links[l].MAC, false)
	}
	select {
	case err := <-ns[2].done:
		if err != nil {
			t.Fatalf("node 3 stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node 3 still runs 10 s after it was heard again")
	}
	if told := ns[0].counter("told_not_member") + ns[1].counter("told_not_member"); told == 0 {
		t.Error("node 3 stopped, but nobody told it it was deleted")
	}
	agreeOn(t, ns[:2], "[1 2]")
}

// A peer that lags behind tells a node just added that it is unknown; the
// new node holds the newer configuration and stays.
func TestNotMemberFromAnOlderConfigurationIsIgnored(t *testing.T) {
	_, _, ns := startCluster(t, 3)
	n3 := ns[2]
	var idx uint64
	eventually(t, "node 3 has a replicated configuration", func() (bool, string) {
		n3.d.call(func() { idx = n3.d.cfgIndex })
		return idx > 0, "configuration index 0"
	})
	for _, tc := range []struct {
		node  uint16
		index uint64
	}{{3, idx}, {3, idx - 1}, {2, idx + 100}} {
		p := frame.NotMember{Node: tc.node, ConfigIndex: tc.index}.Encode()
		n3.d.call(func() { n3.d.notMember(1, p) })
	}
	n3.d.call(func() { n3.d.notMember(1, []byte{0, 3}) })
	var deleted bool
	n3.d.call(func() { deleted = n3.d.deleted })
	if deleted {
		t.Fatal("node 3 took an older or foreign not-member notice as its deletion")
	}
	if got := n3.counter("dropped_malformed"); got != 1 {
		t.Errorf("dropped_malformed = %d, want 1 for the short notice", got)
	}
}

// A node with one link would hear a two-link node only on its turns on
// that link: nodes with two links send every heartbeat on both.
func TestFewerLinksMeansEveryLink(t *testing.T) {
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	c, err := config.Parse([]byte("[cluster]\nname = memtest\n\n" +
		"[node n1]\nnumber = 1\nlink = hb0 02:00:00:00:00:01\nlink = hb1 02:00:00:00:01:01\n\n" +
		"[node n2]\nnumber = 2\nlink = hb0 02:00:00:00:00:02\nlink = hb1 02:00:00:00:01:02\n\n" +
		"[node n3]\nnumber = 3\nlink = hb0 02:00:00:00:00:03\n"))
	if err != nil {
		t.Fatal(err)
	}
	var ns []*testNode
	for i := 1; i <= 3; i++ {
		ns = append(ns, startNode(t, h, c, fmt.Sprintf("n%d", i), t.TempDir()))
	}
	agreeOn(t, ns, "[1 2 3]")
	eventually(t, "status says why", func() (bool, string) {
		m := ns[0].d.Status().Heartbeats
		return m == "on every link (a node has fewer links than this one)", m
	})
	one := ns[0].counter("heartbeats_one_link")
	time.Sleep(500 * time.Millisecond)
	if got := ns[0].counter("heartbeats_one_link") - one; got != 0 {
		t.Errorf("node 1 sent %d heartbeats on one link although node 3 has only hb0", got)
	}
	if m := ns[2].d.Status().Heartbeats; m != "on one link" {
		t.Errorf("node 3's heartbeats: %q", m)
	}
}

func TestGarbageFramesAreCountedNotFatal(t *testing.T) {
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	c := testConfig(t, 2)
	a := startNode(t, h, c, "n1", t.TempDir())
	b := startNode(t, h, c, "n2", t.TempDir())
	agreeOn(t, []*testNode{a, b}, "[1 2]")
	evil := h.port(0, net.HardwareAddr{2, 0, 0, 0, 9, 9})
	group := a.d.group
	for _, f := range [][]byte{nil, {1}, []byte("CC"), bytes.Repeat([]byte{0xff}, 200), append([]byte("CC\x01\x01"), make([]byte, 60)...)} {
		evil.WriteTo(f, group)
	}
	eventually(t, "drops counted", func() (bool, string) {
		var n uint64
		a.d.call(func() {
			for k, v := range a.d.counters {
				if len(k) > 8 && k[:8] == "dropped_" {
					n += v
				}
			}
		})
		return n >= 5, fmt.Sprintf("%d drops counted", n)
	})
	agreeOn(t, []*testNode{a, b}, "[1 2]")
}

func TestAddAndDeleteNodeReplicates(t *testing.T) {
	_, _, ns := startCluster(t, 3)
	var err error
	eventually(t, "node added", func() (bool, string) {
		err = ns[1].addNode(t, "n4", 0, 2, []string{"hb0 02:00:00:00:00:04", "hb1 02:00:00:00:01:04"}, map[string]string{"rack": "r9"})
		return err == nil, fmt.Sprint(err)
	})
	for _, n := range ns {
		eventually(t, "node 4 everywhere", func() (bool, string) {
			s := n.d.Status()
			for _, x := range s.Nodes {
				if x.Number == 4 && x.Votes == 2 && x.Attrs["rack"] == "r9" {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%s has %d nodes", s.LocalName, len(s.Nodes))
		})
	}
	if err := ns[0].addNode(t, "n4", 0, 1, []string{"hb0 02:00:00:00:00:05"}, nil); err == nil {
		t.Fatal("adding a second node named n4 succeeded")
	}
	if err := ns[0].addNode(t, "n5", 0, 1, []string{"hb0 zz"}, nil); err == nil || !strings.Contains(err.Error(), "MAC") {
		t.Fatalf("a bad MAC must be refused naming it: %v", err)
	}
	if err := ns[2].change(t, func(d *Daemon) (nodebus.Job, error) { return d.DeleteNode("n4") }); err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		eventually(t, "node 4 gone everywhere", func() (bool, string) {
			s := n.d.Status()
			return len(s.Nodes) == 3, fmt.Sprintf("%s has %d nodes", s.LocalName, len(s.Nodes))
		})
	}
	if err := ns[0].change(t, func(d *Daemon) (nodebus.Job, error) { return d.DeleteNode("n4") }); err == nil {
		t.Fatal("deleting a missing node succeeded")
	}
}

// Many groups make view installs larger than one frame: they travel as
// fragments and the view change still completes.
func TestLargeInstallIsFragmented(t *testing.T) {
	_, _, ns := startCluster(t, 3)
	for _, n := range ns {
		for g := 0; g < 20; g++ {
			name := fmt.Sprintf("%s-%03d", strings.Repeat("g", 200), g)
			var err error
			n.d.call(func() { err = n.d.core.JoinGroup(name) })
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, "groups joined everywhere", func() (bool, string) {
		v := 0
		ns[0].d.call(func() { v = len(ns[0].d.core.Status().View.Groups) })
		return v >= 20, fmt.Sprintf("%d groups", v)
	})
	ns[2].crash()
	agreeOn(t, ns[:2], "[1 2]")
	var frags uint64
	ns[0].d.call(func() { frags = ns[0].d.counters["sent_fragmented"] })
	if frags == 0 {
		t.Fatal("no message was fragmented; the test does not test what it says")
	}
}

// A full send queue is its own D-Bus error, so clients know to send again.
func TestQueueFullIsNamed(t *testing.T) {
	_, _, ns := startCluster(t, 2)
	d := ns[0].d
	err := d.groupOp(func() error {
		for i := 0; i < 5000; i++ {
			if err := d.core.Broadcast("", []byte("x")); err != nil {
				return err
			}
		}
		return nil
	})
	if e := errorName(err); e != nodebus.ErrQueueFull {
		t.Fatalf("flooding the send queue: %v, want %s", err, nodebus.ErrQueueFull)
	}
}

// A node that comes back with an empty state directory (a replaced disk)
// gets the replicated configuration again: it tells the leader, which
// takes its replica out of Raft and back in.
func TestLostStateIsReplicatedAgain(t *testing.T) {
	h, c, ns := startCluster(t, 3)
	if err := ns[0].change(t, func(d *Daemon) (nodebus.Job, error) { return d.SetOption("before", "loss") }); err != nil {
		t.Fatal(err)
	}
	// The node to wipe is a follower: a new leader would start everyone's
	// replication over anyway, and then nothing would be tested.
	var leader uint16
	eventually(t, "a configuration leader", func() (bool, string) {
		leader = ns[0].d.store.Leader()
		return leader != 0, "none"
	})
	victim := 2
	if leader == 3 {
		victim = 1
	}
	eventually(t, "the victim has the option", func() (bool, string) {
		return ns[victim].cfg().Options["before"] == "loss", "not yet"
	})
	ns[victim].crash()
	var rest []*testNode
	for i, n := range ns {
		if i != victim {
			rest = append(rest, n)
		}
	}
	agreeOn(t, rest, fmt.Sprintf("%v", map[int]string{1: "[1 3]", 2: "[1 2]"}[victim]))
	if err := rest[0].change(t, func(d *Daemon) (nodebus.Job, error) { return d.SetOption("during", "loss") }); err != nil {
		t.Fatal(err)
	}
	if l := rest[0].d.store.Leader(); l != leader {
		// A new leader starts every follower's replication over, which
		// recovers the node without the path under test; the outcome
		// is still checked.
		t.Logf("the configuration leader changed from %d to %d", leader, l)
	}
	name := fmt.Sprintf("n%d", victim+1)
	n3 := startNode(t, h, c, name, t.TempDir()) // a new, empty state directory
	agreeOn(t, []*testNode{rest[0], rest[1], n3}, "[1 2 3]")
	eventually(t, "node 3 has the configuration again", func() (bool, string) {
		o := n3.cfg().Options
		return o["before"] == "loss" && o["during"] == "loss", fmt.Sprintf("options %v", o)
	})
	// And it takes part again: a change made now reaches it.
	if err := rest[1].change(t, func(d *Daemon) (nodebus.Job, error) { return d.SetOption("after", "loss") }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node 3 follows new changes", func() (bool, string) {
		return n3.cfg().Options["after"] == "loss", "not yet"
	})
}
