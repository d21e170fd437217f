//go:build linux

package nic

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Up sets every configured NIC that is down up, then returns each link's
// status, with Action saying what was done. A missing NIC or a failed
// set-up is in that link's status; the error is for not being able to
// list interfaces at all. Carrier can take seconds to come after a NIC
// is set up: Watch reports when it does.
func (m *Manager) Up() ([]Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watching {
		return nil, errors.New("nic: Up called after Watch")
	}
	h, err := netlink.NewHandleAt(m.ns)
	if err != nil {
		return nil, fmt.Errorf("nic: netlink: %w", err)
	}
	defer h.Close()
	nics, err := list(h)
	if err != nil {
		return nil, err
	}
	out := make([]Status, len(m.links))
	again := false
	for i, l := range m.links {
		st, up := m.tracks[i].step(l, nics, m.policy, m.now())
		if up {
			st.Action = setUp(h, st.Ifindex)
			again = true
		}
		m.tracks[i].status = st
		out[i] = st
	}
	if !again {
		return out, nil
	}
	// Look again so the result shows the NICs as they are now.
	if nics, err = list(h); err != nil {
		return nil, err
	}
	for i, l := range m.links {
		st, _ := m.tracks[i].step(l, nics, m.policy, m.now())
		st.Action = out[i].Action
		m.tracks[i].status = st
		out[i] = st
	}
	return out, nil
}

// NICs lists this node's interfaces (for MACsOnNoNIC).
func (m *Manager) NICs() ([]NIC, error) {
	h, err := netlink.NewHandleAt(m.ns)
	if err != nil {
		return nil, fmt.Errorf("nic: netlink: %w", err)
	}
	defer h.Close()
	return list(h)
}

// setUp sets the interface up and says so, in words for Status.Action.
func setUp(h *netlink.Handle, ifindex int) string {
	if err := h.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}); err != nil {
		return fmt.Sprintf("could not set it up: %v", err)
	}
	return "set it up"
}

// list returns the interfaces, by ifindex. A dump interrupted by a
// change is retried; after a few, the partial list is used (changes come
// as events anyway).
func list(h *netlink.Handle) ([]NIC, error) {
	var links []netlink.Link
	var err error
	for range 5 {
		if links, err = h.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("nic: listing interfaces: %w", err)
	}
	nics := make([]NIC, 0, len(links))
	for _, l := range links {
		nics = append(nics, toNIC(l.Attrs()))
	}
	sort.Slice(nics, func(i, j int) bool { return nics[i].Ifindex < nics[j].Ifindex })
	return nics, nil
}

func toNIC(a *netlink.LinkAttrs) NIC {
	return NIC{
		Ifindex:   a.Index,
		Name:      a.Name,
		MAC:       append([]byte(nil), a.HardwareAddr...),
		AdminUp:   a.RawFlags&unix.IFF_UP != 0,
		Carrier:   a.RawFlags&unix.IFF_LOWER_UP != 0,
		OperState: operName(a.OperState),
	}
}

// operName names an operstate as the kernel does in sysfs and ip(8)
// (lowercased); netlink's String says "lower-layer-down".
func operName(s netlink.LinkOperState) string {
	switch s {
	case netlink.OperNotPresent:
		return "notpresent"
	case netlink.OperDown:
		return "down"
	case netlink.OperLowerLayerDown:
		return "lowerlayerdown"
	case netlink.OperTesting:
		return "testing"
	case netlink.OperDormant:
		return "dormant"
	case netlink.OperUp:
		return "up"
	}
	return "unknown"
}

// Watch follows the configured NICs until ctx is done and sends each
// change on the returned channel, which is closed when the watch ends.
// Changes are relative to what Up returned (or, without Up, to nothing:
// every link is reported once). A NIC that appears down is set up; one
// set down while watched follows the Policy.
func (m *Manager) Watch(ctx context.Context) (<-chan Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watching {
		return nil, errors.New("nic: Watch called twice")
	}
	h, err := netlink.NewHandleAt(m.ns)
	if err != nil {
		return nil, fmt.Errorf("nic: netlink: %w", err)
	}
	s, err := subscribe(m.ns)
	if err != nil {
		h.Close()
		return nil, err
	}
	if m.subscribed != nil {
		m.subscribed(s)
	}
	m.watching = true
	w := &watcher{m: m, h: h, out: make(chan Event, 16)}
	go w.run(ctx, s)
	return w.out, nil
}

// watcher is the goroutine behind Watch; it owns the tracks from then on.
type watcher struct {
	m    *Manager
	h    *netlink.Handle
	out  chan Event
	nics map[int]NIC
}

