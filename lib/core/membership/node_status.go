package membership

import (
	"slices"
)

// Leave announces a graceful leave: peers install a view without us and
// count it as a leave, not a failure. The node stops taking part.
func (n *Node) Leave() {
	if n.leaving {
		return
	}
	n.leaving = true
	n.coord = nil
	n.counters.Dropped += uint64(len(n.queue))
	n.queue = nil
	n.infof("node %d leaves the cluster", n.id)
	n.send(Message{Type: MsgLeave})
	n.heartbeat()
}

// HasReady reports whether Ready has anything.
func (n *Node) HasReady() bool { return len(n.msgs) > 0 || len(n.events) > 0 || n.ackDue }

// Ready returns the output gathered since the last Advance. Send the
// messages, then apply the events in order, then call Advance.
func (n *Node) Ready() Ready {
	n.flushAck()
	n.rdMsgs, n.rdEvs = len(n.msgs), len(n.events)
	return Ready{Messages: n.msgs[:n.rdMsgs:n.rdMsgs], Events: n.events[:n.rdEvs:n.rdEvs]}
}

// Advance drops the output returned by the last Ready.
func (n *Node) Advance() {
	n.msgs = append([]Message(nil), n.msgs[n.rdMsgs:]...)
	n.events = append([]Event(nil), n.events[n.rdEvs:]...)
	if len(n.msgs) == 0 {
		n.msgs = nil
	}
	if len(n.events) == 0 {
		n.events = nil
	}
	n.rdMsgs, n.rdEvs = 0, 0
}

// Pending is how many of this node's messages (Broadcast, group changes,
// Send) are queued and not yet delivered here: a daemon can batch while
// enough are in flight.
func (n *Node) Pending() int { return len(n.queue) }

// Status returns a snapshot of the node.
func (n *Node) Status() Status {
	s := Status{ID: n.id, Incarnation: n.inc, Tick: n.tick, View: *n.view.Clone(), Coordinator: n.view.ID.Coord, MaxSeq: n.maxSeq,
		InTransition: n.following || n.coord != nil, Leaving: n.leaving, Counters: n.counters, QueueLen: len(n.queue)}
	self := PeerStatus{ID: n.id, State: StateJoined, Incarnation: n.inc, LastHeard: n.tick}
	if n.leaving {
		self.State = StateLeaving
	}
	s.Nodes = append(s.Nodes, self)
	for _, id := range n.order {
		p := n.peers[id]
		ps := PeerStatus{ID: id, Incarnation: p.inc, LastHeard: p.lastHeard}
		switch {
		case n.view.Contains(id) && p.left:
			ps.State = StateLeaving
		case n.view.Contains(id):
			ps.State = StateJoined
		case !p.wasSeen:
			ps.State = StateConfigured
		case !p.left && n.det.Alive(id, n.tick):
			ps.State = StateUp
		default:
			ps.State = StateDown
		}
		s.Nodes = append(s.Nodes, ps)
	}
	slices.SortFunc(s.Nodes, func(a, b PeerStatus) int { return int(a.ID) - int(b.ID) })
	return s
}

func contains(s []NodeID, id NodeID) bool {
	for _, x := range s {
		if x == id {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
