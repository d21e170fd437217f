package membership

import (
	"fmt"
	"slices"
)

// Send queues a reliable FIFO message to a member of the current view. It
// is retransmitted until acknowledged and dropped if to leaves the view.
func (n *Node) Send(to NodeID, payload []byte) error {
	if n.leaving {
		return ErrLeaving
	}
	if len(payload) > n.cfg.MaxPayload {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrPayloadTooLarge, len(payload), n.cfg.MaxPayload)
	}
	p := n.peers[to]
	if p == nil || !n.view.Contains(to) {
		return fmt.Errorf("%w: node %d", ErrNotMember, to)
	}
	if len(p.uQueue) >= n.maxQueue {
		return ErrQueueFull
	}
	p.uNext++
	p.uQueue = append(p.uQueue, &outUnicast{seq: p.uNext, payload: slices.Clone(payload)})
	n.counters.UnicastSent++
	n.unicastSend(to, p)
	return nil
}

func (n *Node) unicastSend(to NodeID, p *peer) {
	if len(p.uQueue) == 0 {
		return
	}
	base := p.uQueue[0].seq
	for i, u := range p.uQueue {
		if i >= unicastWindow {
			break
		}
		if !n.due(&u.sent, &u.lastSent) {
			continue
		}
		n.send(Message{Type: MsgUnicast, To: to, Seq: u.seq, Last: base, Payload: u.payload})
	}
}

func (n *Node) unicastTick() {
	for _, id := range n.order {
		n.unicastSend(id, n.peers[id])
	}
}

func (n *Node) onUnicast(m Message) {
	p := n.peers[m.From]
	if m.Incarnation != p.uInc {
		p.uInc, p.uExpect, p.uHeld = m.Incarnation, m.Last, nil
	}
	if m.Last > p.uExpect {
		// The sender gave up on what came before (we left its view).
		p.uExpect = m.Last
		for s := range p.uHeld {
			if s < p.uExpect {
				delete(p.uHeld, s)
			}
		}
	}
	if m.Seq > p.uExpect && m.Seq < p.uExpect+unicastWindow {
		if p.uHeld == nil {
			p.uHeld = map[uint64][]byte{}
		}
		p.uHeld[m.Seq] = m.Payload
	}
	payload, ok := m.Payload, m.Seq == p.uExpect
	for ok {
		delete(p.uHeld, p.uExpect)
		n.counters.UnicastReceived++
		n.events = append(n.events, Event{Delivery: &Delivery{From: m.From, Seq: p.uExpect, Payload: payload, Unicast: true}})
		p.uExpect++
		payload, ok = p.uHeld[p.uExpect]
	}
	if p.uExpect > 0 {
		n.send(Message{Type: MsgUnicastAck, To: m.From, Seq: p.uExpect - 1, OriginInc: m.Incarnation})
	}
}

func (n *Node) onUnicastAck(m Message) {
	if m.OriginInc != n.inc {
		return
	}
	p := n.peers[m.From]
	i := 0
	for i < len(p.uQueue) && p.uQueue[i].seq <= m.Seq {
		i++
	}
	p.uQueue = p.uQueue[i:]
}