func (w *watcher) run(ctx context.Context, s *subscription) {
	defer close(w.out)
	defer w.h.Close()
	defer func() { s.stop() }()
	w.resync(ctx)
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-s.errs:
			w.emit(ctx, Event{Status: Status{Link: Link{Index: -1}}, Err: err})
		case u, ok := <-s.updates:
			if ok {
				w.update(u)
				w.evaluate(ctx)
				backoff = time.Second
				continue
			}
			// The subscription ended (socket error, overrun): its
			// events may be lost, so subscribe again and look at
			// everything afresh. The wait grows while that fails.
			s.stop()
			w.emit(ctx, Event{Status: Status{Link: Link{Index: -1}}, Err: fmt.Errorf("link updates stopped; subscribing again in %v", backoff)})
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 30*time.Second)
				if w.m.resubscribing != nil {
					w.m.resubscribing()
				}
				next, err := subscribe(w.m.ns)
				if err == nil {
					s = next
					if w.m.subscribed != nil {
						w.m.subscribed(s)
					}
					break
				}
				w.emit(ctx, Event{Status: Status{Link: Link{Index: -1}}, Err: fmt.Errorf("%w; trying again in %v", err, backoff)})
			}
			w.resync(ctx)
		}
	}
}

// resync replaces the interface table with a fresh list, taken after
// subscribing so that no change between the two is missed.
func (w *watcher) resync(ctx context.Context) {
	nics, err := list(w.h)
	if err != nil {
		w.emit(ctx, Event{Status: Status{Link: Link{Index: -1}}, Err: err})
		return
	}
	w.nics = make(map[int]NIC, len(nics))
	for _, n := range nics {
		w.nics[n.Ifindex] = n
	}
	w.evaluate(ctx)
}

func (w *watcher) update(u netlink.LinkUpdate) {
	if w.nics == nil {
		w.nics = map[int]NIC{}
	}
	a := u.Attrs()
	if u.Header.Type == unix.RTM_DELLINK {
		delete(w.nics, a.Index)
		return
	}
	w.nics[a.Index] = toNIC(a)
}

// evaluate looks at every link and reports those whose status changed
// or that were set up.
func (w *watcher) evaluate(ctx context.Context) {
	nics := make([]NIC, 0, len(w.nics))
	for _, n := range w.nics {
		nics = append(nics, n)
	}
	sort.Slice(nics, func(i, j int) bool { return nics[i].Ifindex < nics[j].Ifindex })
	m := w.m
	for i, l := range m.links {
		t := &m.tracks[i]
		st, up := t.step(l, nics, m.policy, m.now())
		if up {
			st.Action = setUp(w.h, st.Ifindex)
		}
		if !up && same(st, t.status) {
			continue
		}
		prev := t.status
		t.status = st
		w.emit(ctx, Event{Status: st, Prev: prev})
	}
}

func (w *watcher) emit(ctx context.Context, e Event) {
	select {
	case w.out <- e:
	case <-ctx.Done():
	}
}

// subscription is one netlink link-update subscription.
type subscription struct {
	updates chan netlink.LinkUpdate
	errs    chan error
	done    chan struct{}
	once    sync.Once
}

// subscribe subscribes to link updates in ns. It does not ask for a
// dump of the existing links (ListExisting): the stream has no marker
// for the dump's end, so a link not yet dumped could not be told from a
// missing one. resync lists them instead.
func subscribe(ns netns.NsHandle) (*subscription, error) {
	s := &subscription{
		updates: make(chan netlink.LinkUpdate, 64),
		errs:    make(chan error, 4),
		done:    make(chan struct{}),
	}
	opts := netlink.LinkSubscribeOptions{
		Namespace: &ns,
		// Called on netlink's goroutine, which must not block. Errors
		// after stop are the socket closing and dropped; so are errors
		// while errs is full (the first ones say enough).
		ErrorCallback: func(err error) {
			select {
			case <-s.done:
			case s.errs <- fmt.Errorf("link updates: %w", err):
			default:
			}
		},
	}
	if err := netlink.LinkSubscribeWithOptions(s.updates, s.done, opts); err != nil {
		return nil, fmt.Errorf("nic: subscribing to link updates: %w", err)
	}
	return s, nil
}

// stop ends the subscription and drains it: netlink's goroutine sends
// updates without looking at done, so it exits only once the channel is
// read until closed.
func (s *subscription) stop() {
	s.once.Do(func() {
		close(s.done)
		for range s.updates {
		}
	})
}
