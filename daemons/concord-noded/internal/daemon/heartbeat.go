package daemon

import (
	"time"

	"github.com/concord-ha/concord/lib/wire/frame"
)

// Heartbeat alternation. Most frames are heartbeats, and a copy on every
// link makes a node's idle cost grow with its links. So while every link
// works, each heartbeat goes out on one link and the next on the next: a
// node is still heard every heartbeat interval, and each link carries a
// frame from every peer often enough for its link dead-time. A node that
// misses a peer on some link sends with FlagAllLinks, and whoever receives
// that flag sends heartbeats on every link again. So a link that fails in
// one direction only, which its sender cannot see, still leaves every
// heartbeat a working link. Protocol messages other than heartbeats
// always go on every link.

// Heartbeats have their own frame kind, so the links can hold them in the
// kernel until the receiver's next tick (see deferred.go).

// sendHeartbeat sends a membership heartbeat, on one link when it may.
func (d *Daemon) sendHeartbeat(payload []byte) {
	if !d.alternate() {
		d.counters["heartbeats_all_links"]++
		d.sendFrame(frame.KindHeartbeat, 0, payload)
		return
	}
	d.counters["heartbeats_one_link"]++
	d.hbLink = (d.hbLink + 1) % len(d.ports)
	d.sendFrameOn(frame.KindHeartbeat, 0, payload, d.hbLink)
}

// alternate reports whether heartbeats may go on one link at a time: there
// are several links, each still gets at least two heartbeats within the
// link dead-time, every node has every link this one has (a node with
// fewer would hear only some turns), no peer is missing on a link here,
// no peer asked for every link lately, and every NIC of this node works
// (a turn on a NIC that is down would be a heartbeat lost).
func (d *Daemon) alternate() bool {
	t := d.cfg.Totem
	return d.linksWhole() && 2*time.Duration(len(d.ports))*t.HeartbeatInterval <= t.LinkDeadTime
}

// linksWhole reports whether there are several links and every one works
// both ways for every node: every node has every link this one has, no
// peer is missing on a link here, no peer asked for every link lately,
// and every NIC of this node works. Only then may a frame go on one link.
func (d *Daemon) linksWhole() bool {
	return len(d.ports) > 1 && !d.fewerLinks() && !d.degraded && d.tick >= d.allLinksUntil && d.allLinksWork()
}

// fewerLinks reports whether some configured node has fewer links than
// this one.
func (d *Daemon) fewerLinks() bool {
	for _, n := range d.cfg.Nodes {
		if len(n.Links) < len(d.ports) {
			return true
		}
	}
	return false
}

// heartbeatMode says how heartbeats use the links now, for the status.
func (d *Daemon) heartbeatMode() string {
	t := d.cfg.Totem
	switch {
	case len(d.ports) < 2:
		return "on one link"
	case d.alternate():
		return "alternating"
	case !d.allLinksWork():
		return "on every link that works (" + d.linkProblems() + " here)"
	case d.degraded:
		return "on every link (a node is missing on a link here)"
	case d.tick < d.allLinksUntil:
		return "on every link (a node misses this one on a link)"
	case 2*time.Duration(len(d.ports))*t.HeartbeatInterval > t.LinkDeadTime:
		return "on every link (link_dead_time is too short for them to take turns)"
	case d.fewerLinks():
		return "on every link (a node has fewer links than this one)"
	}
	return "on every link"
}

// linksDegraded reports whether some peer that is heard at all is not
// heard on one of the links it shares with this node.
func (d *Daemon) linksDegraded() bool {
	for _, n := range d.cfg.Nodes {
		if n.Number == d.self.Number {
			continue
		}
		links := min(len(d.ports), len(n.Links))
		up := 0
		for l := range links {
			if d.health.State(n.Number, uint8(l)) {
				up++
			}
		}
		if up > 0 && up < links {
			return true
		}
	}
	return false
}
