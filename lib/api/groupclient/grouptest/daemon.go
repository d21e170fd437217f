package grouptest

import (
	"errors"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/concord-ha/concord/lib/api/groupwire"
)

// Daemon is a one-node group service on a Server: join, leave, send,
// send-to, groups and members, with views, messages in one order and
// credits; barriers and transactions are refused (code Invalid).
type Daemon struct {
	*Server
	window uint32

	mu       sync.Mutex
	sessions []*session
	groups   map[string]*group
	clients  uint32
	msgs     uint64
	joined   chan string // a group name for every join, for tests to wait on
}

type session struct {
	c    *Conn
	self groupwire.Member
}

type group struct {
	view    groupwire.ViewID
	members []*session
}

// StartDaemon serves on a new Server until the test ends, welcoming
// clients with a window of window sends.
func StartDaemon(t testing.TB, window uint32) *Daemon {
	t.Helper()
	d, err := NewDaemon(window)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// NewDaemon is StartDaemon outside a test; Close stops it.
func NewDaemon(window uint32) (*Daemon, error) {
	srv, err := NewServer()
	if err != nil {
		return nil, err
	}
	d := &Daemon{Server: srv, window: window, groups: map[string]*group{}, joined: make(chan string, 100)}
	go func() {
		for {
			c, err := d.l.AcceptUnix()
			if err != nil {
				return
			}
			go d.serve(&Conn{c: c})
		}
	}()
	return d, nil
}

// Joined returns a channel that receives a group's name at each join.
func (d *Daemon) Joined() <-chan string { return d.joined }

func (d *Daemon) serve(c *Conn) {
	defer c.Close()
	pid, uid := uint32(0), uint32(0)
	if raw, err := c.c.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
				pid, uid = uint32(cred.Pid), cred.Uid
			}
		})
	}
	d.mu.Lock()
	d.clients++
	s := &session{c: c, self: groupwire.Member{Node: 1, Inc: 1, Client: d.clients, PID: pid, UID: uid}}
	d.mu.Unlock()
	if _, err := c.Welcome(groupwire.Record{Self: s.self, Window: d.window, MaxPayload: groupwire.MaxPayload, MaxQueue: 1024, Name: "fake"}); err != nil {
		return
	}
	d.mu.Lock()
	d.sessions = append(d.sessions, s)
	d.mu.Unlock()
	defer d.closed(s)
	c.c.SetReadDeadline(time.Time{})
	for {
		r, err := c.recvBlocking()
		if err != nil {
			return
		}
		d.mu.Lock()
		d.handle(s, &r)
		d.mu.Unlock()
	}
}

// handle carries out one request. Called with d.mu held.
func (d *Daemon) handle(s *session, r *groupwire.Record) {
	reply := func(code groupwire.Code, text string) {
		s.c.Send(groupwire.Record{Type: groupwire.TReply, Tag: r.Tag, Code: code, Text: text})
	}
	g := d.groups[r.Group]
	member := g != nil && slices.Contains(g.members, s)
	switch r.Type {
	case groupwire.TJoin:
		if member {
			reply(groupwire.Already, "already a member of "+r.Group)
			return
		}
		if g == nil {
			g = &group{}
			d.groups[r.Group] = g
		}
		g.members = append(g.members, s)
		reply(groupwire.OK, "")
		d.newView(r.Group, g, groupwire.Change{Member: s.self, Kind: groupwire.Joined}, nil)
		select {
		case d.joined <- r.Group:
		default:
		}
	case groupwire.TLeave:
		if !member {
			reply(groupwire.NotMember, "not a member of "+r.Group)
			return
		}
		d.remove(r.Group, g, s, groupwire.Left)
		reply(groupwire.OK, "")
	case groupwire.TSend, groupwire.TSendTo:
		defer s.c.Send(groupwire.Record{Type: groupwire.TCredit, Count: 1})
		if !member {
			s.c.Send(groupwire.Record{Type: groupwire.TSendFailed, Tag: r.Tag, Code: groupwire.NotMember, Text: "not a member of " + r.Group})
			return
		}
		d.msgs++
		m := groupwire.Record{Type: groupwire.TMessage, Group: r.Group, View: g.view, From: s.self, Order: r.Order,
			ID: groupwire.MsgID{Node: 1, Inc: 1, Seq: d.msgs}, Payload: r.Payload}
		for _, o := range g.members {
			if r.Type == groupwire.TSendTo {
				if o.self != r.To {
					continue
				}
				m.Direct = true
			}
			o.c.Send(m)
		}
	case groupwire.TGroups:
		l := groupwire.Record{Type: groupwire.TGroupList, Tag: r.Tag}
		for _, name := range slices.Sorted(maps.Keys(d.groups)) {
			l.Groups = append(l.Groups, groupwire.GroupInfo{Group: name, View: d.groups[name].view, Members: uint32(len(d.groups[name].members))})
		}
		s.c.Send(l)
	case groupwire.TMembers:
		if g == nil {
			reply(groupwire.NotFound, "no group "+r.Group)
			return
		}
		s.c.Send(groupwire.Record{Type: groupwire.TMemberList, Tag: r.Tag, Group: r.Group, View: g.view, Members: members(g)})
	default:
		reply(groupwire.Invalid, "the fake daemon does not do "+r.Type.String())
	}
}

func members(g *group) []groupwire.Member {
	var ms []groupwire.Member
	for _, o := range g.members {
		ms = append(ms, o.self)
	}
	return ms
}

// newView installs g's next view and tells its members, and also to, a
// member that just left. Called with d.mu held.
func (d *Daemon) newView(name string, g *group, ch groupwire.Change, to *session) {
	g.view.Seq++
	g.view.Coord = 1
	g.view.N++
	v := groupwire.Record{Type: groupwire.TView, Group: name, View: g.view, Members: members(g), Changes: []groupwire.Change{ch}}
	for _, o := range g.members {
		o.c.Send(v)
	}
	if to != nil {
		to.c.Send(v)
	}
}

func (d *Daemon) remove(name string, g *group, s *session, kind groupwire.ChangeKind) {
	g.members = slices.DeleteFunc(g.members, func(o *session) bool { return o == s })
	var to *session
	if kind == groupwire.Left {
		to = s
	}
	d.newView(name, g, groupwire.Change{Member: s.self, Kind: kind}, to)
	if len(g.members) == 0 {
		delete(d.groups, name)
	}
}

func (d *Daemon) closed(s *session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, g := range d.groups {
		if slices.Contains(g.members, s) {
			d.remove(name, g, s, groupwire.Closed)
		}
	}
	d.sessions = slices.DeleteFunc(d.sessions, func(o *session) bool { return o == s })
}

// recvBlocking is Recv without the test timeout: a session may idle.
func (c *Conn) recvBlocking() (groupwire.Record, error) {
	if len(c.recs) == 0 {
		p, err := c.read()
		if err != nil {
			return groupwire.Record{}, err
		}
		if c.recs, err = groupwire.Records(p); err != nil {
			return groupwire.Record{}, errors.Join(err, os.ErrInvalid)
		}
	}
	r := c.recs[0]
	c.recs = c.recs[1:]
	return r, nil
}
