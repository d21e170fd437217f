package groups

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/core/membership"
)

// TestOverMembership runs Cores on real membership nodes over a simulated
// network (delays, reorders, drops, partitions, crashes and restarts),
// as the daemon will: membership's view events go to NodeView, its
// deliveries to Deliver, the Cores' broadcasts to membership.Broadcast.
// Payloads are Msg's wire encoding; deliveries pass !Delivery.Unstable as
// stable. Every check of TestSim runs except the safe one, which needs to
// know what each node received, and membership does not tell.
func TestOverMembership(t *testing.T) {
	seeds := 30
	if testing.Short() {
		seeds = 5
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		r := newRealSim(t, seed, 3+int(seed%2))
		if v, _ := strconv.Atoi(os.Getenv("GROUPS_TRACE")); uint64(v) == seed {
			r.trace = &strings.Builder{}
		}
		for i := 0; i < 1500; i++ {
			r.tick(true)
		}
		r.heal()
		for i := 0; i < 3000; i++ {
			r.tick(false)
		}
		for _, n := range r.alive() {
			if !n.core.Settled() {
				st := r.mem[n.id].Status()
				r.fatalf("node %d not settled after healing: membership view %s %v, in transition %v", n.id, st.View.ID, st.View.Members, st.InTransition)
			}
		}
		r.checkAgreement()
		r.checkOrders()
	}
}

type flight struct {
	at uint64
	to NodeID
	m  membership.Message
}

type realSim struct {
	*sim
	mem    map[NodeID]*membership.Node
	fl     []flight
	maxSeq map[NodeID]uint64
	now    uint64
	ids    []NodeID
}

func newRealSim(t *testing.T, seed uint64, n int) *realSim {
	r := &realSim{sim: newSimEmpty(t, seed, 40), mem: map[NodeID]*membership.Node{},
		maxSeq: map[NodeID]uint64{}}
	r.noSafe = true
	for i := 1; i <= n; i++ {
		r.ids = append(r.ids, NodeID(i))
		r.nodes = append(r.nodes, &simNode{id: NodeID(i)})
	}
	for _, x := range r.nodes {
		r.start(x)
	}
	return r
}

func (r *realSim) start(n *simNode) {
	n.inc++
	n.up, n.part = true, 0
	n.queue, n.clients, n.slow = nil, nil, map[uint32]bool{}
	m, err := membership.New(membership.Config{ID: n.id, Incarnation: n.inc, Peers: r.ids, MinSeq: r.maxSeq[n.id], MaxPayload: 1 << 16})
	if err != nil {
		r.fatalf("membership.New: %v", err)
	}
	r.mem[n.id] = m
	c, err := New(Config{Node: n.id, Incarnation: n.inc, MaxQueue: r.maxQueue, MaxInFlight: 8}, ViewID{Coord: n.id}, []NodeID{n.id})
	if err != nil {
		r.fatalf("New: %v", err)
	}
	n.core = c
	r.drain(n)
	r.process(n)
}

// process moves a node's output along until there is none.
func (r *realSim) process(n *simNode) {
	mem := r.mem[n.id]
	for {
		r.push(n)
		if !mem.HasReady() {
			return
		}
		rd := mem.Ready()
		for _, m := range rd.Messages {
			for _, to := range r.ids {
				if to == n.id || (m.To != 0 && m.To != to) || r.rng.IntN(100) < 2 {
					continue
				}
				r.fl = append(r.fl, flight{at: r.now + 1 + uint64(r.rng.IntN(3)), to: to, m: m})
			}
		}
		for _, ev := range rd.Events {
			switch {
			case ev.View != nil:
				r.maxSeq[n.id] = max(r.maxSeq[n.id], ev.View.ID.Seq)
				if ev.View.ID == n.core.view {
					continue
				}
				r.debugf("n%d: node view %s %v (%s)", n.id, ev.View.ID, ev.View.Members, ev.Reason)
				if err := n.core.NodeView(ev.View.ID, ev.View.Members, ev.Survivors); err != nil {
					r.fatalf("NodeView: %v", err)
				}
			case ev.Delivery != nil && !ev.Delivery.Unicast:
				d := ev.Delivery
				var m Msg
				if err := m.UnmarshalBinary(d.Payload); err != nil {
					r.fatalf("UnmarshalBinary: %v", err)
				}
				r.debugf("n%d: deliver %s %v group %s seq %d unstable=%v", n.id, m.Kind, m.ID, m.Group, d.Seq, d.Unstable)
				if err := n.core.Deliver(d.From, m, !d.Unstable); err != nil {
					r.fatalf("Deliver: %v", err)
				}
			}
			r.drain(n)
		}
		mem.Advance()
	}
}

// push hands a node's queued broadcasts to membership.
func (r *realSim) push(n *simNode) {
	for len(n.queue) > 0 {
		b, err := n.queue[0].MarshalBinary()
		if err != nil {
			r.fatalf("MarshalBinary: %v", err)
		}
		err = r.mem[n.id].Broadcast("", b)
		if errors.Is(err, membership.ErrQueueFull) {
			return
		}
		if err != nil {
			r.fatalf("Broadcast: %v", err)
		}
		n.queue = n.queue[1:]
	}
}

func (r *realSim) tick(chaos bool) {
	r.now++
	for _, n := range r.alive() {
		r.mem[n.id].Tick()
		r.process(n)
	}
	fl := r.fl
	r.fl = nil
	r.rng.Shuffle(len(fl), func(i, j int) { fl[i], fl[j] = fl[j], fl[i] })
	var later []flight
	for _, f := range fl {
		to := r.node(f.to)
		from := r.node(f.m.From)
		if f.at > r.now {
			later = append(later, f)
			continue
		}
		if !to.up || !from.up || to.part != from.part {
			continue
		}
		_ = r.mem[to.id].Step(f.m)
		r.process(to)
	}
	r.fl = append(r.fl, later...)
	if !chaos {
		return
	}
	for i := 0; i < 3; i++ {
		up := r.alive()
		n := up[r.rng.IntN(len(up))]
		r.act(n)
		r.process(n)
	}
	if r.rng.IntN(300) == 0 {
		n := r.nodes[r.rng.IntN(len(r.nodes))]
		switch x := r.rng.IntN(4); {
		case !n.up:
			r.start(n)
		case x == 0 && len(r.alive()) > 1:
			n.up = false
		case x == 1:
			for _, y := range r.nodes {
				y.part = r.rng.IntN(2)
			}
		default:
			r.heal()
		}
	}
}

func (r *realSim) heal() {
	for _, n := range r.nodes {
		if !n.up {
			r.start(n)
		}
		n.part = 0
	}
}
