package nodebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/godbus/dbus/v5"
)

// ErrLost is wrapped by the error of a change or Wait when concord-noded
// went away (it stopped, or the bus connection broke) before the change's
// outcome was known: the change may or may not have been applied.
var ErrLost = errors.New("lost concord-noded")

// Client is a typed client of concord-noded's D-Bus API, for concordctl
// and the other daemons of a node. Its methods are safe for concurrent
// use. Every error from the daemon or the bus is an *Error with its D-Bus
// name, or wraps ErrLost.
type Client struct {
	conn *dbus.Conn
	bus  string // the daemon's bus name
	obj  dbus.BusObject

	subOnce sync.Once
	subErr  error

	mu      sync.Mutex
	ended   map[dbus.ObjectPath]JobEnded // recent JobRemoved signals
	order   []dbus.ObjectPath            // of ended, oldest first
	started map[dbus.ObjectPath]uint64   // jobs of this client not waited for: gen when started
	gen     uint64                       // times the daemon left the bus
	closed  bool                         // the connection is gone
	changed chan struct{}                // closed and replaced when any of the above changes
}

// maxEnded bounds the JobRemoved signals kept for Wait.
const maxEnded = 256

// JobEnded is the JobRemoved signal of one job.
type JobEnded struct {
	ID      uint32
	Path    dbus.ObjectPath
	Kind    string
	Result  string // ResultDone, ResultFailed or ResultTimeout
	Message string
}

// Err is nil for a job that was done, else its failure as an *Error.
func (e JobEnded) Err() error {
	if e.Result == ResultDone {
		return nil
	}
	return ParseFailure(e.Message)
}

// Dial connects to concord-noded on the system bus.
func Dial() (*Client, error) { return DialName(BusName) }

