package daemon

import (
	"errors"
	"fmt"

	"github.com/concord-ha/concord/daemons/concord-noded/internal/groupsrv"
	"github.com/concord-ha/concord/lib/api/groupwire"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/core/groups"
	"github.com/concord-ha/concord/lib/core/membership"
)

// Process groups: the loop runs lib/core/groups on membership's total
// order and serves its local clients through groupsrv's sessions.

// groupBatch bounds one membership payload of batched group messages; a
// message larger than it goes alone (membership takes up to
// groupMaxPayload, fragmented on the wire).
// groupWindow is how many sends a client may have in flight, and
// groupQueue how many events it may leave unread before it is removed
// from its groups.
const (
	groupBatch      = 48 << 10
	groupMaxPayload = 80_000
	groupWindow     = 1024
	groupQueue      = 8192
	groupInFlight   = 2 // batches in flight before a partial one waits
)

// gsession is the loop's state of one group session.
type gsession struct {
	s    *groupsrv.Session
	name string // the client's name, from its hello
	// dirty: its groups changed since Events last heard of it; told:
	// what Events last heard (nil: nothing yet).
	dirty bool
	told  *nodebus.SessionInfo
	// sends not yet completed, oldest first: they complete in this order
	// (see groups.Core.InFlight), which is how credits and late failures
	// find the client's tag.
	sends []pendingSend
	// joins and leaves in flight: answered once the order applied them,
	// so that a client that joined is a member when Join returns.
	joining map[string]uint32 // group -> tag
	leaving map[string]uint32
}

type pendingSend struct {
	id  groups.MsgID
	tag uint32
}

func (d *Daemon) startGroups() error {
	c, err := groups.New(groups.Config{Node: membership.NodeID(d.self.Number), Incarnation: d.inc,
		MaxInFlight: groupWindow, MaxQueue: groupQueue, MaxPayload: groupwire.MaxPayload},
		membership.ViewID{Coord: membership.NodeID(d.self.Number)}, []membership.NodeID{membership.NodeID(d.self.Number)})
	if err != nil {
		return err
	}
	d.gcore = c
	d.gsess = map[uint32]*gsession{}
	d.accounts = systemAccounts{}
	return nil
}

// groupInput handles what a session said; the loop flushes the core's
// output (flushGroups) once it has taken every input waiting.
func (d *Daemon) groupInput(in groupsrv.Input) {
	switch in.Kind {
	case groupsrv.Opened:
		d.groupOpen(in.S, in.Name, in.Records[0].Tag)
	case groupsrv.Requests:
		gs := d.gsess[in.S.Client]
		if gs == nil || gs.s != in.S {
			return
		}
		for i := range in.Records {
			d.groupRequest(gs, &in.Records[i])
		}
	case groupsrv.Consumed:
		if gs := d.gsess[in.S.Client]; gs != nil && gs.s == in.S {
			d.gcore.Consumed(in.S.Client, in.Count)
		}
	case groupsrv.Closed:
		gs := d.gsess[in.S.Client]
		if gs == nil || gs.s != in.S {
			return
		}
		delete(d.gsess, in.S.Client)
		how := "closed"
		if in.Died {
			how = "ended with its process"
		}
		d.log.Info(fmt.Sprintf("group session %d %s", in.S.Client, how), "client", in.S.Client, "pid", in.S.PID, "uid", in.S.UID)
		d.gcore.Close(in.S.Client, in.Died)
		d.events.SessionClosed(in.S.Client)
	}
}

