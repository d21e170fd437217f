package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concord-ha/concord/daemons/concord-noded/internal/nic"
	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/nodebus"
)

// fakeNICs stands for the NIC manager: Up says what the test set, and
// the test sends the changes Watch would.
type fakeNICs struct {
	up []nic.Status
	ev chan nic.Event

	mu   sync.Mutex
	nics []nic.NIC
}

func (f *fakeNICs) Up() ([]nic.Status, error) { return f.up, nil }

func (f *fakeNICs) NICs() ([]nic.NIC, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.nics), nil
}

func (f *fakeNICs) Watch(ctx context.Context) (<-chan nic.Event, error) { return f.ev, nil }

func (f *fakeNICs) setNICs(ns ...nic.NIC) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nics = ns
}

// nicUp is a working NIC of link i.
func nicUp(i, ifindex int, mac net.HardwareAddr) nic.Status {
	name := fmt.Sprintf("hb%d", i)
	return nic.Status{Link: nic.Link{Index: i, Interface: name}, State: nic.StateUp, Ifindex: ifindex, HWAddr: mac,
		AdminUp: true, Carrier: true, OperState: "up"}
}

// nicDown is link i's NIC in a state that is not up (missing: no NIC).
func nicDown(i, ifindex int, mac net.HardwareAddr, state nic.State, reason string) nic.Status {
	st := nicUp(i, ifindex, mac)
	st.State, st.Reason = state, reason
	switch state {
	case nic.StateMissing:
		st.Ifindex, st.HWAddr, st.AdminUp, st.Carrier, st.OperState = 0, nil, false, false, ""
	case nic.StateAdminDown:
		st.AdminUp, st.Carrier, st.OperState = false, false, "down"
	case nic.StateNoCarrier:
		st.Carrier, st.OperState = false, "lowerlayerdown"
	}
	return st
}

// logLines records a daemon's log lines as "LEVEL message".
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }

// with returns the lines that contain s.
func (l *logLines) with(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, x := range l.lines {
		if strings.Contains(x, s) {
			out = append(out, x)
		}
	}
	return out
}

func (l *logLines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// nicNode is a test node whose NICs a fakeNICs manages.
type nicNode struct {
	*testNode
	nics *fakeNICs
	log  *logLines

	mu     sync.Mutex
	notes  []string              // sd_notify states, in order
	opened map[string][]*memPort // ports opened, by interface
}

func (n *nicNode) notified() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.notes)
}

func (n *nicNode) ports(ifname string) []*memPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.opened[ifname])
}

// startNICNode starts node name with its NICs as up says; each port
// opened is a hub port with the MAC that its NIC has in nics.
func startNICNode(t *testing.T, h *hub, c *config.Cluster, name, dir string, up []nic.Status, nics []nic.NIC) *nicNode {
	t.Helper()
	self := c.NodeByName(name)
	n := &nicNode{nics: &fakeNICs{up: up, ev: make(chan nic.Event, 16)}, log: &logLines{}, opened: map[string][]*memPort{}}
	n.nics.setNICs(nics...)
	d, err := NewWith(Options{NodeName: name, StateDir: dir, Version: "test", Logger: slog.New(n.log)}, c, testKey, make([]Port, len(self.Links)))
	if err != nil {
		t.Fatal(err)
	}
	d.notify = func(s string) {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.notes = append(n.notes, s)
	}
	open := func(ifname string) (Port, error) {
		i := slices.Index(d.linkNames, ifname)
		cur, _ := n.nics.NICs()
		for _, x := range cur {
			if x.Name == ifname {
				p := h.port(i, x.MAC)
				n.mu.Lock()
				n.opened[ifname] = append(n.opened[ifname], p)
				n.mu.Unlock()
				return p, nil
			}
		}
		return nil, errors.New("no such device")
	}
	if err := d.UseNICs(n.nics, open); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{d: d, ended: map[uint32]jobEnd{}}
	d.SetEvents(rec)
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{d: d, rec: rec, cancel: cancel, done: make(chan error, 1), exited: make(chan struct{})}
	n.testNode = tn
	go func() { tn.done <- d.Run(ctx); close(tn.exited) }()
	t.Cleanup(func() {
		n.mu.Lock()
		for _, ps := range n.opened {
			for _, p := range ps {
				p.Close()
			}
		}
		n.mu.Unlock()
		cancel()
		select {
		case <-tn.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not return 10 s after it was stopped", name)
		}
	})
	return n
}

