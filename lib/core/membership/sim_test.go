package membership

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The simulated network: seeded, tick-driven, with drop, duplication,
// delay/reorder, partitions, crashes with restart, and freezes. Every Ready
// batch goes through the wire encoding and through the invariant checker.

type simMsg struct {
	at  uint64
	key int64 // random tie-break: reorders messages due at the same tick
	to  NodeID
	b   []byte   // encoded, or
	m   *Message // as is when the sim skips encoding
}

type nodeKey struct {
	id  NodeID
	inc uint64
}

type simNode struct {
	id       NodeID
	n        *Node
	inc      uint64
	crashed  bool
	frozen   bool
	left     bool
	maxSeq   uint64 // "persisted" highest installed view Seq
	view     ViewID
	inView   []uint64 // group "" deliveries (message numbers) in the current view
	groupSeq map[string][]uint64
	seen     map[uint64]bool
	uniLast  map[nodeKey]uint64 // last unicast number from each sender incarnation
	events   []Event            // kept only when recording
	members  []NodeID
}

type sim struct {
	t       testing.TB
	rng     *rand.Rand
	tick    uint64
	ids     []NodeID
	nodes   map[NodeID]*simNode
	flight  []simMsg
	drop    float64
	dup     float64
	delay   float64 // share of messages delayed by 1..maxDelay ticks
	maxDel  int
	side    map[NodeID]int     // partition: nodes talk only within the same side
	blocked map[[2]NodeID]bool // directed links (from, to) that lose everything
	// scripted: nodes tick in id order and messages due at the same tick
	// arrive in the order they were sent, so a script's output is stable.
	scripted bool
	sendNo   int64
	trace    *strings.Builder // if set, receives one line per event
	cfg      func(id NodeID) Config
	record   bool
	encode   bool
	checkOn  bool

	views     map[ViewID][]NodeID
	vsync     map[[2]ViewID]vsRecord
	firstIn   map[uint64]viewDelivery // message number -> where it was first delivered
	nextMsg   uint64
	sent      map[uint64]sentMsg
	nextUni   uint64
	histories map[nodeKey]*simNode // every incarnation, for order checks
	steps     int
}

type vsRecord struct {
	by   nodeKey
	msgs []uint64
}

type viewDelivery struct {
	by   nodeKey
	view ViewID
}

type sentMsg struct {
	from  nodeKey
	group string
}

func newSim(t testing.TB, seed int64, n int) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewSource(seed)), nodes: map[NodeID]*simNode{}, side: map[NodeID]int{},
		blocked: map[[2]NodeID]bool{}, views: map[ViewID][]NodeID{}, vsync: map[[2]ViewID]vsRecord{}, firstIn: map[uint64]viewDelivery{}, sent: map[uint64]sentMsg{},
		histories: map[nodeKey]*simNode{}, maxDel: 3, encode: true, checkOn: true}
	for i := 1; i <= n; i++ {
		s.ids = append(s.ids, NodeID(i))
	}
	s.cfg = func(id NodeID) Config {
		c := Config{ID: id, Peers: s.ids}
		if *flagVerbose {
			c.Logger = testLogger{t, &s.tick}
		}
		return c
	}
	for _, id := range s.ids {
		s.start(id, 1)
	}
	return s
}

func (s *sim) start(id NodeID, inc uint64) {
	old := s.nodes[id]
	c := s.cfg(id)
	c.Incarnation = inc
	if old != nil {
		c.MinSeq = old.maxSeq
	}
	n, err := New(c)
	if err != nil {
		s.t.Fatalf("New(%d): %v", id, err)
	}
	sn := &simNode{id: id, n: n, inc: inc, groupSeq: map[string][]uint64{}, seen: map[uint64]bool{}, uniLast: map[nodeKey]uint64{}}
	if old != nil {
		sn.maxSeq = old.maxSeq
	}
	s.nodes[id] = sn
	s.histories[nodeKey{id, inc}] = sn
	s.collect(sn)
}

func (s *sim) live(id NodeID) bool {
	sn := s.nodes[id]
	return !sn.crashed && !sn.frozen && !sn.left
}