func (d *Daemon) groupOpen(s *groupsrv.Session, name string, tag uint32) {
	if all, mine := groupRulesFor(d.cfg.GroupRules(), d.accounts, s.UID, s.GID); !all && len(mine) == 0 {
		why := fmt.Sprintf("uid %d may not use process groups on this node (root may; others as the groups.allow.* options say)", s.UID)
		d.log.Warn("group session refused: "+why, "pid", s.PID, "uid", s.UID, "client_name", name)
		s.CloseAfter(groupwire.Record{Type: groupwire.TReply, Tag: tag, Code: groupwire.Denied, Text: why})
		return
	}
	s.Client = d.gcore.Open(s.PID, s.UID)
	d.gsess[s.Client] = &gsession{s: s, name: name, joining: map[string]uint32{}, leaving: map[string]uint32{}}
	d.sessionDirty(s.Client)
	self := groups.Member{Node: membership.NodeID(d.self.Number), Inc: d.inc, Client: s.Client, PID: s.PID, UID: s.UID}
	d.log.Info(fmt.Sprintf("group session %d opened by pid %d (%s)", s.Client, s.PID, name), "client", s.Client, "pid", s.PID, "uid", s.UID, "client_name", name)
	s.Answer(groupwire.Record{Type: groupwire.TWelcome, Tag: tag, Version: groupwire.Version, Self: wireMember(self),
		Window: groupWindow, MaxPayload: groupwire.MaxPayload, MaxQueue: groupQueue,
		Name: d.cfg.Name})
}

func (d *Daemon) groupRequest(gs *gsession, r *groupwire.Record) {
	c := gs.s.Client
	var err error
	switch r.Type {
	case groupwire.TJoin:
		if err := mayJoin(d.cfg.GroupRules(), d.accounts, gs.s.UID, gs.s.GID, r.Group); err != nil {
			d.log.Warn("group join refused: "+err.Error(), "pid", gs.s.PID, "uid", gs.s.UID, "group", r.Group)
			gs.s.Answer(groupwire.Record{Type: groupwire.TReply, Tag: r.Tag, Code: groupwire.Denied, Text: err.Error()})
			return
		}
		if err = d.gcore.Join(c, r.Group); err == nil {
			gs.joining[r.Group] = r.Tag
			return
		}
	case groupwire.TLeave:
		if err = d.gcore.Leave(c, r.Group); err == nil {
			gs.leaving[r.Group] = r.Tag
			return
		}
	case groupwire.TBarrier:
		err = d.gcore.EnterBarrier(c, r.Group, r.Barrier)
	case groupwire.TTxBegin:
		err = d.gcore.TxBegin(c)
	case groupwire.TTxAdd:
		err = d.gcore.TxAdd(c, r.Group, r.Payload)
	case groupwire.TSend, groupwire.TSendTo, groupwire.TTxCommit:
		var id groups.MsgID
		switch r.Type {
		case groupwire.TSend:
			id, err = d.gcore.Send(c, r.Group, groups.Order(r.Order), r.Payload)
		case groupwire.TSendTo:
			id, err = d.gcore.SendTo(c, r.Group, coreMember(r.To), r.Payload)
		default:
			id, err = d.gcore.TxCommit(c, groups.Order(r.Order))
		}
		if err != nil {
			gs.s.Answer(groupwire.Record{Type: groupwire.TSendFailed, Tag: r.Tag, Code: groupCode(err), Text: err.Error()})
		} else {
			gs.sends = append(gs.sends, pendingSend{id: id, tag: r.Tag})
		}
		return
	case groupwire.TGroups:
		var gl []groupwire.GroupInfo
		for _, g := range d.gcore.Groups() {
			id, ms := d.gcore.Members(g)
			gl = append(gl, groupwire.GroupInfo{Group: g, View: wireView(id), Members: uint32(len(ms))})
		}
		gs.s.Answer(groupwire.Record{Type: groupwire.TGroupList, Tag: r.Tag, Groups: gl})
		return
	case groupwire.TMembers:
		id, ms := d.gcore.Members(r.Group)
		if len(ms) == 0 {
			gs.s.Answer(groupwire.Record{Type: groupwire.TReply, Tag: r.Tag, Code: groupwire.NotFound, Text: fmt.Sprintf("no group %q", r.Group)})
			return
		}
		gs.s.Answer(groupwire.Record{Type: groupwire.TMemberList, Tag: r.Tag, Group: r.Group, View: wireView(id), Members: wireMembers(ms)})
		return
	default:
		err = fmt.Errorf("%s is not a request", r.Type)
	}
	rep := groupwire.Record{Type: groupwire.TReply, Tag: r.Tag}
	if err != nil {
		rep.Code, rep.Text = groupCode(err), err.Error()
	}
	gs.s.Answer(rep)
}