// event hands the daemon a change of link st.Index's NIC.
func (n *nicNode) event(prev, st nic.Status) {
	n.nics.ev <- nic.Event{Status: st, Prev: prev}
}

func linkOf(s nodebus.Status, node uint16, l int) nodebus.LinkInfo {
	for _, n := range s.Nodes {
		if n.Number == node && l < len(n.Links) {
			return n.Links[l]
		}
	}
	return nodebus.LinkInfo{}
}

func mustLog(t *testing.T, n *nicNode, want string) {
	t.Helper()
	eventually(t, "log line "+want, func() (bool, string) {
		return len(n.log.with(want)) > 0, n.log.all()
	})
}

func macOf(c *config.Cluster, name string, l int) net.HardwareAddr {
	return c.NodeByName(name).Links[l].MAC
}

// A NIC missing at start does not stop the daemon: it runs on the links
// it has, says which one is missing and why, and opens the NIC's port when
// it appears; a NIC that goes and comes back, or is re-created under the
// same name, gets a new port.
func TestMissingNICIsOpenedWhenItAppears(t *testing.T) {
	c := testConfig(t, 2)
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	n2 := startNode(t, h, c, "n2", t.TempDir())
	hb0, hb1 := macOf(c, "n1", 0), macOf(c, "n1", 1)
	n1 := startNICNode(t, h, c, "n1", t.TempDir(),
		[]nic.Status{nicUp(0, 2, hb0), nicDown(1, 0, nil, nic.StateMissing, "no interface hb1")},
		[]nic.NIC{{Ifindex: 2, Name: "hb0", MAC: hb0, AdminUp: true, Carrier: true}})
	mustLog(t, n1, "WARN link 1 (hb1): missing: no interface hb1")
	mustLog(t, n1, "WARN link 1 (hb1): configured MAC "+hb1.String()+" is on no NIC of this node")
	agreeOn(t, []*testNode{n1.testNode, n2}, "[1 2]")

	s := n1.d.Status()
	if l := s.LocalLinks[1]; l.State != "missing" || !strings.Contains(l.Reason, "no interface hb1") {
		t.Errorf("local link 1: %+v, want missing, with the reason", l)
	}
	if l := linkOf(s, 1, 1); l.State != "missing" || l.Reason == "" {
		t.Errorf("node 1's own link 1 in its status: %+v, want missing with a reason", l)
	}
	if l := linkOf(s, 1, 0); l.State != "up" {
		t.Errorf("node 1's own link 0 in its status: %+v, want up", l)
	}
	if s.Waiting != "" || !slices.Contains(n1.notified(), "READY=1") {
		t.Errorf("waiting %q, notified %q: want READY=1 with hb0 working", s.Waiting, n1.notified())
	}
	if want := "on every link that works (hb1 missing here)"; s.Heartbeats != want {
		t.Errorf("heartbeats %q, want %q", s.Heartbeats, want)
	}

	// hb1 appears, down, and is set up: its port opens and both nodes
	// hear each other on it.
	n1.nics.setNICs(nic.NIC{Ifindex: 2, Name: "hb0", MAC: hb0}, nic.NIC{Ifindex: 3, Name: "hb1", MAC: hb1})
	appeared := nicDown(1, 3, hb1, nic.StateAdminDown, "administratively down")
	appeared.Action = "set it up"
	n1.event(nicDown(1, 0, nil, nic.StateMissing, "no interface hb1"), appeared)
	mustLog(t, n1, "INFO link 1 (hb1): admin-down: administratively down; set it up (was missing)")
	appeared.Action = ""
	n1.event(appeared, nicUp(1, 3, hb1))
	bothUp := func(what string) {
		eventually(t, what, func() (bool, string) {
			a, b := linkOf(n1.d.Status(), 2, 1), linkOf(n2.d.Status(), 1, 1)
			return a.State == "up" && b.State == "up", fmt.Sprintf("n1 hears n2 on hb1: %s; n2 hears n1: %s", a.State, b.State)
		})
	}
	bothUp("hb1 works once it appears")
	mustLog(t, n1, "INFO link 1 (hb1): up (was admin-down)")
	if got := n1.d.Status().LocalLinks[1]; got.State != "up" || got.Reason != "" || got.MAC != hb1.String() {
		t.Errorf("local link 1 after it appeared: %+v", got)
	}

	// It goes, and comes back as a new interface.
	n1.nics.setNICs(nic.NIC{Ifindex: 2, Name: "hb0", MAC: hb0})
	n1.event(nicUp(1, 3, hb1), nicDown(1, 0, nil, nic.StateMissing, "interface hb1 was removed"))
	eventually(t, "both sides see hb1 down", func() (bool, string) {
		a, b := linkOf(n1.d.Status(), 2, 1), linkOf(n2.d.Status(), 1, 1)
		return a.State == "down" && b.State == "down", fmt.Sprintf("n1 hears n2 on hb1: %s; n2 hears n1: %s", a.State, b.State)
	})
	if ps := n1.ports("hb1"); len(ps) != 1 || !isClosed(ps[0]) {
		t.Fatalf("hb1 removed: its port is not closed")
	}
	n1.nics.setNICs(nic.NIC{Ifindex: 2, Name: "hb0", MAC: hb0}, nic.NIC{Ifindex: 4, Name: "hb1", MAC: hb1})
	n1.event(nicDown(1, 0, nil, nic.StateMissing, "interface hb1 was removed"), nicUp(1, 4, hb1))
	bothUp("hb1 works again once it is back")

	// Re-created between two looks: only the ifindex tells.
	n1.nics.setNICs(nic.NIC{Ifindex: 2, Name: "hb0", MAC: hb0}, nic.NIC{Ifindex: 5, Name: "hb1", MAC: hb1})
	n1.event(nicUp(1, 4, hb1), nicUp(1, 5, hb1))
	eventually(t, "a new port for the re-created hb1", func() (bool, string) {
		ps := n1.ports("hb1")
		return len(ps) == 3 && isClosed(ps[1]) && !isClosed(ps[2]) && ps[2].sent.Load() > 0, fmt.Sprintf("%d ports", len(ps))
	})
	mustLog(t, n1, "link 1 (hb1): the NIC was re-created (ifindex 5, was 4); opening it again")
}