// DialName connects to the concord-noded that owns the bus name on the
// system bus: BusName, or the name of another cluster context (see
// lib/api/clusterctx).
func DialName(name string) (*Client, error) {
	// The sequential handler keeps signals in order; the default one may
	// reorder them under load, and group deliveries must not be.
	conn, err := dbus.ConnectSystemBus(dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	if err != nil {
		return nil, fmt.Errorf("cannot reach the system bus: %w", err)
	}
	return NewClientName(conn, name), nil
}

// DialAddress connects to concord-noded on the bus at addr.
func DialAddress(addr string) (*Client, error) {
	conn, err := dbus.Connect(addr, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	if err != nil {
		return nil, fmt.Errorf("cannot reach the bus at %s: %w", addr, err)
	}
	return NewClient(conn), nil
}

// NewClient is a client on conn, which it owns from now on. Make conn with
// the sequential signal handler if signals must come in order.
func NewClient(conn *dbus.Conn) *Client { return NewClientName(conn, BusName) }

// NewClientName is NewClient for the concord-noded that owns the bus name.
func NewClientName(conn *dbus.Conn, name string) *Client {
	return &Client{conn: conn, bus: name, obj: conn.Object(name, ManagerPath), ended: map[dbus.ObjectPath]JobEnded{},
		started: map[dbus.ObjectPath]uint64{}, changed: make(chan struct{})}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// callErr makes a call's error an *Error; a change whose daemon went away
// during the call wraps ErrLost.
func callErr(err error, change bool) error {
	if err == nil {
		return nil
	}
	var de dbus.Error
	if errors.As(err, &de) {
		e := &Error{Name: de.Name}
		if len(de.Body) > 0 {
			e.Message = fmt.Sprint(de.Body[0])
		}
		if change && (de.Name == "org.freedesktop.DBus.Error.NoReply" || de.Name == "org.freedesktop.DBus.Error.Disconnected") {
			return fmt.Errorf("%w: %v", ErrLost, e)
		}
		return e
	}
	if change && errors.Is(err, dbus.ErrClosed) {
		return fmt.Errorf("%w: %v", ErrLost, err)
	}
	return err
}

func (c *Client) call(method string, args ...any) *dbus.Call {
	return c.obj.Call(ManagerIface+"."+method, 0, args...)
}

// Status is the daemon's status, the document `concordctl status` shows.
func (c *Client) Status() (Status, error) {
	var s Status
	var js string
	if err := c.call("GetStatusJSON").Store(&js); err != nil {
		return s, callErr(err, false)
	}
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		return s, fmt.Errorf("concord-noded sent a status that does not parse: %w", err)
	}
	return s, nil
}

// Config is the replicated configuration in cluster.conf syntax.
func (c *Client) Config() (string, error) {
	var s string
	if err := c.call("GetConfig").Store(&s); err != nil {
		return "", callErr(err, false)
	}
	return s, nil
}

// ListJobs lists the jobs under way.
func (c *Client) ListJobs() ([]Job, error) {
	var rows []struct {
		ID                  uint32
		Kind, Target, State string
		Path                dbus.ObjectPath
	}
	if err := c.call("ListJobs").Store(&rows); err != nil {
		return nil, callErr(err, false)
	}
	jobs := make([]Job, len(rows))
	for i, r := range rows {
		jobs[i] = Job{ID: r.ID, Kind: r.Kind, Target: r.Target, State: r.State}
	}
	return jobs, nil
}

// subscribe asks for JobRemoved and for the daemon's name changing hands,
// once, before the first change: the signal may come before the reply.
// A goroutine takes the signals as they come, so none pile up.
func (c *Client) subscribe() error {
	c.subOnce.Do(func() {
		ch := make(chan *dbus.Signal, 64)
		c.conn.Signal(ch)
		go c.pump(ch)
		if err := c.conn.AddMatchSignal(dbus.WithMatchSender(c.bus), dbus.WithMatchObjectPath(ManagerPath),
			dbus.WithMatchInterface(ManagerIface), dbus.WithMatchMember("JobRemoved")); err != nil {
			c.subErr = callErr(err, false)
			return
		}
		if err := c.conn.AddMatchSignal(dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchInterface("org.freedesktop.DBus"),
			dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, c.bus)); err != nil {
			c.subErr = callErr(err, false)
		}
	})
	return c.subErr
}

// pump records the signals that Wait needs until the connection closes.
func (c *Client) pump(ch chan *dbus.Signal) {
	for s := range ch {
		switch s.Name {
		case ManagerIface + ".JobRemoved":
			var e JobEnded
			if err := dbus.Store(s.Body, &e.ID, &e.Path, &e.Kind, &e.Result, &e.Message); err != nil {
				continue
			}
			c.mu.Lock()
			c.forget(e.Path)
			c.ended[e.Path] = e
			c.order = append(c.order, e.Path)
			if len(c.order) > maxEnded {
				c.forget(c.order[0])
			}
			c.wake()
			c.mu.Unlock()
		case "org.freedesktop.DBus.NameOwnerChanged":
			var name, old, owner string
			if err := dbus.Store(s.Body, &name, &old, &owner); err == nil && name == c.bus && old != "" {
				c.mu.Lock()
				c.gen++
				// A new daemon numbers its jobs afresh: the old one's
				// endings must not answer for its jobs.
				clear(c.ended)
				c.order = nil
				c.wake()
				c.mu.Unlock()
			}
		}
	}
	c.mu.Lock()
	c.closed = true
	c.wake()
	c.mu.Unlock()
}

// forget drops the ending of the job at path; c.mu is held.
func (c *Client) forget(path dbus.ObjectPath) {
	delete(c.ended, path)
	if i := slices.Index(c.order, path); i >= 0 {
		c.order = slices.Delete(c.order, i, i+1)
	}
}

// wake tells the waiters that something changed; c.mu is held.
func (c *Client) wake() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// change calls a change method and returns the job's path.
func (c *Client) change(out []any, method string, args ...any) (dbus.ObjectPath, error) {
	if err := c.subscribe(); err != nil {
		return "", err
	}
	c.mu.Lock()
	gen := c.gen // a loss from now on is this job's too
	c.mu.Unlock()
	var job dbus.ObjectPath
	if err := c.call(method, args...).Store(append([]any{&job}, out...)...); err != nil {
		return "", callErr(err, true)
	}
	c.mu.Lock()
	c.started[job] = gen
	c.mu.Unlock()
	return job, nil
}

// AddNode starts adding a node; it returns the job and the number the node
// gets. Wait for the job to know the outcome.
func (c *Client) AddNode(name string, number uint16, votes uint32, links []string, attrs map[string]string) (dbus.ObjectPath, uint16, error) {
	if attrs == nil {
		attrs = map[string]string{}
	}
	var node dbus.ObjectPath
	job, err := c.change([]any{&node}, "AddNode", name, number, votes, links, attrs)
	if err != nil {
		return "", 0, err
	}
	num, err := strconv.ParseUint(string(node[strings.LastIndexByte(string(node), '/')+1:]), 10, 16)
	if err != nil {
		return job, 0, fmt.Errorf("concord-noded named the new node %q, which is not a node path", node)
	}
	return job, uint16(num), nil
}

// DeleteNode starts deleting a node.
func (c *Client) DeleteNode(name string) (dbus.ObjectPath, error) {
	return c.change(nil, "DeleteNode", name)
}

// EditNode starts changing a node: keys "votes" (uint32), "name" (string),
// "links" ([]string), "attributes" (map[string]string).
func (c *Client) EditNode(name string, changes map[string]any) (dbus.ObjectPath, error) {
	vs := make(map[string]dbus.Variant, len(changes))
	for k, v := range changes {
		vs[k] = dbus.MakeVariant(v)
	}
	return c.change(nil, "EditNode", name, vs)
}

// SetOption starts setting a free-form cluster option; "" removes it.
func (c *Client) SetOption(key, value string) (dbus.ObjectPath, error) {
	return c.change(nil, "SetOption", key, value)
}

// SetQuorum starts changing a [quorum] setting.
func (c *Client) SetQuorum(key, value string) (dbus.ObjectPath, error) {
	return c.change(nil, "SetQuorum", key, value)
}

// UnblockQuorum asks the daemon to force quorum on its partition.
func (c *Client) UnblockQuorum() error {
	return callErr(c.call("UnblockQuorum").Err, false)
}

// Wait waits for the job at path, started by this client, to end and
// returns how it ended; the error is JobEnded.Err for a job that ended,
// or wraps ErrLost when the daemon went away first, or ctx's error.
func (c *Client) Wait(ctx context.Context, path dbus.ObjectPath) (JobEnded, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gen, mine := c.started[path]
	if !mine {
		return JobEnded{}, fmt.Errorf("nodebus: Wait for %s, a job this client did not start or waited for already", path)
	}
	defer delete(c.started, path)
	for {
		if e, ok := c.ended[path]; ok {
			c.forget(path)
			return e, e.Err()
		}
		switch {
		case c.gen > gen:
			return JobEnded{}, fmt.Errorf("%w: it left the bus while job %s was under way", ErrLost, path)
		case c.closed:
			return JobEnded{}, fmt.Errorf("%w: the bus connection closed while job %s was under way", ErrLost, path)
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			c.mu.Lock()
			return JobEnded{}, fmt.Errorf("waiting for job %s: %w", path, ctx.Err())
		case <-changed:
		}
		c.mu.Lock()
	}
}
