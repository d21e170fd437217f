//go:build linux

package nic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// These tests run against the kernel, in a network namespace of their
// own: every interface they make or change is in it, none of the host's.

// newNS makes a network namespace and returns it with a netlink handle
// in it. Only the namespace's creation needs a locked thread: everything
// after goes through handles bound to it, so no goroutine of the test
// ever runs inside it.
func newNS(t *testing.T) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: these tests make network namespaces and links, which needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		if errors.Is(err, os.ErrPermission) {
			t.Skipf("SKIP: creating a network namespace: %v", err)
		}
		t.Fatalf("creating netns: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		// Stay locked: the thread ends with this goroutine instead of
		// going back to the pool in the wrong namespace.
		t.Fatalf("returning to the original netns: %v", err)
	}
	orig.Close()
	runtime.UnlockOSThread()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(func() { h.Close(); ns.Close() })
	return ns, h
}

// addNIC adds a veth pair, name (down, with MAC m) and name+"p" (up), so
// that name has carrier once it is set up. Veths are used throughout
// because not every kernel has the dummy driver.
func addNIC(t *testing.T, h *netlink.Handle, name string, m net.HardwareAddr) {
	t.Helper()
	peer := name + "p"
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: m}, PeerName: peer}); err != nil {
		if errors.Is(err, os.ErrPermission) {
			t.Skipf("SKIP: adding a veth pair needs CAP_NET_ADMIN: %v", err)
		}
		t.Fatalf("adding veth %s/%s: %v", name, peer, err)
	}
	do(t, h, peer, h.LinkSetUp)
}

// do runs a netlink change on the named link and fails the test if it
// fails.
func do(t *testing.T, h *netlink.Handle, name string, f func(netlink.Link) error) {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := f(l); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func adminUp(t *testing.T, h *netlink.Handle, name string) bool {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return l.Attrs().Flags&net.FlagUp != 0
}

// follower keeps the latest status of each link from Up's results and
// the watch's events.
type follower struct {
	t      *testing.T
	errsOK bool // watch errors are expected
	ch     <-chan Event
	latest map[int]Status
	seen   []string // every event, for failure messages
}

func follow(t *testing.T, initial []Status, ch <-chan Event) *follower {
	f := &follower{t: t, ch: ch, latest: map[int]Status{}}
	for _, st := range initial {
		f.latest[st.Index] = st
	}
	return f
}

// await reads events until link idx's status satisfies ok and returns
// the event that did (or the status Up returned, if it already did).
// The deadline only keeps a broken watch from hanging the test; nothing
// is timed.
func (f *follower) await(idx int, what string, ok func(Status) bool) Event {
	f.t.Helper()
	if st, have := f.latest[idx]; have && ok(st) {
		return Event{Status: st}
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case e, open := <-f.ch:
			if !open {
				f.t.Fatalf("watch ended while waiting for link %d to be %s; events:\n%s", idx, what, strings.Join(f.seen, "\n"))
			}
			f.seen = append(f.seen, e.String())
			if e.Err != nil {
				if !f.errsOK {
					f.t.Errorf("watch error: %v", e.Err)
				}
				continue
			}
			f.latest[e.Index] = e.Status
			if e.Index == idx && ok(e.Status) {
				return e
			}
		case <-deadline:
			f.t.Fatalf("link %d never became %s; events:\n%s", idx, what, strings.Join(f.seen, "\n"))
		}
	}
}

func state(s State) func(Status) bool { return func(st Status) bool { return st.State == s } }

