package nic

import (
	"fmt"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// Options tune a Manager; the zero value is the daemon's normal setting.
type Options struct {
	Policy Policy
	// Namespace is the network namespace whose interfaces are managed;
	// nil means the caller's (tests use their own).
	Namespace *netns.NsHandle
}

// Manager brings up and watches the configured heartbeat NICs of this
// node. Call Up once, then Watch; they are not for concurrent use.
type Manager struct {
	links  []Link
	policy Policy
	ns     netns.NsHandle
	now    func() time.Time

	mu       sync.Mutex
	tracks   []track
	watching bool

	// Test hooks: each subscription made, and each moment before the
	// watch subscribes again.
	subscribed    func(*subscription)
	resubscribing func()
}

// New returns a Manager for links (see FromConfig). It checks that no
// interface is named twice and every name is set.
func New(links []Link, opts Options) (*Manager, error) {
	names := map[string]int{}
	for _, l := range links {
		if l.Interface == "" {
			return nil, fmt.Errorf("nic: link %d has no interface name", l.Index)
		}
		if j, ok := names[l.Interface]; ok {
			return nil, fmt.Errorf("nic: link %d and link %d both name interface %s", j, l.Index, l.Interface)
		}
		names[l.Interface] = l.Index
	}
	if opts.Policy != PolicyLeaveDown && opts.Policy != PolicyKeepUp {
		return nil, fmt.Errorf("nic: unknown policy %d", opts.Policy)
	}
	m := &Manager{links: append([]Link(nil), links...), policy: opts.Policy, ns: netns.None(), now: time.Now,
		tracks: make([]track, len(links))}
	if opts.Namespace != nil {
		m.ns = *opts.Namespace
	}
	return m, nil
}

// Event is a change of a configured link, or a problem of the watch.
type Event struct {
	Status        // the link now
	Prev   Status // the link before (State is StateUnknown the first time)
	// Err is a problem of the watch itself (Status is then zero with
	// Index -1). The watch goes on: it subscribes again if it has to
	// and looks at every link afresh.
	Err error
}

// String is a log line.
func (e Event) String() string {
	if e.Err != nil {
		return "heartbeat NIC watch: " + e.Err.Error()
	}
	if e.Prev.State != StateUnknown && e.Prev.State != e.State {
		return e.Status.String() + " (was " + e.Prev.State.String() + ")"
	}
	return e.Status.String()
}
