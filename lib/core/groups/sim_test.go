package groups

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The simulation drives one Core per node over a model of membership's
// total order: per view a log that the coordinator appends to, members
// that receive a prefix of it and deliver what every member received
// (stable); at a view change the survivors of each old view fetch up to
// the most any of them received (the cut), deliver up to the stable point
// as stable and beyond it only messages whose origin survives with them,
// as unstable; senders resend what they did not see delivered. Crashes,
// restarts, partitions and heals reshape the views.

type nodeKey struct {
	id  NodeID
	inc uint64
}

type simView struct {
	id      ViewID
	members []NodeID
	log     []Msg
	recv    map[NodeID]int // what each member received; frozen once it moves on
}

type simNode struct {
	id      NodeID
	inc     uint64
	up      bool
	part    int
	core    *Core
	view    *simView
	recv    int // log entries received
	deliv   int // log entries delivered
	queue   []Msg
	sent    int // queue entries sent to the sequencer in this view
	seen    map[MsgID]bool
	clients []uint32
	slow    map[uint32]bool
	frozen  bool // missed the install of its side's view
}

type ckey struct {
	node   NodeID
	inc    uint64
	client uint32
}

type clientState struct {
	views   map[string]GroupViewID // current view per group
	in      map[string][]Member    // members of that view
	since   map[string][]MsgID     // messages delivered in the current view
	outs    map[string]int         // "group/barrier@view" -> outcomes seen
	pending map[string]bool        // "group/barrier" entered, no outcome yet
	fifo    map[string]uint64      // "group sender" -> last MsgID.Seq delivered
}

type sim struct {
	t      *testing.T
	seed   uint64
	rng    *rand.Rand
	nodes  []*simNode
	seq    uint64
	trace  *strings.Builder // scripted runs: events as text
	groups []string

	holds    map[nodeKey]map[MsgID]bool // what each node incarnation received
	viewMems map[string]string          // group view -> members, identical everywhere
	passes   map[string]string          // "group X->Y" -> messages delivered in X
	orders   map[string][][]MsgID       // "group X" -> sequences delivered in X, per client transition
	clients  map[ckey]*clientState
	txParts  map[MsgID][]Part
	entered  map[mkey]map[string]bool // member -> "group/barrier" entered at some point
	releases map[string]string        // "group/barrier@view" -> released members
	failed   bool
	stats    map[string]int
	topoRate int // percent of steps that change the topology
	maxQueue int
	noSafe   bool   // no receipt information: the safe check is off
	forceLag NodeID // scripts: this node misses the next install of its side
}

func newSim(t *testing.T, seed uint64, n, maxQueue int) *sim {
	s := newSimEmpty(t, seed, maxQueue)
	for i := 1; i <= n; i++ {
		s.nodes = append(s.nodes, &simNode{id: NodeID(i)})
		s.start(s.nodes[i-1])
	}
	s.reconfigure()
	return s
}

func newSimEmpty(t *testing.T, seed uint64, maxQueue int) *sim {
	return &sim{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), groups: []string{"a", "b", "c"},
		holds: map[nodeKey]map[MsgID]bool{}, viewMems: map[string]string{}, passes: map[string]string{},
		orders: map[string][][]MsgID{}, clients: map[ckey]*clientState{}, txParts: map[MsgID][]Part{},
		entered: map[mkey]map[string]bool{}, releases: map[string]string{}, stats: map[string]int{}, maxQueue: maxQueue}
}

func (s *sim) fatalf(format string, args ...any) {
	s.failed = true
	s.t.Helper()
	if s.trace != nil && os.Getenv("GROUPS_TRACE") != "" {
		s.t.Log("\n" + s.trace.String())
	}
	s.t.Fatalf("seed %d: "+format, append([]any{s.seed}, args...)...)
}

func (s *sim) debugf(format string, args ...any) {
	if s.trace != nil && os.Getenv("GROUPS_TRACE") != "" {
		fmt.Fprintf(s.trace, format+"\n", args...)
	}
}