func groupCode(err error) groupwire.Code {
	switch {
	case errors.Is(err, groups.ErrBadGroup):
		return groupwire.BadName
	case errors.Is(err, groups.ErrMember):
		return groupwire.Already
	case errors.Is(err, groups.ErrNotMember):
		return groupwire.NotMember
	case errors.Is(err, groups.ErrWouldBlock):
		return groupwire.WouldBlock
	case errors.Is(err, groups.ErrTooLarge):
		return groupwire.TooLarge
	case errors.Is(err, groups.ErrNoTx):
		return groupwire.NoTx
	}
	return groupwire.Invalid
}

// groupView tells the groups core about a view membership installed.
func (d *Daemon) groupView(v membership.View, survivors []membership.NodeID) {
	if err := d.gcore.NodeView(v.ID, v.Members, survivors); err != nil {
		d.log.Error("process groups: node view refused", "view", v.ID.Seq, "err", err)
	}
}

// groupDelivered hands the groups core a payload membership delivered.
func (d *Daemon) groupDelivered(from membership.NodeID, p []byte, unstable bool) {
	msgs, err := groups.SplitBatch(p)
	if err != nil {
		d.counters["group_bad_messages"]++
		d.log.Warn("process groups: undecodable message from node; ignored", "node", from, "err", err)
	}
	for _, m := range msgs {
		if err := d.gcore.Deliver(from, m, !unstable); err != nil {
			d.counters["group_bad_messages"]++
			d.log.Warn("process groups: message refused", "node", from, "kind", m.Kind, "err", err)
		}
	}
}

// flushGroups moves the groups core's output on: its broadcasts into
// membership's queue (batched; what does not fit waits in d.gpend), its
// events to the sessions, and credits for completed sends.
func (d *Daemon) flushGroups() {
	rd := d.gcore.Ready()
	d.gpend = append(d.gpend, rd.Broadcast...)
	d.pushGroupMsgs()
	for i := range rd.Events {
		d.groupEvent(&rd.Events[i])
	}
	d.groupViews(rd.Views)
	d.sessionsChanged(false)
	for c, gs := range d.gsess {
		done := len(gs.sends) - d.gcore.InFlight(c)
		if done <= 0 {
			continue
		}
		gs.sends = gs.sends[done:]
		gs.s.Answer(groupwire.Record{Type: groupwire.TCredit, Count: uint32(done)})
	}
}

// pushGroupMsgs offers waiting group messages to membership, packed into
// batches, until its queue is full. While groupInFlight batches are in
// flight it holds back a batch that is not full: the next delivery of
// one of them brings it back here (process), by when more have come, so
// under load batches grow and the order costs less per message, and
// alone a message goes at once.
func (d *Daemon) pushGroupMsgs() {
	for len(d.gpend) > 0 {
		if d.core.Pending() >= groupInFlight && d.pendingSize() < groupBatch {
			return
		}
		n, size := 0, 0
		for n < len(d.gpend) {
			s := groupMsgSize(&d.gpend[n])
			if n > 0 && size+s > groupBatch {
				break
			}
			size += s
			n++
		}
		p, err := groups.AppendBatch(d.gbuf[:0], d.gpend[:n])
		if err != nil {
			d.log.Error("process groups: cannot encode messages; dropped", "count", n, "err", err)
			d.gpend = d.gpend[n:]
			continue
		}
		d.gbuf = p
		if err := d.core.Broadcast("", p); err != nil {
			if !errors.Is(err, membership.ErrQueueFull) {
				d.log.Error("process groups: membership refused messages; dropped", "count", n, "bytes", len(p), "err", err)
				d.gpend = d.gpend[n:]
				continue
			}
			return // retried after membership's next turn
		}
		d.gpend = d.gpend[n:]
	}
	d.gpend = nil
}

// pendingSize estimates the encoded size of the waiting group messages,
// up to a batch.
func (d *Daemon) pendingSize() int {
	n := 0
	for i := range d.gpend {
		if n += groupMsgSize(&d.gpend[i]); n >= groupBatch {
			break
		}
	}
	return n
}

