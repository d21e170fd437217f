package busapi

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

func constProp(v any) *prop.Prop  { return &prop.Prop{Value: v, Emit: prop.EmitConst} }
func changeProp(v any) *prop.Prop { return &prop.Prop{Value: v, Emit: prop.EmitTrue} }

// features are the optional features this daemon has, so clients can detect them.
var features = []string{"raw-ethernet", "aead-frames", "virtual-synchrony", "raft-config", "jobs", "link-stats", "group-objects"}

// managerProps are the Manager's properties with their first values.
func managerProps(s nodebus.Status) prop.Map {
	return prop.Map{nodebus.ManagerIface: {
		"Version":         constProp(s.Version),
		"Features":        constProp(features),
		"ClusterName":     changeProp(s.Cluster.Name),
		"ClusterID":       changeProp(s.Cluster.ID),
		"LocalNodeNumber": constProp(s.LocalNode),
		"LocalNodeName":   changeProp(s.LocalName),
		"State":           changeProp(s.State),
		"ViewSeq":         changeProp(s.View.Seq),
		"ViewCoordinator": changeProp(s.View.Coordinator),
		"ViewID":          changeProp(s.View.ID),
		"ViewMembers":     changeProp(nonNil16(s.View.Members)),
		"Quorate":         changeProp(s.Quorum.Quorate),
		"TotalVotes":      changeProp(s.Quorum.TotalVotes),
		"ExpectedVotes":   changeProp(s.Quorum.ExpectedVotes),
		"Quorum":          changeProp(s.Quorum.Quorum),
		"QuorumReason":    changeProp(s.Quorum.Reason),
		"ConfigLeader":    changeProp(s.Config.Leader),
		"ConfigIndex":     changeProp(s.Config.Index),
		"Heartbeats":      changeProp(s.Heartbeats),
		"LocalLinks":      changeProp(localLinkRows(s.LocalLinks)),
		"Waiting":         changeProp(s.Waiting),
		"FrameCounters":   {Value: map[string]uint64{}, Emit: prop.EmitFalse},
	}}
}

func nodeProps(n nodebus.NodeInfo) prop.Map {
	m := prop.Map{nodebus.NodeIface: {
		"Number":     constProp(n.Number),
		"Name":       changeProp(n.Name),
		"UUID":       changeProp(n.UUID),
		"State":      changeProp(n.State),
		"Votes":      changeProp(n.Votes),
		"InView":     changeProp(n.InView),
		"Links":      changeProp(linkRows(n.Links)),
		"Attributes": changeProp(nonNilMap(n.Attrs)),
	}}
	m[nodebus.NodeIface]["AuthFailures"] = changeProp(n.AuthFailures)
	m[nodebus.NodeIface]["LastAuthFailure"] = changeProp(n.LastAuthFailure)
	return m
}

func jobProps(j nodebus.Job) prop.Map {
	return prop.Map{nodebus.JobIface: {
		"Id":     constProp(j.ID),
		"Kind":   constProp(j.Kind),
		"Target": constProp(j.Target),
		"State":  changeProp(j.State),
	}}
}

func (b *Bus) exportManager() error {
	p, err := prop.Export(b.conn, nodebus.ManagerPath, managerProps(nodebus.Status{}))
	if err != nil {
		return fmt.Errorf("dbus: export properties: %w", err)
	}
	b.mgr = p
	if err := b.conn.Export(&manager{b: b}, nodebus.ManagerPath, nodebus.ManagerIface); err != nil {
		return fmt.Errorf("dbus: export manager: %w", err)
	}
	for _, o := range []struct {
		path     dbus.ObjectPath
		iface    string
		children []string
	}{
		{"/", "", []string{"org"}},
		{"/org", "", []string{"concordha"}},
		{"/org/concordha", "", []string{"node1"}},
		{nodebus.ManagerPath, nodebus.ManagerIface, []string{"node", "job", "group", "session"}},
	} {
		if err := b.exportIntrospection(o.path, o.iface, o.children...); err != nil {
			return err
		}
	}
	// The directories' children change; their introspection is made when
	// asked, so their exports never change (godbus reads a parent's
	// exports unlocked while it looks for a missing child).
	for _, path := range []dbus.ObjectPath{nodebus.NodeDirectory, nodebus.JobDirectory, nodebus.GroupDirectory, nodebus.SessionDirectory} {
		if err := b.conn.Export(directory{b, path}, path, "org.freedesktop.DBus.Introspectable"); err != nil {
			return fmt.Errorf("dbus: export %s: %w", path, err)
		}
	}
	return nil
}

// directory introspects a path whose children are node, job, group or session objects.
type directory struct {
	b    *Bus
	path dbus.ObjectPath
}

func (d directory) Introspect() (string, *dbus.Error) {
	d.b.mu.Lock()
	kids := d.b.dirs[d.path]
	d.b.mu.Unlock()
	x, err := nodebus.ObjectXML("", kids...)
	if err != nil {
		return "", dbus.MakeFailedError(err)
	}
	return x, nil
}