func isClosed(p *memPort) bool {
	select {
	case <-p.closed:
		return true
	default:
		return false
	}
}

// A node none of whose links works says what it waits for, does not tell
// systemd it is ready and does not bootstrap a configuration of its own;
// once a link works it does both (alone, as the first node of a new
// cluster must).
func TestNoWorkingLinkNoReadyNoBootstrap(t *testing.T) {
	c := testConfig(t, 2)
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	hb0 := macOf(c, "n1", 0)
	n1 := startNICNode(t, h, c, "n1", t.TempDir(),
		[]nic.Status{nicDown(0, 2, hb0, nic.StateNoCarrier, "no carrier"), nicDown(1, 0, nil, nic.StateMissing, "no interface hb1")},
		[]nic.NIC{{Ifindex: 2, Name: "hb0", MAC: hb0, AdminUp: true}})
	const want = "a working heartbeat link: hb0 no-carrier, hb1 missing"
	mustLog(t, n1, "WARN not ready: waiting for "+want)
	mustLog(t, n1, "WARN link 0 (hb0): no-carrier: no carrier")
	mustLog(t, n1, "WARN not bootstrapping the replicated configuration")
	// Long past the store's wait for a running cluster (15 of its ticks).
	var loopTicks uint64
	eventually(t, "the store ticked 30 times", func() (bool, string) {
		n1.d.call(func() { loopTicks = n1.d.tick })
		return loopTicks >= 30*n1.d.ticks(storeTick), fmt.Sprint(loopTicks)
	})
	s := n1.d.Status()
	if s.Waiting != want {
		t.Errorf("waiting %q, want %q", s.Waiting, want)
	}
	if s.Config.Index != 0 || n1.d.store.Initialized() {
		t.Errorf("bootstrapped with no working link: config %+v", s.Config)
	}
	if slices.Contains(n1.notified(), "READY=1") {
		t.Errorf("READY=1 sent with no working link: %q", n1.notified())
	}
	if !slices.Contains(n1.notified(), "STATUS=waiting for "+want) {
		t.Errorf("no STATUS= saying what it waits for: %q", n1.notified())
	}

	n1.event(nicDown(0, 2, hb0, nic.StateNoCarrier, "no carrier"), nicUp(0, 2, hb0))
	mustLog(t, n1, "INFO link 0 (hb0): up (was no-carrier)")
	eventually(t, "ready and bootstrapped alone", func() (bool, string) {
		s := n1.d.Status()
		return s.Config.Index > 0 && s.Waiting == "" && slices.Contains(n1.notified(), "READY=1"),
			fmt.Sprintf("config %+v waiting %q notified %q", s.Config, s.Waiting, n1.notified())
	})
	if len(n1.log.with("not ready")) != 1 {
		t.Errorf("\"not ready\" logged %d times, want once:\n%s", len(n1.log.with("not ready")), n1.log.all())
	}
}

