package daemon

import (
	"fmt"
	"maps"
	"sort"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/core/membership"
)

// buildStatus makes the status snapshot from the loop's state.
func (d *Daemon) buildStatus() nodebus.Status {
	cs := d.core.Status()
	inView := map[uint16]bool{}
	for _, m := range d.view.Members {
		inView[uint16(m)] = true
	}
	s := nodebus.Status{
		Version:   d.opts.Version,
		Cluster:   nodebus.ClusterInfo{Name: d.cfg.Name, ID: d.cfg.ID},
		LocalNode: d.self.Number, LocalName: d.self.Name, State: d.state,
		View: nodebus.ViewInfo{Seq: d.view.ID.Seq, Coordinator: uint16(d.view.ID.Coord),
			ID: nodebus.ViewID(d.view.ID.Seq, uint16(d.view.ID.Coord))},
		Quorum: quorumInfo(d.qstate),
	}
	for _, m := range d.view.Members {
		s.View.Members = append(s.View.Members, uint16(m))
	}
	s.Config = nodebus.ConfigInfo{Leader: d.store.Leader(), Index: d.cfgIndex}
	s.Heartbeats = d.heartbeatMode()
	s.LocalLinks = d.localLinks()
	s.Waiting = d.waiting()
	for _, n := range d.cfg.Nodes {
		ni := nodebus.NodeInfo{Number: n.Number, Name: n.Name, UUID: n.UUID.String(), Votes: n.Votes,
			InView: inView[n.Number], Attrs: n.Attrs, State: cs.NodeState(membership.NodeID(n.Number))}
		d.authStatus(&ni)
		for i, l := range n.Links {
			state, reason := "down", ""
			switch {
			case n.Number == d.self.Number && i < len(d.local):
				state, reason = d.linkState(i)
			case n.Number == d.self.Number:
				reason = "not in this node's cluster.conf"
			case i < len(d.ports) && d.health.State(n.Number, uint8(i)):
				state = "up"
			}
			ni.Links = append(ni.Links, nodebus.LinkInfo{Index: uint8(i), Interface: l.Interface, MAC: l.MAC.String(), State: state, Reason: reason})
		}
		s.Nodes = append(s.Nodes, ni)
	}
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Number < s.Nodes[j].Number })
	s.OtherClusters = d.otherClusters()
	return s
}

// publish makes s the status that Status returns.
func (d *Daemon) publish(s nodebus.Status) {
	d.mu.Lock()
	d.status = s
	d.mu.Unlock()
}

// refresh rebuilds the status, publishes it and tells the events and
// systemd.
func (d *Daemon) refresh() {
	s := d.buildStatus()
	d.dirty = false
	d.publish(s)
	d.events.StatusChanged(s, maps.Clone(d.counters))
	word := "not quorate"
	if s.Quorum.Quorate {
		word = "quorate"
	}
	notif := fmt.Sprintf("view %d: %d of %d nodes, %s", s.View.Seq, len(s.View.Members), len(s.Nodes), word)
	if p := d.linkProblems(); s.Waiting != "" {
		notif = "waiting for " + s.Waiting
	} else if p != "" {
		notif += "; not up: " + p
	}
	if notif != d.lastNotif {
		d.lastNotif = notif
		d.notify("STATUS=" + notif)
	}
}
