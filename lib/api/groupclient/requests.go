package groupclient

import (
	"context"
	"encoding/binary"

	"github.com/concord-ha/concord/lib/api/groupwire"
)

// encode checks r as the daemon would (names, payload size) and encodes it
// with tag 0, to be set once the request has its number.
func (s *Session) encode(op string, b []byte, r *groupwire.Record) ([]byte, error) {
	if err := s.check(op, r); err != nil {
		return b, err
	}
	if b == nil {
		b = make([]byte, 0, groupwire.HeaderLen+64+len(r.Group)+len(r.Payload))
	}
	out, err := groupwire.Append(b, r)
	if err != nil {
		return b, codeError(op, groupwire.Invalid, "%v", err)
	}
	return out, nil
}

func (s *Session) check(op string, r *groupwire.Record) error {
	switch r.Type {
	case groupwire.TJoin, groupwire.TLeave, groupwire.TSend, groupwire.TSendTo, groupwire.TBarrier, groupwire.TTxAdd, groupwire.TMembers:
		if err := groupwire.CheckName(r.Group); err != nil {
			return codeError(op, groupwire.BadName, "group %q: %v", r.Group, err)
		}
	}
	if r.Type == groupwire.TBarrier {
		if err := groupwire.CheckName(r.Barrier); err != nil {
			return codeError(op, groupwire.BadName, "barrier %q: %v", r.Barrier, err)
		}
	}
	if len(r.Payload) > s.maxPayload {
		return codeError(op, groupwire.TooLarge, "payload of %d bytes, more than %d", len(r.Payload), s.maxPayload)
	}
	return nil
}

func setTag(rec []byte, tag uint32) { binary.LittleEndian.PutUint32(rec[8:], tag) }

// call sends a request that has an answer and waits for it. If ctx ends
// first, the request may still take effect.
func (s *Session) call(ctx context.Context, op string, r *groupwire.Record) (groupwire.Record, error) {
	p, err := s.encode(op, nil, r)
	if err != nil {
		return groupwire.Record{}, err
	}
	c := &call{op: r.Type}
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return groupwire.Record{}, err
	}
	tag := s.newTag()
	s.pending[tag] = c
	s.mu.Unlock()
	setTag(p, tag)
	if err := s.writePacket(ctx, p); err != nil {
		s.mu.Lock()
		delete(s.pending, tag)
		s.mu.Unlock()
		return groupwire.Record{}, err
	}
	if err := s.await(ctx, false, func() bool { return c.done }); err != nil {
		s.mu.Lock()
		c.abandoned = true
		s.mu.Unlock()
		return groupwire.Record{}, err
	}
	if c.rec.Type == groupwire.TReply && c.rec.Code != groupwire.OK {
		return c.rec, &Error{Op: op, Code: c.rec.Code, Text: c.rec.Text}
	}
	return c.rec, nil
}

// Join makes this session a member of group. Its first view comes as an
// event.
func (s *Session) Join(ctx context.Context, group string) error {
	_, err := s.call(ctx, "join", &groupwire.Record{Type: groupwire.TJoin, Group: group})
	return err
}

// Leave ends this session's membership of group.
func (s *Session) Leave(ctx context.Context, group string) error {
	_, err := s.call(ctx, "leave", &groupwire.Record{Type: groupwire.TLeave, Group: group})
	return err
}

// Barrier enters barrier name of group. It returns once the daemon took
// it; the outcome, for every member of the view together, comes as a
// BarrierDone event.
func (s *Session) Barrier(ctx context.Context, group, name string) error {
	_, err := s.call(ctx, "barrier", &groupwire.Record{Type: groupwire.TBarrier, Group: group, Barrier: name})
	return err
}

// Begin opens a transaction: the messages Add gives it are delivered all
// or none, at one point of the order, once Commit sends it. A session has
// at most one transaction open.
func (s *Session) Begin(ctx context.Context) error {
	_, err := s.call(ctx, "tx-begin", &groupwire.Record{Type: groupwire.TTxBegin})
	return err
}

// Add adds a message to group to the open transaction.
func (s *Session) Add(ctx context.Context, group string, payload []byte) error {
	_, err := s.call(ctx, "tx-add", &groupwire.Record{Type: groupwire.TTxAdd, Group: group, Payload: payload})
	return err
}

// Commit sends the open transaction, as one send (it takes credit like
// Send), and returns its tag.
func (s *Session) Commit(ctx context.Context, order groupwire.Order) (uint32, error) {
	return s.send(ctx, "tx-commit", &groupwire.Record{Type: groupwire.TTxCommit, Order: order}, true)
}

// Groups lists the cluster's groups.
func (s *Session) Groups(ctx context.Context) ([]groupwire.GroupInfo, error) {
	r, err := s.call(ctx, "groups", &groupwire.Record{Type: groupwire.TGroups})
	return r.Groups, err
}

// Members lists group's current members, in the order of its view.
func (s *Session) Members(ctx context.Context, group string) (groupwire.ViewID, []groupwire.Member, error) {
	r, err := s.call(ctx, "members", &groupwire.Record{Type: groupwire.TMembers, Group: group})
	return r.View, r.Members, err
}

