// Package busapi is concord-noded's D-Bus adapter: it serves the API of
// lib/api/nodebus (org.concordha.node1) on the system bus. Requests go to
// the daemon's loop through Backend; what happens in the loop comes back
// through the methods of *Bus (the daemon's Events) and goes out as
// properties and signals. The adapter knows nothing of the protocol cores.
package busapi

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/sys/jlog"
)

// Backend is what the adapter asks of the daemon. Every method may be
// called on any goroutine and returns without waiting for long: a change
// is checked and started as a job, whose end comes through JobRemoved.
// Errors should be *nodebus.Error; others become ConfigConflict.
type Backend interface {
	Status() nodebus.Status
	Config() (string, error)
	AddNode(name string, number uint16, votes uint32, links []string, attrs map[string]string) (nodebus.Job, uint16, error)
	DeleteNode(name string) (nodebus.Job, error)
	EditNode(name string, changes map[string]any) (nodebus.Job, error)
	SetOption(key, value string) (nodebus.Job, error)
	SetQuorum(key, value string) (nodebus.Job, error)
	// UnblockQuorum forces quorum on the partition; who says who asked.
	UnblockQuorum(who string) (nodebus.QuorumInfo, error)
	// LinkStats is every peer's statistics on every link, as of now.
	LinkStats() ([]nodebus.LinkStat, error)
}

// Options configure Open.
type Options struct {
	Logger     *slog.Logger
	LogControl *jlog.Control // nil: no org.freedesktop.LogControl1
	// Conn is the bus to serve on; nil: connect to the system bus. Open
	// owns it either way and closes it in Close.
	Conn *dbus.Conn
	// BusName is the name to own: "" is nodebus.BusName, the default
	// cluster context's; another context's is its own (lib/api/clusterctx).
	BusName string
}

// Bus is the adapter on one connection.
type Bus struct {
	conn *dbus.Conn
	be   Backend
	log  *slog.Logger

	// Signals and property changes are made by one goroutine, in order,
	// so a slow bus never stalls the daemon's loop (and its heartbeats).
	queue chan func()
	done  chan struct{} // closed by Close

	// Owned by the queue's goroutine:
	mgr     *prop.Properties
	nodes   map[uint16]*prop.Properties
	jobProp map[uint32]*prop.Properties
	cache   map[string]any // last values set, so PropertiesChanged goes out only on change

	// Process groups and sessions (groups.go): reported by the loop into
	// pendGroups and pendSess, exported by the queue's goroutine when
	// gwake says so.
	gwake     chan struct{}
	groupProp map[string]*prop.Properties
	sessProp  map[uint32]*prop.Properties

	mu         sync.Mutex
	jobs       map[uint32]nodebus.Job       // for ListJobs
	dirs       map[dbus.ObjectPath][]string // children of the node, job, group and session directories
	groupNow   map[string]nodebus.GroupInfo // for ListGroups: groups with members, without changes
	sessNow    map[uint32]nodebus.SessionInfo
	pendGroups map[string]*pendGroup
	pendSess   map[uint32]*pendSession
}

// Open exports the API for be, takes the bus name and starts serving.
func Open(be Backend, o Options) (*Bus, error) {
	conn := o.Conn
	if conn == nil {
		var err error
		conn, err = dbus.ConnectSystemBus(dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
		if err != nil {
			return nil, fmt.Errorf("dbus: connect to the system bus: %w", err)
		}
	}
	b := &Bus{conn: conn, be: be, log: o.Logger, queue: make(chan func(), 65536), done: make(chan struct{}),
		nodes: map[uint16]*prop.Properties{}, jobProp: map[uint32]*prop.Properties{}, cache: map[string]any{},
		jobs: map[uint32]nodebus.Job{}, dirs: map[dbus.ObjectPath][]string{},
		gwake: make(chan struct{}, 1), groupProp: map[string]*prop.Properties{}, sessProp: map[uint32]*prop.Properties{},
		groupNow: map[string]nodebus.GroupInfo{}, sessNow: map[uint32]nodebus.SessionInfo{},
		pendGroups: map[string]*pendGroup{}, pendSess: map[uint32]*pendSession{}}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	fail := func(err error) (*Bus, error) { conn.Close(); return nil, err }
	if err := b.exportManager(); err != nil {
		return fail(err)
	}
	if o.LogControl != nil {
		if err := b.exportLogControl(o.LogControl); err != nil {
			return fail(err)
		}
	}
	// The first status, before the name is taken: no client sees the
	// properties' zero values.
	b.apply(be.Status(), map[string]uint64{})
	name := o.BusName
	if name == "" {
		name = nodebus.BusName
	}
	reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fail(fmt.Errorf("dbus: request name %s: %w", name, err))
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return fail(fmt.Errorf("dbus: name %s is already owned (is another concord-noded of this cluster context running?)", name))
	}
	go b.serve()
	return b, nil
}

func (b *Bus) serve() {
	for {
		select {
		case f := <-b.queue:
			f()
		case <-b.gwake:
			b.flushGroups()
		case <-b.done:
			return
		}
	}
}

// Close stops serving and closes the connection.
func (b *Bus) Close() {
	close(b.done)
	b.conn.Close()
}

// post queues f for the queue's goroutine. When the queue is full the
// loop waits: losing a job's end would leave its client waiting.
func (b *Bus) post(f func()) {
	select {
	case b.queue <- f:
	case <-b.done:
	}
}

