package membership

import (
	"fmt"
	"slices"
)

func (n *Node) onData(m Message) {
	if !n.isSequencer() || m.View != n.view.ID || !n.view.Contains(m.From) {
		return
	}
	inc := m.Incarnation
	if m.From == n.id {
		inc = n.inc
	}
	st, ok := n.seqOrigin[m.From]
	var expect uint64
	switch {
	case ok && st.inc == inc:
		expect = st.msgID + 1
	case ok && st.inc > inc:
		return
	default:
		// First message of this origin in the view: it starts at the oldest
		// message the sender still queues, but never below what we delivered.
		expect = m.Seq
		if d := n.dedupe[m.From]; d.inc == inc && d.msgID+1 > expect {
			expect = d.msgID + 1
		} else if m.From == n.id && n.selfDelivered()+1 > expect {
			expect = n.selfDelivered() + 1
		}
	}
	if m.MsgID < expect || m.MsgID >= expect+sendWindow {
		return
	}
	if m.MsgID > expect {
		// Early: hold it until the gap before it fills.
		if !ok || st.inc == inc {
			if n.seqHeld[m.From] == nil {
				n.seqHeld[m.From] = map[uint64]Message{}
			}
			n.seqHeld[m.From][m.MsgID] = m
		}
		return
	}
	for {
		n.seqOrigin[m.From] = originOrder{inc: inc, msgID: m.MsgID}
		o := Message{Type: MsgOrdered, View: n.view.ID, Seq: n.nextSeq, Origin: m.From, OriginInc: inc,
			MsgID: m.MsgID, Op: m.Op, Group: m.Group, Payload: m.Payload}
		n.nextSeq++
		n.counters.Ordered++
		n.send(o)
		held := n.seqHeld[m.From]
		next, ok := held[m.MsgID+1]
		delete(held, m.MsgID)
		if !ok {
			return
		}
		delete(held, next.MsgID)
		m = next
	}
}

// selfDelivered is the highest own msgid delivered (own dedupe state).
func (n *Node) selfDelivered() uint64 {
	if len(n.queue) > 0 {
		return n.queue[0].msgID - 1
	}
	return n.nextMsgID
}

func (n *Node) onOrdered(m Message) {
	if m.View != n.view.ID || m.Seq == 0 {
		return
	}
	if m.Seq > n.maxKnown {
		n.maxKnown = m.Seq
	}
	if m.Seq <= n.recv || n.log[m.Seq] != nil {
		return
	}
	mm := m
	n.log[m.Seq] = &mm
	if m.Origin == n.id && m.OriginInc == n.inc && len(n.queue) > 0 {
		// Ordered: resending it would only make the sequencer drop it.
		if i := m.MsgID - n.queue[0].msgID; m.MsgID >= n.queue[0].msgID && i < uint64(len(n.queue)) {
			n.queue[i].ordered = true
		}
	}
	for n.log[n.recv+1] != nil {
		n.recv++
	}
	if n.recv < n.maxKnown && n.tick >= n.lastNack+2 {
		to := n.view.ID.Coord
		if n.following && n.inSync {
			to = n.syncCut.Holder
		}
		n.nack(to, true)
	}
	n.sendAck()
	if n.following {
		if n.inSync && !(n.doneValid && n.doneRound == n.follow) && n.recv >= n.syncCut.Seq {
			n.commitProgress()
		}
		return
	}
	n.advance()
}

func (n *Node) nack(to NodeID, force bool) {
	if n.recv >= n.maxKnown || to == n.id || to == 0 {
		return
	}
	if !force && n.tick < n.lastNack+2 {
		return
	}
	n.lastNack = n.tick
	n.counters.Nacks++
	n.send(Message{Type: MsgNack, To: to, View: n.view.ID, Seq: n.recv + 1, Last: n.maxKnown})
}

func (n *Node) onNack(m Message) {
	if m.View != n.view.ID || m.Seq == 0 || m.Last < m.Seq {
		return
	}
	last := min(m.Last, m.Seq+nackBurst-1)
	for s := m.Seq; s <= last; s++ {
		o := n.log[s]
		if o == nil {
			continue
		}
		r := *o
		r.To = m.From
		n.counters.Retransmits++
		n.send(r)
	}
}

func (n *Node) deliverUpTo(upto uint64) {
	for n.delivered < upto {
		s := n.delivered + 1
		m := n.log[s]
		if m == nil {
			panic(fmt.Sprintf("membership: node %d delivers seq %d of view %s it does not hold", n.id, s, n.view.ID))
		}
		n.delivered = s
		n.deliver(m, false)
	}
}

// deliverFlush finishes the old view at an install: every message up to
// the cut's stable point (someone may have delivered it), then only those
// whose origin survives with us. An origin elsewhere resends what it did
// not see delivered, so delivering it here too could order it twice.
func (n *Node) deliverFlush(c Cut) {
	n.deliverUpTo(max(n.delivered, min(c.Stable, c.Seq)))
	for n.delivered < c.Seq {
		s := n.delivered + 1
		m := n.log[s]
		if m == nil {
			panic(fmt.Sprintf("membership: node %d flushes seq %d of view %s it does not hold", n.id, s, n.view.ID))
		}
		n.delivered = s
		if contains(c.Survivors, m.Origin) {
			n.deliver(m, true)
		}
	}
}

