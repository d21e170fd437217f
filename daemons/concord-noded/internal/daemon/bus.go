package daemon

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/core/membership"
	"github.com/concord-ha/concord/lib/sys/jlog"
)

// bus is the D-Bus face of the daemon. godbus runs each method call on its
// own goroutine; methods only package the request and wait for the loop.
type bus struct {
	conn  *dbus.Conn
	d     *Daemon
	mgr   *prop.Properties
	nodes map[uint16]*prop.Properties
	// last values set, so PropertiesChanged goes out only on change
	cache map[string]any
	// Signals and property changes are written by one goroutine, in order,
	// so a slow bus never stalls the daemon's loop (and its heartbeats).
	jobs chan func()
}

func newBus(d *Daemon) (*bus, error) {
	conn, err := dbus.ConnectSystemBus(dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	if err != nil {
		return nil, fmt.Errorf("dbus: connect to the system bus: %w", err)
	}
	b := &bus{conn: conn, d: d, nodes: map[uint16]*prop.Properties{}, cache: map[string]any{}, jobs: make(chan func(), 65536)}
	if err := b.exportManager(); err != nil {
		conn.Close()
		return nil, err
	}
	if d.opts.LogControl != nil {
		if err := b.exportLogControl(d.opts.LogControl); err != nil {
			conn.Close()
			return nil, err
		}
	}
	reply, err := conn.RequestName(nodebus.BusName, dbus.NameFlagDoNotQueue)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("dbus: request name %s: %w", nodebus.BusName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		conn.Close()
		return nil, fmt.Errorf("dbus: name %s is already owned (is another concord-noded running?)", nodebus.BusName)
	}
	go func() {
		for f := range b.jobs {
			f()
		}
	}()
	return b, nil
}

func (b *bus) close() {
	close(b.jobs)
	b.conn.Close()
}

// post queues f for the bus goroutine. When the queue is full the loop
// waits: losing a group delivery would break its guarantees.
func (b *bus) post(f func()) { b.jobs <- f }

func constProp(v any) *prop.Prop  { return &prop.Prop{Value: v, Emit: prop.EmitConst} }
func changeProp(v any) *prop.Prop { return &prop.Prop{Value: v, Emit: prop.EmitTrue} }

// managerProps are the Manager's properties with their first values.
func managerProps(s nodebus.Status) prop.Map {
	return prop.Map{nodebus.ManagerIface: {
		"Version":         constProp(s.Version),
		"Features":        constProp([]string{"raw-ethernet", "aead-frames", "virtual-synchrony", "raft-config"}),
		"ClusterName":     changeProp(s.Cluster.Name),
		"ClusterID":       changeProp(s.Cluster.ID),
		"LocalNodeNumber": constProp(s.LocalNode),
		"LocalNodeName":   changeProp(s.LocalName),
		"State":           changeProp(s.State),
		"ViewSeq":         changeProp(s.View.Seq),
		"ViewCoordinator": changeProp(s.View.Coordinator),
		"ViewMembers":     changeProp(nonNil16(s.View.Members)),
		"Quorate":         changeProp(s.Quorum.Quorate),
		"TotalVotes":      changeProp(s.Quorum.TotalVotes),
		"ExpectedVotes":   changeProp(s.Quorum.ExpectedVotes),
		"Quorum":          changeProp(s.Quorum.Quorum),
		"QuorumReason":    changeProp(s.Quorum.Reason),
		"ConfigLeader":    changeProp(s.Config.Leader),
		"ConfigIndex":     changeProp(s.Config.Index),
		"Heartbeats":      changeProp(s.Heartbeats),
		"FrameCounters":   {Value: map[string]uint64{}, Emit: prop.EmitFalse},
	}}
}

func (b *bus) exportManager() error {
	props := managerProps(b.d.snapshot())
	p, err := prop.Export(b.conn, nodebus.ManagerPath, props)
	if err != nil {
		return fmt.Errorf("dbus: export properties: %w", err)
	}
	b.mgr = p
	if err := b.conn.Export(&manager{b: b}, nodebus.ManagerPath, nodebus.ManagerIface); err != nil {
		return fmt.Errorf("dbus: export manager: %w", err)
	}
	for path, iface := range map[dbus.ObjectPath]string{"/": "", "/org": "", "/org/concordha": "", nodebus.ManagerPath: nodebus.ManagerIface} {
		child := map[dbus.ObjectPath]string{"/": "org", "/org": "concordha", "/org/concordha": "node1", nodebus.ManagerPath: "node"}[path]
		if err := b.exportIntrospection(path, iface, child); err != nil {
			return err
		}
	}
	return nil
}

// exportLogControl implements org.freedesktop.LogControl1, so that
// `systemctl service-log-level concord-noded debug` works (the unit sets
// BusName=). Setting needs root: the bus policy allows Set only to root.
func (b *bus) exportLogControl(c *jlog.Control) error {
	const iface = "org.freedesktop.LogControl1"
	const path = dbus.ObjectPath("/org/freedesktop/LogControl1")
	set := func(f func(string) error) func(*prop.Change) *dbus.Error {
		return func(ch *prop.Change) *dbus.Error {
			v, ok := ch.Value.(string)
			if !ok {
				return dbus.NewError(nodebus.ErrInvalidArgs, []any{fmt.Sprintf("%s must be a string", ch.Name)})
			}
			if err := f(v); err != nil {
				return dbus.NewError(nodebus.ErrInvalidArgs, []any{err.Error()})
			}
			b.d.log.Info("log setting changed", "setting", ch.Name, "value", v)
			return nil
		}
	}
	p, err := prop.Export(b.conn, path, prop.Map{iface: {
		"LogLevel":         {Value: c.Level(), Writable: true, Emit: prop.EmitTrue, Callback: set(c.SetLevel)},
		"LogTarget":        {Value: c.Target(), Writable: true, Emit: prop.EmitTrue, Callback: set(c.SetTarget)},
		"SyslogIdentifier": {Value: c.Identifier(), Emit: prop.EmitConst},
	}})
	if err != nil {
		return fmt.Errorf("dbus: export LogControl1: %w", err)
	}
	n := introspect.Node{Interfaces: []introspect.Interface{introspect.IntrospectData, prop.IntrospectData,
		{Name: iface, Properties: p.Introspection(iface)}}}
	return b.conn.Export(introspect.NewIntrospectable(&n), path, "org.freedesktop.DBus.Introspectable")
}

func (b *bus) exportIntrospection(path dbus.ObjectPath, iface string, children ...string) error {
	x, err := nodebus.ObjectXML(iface, children...)
	if err != nil {
		return err
	}
	return b.conn.Export(introspect.Introspectable(x), path, "org.freedesktop.DBus.Introspectable")
}

func nonNil16(v []uint16) []uint16 {
	if v == nil {
		return []uint16{}
	}
	return v
}

// update pushes a status snapshot out as properties; only changed values emit.
func (b *bus) update(s nodebus.Status, counters map[string]uint64) {
	fc := make(map[string]uint64, len(counters))
	for k, v := range counters {
		fc[k] = v
	}
	b.post(func() { b.apply(s, fc) })
}

func (b *bus) apply(s nodebus.Status, fc map[string]uint64) {
	set := func(p *prop.Properties, key, iface, name string, v any) {
		if old, ok := b.cache[key]; ok && reflect.DeepEqual(old, v) {
			return
		}
		b.cache[key] = v
		p.SetMust(iface, name, v)
	}
	m := nodebus.ManagerIface
	set(b.mgr, "m.ClusterName", m, "ClusterName", s.Cluster.Name)
	set(b.mgr, "m.ClusterID", m, "ClusterID", s.Cluster.ID)
	set(b.mgr, "m.LocalNodeName", m, "LocalNodeName", s.LocalName)
	set(b.mgr, "m.State", m, "State", s.State)
	set(b.mgr, "m.ViewSeq", m, "ViewSeq", s.View.Seq)
	set(b.mgr, "m.ViewCoordinator", m, "ViewCoordinator", s.View.Coordinator)
	set(b.mgr, "m.ViewMembers", m, "ViewMembers", nonNil16(s.View.Members))
	set(b.mgr, "m.Quorate", m, "Quorate", s.Quorum.Quorate)
	set(b.mgr, "m.TotalVotes", m, "TotalVotes", s.Quorum.TotalVotes)
	set(b.mgr, "m.ExpectedVotes", m, "ExpectedVotes", s.Quorum.ExpectedVotes)
	set(b.mgr, "m.Quorum", m, "Quorum", s.Quorum.Quorum)
	set(b.mgr, "m.QuorumReason", m, "QuorumReason", s.Quorum.Reason)
	set(b.mgr, "m.ConfigLeader", m, "ConfigLeader", s.Config.Leader)
	set(b.mgr, "m.ConfigIndex", m, "ConfigIndex", s.Config.Index)
	set(b.mgr, "m.Heartbeats", m, "Heartbeats", s.Heartbeats)
	b.mgr.SetMust(m, "FrameCounters", fc)

	seen := map[uint16]bool{}
	for _, n := range s.Nodes {
		seen[n.Number] = true
		p := b.nodes[n.Number]
		if p == nil {
			var err error
			if p, err = b.exportNode(n); err != nil {
				b.d.log.Error("dbus: cannot export node object", "node", n.Number, "err", err)
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
	}
	for num := range b.nodes {
		if !seen[num] {
			path := nodebus.NodePath(num)
			b.conn.Export(nil, path, nodebus.NodeIface)
			b.conn.Export(nil, path, "org.freedesktop.DBus.Properties")
			b.conn.Export(nil, path, "org.freedesktop.DBus.Introspectable")
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

// refreshNodeDirectory keeps the introspection of .../node1/node listing the node objects.
func (b *bus) refreshNodeDirectory(s nodebus.Status) {
	var kids []string
	for _, n := range s.Nodes {
		kids = append(kids, fmt.Sprint(n.Number))
	}
	key := "dir:" + strings.Join(kids, ",")
	if _, ok := b.cache["dir"]; ok && b.cache["dir"] == key {
		return
	}
	b.cache["dir"] = key
	if err := b.exportIntrospection(nodebus.ManagerPath+"/node", "", kids...); err != nil {
		b.d.log.Error("dbus: export introspection", "err", err)
	}
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

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nodeProps(n nodebus.NodeInfo) prop.Map {
	return prop.Map{nodebus.NodeIface: {
		"Number":     constProp(n.Number),
		"Name":       changeProp(n.Name),
		"UUID":       changeProp(n.UUID),
		"State":      changeProp(n.State),
		"Votes":      changeProp(n.Votes),
		"InView":     changeProp(n.InView),
		"Links":      changeProp(linkRows(n.Links)),
		"Attributes": changeProp(nonNilMap(n.Attrs)),
	}}
}

func (b *bus) exportNode(n nodebus.NodeInfo) (*prop.Properties, error) {
	path := nodebus.NodePath(n.Number)
	p, err := prop.Export(b.conn, path, nodeProps(n))
	if err != nil {
		return nil, err
	}
	return p, b.exportIntrospection(path, nodebus.NodeIface)
}

func (b *bus) emit(name string, args ...any) {
	b.post(func() {
		if err := b.conn.Emit(nodebus.ManagerPath, nodebus.ManagerIface+"."+name, args...); err != nil {
			b.d.log.Warn("dbus: emit signal failed", "signal", name, "err", err)
		}
	})
}

// manager implements org.concordha.node1.Manager's methods.
type manager struct{ b *bus }

type nodeRow struct {
	Number uint16
	Name   string
	UUID   string
	State  string
	Votes  uint32
	Path   dbus.ObjectPath
}

func (m *manager) ListNodes() ([]nodeRow, *dbus.Error) {
	s := m.b.d.snapshot()
	rows := make([]nodeRow, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		rows = append(rows, nodeRow{n.Number, n.Name, n.UUID, n.State, n.Votes, nodebus.NodePath(n.Number)})
	}
	return rows, nil
}

func (m *manager) GetNode(name string) (dbus.ObjectPath, *dbus.Error) {
	for _, n := range m.b.d.snapshot().Nodes {
		if n.Name == name {
			return nodebus.NodePath(n.Number), nil
		}
	}
	return "", dbus.NewError(nodebus.ErrNoSuchNode, []any{fmt.Sprintf("no node named %q", name)})
}

func (m *manager) GetNodeByNumber(number uint16) (dbus.ObjectPath, *dbus.Error) {
	for _, n := range m.b.d.snapshot().Nodes {
		if n.Number == number {
			return nodebus.NodePath(n.Number), nil
		}
	}
	return "", dbus.NewError(nodebus.ErrNoSuchNode, []any{fmt.Sprintf("no node number %d", number)})
}

func (m *manager) GetStatusJSON() (string, *dbus.Error) {
	return string(m.b.d.statusJSON()), nil
}

func (m *manager) GetConfig() (string, *dbus.Error) {
	return string(m.b.d.configText()), nil
}

func (m *manager) AddNode(sender dbus.Sender, name string, number uint16, votes uint32, links []string, attrs map[string]string) (dbus.ObjectPath, *dbus.Error) {
	if err := m.b.requireRoot(sender); err != nil {
		return "", err
	}
	num, err := m.b.d.addNode(name, number, votes, links, attrs)
	if err != nil {
		return "", toDBusError(err)
	}
	return nodebus.NodePath(num), nil
}

func (m *manager) DeleteNode(sender dbus.Sender, name string) *dbus.Error {
	if err := m.b.requireRoot(sender); err != nil {
		return err
	}
	return toDBusError(m.b.d.deleteNode(name))
}

func (m *manager) EditNode(sender dbus.Sender, name string, changes map[string]dbus.Variant) *dbus.Error {
	if err := m.b.requireRoot(sender); err != nil {
		return err
	}
	plain := make(map[string]any, len(changes))
	for k, v := range changes {
		plain[k] = v.Value()
	}
	return toDBusError(m.b.d.editNode(name, plain))
}

func (m *manager) SetOption(sender dbus.Sender, key, value string) *dbus.Error {
	if err := m.b.requireRoot(sender); err != nil {
		return err
	}
	return toDBusError(m.b.d.setOption(key, value))
}

func (m *manager) SetQuorum(sender dbus.Sender, key, value string) *dbus.Error {
	if err := m.b.requireRoot(sender); err != nil {
		return err
	}
	return toDBusError(m.b.d.setQuorumOption(key, value))
}

func (m *manager) JoinGroup(sender dbus.Sender, group string) *dbus.Error {
	if err := m.b.requireRoot(sender); err != nil {
		return err
	}
	return toDBusError(m.b.d.groupOp(func() error { return m.b.d.core.JoinGroup(group) }))
}

func (m *manager) LeaveGroup(sender dbus.Sender, group string) *dbus.Error {
	if err := m.b.requireRoot(sender); err != nil {
		return err
	}
	return toDBusError(m.b.d.groupOp(func() error { return m.b.d.core.LeaveGroup(group) }))
}

func (m *manager) SendGroup(sender dbus.Sender, group string, payload []byte) *dbus.Error {
	if err := m.b.requireRoot(sender); err != nil {
		return err
	}
	return toDBusError(m.b.d.groupOp(func() error { return m.b.d.core.Broadcast(group, payload) }))
}

func (m *manager) SendNode(sender dbus.Sender, node uint16, payload []byte) *dbus.Error {
	if err := m.b.requireRoot(sender); err != nil {
		return err
	}
	return toDBusError(m.b.d.groupOp(func() error { return m.b.d.core.Send(membership.NodeID(node), payload) }))
}

func (m *manager) SendGroupMany(sender dbus.Sender, group string, payloads [][]byte) (uint32, *dbus.Error) {
	if err := m.b.requireRoot(sender); err != nil {
		return 0, err
	}
	var n uint32
	err := m.b.d.groupOp(func() error {
		for _, p := range payloads {
			if err := m.b.d.core.Broadcast(group, p); err != nil {
				if errors.Is(err, membership.ErrQueueFull) && n > 0 {
					return nil
				}
				return err
			}
			n++
		}
		return nil
	})
	return n, toDBusError(err)
}

// requireRoot lets only uid 0 change the cluster. The bus policy says the
// same; this is the second lock.
func (b *bus) requireRoot(sender dbus.Sender) *dbus.Error {
	var uid uint32
	err := b.conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, string(sender)).Store(&uid)
	if err != nil {
		return dbus.NewError(nodebus.ErrAccessDenied, []any{"cannot tell who is calling: " + err.Error()})
	}
	if uid != 0 {
		return dbus.NewError(nodebus.ErrAccessDenied, []any{fmt.Sprintf("uid %d may not change the cluster configuration; only root may", uid)})
	}
	return nil
}

// apiError carries a D-Bus error name for errors made in this package.
type apiError struct {
	name string
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(name, format string, args ...any) error {
	return &apiError{name: name, msg: fmt.Sprintf(format, args...)}
}

func toDBusError(err error) *dbus.Error {
	if err == nil {
		return nil
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return dbus.NewError(ae.name, []any{ae.msg})
	}
	return dbus.NewError(nodebus.ErrConfigConflict, []any{err.Error()})
}
