package busapi

import (
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

// Process groups and the local sessions of the group socket, observed:
// one object per group with members, one per session. The daemon's loop
// reports them without waiting: a report only records the latest state
// under a lock and wakes the serving goroutine, so reports that come
// faster than the bus takes them are merged (a group's ViewChanged then
// carries the changes of several views), and the loop never blocks on a
// slow bus.

// maxChanges bounds the changes a merged ViewChanged carries; older ones
// are dropped (the Members property is whole either way).
const maxChanges = 1024

// pendGroup is what happened to a group since the serving goroutine last
// looked.
type pendGroup struct {
	info    nodebus.GroupInfo // latest; no members: gone
	changes []nodebus.GroupChange
}

// pendSession is a session's latest state; closed: it ended.
type pendSession struct {
	info   nodebus.SessionInfo
	closed bool
}

func groupProps(g nodebus.GroupInfo) prop.Map {
	return prop.Map{nodebus.GroupIface: {
		"Name":    constProp(g.Name),
		"View":    changeProp(g.View),
		"Members": changeProp(nonNilMembers(g.Members)),
	}}
}

func sessionProps(s nodebus.SessionInfo) prop.Map {
	return prop.Map{nodebus.SessionIface: {
		"ClientID":   constProp(s.Client),
		"PID":        constProp(s.PID),
		"UID":        constProp(s.UID),
		"ClientName": constProp(s.Name),
		"Groups":     changeProp(nonNilStrings(s.Groups)),
		"Queued":     changeProp(s.Queued),
		"InFlight":   changeProp(s.InFlight),
	}}
}

func nonNilMembers(ms []nodebus.GroupMember) []nodebus.GroupMember {
	if ms == nil {
		return []nodebus.GroupMember{}
	}
	return ms
}

func nonNilChanges(cs []nodebus.GroupChange) []nodebus.GroupChange {
	if cs == nil {
		return []nodebus.GroupChange{}
	}
	return cs
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// GroupChanged records a group's new view for the bus.
func (b *Bus) GroupChanged(g nodebus.GroupInfo) { b.groupReport(g) }

// GroupGone records that a group has no members left: its last
// ViewChanged (no members, with the changes), GroupRemoved, and its
// object goes.
func (b *Bus) GroupGone(g nodebus.GroupInfo) {
	g.Members = nil
	b.groupReport(g)
}

func (b *Bus) groupReport(g nodebus.GroupInfo) {
	b.mu.Lock()
	if len(g.Members) == 0 {
		delete(b.groupNow, g.Name)
	} else {
		b.groupNow[g.Name] = nodebus.GroupInfo{Name: g.Name, View: g.View, Members: g.Members}
	}
	p := b.pendGroups[g.Name]
	if p == nil {
		p = &pendGroup{}
		b.pendGroups[g.Name] = p
	}
	p.info = g
	p.changes = append(p.changes, g.Changes...)
	if n := len(p.changes); n > 2*maxChanges { // trimmed now and then, not per report
		p.changes = slices.Delete(p.changes, 0, n-maxChanges)
	}
	b.mu.Unlock()
	b.wake()
}

// SessionChanged records a session's state for the bus.
func (b *Bus) SessionChanged(s nodebus.SessionInfo) {
	b.mu.Lock()
	b.sessNow[s.Client] = s
	b.pendSess[s.Client] = &pendSession{info: s}
	b.mu.Unlock()
	b.wake()
}

// SessionClosed records that a session ended.
func (b *Bus) SessionClosed(client uint32) {
	b.mu.Lock()
	s, ok := b.sessNow[client]
	delete(b.sessNow, client)
	if ok {
		b.pendSess[client] = &pendSession{info: s, closed: true}
	}
	b.mu.Unlock()
	b.wake()
}

func (b *Bus) wake() {
	select {
	case b.gwake <- struct{}{}:
	default:
	}
}

// flushGroups brings the group and session objects up to what was
// reported; on the serving goroutine.
func (b *Bus) flushGroups() {
	b.mu.Lock()
	pg, ps := b.pendGroups, b.pendSess
	b.pendGroups, b.pendSess = map[string]*pendGroup{}, map[uint32]*pendSession{}
	b.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(pg)) {
		p := pg[name]
		if n := len(p.changes); n > maxChanges {
			p.changes = p.changes[n-maxChanges:]
		}
		b.applyGroup(p)
	}
	for _, c := range slices.Sorted(maps.Keys(ps)) {
		b.applySession(ps[c])
	}
	if len(pg) > 0 {
		b.refreshDirectory(nodebus.GroupDirectory, labels(b.groupProp, func(n string) string { return nodebus.EscapeLabel(n) }))
	}
	if len(ps) > 0 {
		b.refreshDirectory(nodebus.SessionDirectory, labels(b.sessProp, func(c uint32) string { return fmt.Sprint(c) }))
	}
}

func labels[K string | uint32, V any](m map[K]V, label func(K) string) []string {
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, label(k))
	}
	return out
}

