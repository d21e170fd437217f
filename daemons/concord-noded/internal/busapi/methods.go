package busapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

// manager implements org.concordha.node1.Manager's methods. godbus runs
// each call on its own goroutine; a method asks the backend, which does
// not wait for long, and replies.
type manager struct{ b *Bus }

type nodeRow struct {
	Number uint16
	Name   string
	UUID   string
	State  string
	Votes  uint32
	Path   dbus.ObjectPath
}

func (m *manager) ListNodes() ([]nodeRow, *dbus.Error) {
	s := m.b.be.Status()
	rows := make([]nodeRow, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		rows = append(rows, nodeRow{n.Number, n.Name, n.UUID, n.State, n.Votes, nodebus.NodePath(n.Number)})
	}
	return rows, nil
}

func (m *manager) GetNode(name string) (dbus.ObjectPath, *dbus.Error) {
	for _, n := range m.b.be.Status().Nodes {
		if n.Name == name {
			return nodebus.NodePath(n.Number), nil
		}
	}
	return "", dbus.NewError(nodebus.ErrNoSuchNode, []any{fmt.Sprintf("no node named %q", name)})
}

func (m *manager) GetNodeByNumber(number uint16) (dbus.ObjectPath, *dbus.Error) {
	for _, n := range m.b.be.Status().Nodes {
		if n.Number == number {
			return nodebus.NodePath(n.Number), nil
		}
	}
	return "", dbus.NewError(nodebus.ErrNoSuchNode, []any{fmt.Sprintf("no node number %d", number)})
}

func (m *manager) GetStatusJSON() (string, *dbus.Error) {
	b, err := json.MarshalIndent(m.b.be.Status(), "", "  ")
	if err != nil {
		return "", dbus.MakeFailedError(err)
	}
	return string(b), nil
}

func (m *manager) GetLinkStats() ([]nodebus.LinkStatRow, *dbus.Error) {
	ls, err := m.b.be.LinkStats()
	if err != nil {
		return nil, toDBusError(err)
	}
	rows := make([]nodebus.LinkStatRow, len(ls))
	for i, l := range ls {
		rows[i] = l.Row()
	}
	return rows, nil
}

func (m *manager) GetConfig() (string, *dbus.Error) {
	s, err := m.b.be.Config()
	return s, toDBusError(err)
}

type jobRow struct {
	ID     uint32
	Kind   string
	Target string
	State  string
	Path   dbus.ObjectPath
}

func (m *manager) ListJobs() ([]jobRow, *dbus.Error) {
	m.b.mu.Lock()
	rows := make([]jobRow, 0, len(m.b.jobs))
	for _, j := range m.b.jobs {
		rows = append(rows, jobRow{j.ID, j.Kind, j.Target, j.State, j.Path()})
	}
	m.b.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	return rows, nil
}

// started replies with a job's path once its object is exported.
func (m *manager) started(j nodebus.Job, err error) (dbus.ObjectPath, *dbus.Error) {
	if err != nil {
		return "", toDBusError(err)
	}
	m.b.sync()
	return j.Path(), nil
}

func (m *manager) AddNode(sender dbus.Sender, name string, number uint16, votes uint32, links []string, attrs map[string]string) (dbus.ObjectPath, dbus.ObjectPath, *dbus.Error) {
	if err := m.b.requireRoot(sender); err != nil {
		return "", "", err
	}
	j, num, err := m.b.be.AddNode(name, number, votes, links, attrs)
	path, derr := m.started(j, err)
	if derr != nil {
		return "", "", derr
	}
	return path, nodebus.NodePath(num), nil
}

func (m *manager) DeleteNode(sender dbus.Sender, name string) (dbus.ObjectPath, *dbus.Error) {
	if err := m.b.requireRoot(sender); err != nil {
		return "", err
	}
	return m.started(m.b.be.DeleteNode(name))
}

func (m *manager) EditNode(sender dbus.Sender, name string, changes map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
	if err := m.b.requireRoot(sender); err != nil {
		return "", err
	}
	plain := make(map[string]any, len(changes))
	for k, v := range changes {
		plain[k] = v.Value()
	}
	return m.started(m.b.be.EditNode(name, plain))
}

func (m *manager) SetOption(sender dbus.Sender, key, value string) (dbus.ObjectPath, *dbus.Error) {
	if err := m.b.requireRoot(sender); err != nil {
		return "", err
	}
	return m.started(m.b.be.SetOption(key, value))
}

func (m *manager) SetQuorum(sender dbus.Sender, key, value string) (dbus.ObjectPath, *dbus.Error) {
	if err := m.b.requireRoot(sender); err != nil {
		return "", err
	}
	return m.started(m.b.be.SetQuorum(key, value))
}

func (m *manager) UnblockQuorum(sender dbus.Sender) *dbus.Error {
	if err := m.b.requireRoot(sender); err != nil {
		return err
	}
	_, err := m.b.be.UnblockQuorum(m.b.caller(sender))
	return toDBusError(err)
}

func (m *manager) ListGroups() ([]nodebus.GroupRow, *dbus.Error) {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	rows := make([]nodebus.GroupRow, 0, len(m.b.groupNow))
	for _, name := range slices.Sorted(maps.Keys(m.b.groupNow)) {
		g := m.b.groupNow[name]
		rows = append(rows, nodebus.GroupRow{Name: name, Path: nodebus.GroupPath(name), View: g.View, Members: uint32(len(g.Members))})
	}
	return rows, nil
}

func (m *manager) ListSessions() ([]nodebus.SessionRow, *dbus.Error) {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	rows := make([]nodebus.SessionRow, 0, len(m.b.sessNow))
	for _, c := range slices.Sorted(maps.Keys(m.b.sessNow)) {
		s := m.b.sessNow[c]
		rows = append(rows, nodebus.SessionRow{Client: c, PID: s.PID, UID: s.UID, Name: s.Name, Path: s.Path()})
	}
	return rows, nil
}

func (m *manager) group(name string) (nodebus.GroupInfo, *dbus.Error) {
	m.b.mu.Lock()
	g, ok := m.b.groupNow[name]
	m.b.mu.Unlock()
	if !ok {
		return g, dbus.NewError(nodebus.ErrNoSuchGroup, []any{fmt.Sprintf("no group %q: it has no members", name)})
	}
	return g, nil
}

func (m *manager) GetGroup(name string) (dbus.ObjectPath, *dbus.Error) {
	if _, err := m.group(name); err != nil {
		return "", err
	}
	// The object is exported by the time the reply goes.
	m.b.sync()
	return nodebus.GroupPath(name), nil
}

func (m *manager) GetGroupMembers(name string) (string, []nodebus.GroupMember, *dbus.Error) {
	g, err := m.group(name)
	if err != nil {
		return "", nil, err
	}
	return g.View, nonNilMembers(g.Members), nil
}
