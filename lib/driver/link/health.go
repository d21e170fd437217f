package link

import (
	"cmp"
	"slices"
)

// Reason says why a link changed state.
type Reason uint8

// Reasons for a Change.
const (
	Heard     Reason = iota + 1 // a frame arrived on a link that was down
	Silent                      // no frame for more than the dead-time
	NoCarrier                   // the local NIC lost carrier
)

func (r Reason) String() string {
	switch r {
	case Heard:
		return "heard"
	case Silent:
		return "silent"
	case NoCarrier:
		return "no carrier"
	}
	return "unknown"
}

// Change is a link to a peer going up or down.
type Change struct {
	Peer   uint16
	Link   uint8
	Up     bool
	Reason Reason
}

type pathKey struct {
	peer uint16
	link uint8
}

type pathState struct {
	last  uint64 // tick of the newest frame
	heard bool   // a frame arrived since the path was created or its carrier dropped
	up    bool   // state announced by the last Tick
}

// Health tracks, per peer and link, whether frames still arrive. It has
// no clock: the caller passes ticks, which must not go backwards. A link
// to a peer is up from the first Tick after a frame arrives until more
// than the dead-time in ticks passes without one, or while the local NIC
// has no carrier. Health is not safe for concurrent use.
type Health struct {
	dead      uint64
	paths     map[pathKey]*pathState
	noCarrier map[uint8]bool
}

// NewHealth returns a tracker that declares a link dead after more than
// dead ticks without a frame.
func NewHealth(dead uint64) *Health {
	return &Health{dead: dead, paths: make(map[pathKey]*pathState), noCarrier: make(map[uint8]bool)}
}

// Heard records a frame from peer on link at tick. The state changes at
// the next Tick.
func (h *Health) Heard(peer uint16, link uint8, tick uint64) {
	k := pathKey{peer, link}
	p := h.paths[k]
	if p == nil {
		p = new(pathState)
		h.paths[k] = p
	}
	if !p.heard || tick > p.last {
		p.last = tick
	}
	p.heard = true
}

// SetCarrier records whether the local NIC of link has carrier. Links
// start with carrier. Losing it makes every peer on the link down at the
// next Tick; after it returns, a peer is up again only once a new frame
// from it arrives.
func (h *Health) SetCarrier(link uint8, up bool) {
	if up {
		delete(h.noCarrier, link)
		return
	}
	h.noCarrier[link] = true
	for k, p := range h.paths {
		if k.link == link {
			p.heard = false
		}
	}
}

// Tick advances to tick and returns the links that changed state since
// the previous Tick, ordered by peer and link.
func (h *Health) Tick(tick uint64) []Change {
	var changes []Change
	for k, p := range h.paths {
		up, reason := true, Heard
		switch {
		case h.noCarrier[k.link]:
			up, reason = false, NoCarrier
		case !p.heard || (tick > p.last && tick-p.last > h.dead):
			up, reason = false, Silent
		}
		if up != p.up {
			p.up = up
			changes = append(changes, Change{Peer: k.peer, Link: k.link, Up: up, Reason: reason})
		}
	}
	// It runs every tick and usually finds nothing: no sort (which
	// allocates even for an empty slice) unless there is something to sort.
	if len(changes) > 1 {
		slices.SortFunc(changes, func(a, b Change) int {
			return cmp.Or(cmp.Compare(a.Peer, b.Peer), cmp.Compare(a.Link, b.Link))
		})
	}
	return changes
}

// State reports whether the link to peer was up at the last Tick.
func (h *Health) State(peer uint16, link uint8) bool {
	p := h.paths[pathKey{peer, link}]
	return p != nil && p.up
}

// LastHeard is the tick of the newest frame from peer on link; ok is false
// if none arrived since the path was first heard or forgotten.
func (h *Health) LastHeard(peer uint16, link uint8) (tick uint64, ok bool) {
	p := h.paths[pathKey{peer, link}]
	if p == nil {
		return 0, false
	}
	return p.last, true
}

// Forget drops all state about peer, for example when it leaves the
// cluster; no Change is reported for it.
func (h *Health) Forget(peer uint16) {
	for k := range h.paths {
		if k.peer == peer {
			delete(h.paths, k)
		}
	}
}