func (s *sim) start(n *simNode) {
	n.inc++
	n.up, n.part, n.frozen = true, 0, false
	// Like membership, every incarnation boots in view 0.<id>.
	n.view = &simView{id: ViewID{Seq: 0, Coord: n.id}, members: []NodeID{n.id}, recv: map[NodeID]int{}}
	n.recv, n.deliv, n.queue, n.sent, n.seen = 0, 0, nil, 0, map[MsgID]bool{}
	n.clients, n.slow = nil, map[uint32]bool{}
	c, err := New(Config{Node: n.id, Incarnation: n.inc, MaxQueue: s.maxQueue, MaxInFlight: 8}, n.view.id, n.view.members)
	if err != nil {
		s.fatalf("New: %v", err)
	}
	n.core = c
	s.holds[nodeKey{n.id, n.inc}] = map[MsgID]bool{}
	s.drain(n)
}

func (s *sim) node(id NodeID) *simNode { return s.nodes[id-1] }

// drain takes a node's Ready: broadcasts into its send queue, events into
// the checks.
func (s *sim) drain(n *simNode) {
	rd := n.core.Ready()
	for _, m := range rd.Broadcast {
		if m.Kind == MsgTx {
			s.txParts[m.ID] = m.Parts
		}
		n.queue = append(n.queue, m)
	}
	count := map[uint32]int{}
	for _, ev := range rd.Events {
		s.event(n, ev)
		count[ev.Client]++
	}
	for c, k := range count {
		if !n.slow[c] {
			n.core.Consumed(c, k)
		}
	}
}

func (s *sim) client(n *simNode, id uint32) *clientState {
	k := ckey{n.id, n.inc, id}
	cs := s.clients[k]
	if cs == nil {
		cs = &clientState{views: map[string]GroupViewID{}, in: map[string][]Member{}, since: map[string][]MsgID{},
			outs: map[string]int{}, pending: map[string]bool{}, fifo: map[string]uint64{}}
		s.clients[k] = cs
	}
	return cs
}