// Send sends payload to every member of group, this session included, in
// order (Agreed or Safe), waiting for credit while the window is used up
// (see TrySend). It returns the send's tag: a SendFailed event with that
// tag, now or later, says it was refused.
func (s *Session) Send(ctx context.Context, group string, order groupwire.Order, payload []byte) (uint32, error) {
	return s.send(ctx, "send", &groupwire.Record{Type: groupwire.TSend, Group: group, Order: order, Payload: payload}, true)
}

// TrySend is Send without the wait: with the window used up, it returns an
// error that is ErrWouldBlock; credit comes back as the daemon completes
// sends, which Next, Drain and Send read.
func (s *Session) TrySend(ctx context.Context, group string, order groupwire.Order, payload []byte) (uint32, error) {
	return s.send(ctx, "send", &groupwire.Record{Type: groupwire.TSend, Group: group, Order: order, Payload: payload}, false)
}

// SendTo sends payload to one member of group, in the group's order.
func (s *Session) SendTo(ctx context.Context, group string, to groupwire.Member, payload []byte) (uint32, error) {
	return s.send(ctx, "send-to", &groupwire.Record{Type: groupwire.TSendTo, Group: group, To: to, Payload: payload}, true)
}

// send takes one credit, waiting for it if block, and sends r.
func (s *Session) send(ctx context.Context, op string, r *groupwire.Record, block bool) (uint32, error) {
	p, err := s.encode(op, nil, r)
	if err != nil {
		return 0, err
	}
	var tag uint32
	take := func() bool {
		if s.err == nil && s.inflight < s.window {
			s.inflight++
			tag = s.newTag()
			return true
		}
		return false
	}
	if block {
		if err := s.await(ctx, false, take); err != nil {
			return 0, err
		}
	} else {
		s.mu.Lock()
		if !take() {
			s.poll()
		}
		if tag == 0 && !take() {
			err := s.err
			if err == nil {
				err = codeError(op, groupwire.WouldBlock, "%d sends in flight, the window is %d", s.inflight, s.window)
			}
			s.mu.Unlock()
			return 0, err
		}
		s.mu.Unlock()
	}
	setTag(p, tag)
	if err := s.writePacket(ctx, p); err != nil {
		s.giveBack(1)
		return 0, err
	}
	return tag, nil
}

// giveBack returns the credit of sends that were not sent.
func (s *Session) giveBack(n uint32) {
	s.mu.Lock()
	s.inflight -= n
	s.notify()
	s.mu.Unlock()
}

// SendBatch sends each payload to group as Send would, putting as many
// sends into one packet as the credit and the packet size allow, and
// returns their tags, of those sent so far when it fails.
func (s *Session) SendBatch(ctx context.Context, group string, order groupwire.Order, payloads [][]byte) ([]uint32, error) {
	for _, pl := range payloads {
		if err := s.check("send", &groupwire.Record{Type: groupwire.TSend, Group: group, Order: order, Payload: pl}); err != nil {
			return nil, err
		}
	}
	tags := make([]uint32, 0, len(payloads))
	size := 0
	for _, pl := range payloads {
		size += groupwire.HeaderLen + 2 + len(group) + 1 + 4 + len(pl)
	}
	p := make([]byte, 0, min(size, groupwire.MaxPacket))
	for len(payloads) > 0 {
		var n uint32
		err := s.await(ctx, false, func() bool {
			if s.err != nil || s.inflight >= s.window {
				return false
			}
			n = min(s.window-s.inflight, uint32(min(len(payloads), groupwire.MaxPacket/groupwire.HeaderLen)))
			s.inflight += n
			return true
		})
		if err != nil {
			return tags, err
		}
		p = p[:0]
		var k uint32
		for ; k < n; k++ {
			q, err := groupwire.Append(p, &groupwire.Record{Type: groupwire.TSend, Group: group, Order: order, Payload: payloads[k]})
			if err != nil || len(q) > groupwire.MaxPacket {
				break
			}
			p = q
		}
		if k == 0 {
			s.giveBack(n) // cannot happen: one record always fits a packet
			return tags, codeError("send", groupwire.Invalid, "a send does not fit a packet")
		}
		s.mu.Lock()
		if k < n {
			s.inflight -= n - k
			s.notify()
		}
		for at := 0; at < len(p); at += int(binary.LittleEndian.Uint32(p[at:])) {
			t := s.newTag()
			setTag(p[at:], t)
			tags = append(tags, t)
		}
		s.mu.Unlock()
		if err := s.writePacket(ctx, p); err != nil {
			s.giveBack(k)
			return tags[:len(tags)-int(k)], err
		}
		payloads = payloads[k:]
	}
	return tags, nil
}

// Drain waits until every send so far has completed: delivered, or
// refused with a SendFailed event.
func (s *Session) Drain(ctx context.Context) error {
	return s.await(ctx, false, func() bool { return s.inflight == 0 })
}