// sync waits until everything posted or reported before it was done.
func (b *Bus) sync() {
	ch := make(chan struct{})
	b.post(func() { b.flushGroups(); close(ch) })
	select {
	case <-ch:
	case <-b.done:
	}
}

func (b *Bus) emit(name string, args ...any) {
	b.post(func() {
		if err := b.conn.Emit(nodebus.ManagerPath, nodebus.ManagerIface+"."+name, args...); err != nil {
			b.log.Warn("dbus: emit signal failed", "signal", name, "err", err)
		}
	})
}

// The daemon's events.

// StatusChanged pushes a status out as properties; only changed values emit.
func (b *Bus) StatusChanged(s nodebus.Status, counters map[string]uint64) {
	b.post(func() { b.apply(s, counters) })
}

// ViewChanged emits ViewChanged.
func (b *Bus) ViewChanged(v nodebus.ViewInfo, reason string) {
	b.emit("ViewChanged", v.Seq, v.Coordinator, nonNil16(v.Members), reason)
}

// QuorumChanged emits QuorumChanged.
func (b *Bus) QuorumChanged(q nodebus.QuorumInfo) {
	b.emit("QuorumChanged", q.Quorate, q.TotalVotes, q.ExpectedVotes, q.Quorum, q.Reason)
}

// LinkChanged emits LinkChanged.
func (b *Bus) LinkChanged(node uint16, link uint8, up bool) {
	state := "down"
	if up {
		state = "up"
	}
	b.emit("LinkChanged", node, link, state)
}

// ConfigChanged emits ConfigChanged.
func (b *Bus) ConfigChanged(index uint64, what string) { b.emit("ConfigChanged", index, what) }

// JobNew exports the job's object.
func (b *Bus) JobNew(j nodebus.Job) {
	b.mu.Lock()
	b.jobs[j.ID] = j
	b.mu.Unlock()
	b.post(func() {
		p, err := prop.Export(b.conn, j.Path(), jobProps(j))
		if err == nil {
			err = b.exportIntrospection(j.Path(), nodebus.JobIface)
		}
		if err != nil {
			b.log.Error("dbus: cannot export job object", "job", j.ID, "err", err)
			return
		}
		b.jobProp[j.ID] = p
		b.refreshJobDirectory()
	})
}

// JobChanged updates the job's State.
func (b *Bus) JobChanged(j nodebus.Job) {
	b.mu.Lock()
	b.jobs[j.ID] = j
	b.mu.Unlock()
	b.post(func() {
		if p := b.jobProp[j.ID]; p != nil {
			p.SetMust(nodebus.JobIface, "State", j.State)
		}
	})
}

// JobRemoved emits JobRemoved and removes the job's object.
func (b *Bus) JobRemoved(j nodebus.Job, result, message string) {
	b.mu.Lock()
	delete(b.jobs, j.ID)
	b.mu.Unlock()
	b.post(func() {
		if err := b.conn.Emit(nodebus.ManagerPath, nodebus.ManagerIface+".JobRemoved", j.ID, j.Path(), j.Kind, result, message); err != nil {
			b.log.Warn("dbus: emit signal failed", "signal", "JobRemoved", "err", err)
		}
		if _, ok := b.jobProp[j.ID]; ok {
			unexport(b.conn, j.Path(), nodebus.JobIface)
			delete(b.jobProp, j.ID)
			b.refreshJobDirectory()
		}
	})
}

func unexport(conn *dbus.Conn, path dbus.ObjectPath, iface string) {
	conn.Export(nil, path, iface)
	conn.Export(nil, path, "org.freedesktop.DBus.Properties")
	conn.Export(nil, path, "org.freedesktop.DBus.Introspectable")
}

// exportLogControl implements org.freedesktop.LogControl1, so that
// `systemctl service-log-level concord-noded debug` works (the unit sets
// BusName=). Setting needs root: the bus policy allows Set only to root.
func (b *Bus) exportLogControl(c *jlog.Control) error {
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
			b.log.Info("log setting changed", "setting", ch.Name, "value", v)
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

func (b *Bus) exportIntrospection(path dbus.ObjectPath, iface string, children ...string) error {
	x, err := nodebus.ObjectXML(iface, children...)
	if err != nil {
		return err
	}
	return b.conn.Export(introspect.Introspectable(x), path, "org.freedesktop.DBus.Introspectable")
}

// requireRoot lets only uid 0 change the cluster. The bus policy says the
// same; this is the second lock.
func (b *Bus) requireRoot(sender dbus.Sender) *dbus.Error {
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

// caller describes the sender for the journal: uid, pid and bus name.
func (b *Bus) caller(sender dbus.Sender) string {
	var uid, pid uint32
	o := b.conn.BusObject()
	o.Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, string(sender)).Store(&uid)
	o.Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, string(sender)).Store(&pid)
	return fmt.Sprintf("uid %d pid %d (%s)", uid, pid, sender)
}

// toDBusError names err for D-Bus: *nodebus.Error keeps its name,
// anything else is ConfigConflict.
func toDBusError(err error) *dbus.Error {
	if err == nil {
		return nil
	}
	var e *nodebus.Error
	if errors.As(err, &e) {
		return dbus.NewError(e.Name, []any{e.Message})
	}
	return dbus.NewError(nodebus.ErrConfigConflict, []any{err.Error()})
}