// groupMsgSize estimates a message's encoded size for batching.
func groupMsgSize(m *groups.Msg) int {
	n := 64 + len(m.Payload) + len(m.Group) + len(m.Reason)
	for _, p := range m.Parts {
		n += 8 + len(p.Group) + len(p.Payload)
	}
	for _, g := range m.Sync {
		n += 8 + len(g.Group) + 32*len(g.Members)
	}
	return n
}

func (d *Daemon) groupEvent(ev *groups.Event) {
	gs := d.gsess[ev.Client]
	if gs == nil {
		return
	}
	var r groupwire.Record
	switch ev.Kind {
	case groups.EvView:
		r = groupwire.Record{Type: groupwire.TView, Group: ev.Group, View: wireView(ev.View), Members: wireMembers(ev.Members)}
		var answer *groupwire.Record
		for _, ch := range ev.Changes {
			r.Changes = append(r.Changes, groupwire.Change{Member: wireMember(ch.Member), Kind: groupwire.ChangeKind(ch.Kind), Reason: ch.Reason})
			if ch.Member.Client != ev.Client || ch.Member.Node != membership.NodeID(d.self.Number) || ch.Member.Inc != d.inc {
				continue
			}
			pending := gs.leaving
			if ch.Kind == groups.Joined {
				pending = gs.joining
			}
			if tag, ok := pending[ev.Group]; ok {
				delete(pending, ev.Group)
				answer = &groupwire.Record{Type: groupwire.TReply, Tag: tag}
			}
		}
		if answer != nil {
			// The view first: the client is a member (or not) when the
			// answer comes.
			gs.s.Event(r)
			gs.s.Answer(*answer)
			return
		}
	case groups.EvMessage:
		r = groupwire.Record{Type: groupwire.TMessage, Group: ev.Group, View: wireView(ev.View), From: wireMember(ev.From),
			Order: groupwire.Order(ev.Order), Direct: ev.Direct, ID: wireID(ev.ID), Payload: ev.Payload}
	case groups.EvTx:
		r = groupwire.Record{Type: groupwire.TTx, From: wireMember(ev.From), Order: groupwire.Order(ev.Order), Tx: ev.Tx, ID: wireID(ev.ID)}
		for _, p := range ev.Parts {
			r.Parts = append(r.Parts, groupwire.Part{Group: p.Group, Payload: p.Payload})
		}
	case groups.EvBarrier:
		r = groupwire.Record{Type: groupwire.TBarrierDone, Group: ev.Group, Barrier: ev.Barrier, Failed: ev.Failed,
			Text: ev.Reason, Members: wireMembers(ev.Members)}
	case groups.EvSendFailed:
		r = groupwire.Record{Type: groupwire.TSendFailed, Code: groupwire.NotMember, ID: wireID(ev.ID), Text: ev.Reason}
		for _, s := range gs.sends {
			if s.id == ev.ID {
				r.Tag = s.tag
				break
			}
		}
	default:
		// EvWritable: credits say it; the event is taken at once.
		d.gcore.Consumed(ev.Client, 1)
		return
	}
	gs.s.Event(r)
}

func wireMember(m groups.Member) groupwire.Member {
	return groupwire.Member{Node: uint16(m.Node), Inc: m.Inc, Client: m.Client, PID: m.PID, UID: m.UID}
}

func coreMember(m groupwire.Member) groups.Member {
	return groups.Member{Node: membership.NodeID(m.Node), Inc: m.Inc, Client: m.Client, PID: m.PID, UID: m.UID}
}

func wireMembers(ms []groups.Member) []groupwire.Member {
	out := make([]groupwire.Member, len(ms))
	for i, m := range ms {
		out[i] = wireMember(m)
	}
	return out
}

func wireView(v groups.GroupViewID) groupwire.ViewID {
	return groupwire.ViewID{Seq: v.View.Seq, Coord: uint16(v.View.Coord), N: v.N, Branch: v.Branch}
}

func wireID(id groups.MsgID) groupwire.MsgID {
	return groupwire.MsgID{Node: uint16(id.Node), Inc: id.Inc, Seq: id.Seq}
}
