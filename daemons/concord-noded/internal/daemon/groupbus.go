package daemon

import (
	"slices"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/core/groups"
)

// What the D-Bus adapter hears of process groups: each group view the
// core makes (never a message), and the local sessions, whose counters
// are looked at once a second. Nothing here runs per message.

// groupViews tells Events about the group views of one Ready.
func (d *Daemon) groupViews(vs []groups.GroupView) {
	for i := range vs {
		v := &vs[i]
		for _, ch := range v.Changes {
			if ch.Member.Node == groups.NodeID(d.self.Number) && ch.Member.Inc == d.inc {
				d.sessionDirty(ch.Member.Client)
			}
		}
		info := nodebus.GroupInfo{Name: v.Group, View: v.View.String(), Members: busMembers(v.Members)}
		for _, ch := range v.Changes {
			info.Changes = append(info.Changes, nodebus.GroupChange{Member: busMember(ch.Member), Kind: ch.Kind.String(), Reason: ch.Reason})
		}
		if len(v.Members) == 0 {
			d.events.GroupGone(info)
		} else {
			d.events.GroupChanged(info)
		}
	}
}

// sessionDirty marks a session to be told of after this turn.
func (d *Daemon) sessionDirty(c uint32) {
	if gs := d.gsess[c]; gs != nil && !gs.dirty {
		gs.dirty = true
		d.gdirty = append(d.gdirty, c)
	}
}

// sessionsChanged tells Events about the sessions marked dirty, or, with
// all, about every session whose counters moved.
func (d *Daemon) sessionsChanged(all bool) {
	if all {
		for c, gs := range d.gsess {
			d.sessionChanged(c, gs)
		}
	}
	for _, c := range d.gdirty {
		if gs := d.gsess[c]; gs != nil {
			d.sessionChanged(c, gs)
		}
	}
	d.gdirty = d.gdirty[:0]
}

func (d *Daemon) sessionChanged(c uint32, gs *gsession) {
	gs.dirty = false
	s := nodebus.SessionInfo{Client: c, PID: gs.s.PID, UID: gs.s.UID, Name: gs.name,
		Groups: d.gcore.Joined(c), Queued: uint32(d.gcore.Queued(c)), InFlight: uint32(d.gcore.InFlight(c))}
	if s.Groups == nil {
		s.Groups = []string{}
	}
	if gs.told != nil && gs.told.Queued == s.Queued && gs.told.InFlight == s.InFlight && slices.Equal(gs.told.Groups, s.Groups) {
		return
	}
	gs.told = &s
	d.events.SessionChanged(s)
}

func busMember(m groups.Member) nodebus.GroupMember {
	return nodebus.GroupMember{Node: uint16(m.Node), Inc: m.Inc, Client: m.Client, PID: m.PID, UID: m.UID}
}

func busMembers(ms []groups.Member) []nodebus.GroupMember {
	out := make([]nodebus.GroupMember, len(ms))
	for i, m := range ms {
		out[i] = busMember(m)
	}
	return out
}
