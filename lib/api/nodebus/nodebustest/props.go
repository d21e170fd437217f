package nodebustest

import (
	"fmt"
	"reflect"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

// Any as a wanted value means: the property must be served, with the
// XML's type, whatever its value.
var Any = anyValue{}

type anyValue struct{}

// Link is a row of the Node's Links property, as a client decodes it.
type Link struct {
	Index                 uint8
	Interface, MAC, State string
}

// LocalLink is a row of the Manager's LocalLinks property.
type LocalLink struct {
	Index                         uint8
	Interface, MAC, State, Reason string
}

// ManagerWant is what each Manager property must be for the status s
// (the document `concordctl status --json` prints). Features and
// FrameCounters are not in the status: they are Any.
func ManagerWant(s nodebus.Status) map[string]any {
	members := s.View.Members
	if members == nil {
		members = []uint16{}
	}
	local := []LocalLink{}
	for _, l := range s.LocalLinks {
		local = append(local, LocalLink{l.Index, l.Interface, l.MAC, l.State, l.Reason})
	}
	return map[string]any{
		"Version": s.Version, "Features": Any, "ClusterName": s.Cluster.Name, "ClusterID": s.Cluster.ID,
		"LocalNodeNumber": s.LocalNode, "LocalNodeName": s.LocalName, "State": s.State,
		"ViewSeq": s.View.Seq, "ViewCoordinator": s.View.Coordinator, "ViewID": s.View.ID, "ViewMembers": members,
		"Quorate": s.Quorum.Quorate, "TotalVotes": s.Quorum.TotalVotes, "ExpectedVotes": s.Quorum.ExpectedVotes,
		"Quorum": s.Quorum.Quorum, "QuorumReason": s.Quorum.Reason,
		"ConfigLeader": s.Config.Leader, "ConfigIndex": s.Config.Index, "Heartbeats": s.Heartbeats,
		"FrameCounters": Any, "LocalLinks": local, "Waiting": s.Waiting,
	}
}

// NodeWant is what each property of a Node object must be for n.
func NodeWant(n nodebus.NodeInfo) map[string]any {
	links := []Link{}
	for _, l := range n.Links {
		links = append(links, Link{l.Index, l.Interface, l.MAC, l.State})
	}
	attrs := n.Attrs
	if attrs == nil {
		attrs = map[string]string{}
	}
	return map[string]any{"Number": n.Number, "Name": n.Name, "UUID": n.UUID, "State": n.State, "Votes": n.Votes,
		"InView": n.InView, "Links": links, "Attributes": attrs,
		"AuthFailures": n.AuthFailures, "LastAuthFailure": n.LastAuthFailure}
}

// Mismatches reads every property of iface at path from the daemon on
// conn and says how each differs from want. Every property of the
// interface XML must be in want, and served.
func Mismatches(conn *dbus.Conn, path dbus.ObjectPath, iface string, want map[string]any) []string {
	var got map[string]dbus.Variant
	if err := conn.Object(nodebus.BusName, path).Call("org.freedesktop.DBus.Properties.GetAll", 0, iface).Store(&got); err != nil {
		return []string{fmt.Sprintf("%s GetAll %s: %v", path, iface, err)}
	}
	ifs, err := nodebus.Interfaces()
	if err != nil {
		return []string{err.Error()}
	}
	var bad []string
	for _, p := range ifs[iface].Properties {
		w, ok := want[p.Name]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s.%s is in the interface XML but not checked", iface, p.Name))
			continue
		}
		v, ok := got[p.Name]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s %s.%s: not served", path, iface, p.Name))
			continue
		}
		if w == Any {
			continue
		}
		// The served value must decode into the XML's type.
		if sig := dbus.SignatureOf(w).String(); sig != p.Type {
			bad = append(bad, fmt.Sprintf("%s.%s: expected a %s, the XML says %s", iface, p.Name, sig, p.Type))
			continue
		}
		dst := reflect.New(reflect.TypeOf(w))
		if err := v.Store(dst.Interface()); err != nil {
			bad = append(bad, fmt.Sprintf("%s %s.%s: %v", path, iface, p.Name, err))
			continue
		}
		if !reflect.DeepEqual(dst.Elem().Interface(), w) {
			bad = append(bad, fmt.Sprintf("%s %s.%s = %#v, want %#v", path, iface, p.Name, dst.Elem().Interface(), w))
		}
	}
	if len(got) != len(ifs[iface].Properties) {
		bad = append(bad, fmt.Sprintf("%s %s: %d properties served, the XML has %d", path, iface, len(got), len(ifs[iface].Properties)))
	}
	return bad
}

// StatusMismatches compares every Manager and Node property with the
// status s.
func StatusMismatches(conn *dbus.Conn, s nodebus.Status) []string {
	bad := Mismatches(conn, nodebus.ManagerPath, nodebus.ManagerIface, ManagerWant(s))
	for _, n := range s.Nodes {
		bad = append(bad, Mismatches(conn, nodebus.NodePath(n.Number), nodebus.NodeIface, NodeWant(n))...)
	}
	return bad
}