func TestUpSetsNICsUpAndReportsWhatIsWrong(t *testing.T) {
	ns, h := newNS(t)
	macD := mac("02:00:00:00:00:0d")
	addNIC(t, h, "hb0", macA)
	addNIC(t, h, "hb1", macB)
	addNIC(t, h, "hb3", macC) // configured with macD
	links := []Link{{0, "hb0", macA}, {1, "hb1", macB}, {2, "hb2", macC}, {3, "hb3", macD}}
	m, err := New(links, Options{Namespace: &ns})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Up()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range got {
		t.Log(st)
	}
	for _, name := range []string{"hb0", "hb1", "hb3"} {
		if !adminUp(t, h, name) {
			t.Errorf("%s is still down after Up", name)
		}
	}
	for _, i := range []int{0, 1, 3} {
		if got[i].Action != "set it up" || !got[i].AdminUp {
			t.Errorf("link %d: action %q, admin up %v; want it set up", i, got[i].Action, got[i].AdminUp)
		}
	}
	// Carrier comes with the set-up; operstate follows a moment later
	// (the kernel's linkwatch), which the watch tests wait for.
	for _, i := range []int{0, 1} {
		if !got[i].Carrier {
			t.Errorf("link %d has no carrier with its peer up: %v", i, got[i])
		}
	}
	// hb2's MAC is on hb3 (whose own configured MAC is nowhere): said so.
	if got[2].State != StateMissing || got[2].Reason != "no interface hb2; its MAC "+macC.String()+" is on hb3" || got[2].Action != "" {
		t.Errorf("hb2: %v", got[2])
	}
	if got[3].State != StateWrongMAC || !strings.Contains(got[3].Reason, "hb3 has MAC "+macC.String()+", configured "+macD.String()) {
		t.Errorf("hb3: %v", got[3])
	}

	nics, err := m.NICs()
	if err != nil {
		t.Fatal(err)
	}
	var lost []string
	for _, l := range MACsOnNoNIC(links, nics) {
		lost = append(lost, l.Interface)
	}
	if fmt.Sprint(lost) != "[hb3]" {
		t.Errorf("MACsOnNoNIC = %v, want [hb3]", lost)
	}

	// Up twice is harmless: nothing to set up the second time.
	m2, _ := New(links, Options{Namespace: &ns})
	again, err := m2.Up()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range again {
		if st.Action != "" {
			t.Errorf("second Up: %v", st)
		}
	}
}

func TestWatchFollowsCarrierStateNameMACAndRemoval(t *testing.T) {
	ns, h := newNS(t)
	addNIC(t, h, "hb0", macA)
	addNIC(t, h, "hb1", macB)
	m, err := New([]Link{{0, "hb0", macA}, {1, "hb1", macB}}, Options{Namespace: &ns})
	if err != nil {
		t.Fatal(err)
	}
	initial, err := m.Up()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := m.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := follow(t, initial, ch)
	f.await(0, "up", state(StateUp))
	f.await(1, "up", state(StateUp))

	// The veth's peer goes down: no carrier.
	do(t, h, "hb1p", h.LinkSetDown)
	st := f.await(1, "no-carrier", state(StateNoCarrier))
	if st.Reason != "no carrier" {
		t.Errorf("no carrier: reason %q", st.Reason)
	}
	do(t, h, "hb1p", h.LinkSetUp)
	f.await(1, "up again", state(StateUp))

	// Someone sets hb0 down: reported, and left down.
	do(t, h, "hb0", h.LinkSetDown)
	st = f.await(0, "admin-down", state(StateAdminDown))
	if !strings.Contains(st.Reason, "left down") || st.Action != "" {
		t.Errorf("downed NIC: %v", st)
	}

	// Its MAC changes: reported with both MACs.
	do(t, h, "hb0", func(l netlink.Link) error { return h.LinkSetHardwareAddr(l, macC) })
	st = f.await(0, "wrong-mac", state(StateWrongMAC))
	if !strings.Contains(st.Reason, "hb0 has MAC "+macC.String()+", configured "+macA.String()) {
		t.Errorf("wrong MAC: reason %q", st.Reason)
	}
	do(t, h, "hb0", func(l netlink.Link) error { return h.LinkSetHardwareAddr(l, macA) })
	f.await(0, "admin-down again", state(StateAdminDown))

	// Renamed away and back: the same interface, so still left down.
	do(t, h, "hb0", func(l netlink.Link) error { return h.LinkSetName(l, "hbx") })
	st = f.await(0, "renamed", state(StateRenamed))
	if !strings.Contains(st.Reason, "renamed to hbx") {
		t.Errorf("renamed: reason %q", st.Reason)
	}
	do(t, h, "hbx", func(l netlink.Link) error { return h.LinkSetName(l, "hb0") })
	st = f.await(0, "admin-down after the rename back", state(StateAdminDown))
	if st.Action != "" || !strings.Contains(st.Reason, "left down") {
		t.Errorf("renamed back: %v", st)
	}
	if adminUp(t, h, "hb0") {
		t.Errorf("hb0 was set up though it was downed on purpose")
	}

	// Removed: missing. Made again (down, as new links are): set up.
	do(t, h, "hb0", h.LinkDel)
	st = f.await(0, "missing", state(StateMissing))
	if st.Reason != "interface hb0 was removed" {
		t.Errorf("removed: reason %q", st.Reason)
	}
	addNIC(t, h, "hb0", macA)
	st = f.await(0, "set up", func(st Status) bool { return st.Action != "" })
	if st.Action != "set it up" {
		t.Errorf("re-created: %v", st)
	}
	f.await(0, "up after re-creation", state(StateUp))

	cancel()
	for e := range ch {
		f.seen = append(f.seen, e.String())
	}
	t.Logf("events:\n%s", strings.Join(f.seen, "\n"))
}