func (b *Bus) applyGroup(p *pendGroup) {
	g := p.info
	path := nodebus.GroupPath(g.Name)
	props, exported := b.groupProp[g.Name]
	gone := len(g.Members) == 0
	if gone && !exported {
		return // came and went between two looks
	}
	if !exported {
		var err error
		props, err = prop.Export(b.conn, path, groupProps(g))
		if err == nil {
			err = b.exportIntrospection(path, nodebus.GroupIface)
		}
		if err != nil {
			b.log.Error("dbus: cannot export group object", "group", g.Name, "err", err)
			return
		}
		b.groupProp[g.Name] = props
		b.emitNow(nodebus.ManagerPath, nodebus.ManagerIface+".GroupAdded", g.Name, path)
	} else if !gone {
		setChanged(props, nodebus.GroupIface, "View", g.View)
		setChanged(props, nodebus.GroupIface, "Members", nonNilMembers(g.Members))
	}
	b.emitNow(path, nodebus.GroupIface+".ViewChanged", g.View, nonNilMembers(g.Members), nonNilChanges(p.changes))
	if gone {
		b.emitNow(nodebus.ManagerPath, nodebus.ManagerIface+".GroupRemoved", g.Name, path)
		unexport(b.conn, path, nodebus.GroupIface)
		delete(b.groupProp, g.Name)
	}
}

func (b *Bus) applySession(p *pendSession) {
	s := p.info
	path := s.Path()
	props, exported := b.sessProp[s.Client]
	switch {
	case p.closed && exported:
		b.emitNow(nodebus.ManagerPath, nodebus.ManagerIface+".SessionRemoved", s.Client, path)
		unexport(b.conn, path, nodebus.SessionIface)
		delete(b.sessProp, s.Client)
	case p.closed:
	case !exported:
		var err error
		props, err = prop.Export(b.conn, path, sessionProps(s))
		if err == nil {
			err = b.exportIntrospection(path, nodebus.SessionIface)
		}
		if err != nil {
			b.log.Error("dbus: cannot export session object", "client", s.Client, "err", err)
			return
		}
		b.sessProp[s.Client] = props
		b.emitNow(nodebus.ManagerPath, nodebus.ManagerIface+".SessionAdded", s.Client, path)
	default:
		setChanged(props, nodebus.SessionIface, "Groups", nonNilStrings(s.Groups))
		setChanged(props, nodebus.SessionIface, "Queued", s.Queued)
		setChanged(props, nodebus.SessionIface, "InFlight", s.InFlight)
	}
}

// setChanged sets a property that emits PropertiesChanged, if its value changed.
func setChanged(p *prop.Properties, iface, name string, v any) {
	if reflect.DeepEqual(p.GetMust(iface, name), v) {
		return
	}
	p.SetMust(iface, name, v)
}

// emitNow emits a signal; on the serving goroutine.
func (b *Bus) emitNow(path dbus.ObjectPath, name string, args ...any) {
	if err := b.conn.Emit(path, name, args...); err != nil {
		b.log.Warn("dbus: emit signal failed", "signal", name, "err", err)
	}
}