func (s *sim) event(n *simNode, ev Event) {
	s.t.Helper()
	cs := s.client(n, ev.Client)
	if s.trace != nil {
		fmt.Fprintf(s.trace, "n%d c%d: %s\n", n.id, ev.Client, ev)
	}
	s.count(ev)
	switch ev.Kind {
	case EvView:
		for _, x := range ev.Changes {
			if x.Kind != Joined && x.Kind != Merged && x.Reason == "" {
				s.fatalf("group %s view %s: %s %s without a reason", ev.Group, ev.View, x.Member, x.Kind)
			}
		}
		ms := memberList(ev.Members)
		vk := ev.Group + " " + ev.View.String() + fmt.Sprint(ev.View.Branch)
		if prev, ok := s.viewMems[vk]; ok && prev != ms {
			s.fatalf("group %s view %s has members [%s] at node %d but [%s] elsewhere", ev.Group, ev.View, ms, n.id, prev)
		}
		s.viewMems[vk] = ms
		if x, ok := cs.views[ev.Group]; ok {
			// Virtual synchrony: clients passing from x to this view
			// delivered the same messages in x.
			key := fmt.Sprintf("%s %s->%s", ev.Group, x, ev.View)
			got := fmt.Sprint(cs.since[ev.Group])
			if prev, ok := s.passes[key]; ok && prev != got {
				s.fatalf("virtual synchrony: group %s from view %s to %s: node %d client %d delivered %s, another member %s",
					ev.Group, x, ev.View, n.id, ev.Client, got, prev)
			}
			s.passes[key] = got
			ok := fmt.Sprintf("%s %s", ev.Group, x)
			s.orders[ok] = append(s.orders[ok], cs.since[ev.Group])
		}
		cs.views[ev.Group], cs.in[ev.Group], cs.since[ev.Group] = ev.View, ev.Members, nil
		if !slices.ContainsFunc(ev.Members, func(m Member) bool { return m.key() == (mkey{n.id, n.inc, ev.Client}) }) {
			delete(cs.views, ev.Group)
		}
	case EvMessage:
		if ev.Direct {
			// 1-1: only its target delivers it, outside the group's
			// virtual synchrony sets.
			if _, in := cs.views[ev.Group]; !in {
				s.fatalf("node %d client %d got a direct message in group %s it is not a member of", n.id, ev.Client, ev.Group)
			}
			break
		}
		s.delivered(n, cs, ev, ev.Group, ev.ID)
	case EvTx:
		want := []string{}
		for _, p := range s.txParts[ev.ID] {
			if _, in := cs.views[p.Group]; in {
				want = append(want, p.Group+"="+string(p.Payload))
			}
		}
		got := []string{}
		for i, p := range ev.Parts {
			got = append(got, p.Group+"="+string(p.Payload))
			if !slices.ContainsFunc(ev.Parts[:i], func(q Part) bool { return q.Group == p.Group }) {
				s.delivered(n, cs, ev, p.Group, ev.ID)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			s.fatalf("transaction %v at node %d client %d: got parts %v, want %v (whole, for its groups)", ev.ID, n.id, ev.Client, got, want)
		}
	case EvBarrier:
		gb := ev.Group + "/" + ev.Barrier
		at := fmt.Sprintf("%s@%s", gb, ev.View)
		inst := fmt.Sprintf("%s#%d", at, cs.outs[at])
		cs.outs[at]++
		entered := cs.pending[gb]
		delete(cs.pending, gb)
		if ev.Failed {
			if ev.Reason == "" {
				s.fatalf("barrier %s failed without a reason", inst)
			}
			break
		}
		ms := memberList(ev.Members)
		if ev.View != cs.views[ev.Group] || ms != memberList(cs.in[ev.Group]) {
			s.fatalf("barrier %s released [%s] at node %d, not the client's view %s [%s]", inst, ms, n.id, cs.views[ev.Group], memberList(cs.in[ev.Group]))
		}
		if prev, ok := s.releases[inst]; ok && prev != ms {
			s.fatalf("barrier %s released [%s] at node %d, [%s] elsewhere", inst, ms, n.id, prev)
		}
		s.releases[inst] = ms
		if !entered {
			s.fatalf("barrier %s released at node %d client %d that has not entered it since its last outcome", inst, n.id, ev.Client)
		}
		for _, m := range ev.Members {
			if !s.entered[m.key()][ev.Group+"/"+ev.Barrier] {
				s.fatalf("barrier %s released with member %s that never entered it", inst, m)
			}
		}
	}
}

func (s *sim) count(ev Event) {
	switch ev.Kind {
	case EvView:
		for _, x := range ev.Changes {
			s.stats["view changes "+x.Kind.String()]++
		}
	case EvMessage:
		if ev.Order == Safe {
			s.stats["safe deliveries"]++
		} else {
			s.stats["agreed deliveries"]++
		}
	case EvTx:
		s.stats["transactions delivered"]++
	case EvBarrier:
		if ev.Failed {
			s.stats["barriers failed"]++
		} else {
			s.stats["barriers released"]++
		}
	case EvSendFailed:
		s.stats["sends failed"]++
	case EvWritable:
		s.stats["writable"]++
	}
}

// delivered checks a message delivered in group g: the client is in the
// group, and a safe message is held by every node of the group view.
func (s *sim) delivered(n *simNode, cs *clientState, ev Event, g string, id MsgID) {
	s.t.Helper()
	if _, in := cs.views[g]; !in {
		s.fatalf("node %d client %d got message %v of group %s it is not a member of", n.id, ev.Client, id, g)
	}
	if slices.Contains(cs.since[g], id) {
		s.fatalf("node %d client %d got message %v twice in view %s", n.id, ev.Client, id, cs.views[g])
	}
	cs.since[g] = append(cs.since[g], id)
	// FIFO per sender: a sender's messages come in the order it sent them.
	fk := fmt.Sprintf("%s %d.%d", g, id.Node, id.Inc)
	if last := cs.fifo[fk]; id.Seq <= last {
		s.fatalf("node %d client %d got %v after %d from the same sender", n.id, ev.Client, id, last)
	}
	cs.fifo[fk] = id.Seq
	if ev.Order != Safe || s.noSafe {
		return
	}
	for _, m := range cs.in[g] {
		if !s.holds[nodeKey{m.Node, m.Inc}][id] {
			s.fatalf("safe message %v delivered at node %d in view %s of %s before member node %d holds it", id, n.id, cs.views[g], g, m.Node)
		}
	}
}

// checkOrders: within a group view, every client's sequence is in one order.
func (s *sim) checkOrders() {
	for key, seqs := range s.orders {
		pos := map[MsgID]int{}
		// Build one order from all sequences; a conflict shows as a cycle
		// between two sequences, found pairwise.
		for i := range seqs {
			for j := i + 1; j < len(seqs); j++ {
				clear(pos)
				for k, id := range seqs[i] {
					pos[id] = k
				}
				last := -1
				for _, id := range seqs[j] {
					if p, ok := pos[id]; ok {
						if p < last {
							s.fatalf("group view %s: two members delivered in different orders: %v and %v", key, seqs[i], seqs[j])
						}
						last = p
					}
				}
			}
		}
	}
}

// Membership model.

func (s *sim) alive() []*simNode {
	var out []*simNode
	for _, n := range s.nodes {
		if n.up {
			out = append(out, n)
		}
	}
	return out
}

// reconfigure installs new views where the partition's sides differ from
// the nodes' views.
func (s *sim) reconfigure() { s.reconfigureLag(false) }

func (s *sim) reconfigureLag(allowLag bool) {
	sides := map[int][]NodeID{}
	for _, n := range s.alive() {
		sides[n.part] = append(sides[n.part], n.id)
	}
	for _, p := range slices.Sorted(maps.Keys(sides)) {
		side := sides[p]
		first := s.node(side[0]).view
		same := slices.Equal(first.members, side)
		for _, id := range side {
			if s.node(id).view != first || s.node(id).frozen {
				same = false
			}
		}
		if same {
			continue
		}
		// Finish every old view for its survivors on this side.
		done := map[*simView][]NodeID{} // old view -> its survivors on this side
		for _, id := range side {
			v := s.node(id).view
			if _, ok := done[v]; ok {
				continue
			}
			var surv []NodeID
			cut, stable := 0, -1
			for _, m := range v.members {
				mn := s.node(m)
				if stable < 0 || v.recv[m] < stable {
					stable = v.recv[m]
				}
				if mn.up && mn.view == v && slices.Contains(side, m) {
					surv = append(surv, m)
					cut = max(cut, mn.recv)
				}
			}
			stable = max(stable, 0)
			done[v] = surv
			for _, m := range surv {
				s.flush(s.node(m), cut, stable, surv)
			}
		}
		s.seq++
		nv := &simView{id: ViewID{Seq: s.seq, Coord: side[0]}, members: slices.Clone(side), recv: map[NodeID]int{}}
		// Sometimes a member misses the install, as when membership's
		// coordinator installs a view whose Install a member never gets
		// before the next round: it stays frozen in its old view, and the
		// others deliver nothing stable in the new one until the next.
		var lag NodeID
		if s.forceLag != 0 && slices.Contains(side[1:], s.forceLag) {
			lag, s.forceLag = s.forceLag, 0
		} else if allowLag && len(side) > 1 && s.rng.IntN(5) == 0 {
			lag = side[1+s.rng.IntN(len(side)-1)]
		}
		for _, id := range side {
			n := s.node(id)
			if id == lag {
				n.frozen = true
				continue
			}
			surv := done[n.view]
			n.view, n.recv, n.deliv, n.sent, n.frozen = nv, 0, 0, 0, false
			s.debugf("n%d: node view %s %v", id, nv.id, nv.members)
			if err := n.core.NodeView(nv.id, nv.members, surv); err != nil {
				s.fatalf("NodeView: %v", err)
			}
			s.drain(n)
		}
	}
}

func (s *sim) flush(n *simNode, cut, stable int, surv []NodeID) {
	for n.recv < cut {
		s.receive(n)
	}
	for n.deliv < cut {
		m := n.view.log[n.deliv]
		if n.deliv < stable {
			s.deliver(n, m, true)
		} else if slices.Contains(surv, m.ID.Node) {
			s.deliver(n, m, false)
		} else {
			n.deliv++
		}
	}
}

func (s *sim) receive(n *simNode) {
	m := n.view.log[n.recv]
	n.recv++
	n.view.recv[n.id] = n.recv
	s.holds[nodeKey{n.id, n.inc}][m.ID] = true
}

func (s *sim) deliver(n *simNode, m Msg, stable bool) {
	n.deliv++
	s.debugf("n%d: deliver %s %v group %s stable=%v view %s settled %v", n.id, m.Kind, m.ID, m.Group, stable, m.View, n.core.settled)
	if m.ID.Node == n.id && m.ID.Inc == n.inc {
		i := slices.IndexFunc(n.queue, func(q Msg) bool { return q.ID == m.ID })
		if i >= 0 {
			n.queue = slices.Delete(n.queue, i, i+1)
			if i < n.sent {
				n.sent--
			}
		}
	}
	if n.seen[m.ID] {
		return
	}
	if !stable {
		s.stats["unstable deliveries"]++
	}
	n.seen[m.ID] = true
	if err := n.core.Deliver(m.ID.Node, m, stable); err != nil {
		s.fatalf("Deliver: %v", err)
	}
	s.drain(n)
}

func (s *sim) stableAt(v *simView) int {
	st := len(v.log)
	for _, id := range v.members {
		st = min(st, v.recv[id])
	}
	return st
}

// step takes one random action; it reports whether anything was left to do.
func (s *sim) step(chaos bool) bool {
	up := s.alive()
	n := up[s.rng.IntN(len(up))]
	r := s.rng.IntN(100)
	switch {
	case chaos && r < s.topoRate:
		s.topology()
		return true
	case chaos && r < 45:
		s.act(n)
		return true
	}
	// Progress: sequence, receive or deliver at some node.
	var opts []func()
	for _, x := range up {
		if x.frozen {
			continue
		}
		if x.sent < len(x.queue) {
			opts = append(opts, func() {
				x.view.log = append(x.view.log, x.queue[x.sent])
				x.sent++
			})
		}
		if x.recv < len(x.view.log) {
			opts = append(opts, func() { s.receive(x) })
		}
		if x.deliv < s.stableAt(x.view) {
			opts = append(opts, func() { s.deliver(x, x.view.log[x.deliv], true) })
		}
	}
	if len(opts) == 0 {
		return false
	}
	opts[s.rng.IntN(len(opts))]()
	return true
}

func (s *sim) topology() {
	n := s.nodes[s.rng.IntN(len(s.nodes))]
	switch r := s.rng.IntN(4); {
	case !n.up:
		s.start(n)
	case r == 0 && len(s.alive()) > 1:
		n.up = false
	case r == 1:
		for _, x := range s.nodes {
			x.part = s.rng.IntN(2)
		}
	default:
		for _, x := range s.nodes {
			x.part = 0
		}
	}
	s.reconfigureLag(true)
}

func (s *sim) act(n *simNode) {
	c := n.core
	var cl uint32
	if len(n.clients) > 0 {
		cl = n.clients[s.rng.IntN(len(n.clients))]
	}
	g := s.groups[s.rng.IntN(len(s.groups))]
	var err error
	switch r := s.rng.IntN(20); {
	case cl == 0 || r == 0:
		id := c.Open(uint32(1000+s.rng.IntN(1000)), 0)
		n.clients = append(n.clients, id)
		if s.rng.IntN(8) == 0 {
			n.slow[id] = true
		}
	case r < 5:
		err = c.Join(cl, g)
	case r == 5:
		err = c.Leave(cl, g)
	case r == 6:
		err = c.Close(cl, s.rng.IntN(2) == 0)
		n.clients = slices.DeleteFunc(n.clients, func(x uint32) bool { return x == cl })
	case r < 10:
		_, err = c.Send(cl, g, Agreed, []byte(fmt.Sprintf("m%d", s.rng.IntN(1000))))
	case r < 13:
		_, err = c.Send(cl, g, Safe, []byte(fmt.Sprintf("s%d", s.rng.IntN(1000))))
	case r == 13:
		_, ms := c.Members(g)
		if len(ms) > 0 {
			_, err = c.SendTo(cl, g, ms[s.rng.IntN(len(ms))], []byte("d"))
		}
	case r < 17:
		b := fmt.Sprintf("x%d", s.rng.IntN(2))
		k := mkey{n.id, n.inc, cl}
		cs := s.client(n, cl)
		if cs.pending[g+"/"+b] {
			break
		}
		if err = c.EnterBarrier(cl, g, b); err == nil {
			cs.pending[g+"/"+b] = true
			if s.entered[k] == nil {
				s.entered[k] = map[string]bool{}
			}
			s.entered[k][g+"/"+b] = true
		}
	default:
		g2 := s.groups[s.rng.IntN(len(s.groups))]
		if err = c.TxBegin(cl); err == nil {
			if err = c.TxAdd(cl, g, []byte("t1")); err == nil {
				if err = c.TxAdd(cl, g2, []byte("t2")); err == nil {
					_, err = c.TxCommit(cl, Order(s.rng.IntN(2)))
				}
			}
		}
	}
	if err != nil && !errors.Is(err, ErrNotMember) && !errors.Is(err, ErrMember) && !errors.Is(err, ErrWouldBlock) && !errors.Is(err, ErrNoSession) {
		s.fatalf("client call at node %d: %v", n.id, err)
	}
	s.drain(n)
}

// settle heals everything and runs until every node is settled and idle.
func (s *sim) settle() {
	for _, n := range s.nodes {
		n.part = 0
	}
	s.reconfigure()
	for i := 0; i < 100000; i++ {
		if !s.step(false) {
			for _, n := range s.alive() {
				if !n.core.Settled() {
					s.fatalf("node %d idle but not settled: frozen %v, view %s %v, core view %s, syncs %d, queue %d sent %d", n.id, n.frozen, n.view.id, n.view.members, n.core.view, len(n.core.syncs), len(n.queue), n.sent)
				}
			}
			return
		}
	}
	s.fatalf("no quiescence")
}

func (s *sim) checkAgreement() {
	up := s.alive()
	for _, g := range s.groups {
		id0, ms0 := up[0].core.Members(g)
		for _, n := range up[1:] {
			id, ms := n.core.Members(g)
			if id != id0 || memberList(ms) != memberList(ms0) {
				s.fatalf("after healing, group %s is %s [%s] at node %d but %s [%s] at node %d",
					g, id, memberList(ms), n.id, id0, memberList(ms0), up[0].id)
			}
		}
	}
}

func TestSim(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 40
	}
	total := map[string]int{}
	defer func() {
		for _, k := range slices.Sorted(maps.Keys(total)) {
			t.Logf("%s: %d", k, total[k])
		}
	}()
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		s := newSim(t, seed, 3+int(seed%3), 40)
		s.topoRate = 1 + int(seed%3)
		if v, _ := strconv.Atoi(os.Getenv("GROUPS_TRACE")); uint64(v) == seed {
			s.trace = &strings.Builder{}
		}
		for i := 0; i < 1500; i++ {
			s.step(true)
		}
		s.settle()
		s.checkAgreement()
		s.checkOrders()
		for k, v := range s.stats {
			total[k] += v
		}
	}
}