func (s *sim) crash(id NodeID)   { s.nodes[id].crashed = true }
func (s *sim) freeze(id NodeID)  { s.nodes[id].frozen = true }
func (s *sim) thaw(id NodeID)    { s.nodes[id].frozen = false }
func (s *sim) restart(id NodeID) { s.start(id, s.nodes[id].inc+1) }

// partition splits the nodes: each listed set is one side, the rest another.
func (s *sim) partition(sets ...[]NodeID) {
	s.side = map[NodeID]int{}
	for i, set := range sets {
		for _, id := range set {
			s.side[id] = i + 1
		}
	}
}

func (s *sim) heal() { s.side = map[NodeID]int{} }

// collect drains a node's Ready: messages onto the wire, events through the checker.
func (s *sim) collect(sn *simNode) {
	if !sn.n.HasReady() {
		return
	}
	rd := sn.n.Ready()
	for _, ev := range rd.Events {
		s.event(sn, ev)
	}
	for i := range rd.Messages {
		m := &rd.Messages[i]
		var b []byte
		if s.encode {
			var err error
			if b, err = m.MarshalBinary(); err != nil {
				s.t.Fatalf("node %d: marshal %s: %v", sn.id, m.Type, err)
			}
		}
		targets := []NodeID{m.To}
		if m.To == 0 {
			targets = targets[:0]
			for _, id := range s.ids {
				if id != sn.id {
					targets = append(targets, id)
				}
			}
		}
		for _, to := range targets {
			if s.rng.Float64() < s.drop {
				continue
			}
			copies := 1
			if s.rng.Float64() < s.dup {
				copies = 2
			}
			for c := 0; c < copies; c++ {
				at := s.tick
				if s.rng.Float64() < s.delay {
					at += uint64(1 + s.rng.Intn(s.maxDel))
				}
				key := s.rng.Int63()
				if s.scripted {
					s.sendNo++
					key = s.sendNo
				}
				s.flight = append(s.flight, simMsg{at: at, key: key, to: to, b: b, m: m})
			}
		}
	}
	sn.n.Advance()
}

// event records one event and checks the invariants it touches.
func (s *sim) event(sn *simNode, ev Event) {
	if s.record {
		sn.events = append(sn.events, ev)
	}
	if s.trace != nil {
		s.traceEvent(sn, ev)
	}
	k := nodeKey{sn.id, sn.inc}
	if v := ev.View; v != nil {
		if !v.Contains(sn.id) {
			s.failf("node %d installed view %s %v without itself", sn.id, v.ID, v.Members)
		}
		if !slices.IsSorted(v.Members) {
			s.failf("node %d installed view %s with unsorted members %v", sn.id, v.ID, v.Members)
		}
		if prev, ok := s.views[v.ID]; ok && !slices.Equal(prev, v.Members) {
			s.failf("view %s installed with members %v at node %d but %v elsewhere", v.ID, v.Members, sn.id, prev)
		} else if !ok {
			s.views[v.ID] = slices.Clone(v.Members)
		}
		if sn.members != nil {
			if v.ID.Seq <= sn.view.Seq {
				s.failf("node %d installed view %s after view %s: Seq not increasing", sn.id, v.ID, sn.view)
			}
			pair := [2]ViewID{sn.view, v.ID}
			if rec, ok := s.vsync[pair]; ok {
				if !slices.Equal(rec.msgs, sn.inView) {
					s.failf("virtual synchrony: nodes %v and %v both went %s -> %s but delivered different messages in %s:\n%v\n%v",
						rec.by, k, sn.view, v.ID, sn.view, rec.msgs, sn.inView)
				}
			} else {
				s.vsync[pair] = vsRecord{by: k, msgs: slices.Clone(sn.inView)}
			}
		}
		sn.view, sn.members, sn.inView = v.ID, slices.Clone(v.Members), nil
		sn.maxSeq = max(sn.maxSeq, v.ID.Seq)
		return
	}
	d := ev.Delivery
	if len(d.Payload) < 8 {
		s.failf("node %d: delivery with short payload %x", sn.id, d.Payload)
		return
	}
	num := binary.BigEndian.Uint64(d.Payload)
	if d.Unicast {
		from := nodeKey{d.From, binary.BigEndian.Uint64(d.Payload[8:])}
		if num <= sn.uniLast[from] {
			s.failf("node %d: unicast %d from %v after %d: not FIFO or duplicate", sn.id, num, from, sn.uniLast[from])
		}
		sn.uniLast[from] = num
		return
	}
	if *flagVerbose {
		s.t.Logf("[%d] node %d delivers %d from %d (view %s seq %d)", s.tick, sn.id, num, d.From, sn.view, d.Seq)
	}
	if sn.seen[num] {
		s.failf("node %d delivered message %d twice", sn.id, num)
	}
	sn.seen[num] = true
	// Every node that delivers a message delivers it in the same view: a
	// message ordered in two views (a survivor delivered it in the old view
	// while its sender resent it in a new one) breaks the total order.
	if f, ok := s.firstIn[num]; ok && f.view != sn.view {
		s.failf("message %d delivered in view %s by node %v but in view %s by node %v", num, sn.view, k, f.view, f.by)
	} else if !ok {
		s.firstIn[num] = viewDelivery{by: k, view: sn.view}
	}
	if sm, ok := s.sent[num]; ok && (sm.from.id != d.From || sm.group != d.Group) {
		s.failf("node %d delivered message %d as from %d group %q, sent by %v to %q", sn.id, num, d.From, d.Group, sm.from, sm.group)
	}
	sn.groupSeq[d.Group] = append(sn.groupSeq[d.Group], num)
	if d.Group == "" {
		sn.inView = append(sn.inView, num)
	}
}