// A NIC set down while the daemon runs is reported (journal, status,
// STATUS=) and heartbeats stop taking turns on it; when it is up again
// that is said too.
func TestLinkDownAndBack(t *testing.T) {
	c := testConfig(t, 2)
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	n2 := startNode(t, h, c, "n2", t.TempDir())
	hb0, hb1 := macOf(c, "n1", 0), macOf(c, "n1", 1)
	n1 := startNICNode(t, h, c, "n1", t.TempDir(), []nic.Status{nicUp(0, 2, hb0), nicUp(1, 3, hb1)},
		[]nic.NIC{{Ifindex: 2, Name: "hb0", MAC: hb0}, {Ifindex: 3, Name: "hb1", MAC: hb1}})
	agreeOn(t, []*testNode{n1.testNode, n2}, "[1 2]")
	eventually(t, "heartbeats alternate", func() (bool, string) {
		s := n1.d.Status()
		return s.Heartbeats == "alternating", s.Heartbeats
	})

	const reason = "administratively down; set down while concord-noded runs; left down (ip link set hb1 up)"
	n1.event(nicUp(1, 3, hb1), nicDown(1, 3, hb1, nic.StateAdminDown, reason))
	mustLog(t, n1, "WARN link 1 (hb1): admin-down: "+reason+" (was up)")
	eventually(t, "hb1 reported admin-down", func() (bool, string) {
		s := n1.d.Status()
		l, own := s.LocalLinks[1], linkOf(s, 1, 1)
		return l.State == "admin-down" && l.Reason == reason && own.State == "admin-down" && own.Reason == reason &&
				s.Heartbeats == "on every link that works (hb1 admin-down here)" && linkOf(s, 2, 1).State == "down",
			fmt.Sprintf("%+v own %+v heartbeats %q peer on hb1 %s", l, own, s.Heartbeats, linkOf(s, 2, 1).State)
	})
	if !slices.ContainsFunc(n1.notified(), func(s string) bool {
		return strings.HasPrefix(s, "STATUS=view ") && strings.HasSuffix(s, ": 2 of 2 nodes, quorate; not up: hb1 admin-down")
	}) {
		t.Errorf("STATUS= does not name the link: %q", n1.notified())
	}
	// Nothing is written on it for ten heartbeat intervals.
	sent := n1.ports("hb1")[0].sent.Load()
	var from, now uint64
	n1.d.call(func() { from = n1.d.tick })
	eventually(t, "ten heartbeat intervals", func() (bool, string) {
		n1.d.call(func() { now = n1.d.tick })
		return now >= from+10*n1.d.ticks(c.Totem.HeartbeatInterval), fmt.Sprint(now)
	})
	if n := n1.ports("hb1")[0].sent.Load(); n != sent {
		t.Errorf("%d frames written on hb1 while it was down", n-sent)
	}

	n1.event(nicDown(1, 3, hb1, nic.StateAdminDown, reason), nicUp(1, 3, hb1))
	mustLog(t, n1, "INFO link 1 (hb1): up (was admin-down)")
	eventually(t, "heartbeats alternate again", func() (bool, string) {
		s := n1.d.Status()
		return s.LocalLinks[1].State == "up" && s.Heartbeats == "alternating" && linkOf(s, 2, 1).State == "up",
			fmt.Sprintf("%+v %q", s.LocalLinks[1], s.Heartbeats)
	})
	if len(n1.ports("hb1")) != 1 {
		t.Errorf("a NIC set down and up again got a new port; its socket outlives that")
	}
}