func (n *Node) deliver(m *Message, unstable bool) {
	// Dedupe by (origin, incarnation, msgid).
	if m.Origin == n.id {
		if m.OriginInc != n.inc {
			return
		}
		if len(n.queue) == 0 || n.queue[0].msgID != m.MsgID {
			return
		}
		n.queue = n.queue[1:]
		// The window moved by one: its last place may hold a message
		// never sent, which need not wait for the next tick.
		if len(n.queue) >= sendWindow && !n.leaving && !n.following {
			if q := n.queue[sendWindow-1]; !q.sent {
				q.sent, q.lastSent = true, n.tick
				n.send(Message{Type: MsgData, To: n.view.ID.Coord, View: n.view.ID, MsgID: q.msgID, Seq: n.queue[0].msgID,
					Op: q.op, Group: q.group, Payload: q.payload})
			}
		}
	} else {
		d := n.dedupe[m.Origin]
		if m.OriginInc < d.inc || (m.OriginInc == d.inc && m.MsgID <= d.msgID) {
			return
		}
		n.dedupe[m.Origin] = originOrder{inc: m.OriginInc, msgID: m.MsgID}
	}
	switch m.Op {
	case OpData:
		if m.Group == "" || contains(n.view.Groups[m.Group], n.id) {
			n.counters.Delivered++
			n.events = append(n.events, Event{Delivery: &Delivery{Group: m.Group, From: m.Origin, Seq: m.Seq, Payload: m.Payload, Unstable: unstable}})
		}
	case OpJoin:
		if n.view.Contains(m.Origin) && !contains(n.view.Groups[m.Group], m.Origin) {
			g := append(slices.Clone(n.view.Groups[m.Group]), m.Origin)
			slices.Sort(g)
			n.view.Groups[m.Group] = g
		}
	case OpLeave:
		if g := n.view.Groups[m.Group]; contains(g, m.Origin) {
			g = slices.DeleteFunc(slices.Clone(g), func(x NodeID) bool { return x == m.Origin })
			if len(g) == 0 {
				delete(n.view.Groups, m.Group)
			} else {
				n.view.Groups[m.Group] = g
			}
		}
	}
}

// collect drops ordered messages every member received and we delivered.
func (n *Node) collect() {
	stable := min(n.stable(), n.delivered)
	for n.gcPoint < stable {
		n.gcPoint++
		delete(n.log, n.gcPoint)
	}
}

// due reports whether a queued message is to be sent now: it never was,
// or its last copy is unacknowledged for the retransmit time, which counts
// as a retransmit. If so it records the send.
func (n *Node) due(sent *bool, lastSent *uint64) bool {
	if *sent && n.tick < *lastSent+n.rtTicks {
		return false
	}
	if *sent {
		n.counters.Retransmits++
	}
	*sent, *lastSent = true, n.tick
	return true
}

// flushSends sends queued DATA to the sequencer within the window.
func (n *Node) flushSends() {
	if n.leaving || n.following || len(n.queue) == 0 {
		return
	}
	seqr := n.view.ID.Coord
	head := n.queue[0].msgID
	for i, q := range n.queue {
		if i >= sendWindow {
			break
		}
		if q.ordered || !n.due(&q.sent, &q.lastSent) {
			continue
		}
		n.send(Message{Type: MsgData, To: seqr, View: n.view.ID, MsgID: q.msgID, Seq: head, Op: q.op, Group: q.group, Payload: q.payload})
	}
}

func (n *Node) enqueue(op OpKind, group string, payload []byte) error {
	if n.leaving {
		return ErrLeaving
	}
	if len(payload) > n.cfg.MaxPayload {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrPayloadTooLarge, len(payload), n.cfg.MaxPayload)
	}
	if len(group) > MaxGroupName || (op != OpData && group == "") {
		return fmt.Errorf("%w: %q", ErrBadGroup, group)
	}
	if len(n.queue) >= n.maxQueue {
		return ErrQueueFull
	}
	n.nextMsgID++
	q := &queued{msgID: n.nextMsgID, op: op, group: group, payload: slices.Clone(payload)}
	n.queue = append(n.queue, q)
	if !n.following && len(n.queue) <= sendWindow {
		q.sent, q.lastSent = true, n.tick
		n.send(Message{Type: MsgData, To: n.view.ID.Coord, View: n.view.ID, MsgID: q.msgID, Seq: n.queue[0].msgID,
			Op: q.op, Group: q.group, Payload: q.payload})
		n.drain()
	}
	return nil
}

// Broadcast queues payload for totally ordered delivery to group ("" is
// every member). Every node that is a member of group at that point of the
// order delivers it; a live sender's message is never lost, even across
// view changes.
func (n *Node) Broadcast(group string, payload []byte) error {
	if err := n.enqueue(OpData, group, payload); err != nil {
		return err
	}
	n.counters.Broadcasts++
	return nil
}

// JoinGroup joins group through the total order.
func (n *Node) JoinGroup(name string) error { return n.enqueue(OpJoin, name, nil) }

// LeaveGroup leaves group through the total order.
func (n *Node) LeaveGroup(name string) error { return n.enqueue(OpLeave, name, nil) }