func nonNil16(v []uint16) []uint16 {
	if v == nil {
		return []uint16{}
	}
	return v
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

type linkRow struct {
	Index     uint8
	Interface string
	MAC       string
	State     string
}

func linkRows(ls []nodebus.LinkInfo) []linkRow {
	rows := make([]linkRow, 0, len(ls))
	for _, l := range ls {
		rows = append(rows, linkRow{l.Index, l.Interface, l.MAC, l.State})
	}
	return rows
}

type localLinkRow struct {
	Index                         uint8
	Interface, MAC, State, Reason string
}

func localLinkRows(ls []nodebus.LocalLink) []localLinkRow {
	rows := make([]localLinkRow, 0, len(ls))
	for _, l := range ls {
		rows = append(rows, localLinkRow{l.Index, l.Interface, l.MAC, l.State, l.Reason})
	}
	return rows
}

// apply sets every property from s; only changed values emit. Version and
// LocalNodeNumber are const for clients, but they are set here too: the
// objects are exported before the first status is known.
func (b *Bus) apply(s nodebus.Status, counters map[string]uint64) {
	set := func(p *prop.Properties, key, iface, name string, v any) {
		if old, ok := b.cache[key]; ok && reflect.DeepEqual(old, v) {
			return
		}
		b.cache[key] = v
		p.SetMust(iface, name, v)
	}
	m := nodebus.ManagerIface
	set(b.mgr, "m.Version", m, "Version", s.Version)
	set(b.mgr, "m.ClusterName", m, "ClusterName", s.Cluster.Name)
	set(b.mgr, "m.ClusterID", m, "ClusterID", s.Cluster.ID)
	set(b.mgr, "m.LocalNodeNumber", m, "LocalNodeNumber", s.LocalNode)
	set(b.mgr, "m.LocalNodeName", m, "LocalNodeName", s.LocalName)
	set(b.mgr, "m.State", m, "State", s.State)
	set(b.mgr, "m.ViewSeq", m, "ViewSeq", s.View.Seq)
	set(b.mgr, "m.ViewCoordinator", m, "ViewCoordinator", s.View.Coordinator)
	set(b.mgr, "m.ViewID", m, "ViewID", s.View.ID)
	set(b.mgr, "m.ViewMembers", m, "ViewMembers", nonNil16(s.View.Members))
	set(b.mgr, "m.Quorate", m, "Quorate", s.Quorum.Quorate)
	set(b.mgr, "m.TotalVotes", m, "TotalVotes", s.Quorum.TotalVotes)
	set(b.mgr, "m.ExpectedVotes", m, "ExpectedVotes", s.Quorum.ExpectedVotes)
	set(b.mgr, "m.Quorum", m, "Quorum", s.Quorum.Quorum)
	set(b.mgr, "m.QuorumReason", m, "QuorumReason", s.Quorum.Reason)
	set(b.mgr, "m.ConfigLeader", m, "ConfigLeader", s.Config.Leader)
	set(b.mgr, "m.ConfigIndex", m, "ConfigIndex", s.Config.Index)
	set(b.mgr, "m.Heartbeats", m, "Heartbeats", s.Heartbeats)
	set(b.mgr, "m.LocalLinks", m, "LocalLinks", localLinkRows(s.LocalLinks))
	set(b.mgr, "m.Waiting", m, "Waiting", s.Waiting)
	if counters == nil {
		counters = map[string]uint64{}
	}
	b.mgr.SetMust(m, "FrameCounters", counters)

	seen := map[uint16]bool{}
	for _, n := range s.Nodes {
		seen[n.Number] = true
		p := b.nodes[n.Number]
		if p == nil {
			var err error
			if p, err = b.exportNode(n); err != nil {
				b.log.Error("dbus: cannot export node object", "node", n.Number, "err", err)
				continue
			}
			b.nodes[n.Number] = p
		}
		k := fmt.Sprintf("n%d.", n.Number)
		ni := nodebus.NodeIface
		set(p, k+"Name", ni, "Name", n.Name)
		set(p, k+"UUID", ni, "UUID", n.UUID)
		set(p, k+"State", ni, "State", n.State)
		set(p, k+"Votes", ni, "Votes", n.Votes)
		set(p, k+"InView", ni, "InView", n.InView)
		set(p, k+"Links", ni, "Links", linkRows(n.Links))
		set(p, k+"Attributes", ni, "Attributes", nonNilMap(n.Attrs))
		set(p, k+"AuthFailures", ni, "AuthFailures", n.AuthFailures)
		set(p, k+"LastAuthFailure", ni, "LastAuthFailure", n.LastAuthFailure)
	}
	for num := range b.nodes {
		if !seen[num] {
			unexport(b.conn, nodebus.NodePath(num), nodebus.NodeIface)
			delete(b.nodes, num)
			for k := range b.cache {
				if strings.HasPrefix(k, fmt.Sprintf("n%d.", num)) {
					delete(b.cache, k)
				}
			}
		}
	}
	b.refreshNodeDirectory(s)
}

func (b *Bus) exportNode(n nodebus.NodeInfo) (*prop.Properties, error) {
	path := nodebus.NodePath(n.Number)
	p, err := prop.Export(b.conn, path, nodeProps(n))
	if err != nil {
		return nil, err
	}
	return p, b.exportIntrospection(path, nodebus.NodeIface)
}

// refreshNodeDirectory keeps the introspection of .../node1/node listing the node objects.
func (b *Bus) refreshNodeDirectory(s nodebus.Status) {
	var kids []string
	for _, n := range s.Nodes {
		kids = append(kids, fmt.Sprint(n.Number))
	}
	b.refreshDirectory(nodebus.NodeDirectory, kids)
}

// refreshJobDirectory keeps the introspection of .../node1/job listing the job objects.
func (b *Bus) refreshJobDirectory() {
	var ids []uint32
	for id := range b.jobProp {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	kids := make([]string, len(ids))
	for i, id := range ids {
		kids[i] = fmt.Sprint(id)
	}
	b.refreshDirectory(nodebus.JobDirectory, kids)
}

func (b *Bus) refreshDirectory(path dbus.ObjectPath, kids []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dirs[path] = kids
}