func TestWatchKeepUpSetsADownedNICUpOncePerInterval(t *testing.T) {
	ns, h := newNS(t)
	addNIC(t, h, "hb0", macA)
	m, err := New([]Link{{0, "hb0", macA}}, Options{Namespace: &ns, Policy: PolicyKeepUp})
	if err != nil {
		t.Fatal(err)
	}
	initial, err := m.Up()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := m.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := follow(t, initial, ch)
	f.await(0, "up", state(StateUp))

	do(t, h, "hb0", h.LinkSetDown)
	st := f.await(0, "admin-down", state(StateAdminDown))
	if st.Action != "set it up" {
		t.Errorf("first down: %v", st)
	}
	f.await(0, "up again", state(StateUp))

	do(t, h, "hb0", h.LinkSetDown)
	st = f.await(0, "admin-down", state(StateAdminDown))
	if st.Action != "" || !strings.Contains(st.Reason, "set down again within") {
		t.Errorf("second down within the interval: %v", st)
	}
	if adminUp(t, h, "hb0") {
		t.Errorf("hb0 was set up a second time within the interval")
	}
}

func TestWatchWithoutUpReportsEveryLinkOnce(t *testing.T) {
	ns, h := newNS(t)
	addNIC(t, h, "hb0", macA)
	do(t, h, "hb0", h.LinkSetUp)
	m, err := New([]Link{{0, "hb0", macA}, {1, "hb1", macB}}, Options{Namespace: &ns})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := m.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := follow(t, nil, ch)
	f.await(0, "up", state(StateUp))
	if st := f.await(1, "missing", state(StateMissing)); st.Prev.State != StateUnknown {
		t.Errorf("first report of hb1 has a previous state")
	}
	if _, err := m.Up(); err == nil {
		t.Error("Up after Watch did not fail")
	}
	if _, err := m.Watch(ctx); err == nil {
		t.Error("second Watch did not fail")
	}
}

// TestWatchResyncsAfterLosingItsSubscription ends the watch's netlink
// subscription (as an overrun would), removes a NIC before the watch
// subscribes again, and checks that the watch says so: it looks at every
// NIC afresh instead of trusting the events it got.
func TestWatchResyncsAfterLosingItsSubscription(t *testing.T) {
	ns, h := newNS(t)
	addNIC(t, h, "hb0", macA)
	addNIC(t, h, "hb1", macB)
	m, err := New([]Link{{0, "hb0", macA}, {1, "hb1", macB}}, Options{Namespace: &ns})
	if err != nil {
		t.Fatal(err)
	}
	initial, err := m.Up()
	if err != nil {
		t.Fatal(err)
	}
	subs := make(chan *subscription, 2)
	m.subscribed = func(s *subscription) { subs <- s }
	delErr := make(chan error, 1)
	m.resubscribing = func() {
		l, err := h.LinkByName("hb1")
		if err == nil {
			err = h.LinkDel(l)
		}
		delErr <- err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := m.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := follow(t, initial, ch)
	f.errsOK = true
	f.await(1, "up", state(StateUp))

	(<-subs).stop()
	st := f.await(1, "missing", state(StateMissing))
	if err := <-delErr; err != nil {
		t.Fatalf("removing hb1: %v", err)
	}
	if st.Reason != "interface hb1 was removed" {
		t.Errorf("hb1: %v", st)
	}
	if !strings.Contains(strings.Join(f.seen, "\n"), "link updates stopped") {
		t.Errorf("the lost subscription was not reported; events:\n%s", strings.Join(f.seen, "\n"))
	}
	<-subs // the new subscription
	// The watch goes on with the new subscription.
	do(t, h, "hb0", h.LinkSetDown)
	f.await(0, "admin-down", state(StateAdminDown))
}