func (s *sim) failf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("tick %d: "+format, append([]any{s.tick}, args...)...)
}

// checkOrder checks that any two nodes deliver the messages of a group they
// both delivered in the same relative order.
func (s *sim) checkOrder() {
	keys := make([]nodeKey, 0, len(s.histories))
	for k := range s.histories {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].id < keys[j].id || (keys[i].id == keys[j].id && keys[i].inc < keys[j].inc)
	})
	for i, a := range keys {
		for _, b := range keys[i+1:] {
			x, y := s.histories[a], s.histories[b]
			for g, xs := range x.groupSeq {
				ys := y.groupSeq[g]
				var fx, fy []uint64
				for _, m := range xs {
					if y.seen[m] {
						fx = append(fx, m)
					}
				}
				for _, m := range ys {
					if x.seen[m] {
						fy = append(fy, m)
					}
				}
				if !slices.Equal(fx, fy) {
					s.failf("group %q: nodes %v and %v deliver common messages in different orders:\n%v\n%v", g, a, b, fx, fy)
				}
			}
		}
	}
}

// step runs one tick: deliver what is due (and what that causes at once),
// then tick every running node.
func (s *sim) step() {
	s.tick++
	s.steps++
	for round := 0; round < 64; round++ {
		var due, later []simMsg
		for _, f := range s.flight {
			if f.at <= s.tick {
				due = append(due, f)
			} else {
				later = append(later, f)
			}
		}
		if len(due) == 0 {
			break
		}
		s.flight = later
		sort.Slice(due, func(i, j int) bool { return due[i].key < due[j].key })
		for _, f := range due {
			s.deliver(f)
		}
	}
	order := slices.Clone(s.ids)
	if !s.scripted {
		s.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	for _, id := range order {
		sn := s.nodes[id]
		if sn.crashed || sn.frozen {
			continue
		}
		sn.n.Tick()
		s.collect(sn)
	}
}

func (s *sim) deliver(f simMsg) {
	sn := s.nodes[f.to]
	if sn.crashed || sn.frozen {
		return
	}
	var m Message
	if f.b != nil {
		if err := m.UnmarshalBinary(f.b); err != nil {
			s.failf("unmarshal: %v", err)
		}
	} else {
		m = *f.m
	}
	if s.side[m.From] != s.side[f.to] || s.blocked[[2]NodeID{m.From, f.to}] {
		return
	}
	if m.To != 0 && m.To != f.to {
		s.failf("message %s for %d routed to %d", m.Type, m.To, f.to)
	}
	if err := sn.n.Step(m); err != nil && !errors.Is(err, ErrNotPeer) {
		s.failf("node %d: step %s from %d: %v", f.to, m.Type, m.From, err)
	}
	s.collect(sn)
}

// broadcast makes node id broadcast a numbered message to group.
func (s *sim) broadcast(id NodeID, group string, size int) error {
	sn := s.nodes[id]
	s.nextMsg++
	p := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(p, s.nextMsg)
	if err := sn.n.Broadcast(group, p); err != nil {
		return err
	}
	s.sent[s.nextMsg] = sentMsg{from: nodeKey{id, sn.inc}, group: group}
	if *flagVerbose {
		s.t.Logf("[%d] node %d broadcasts %d to %q", s.tick, id, s.nextMsg, group)
	}
	s.collect(sn)
	return nil
}

func (s *sim) unicast(from, to NodeID) error {
	sn := s.nodes[from]
	s.nextUni++
	p := make([]byte, 16)
	binary.BigEndian.PutUint64(p, s.nextUni)
	binary.BigEndian.PutUint64(p[8:], sn.inc)
	err := sn.n.Send(to, p)
	s.collect(sn)
	return err
}

func (s *sim) run(ticks int) {
	for i := 0; i < ticks; i++ {
		s.step()
	}
}

// runUntil steps until cond holds, at most limit ticks; it reports success.
func (s *sim) runUntil(limit int, cond func() bool) bool {
	for i := 0; i < limit; i++ {
		if cond() {
			return true
		}
		s.step()
	}
	return cond()
}

func (s *sim) running() []NodeID {
	var ids []NodeID
	for _, id := range s.ids {
		if s.live(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// converged reports whether the given nodes share one view with exactly
// them, no transition under way and nothing left to send.
func (s *sim) converged(ids []NodeID) bool {
	if len(ids) == 0 {
		return true
	}
	first := s.nodes[ids[0]].n
	want := first.view.ID
	for _, id := range ids {
		n := s.nodes[id].n
		if n.view.ID != want || !slices.Equal(n.view.Members, ids) || n.following || n.coord != nil || len(n.queue) > 0 {
			return false
		}
		for _, p := range n.peers {
			if len(p.uQueue) > 0 {
				return false
			}
		}
		if n.recv != n.delivered || n.recv < n.maxKnown {
			return false
		}
	}
	return true
}

func (s *sim) describe() string {
	var b strings.Builder
	for _, id := range s.ids {
		sn := s.nodes[id]
		n := sn.n
		fmt.Fprintf(&b, "node %d inc %d crashed=%v frozen=%v left=%v view %s %v follow %s following=%v coord=%v queue=%d recv=%d/%d\n",
			id, sn.inc, sn.crashed, sn.frozen, sn.left, n.view.ID, n.view.Members, n.follow, n.following, n.coord != nil, len(n.queue), n.recv, n.maxKnown)
	}
	return b.String()
}

// viewsOf returns the view events a node recorded.
func viewsOf(sn *simNode) []*View {
	var vs []*View
	for _, ev := range sn.events {
		if ev.View != nil {
			vs = append(vs, ev.View)
		}
	}
	return vs
}

var flagVerbose = flag.Bool("simlog", false, "log protocol lines of the simulated nodes")

type testLogger struct {
	t    testing.TB
	tick *uint64
}

func (l testLogger) Infof(f string, a ...any) { l.t.Logf("[%d] "+f, append([]any{*l.tick}, a...)...) }
func (l testLogger) Warnf(f string, a ...any) {
	l.t.Logf("[%d] WARN "+f, append([]any{*l.tick}, a...)...)
}
func (l testLogger) Debugf(f string, a ...any) { l.t.Logf("[%d] "+f, append([]any{*l.tick}, a...)...) }