// A NIC whose MAC is not the one the configuration in force gives the
// link is reported at start and again when the configuration changes.
func TestWrongMACReported(t *testing.T) {
	c := testConfig(t, 1)
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	hb0, hb1 := macOf(c, "n1", 0), macOf(c, "n1", 1)
	real0 := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}
	n1 := startNICNode(t, h, c, "n1", t.TempDir(), []nic.Status{nicUp(0, 2, real0), nicUp(1, 3, hb1)},
		[]nic.NIC{{Ifindex: 2, Name: "hb0", MAC: real0}, {Ifindex: 3, Name: "hb1", MAC: hb1}})
	mustLog(t, n1, fmt.Sprintf("WARN link 0 (hb0): configured MAC %s is on no NIC of this node (hb0 has %s)", hb0, real0))
	if l := n1.d.Status().LocalLinks[0]; l.State != "wrong-mac" || !strings.Contains(l.Reason, hb0.String()) || l.MAC != real0.String() {
		t.Errorf("local link 0: %+v, want wrong-mac naming %s", l, hb0)
	}
	eventually(t, "bootstrapped", func() (bool, string) {
		s := n1.d.Status()
		return s.Config.Leader == 1, fmt.Sprintf("%+v", s.Config)
	})

	// The replicated configuration takes the NIC's MAC: all is well.
	err := n1.change(t, func(d *Daemon) (nodebus.Job, error) {
		return d.EditNode("n1", map[string]any{"links": []string{"hb0 " + real0.String(), "hb1 " + hb1.String()}})
	})
	if err != nil {
		t.Fatal(err)
	}
	mustLog(t, n1, fmt.Sprintf("INFO link 0 (hb0): MAC %s is the configured one again", real0))
	if l := n1.d.Status().LocalLinks[0]; l.State != "up" || l.Reason != "" {
		t.Errorf("local link 0 after the fix: %+v, want up", l)
	}

	// Swapped by mistake in the replicated configuration.
	err = n1.change(t, func(d *Daemon) (nodebus.Job, error) {
		return d.EditNode("n1", map[string]any{"links": []string{"hb0 " + hb1.String(), "hb1 " + real0.String()}})
	})
	if err != nil {
		t.Fatal(err)
	}
	mustLog(t, n1, fmt.Sprintf("WARN link 0 (hb0): hb0 has MAC %s, but the configuration gives this link %s, which is on hb1", real0, hb1))
	mustLog(t, n1, fmt.Sprintf("WARN link 1 (hb1): hb1 has MAC %s, but the configuration gives this link %s, which is on hb0", hb1, real0))
	s := n1.d.Status()
	if s.LocalLinks[0].State != "wrong-mac" || s.LocalLinks[1].State != "wrong-mac" || s.Waiting != "" {
		t.Errorf("after the swap: %+v waiting %q; want both wrong-mac, nothing waited for (frames still flow)", s.LocalLinks, s.Waiting)
	}
}

// failingPort fails its reads with the errors given, then says closed.
type failingPort struct {
	memPort
	errs []error
}

func (p *failingPort) ReadFrom(b []byte) (int, net.HardwareAddr, error) {
	if len(p.errs) == 0 {
		return 0, nil, net.ErrClosed
	}
	err := p.errs[0]
	p.errs = p.errs[1:]
	return 0, nil, err
}

// A link whose reads keep failing logs each error once, not each failure.
func TestReadFailuresLoggedOnce(t *testing.T) {
	c := testConfig(t, 1)
	log := &logLines{}
	d, err := NewWith(Options{NodeName: "n1", StateDir: t.TempDir(), Logger: slog.New(log)}, c, testKey, make([]Port, 2))
	if err != nil {
		t.Fatal(err)
	}
	gone := errors.New("recvfrom: no such device")
	down := errors.New("recvfrom: network is down")
	p := &failingPort{errs: []error{gone, gone, gone, gone, down, down}}
	d.readLink(1, p) // returns at net.ErrClosed
	got := log.with("receiving failed")
	want := []string{
		"WARN link 1 (hb1): receiving failed: recvfrom: no such device (logged again only if the error changes)",
		"WARN link 1 (hb1): receiving failed: recvfrom: network is down (logged again only if the error changes)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("logged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
