package membership

import (
	"fmt"
	"slices"
	"strings"
)

// Tunables that are not worth a Config field.
const (
	sendWindow      = 256 // unordered DATA messages in flight per sender
	unicastWindow   = 64  // unacknowledged unicasts in flight per destination
	nackBurst       = 256 // ordered messages resent per NACK
	resendTicks     = 2   // coordinator resends Propose/Sync to laggards this often
	retransmitExtra = 4   // DATA/unicast retransmit after 2*HeartbeatTicks+this
	phaseLimit      = 20  // a round phase ends after this many TransitionTicks
)

// peer is what a node knows about one configured node.
type peer struct {
	heard     bool
	lastHeard uint64
	inc       uint64 // latest incarnation heard
	left      bool   // announced a graceful leave (this incarnation)
	wasSeen   bool   // was heard or in a view at some point
	silent    bool   // left out of a round for not answering; cleared when heard again

	// Latest heartbeat (by Stamp) of the current incarnation.
	hb      bool
	hbStamp uint64
	hbView  ViewID
	hbRound Round

	// What the peer received of a view's order (heartbeats and acks).
	stView ViewID
	stRecv uint64

	resentInstall uint64 // tick of the last Install resend to this peer

	// Unicast from this peer.
	uInc    uint64
	uExpect uint64
	uHeld   map[uint64][]byte // early unicasts

	// Unicast to this peer.
	uNext  uint64
	uQueue []*outUnicast
}

type outUnicast struct {
	seq      uint64
	payload  []byte
	lastSent uint64
	sent     bool
}

// queued is a broadcast or group change waiting to be ordered.
type queued struct {
	msgID    uint64
	op       OpKind
	group    string
	payload  []byte
	lastSent uint64
	sent     bool
}

// originOrder is the sequencer's per-origin state in the current view.
type originOrder struct {
	inc   uint64
	msgID uint64
}

// coordRound is a transition round this node coordinates.
type coordRound struct {
	id         Round
	members    []NodeID
	phase      int // 1: collecting Flush, 2: collecting Commit
	phaseStart uint64
	lastSend   uint64
	flush      map[NodeID]Message
	commits    map[NodeID]Message // latest Commit (progress or done)
	lastReply  map[NodeID]uint64
	excluded   map[NodeID]bool // silent in an earlier attempt
	cuts       []Cut
}

// Node is one node's protocol state. It is not safe for concurrent use.
type Node struct {
	cfg      Config
	id       NodeID
	inc      uint64
	det      Detector
	hbTicks  uint64
	trTicks  uint64
	rtTicks  uint64
	maxQueue int

	tick   uint64
	stamp  uint64
	peers  map[NodeID]*peer // configured nodes except self
	order  []NodeID         // sorted configured nodes except self
	maxSeq uint64           // highest view or round Seq seen anywhere

	view      View
	installed Round             // round that installed the view
	viewInc   map[NodeID]uint64 // members' incarnations at install
	leaving   bool

	// Ordered messages of the current view.
	log         map[uint64]*Message
	recv        uint64 // highest contiguous seq received
	delivered   uint64
	gcPoint     uint64
	maxKnown    uint64 // highest seq known to exist
	lastNack    uint64
	ackedSeq    uint64 // recv last announced with an Ack
	flushRecv   uint64 // recv our last Flush reported
	flushStable uint64 // stable point our last Flush reported
	// knownStable is the highest seq we know every member received.
	knownStable uint64
	ackTick     uint64
	nextSeq     uint64 // sequencer: next seq to assign
	seqOrigin   map[NodeID]originOrder
	seqHeld     map[NodeID]map[uint64]Message // sequencer: early DATA per origin
	dedupe      map[NodeID]originOrder        // highest msgid delivered per origin incarnation

	// Send queue of broadcasts and group changes.
	queue     []*queued
	nextMsgID uint64

	// Transition state as a member.
	follow    Round // highest round followed (monotonic)
	following bool  // in a round (frozen)
	syncCut   Cut   // phase 2: cut for our view
	inSync    bool
	doneRound Round // round whose Commit done we sent
	doneValid bool

	coord       *coordRound
	lastInstall *Message

	loop   []Message
	msgs   []Message
	events []Event
	rdMsgs int
	rdEvs  int

	counters Counters
}

// New returns a Node that starts alone in its boot view (Seq 0).
func New(cfg Config) (*Node, error) {
	if cfg.ID == 0 {
		return nil, fmt.Errorf("membership: config: node id 0 is reserved")
	}
	if cfg.HeartbeatTicks < 0 || cfg.TransitionTicks < 0 || cfg.MaxPayload < 0 || cfg.MaxQueue < 0 {
		return nil, fmt.Errorf("membership: config: negative HeartbeatTicks %d, TransitionTicks %d, MaxPayload %d or MaxQueue %d",
			cfg.HeartbeatTicks, cfg.TransitionTicks, cfg.MaxPayload, cfg.MaxQueue)
	}
	if cfg.HeartbeatTicks == 0 {
		cfg.HeartbeatTicks = 3
	}
	if cfg.TransitionTicks == 0 {
		cfg.TransitionTicks = 5
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = 1200
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = 1024
	}
	if cfg.Detector == nil {
		cfg.Detector = NewTimeoutDetector(15)
	}
	n := &Node{
		cfg:      cfg,
		id:       cfg.ID,
		inc:      cfg.Incarnation,
		det:      cfg.Detector,
		hbTicks:  uint64(cfg.HeartbeatTicks),
		trTicks:  uint64(cfg.TransitionTicks),
		rtTicks:  2*uint64(cfg.HeartbeatTicks) + retransmitExtra,
		maxQueue: cfg.MaxQueue,
		peers:    map[NodeID]*peer{},
		dedupe:   map[NodeID]originOrder{},
		maxSeq:   cfg.MinSeq,
	}
	n.SetPeers(cfg.Peers)
	n.view = View{ID: ViewID{Seq: 0, Coord: n.id}, Members: []NodeID{n.id}, Groups: map[string][]NodeID{}}
	n.viewInc = map[NodeID]uint64{n.id: n.inc}
	n.resetViewState()
	n.events = append(n.events, Event{View: n.view.Clone(), Reason: "boot"})
	n.counters.ViewsInstalled++
	n.infof("node %d installed view %s members %v (boot)", n.id, n.view.ID, n.view.Members)
	return n, nil
}

func (n *Node) infof(format string, args ...any) {
	if n.cfg.Logger != nil {
		n.cfg.Logger.Infof(format, args...)
	}
}

func (n *Node) debugf(format string, args ...any) {
	if n.cfg.Logger != nil {
		n.cfg.Logger.Debugf(format, args...)
	}
}

func (n *Node) warnf(format string, args ...any) {
	if n.cfg.Logger != nil {
		n.cfg.Logger.Warnf(format, args...)
	}
}

// SetPeers replaces the configured node list. Removed nodes are forgotten
// and leave the view at the next transition; frames from them are refused.
func (n *Node) SetPeers(ids []NodeID) {
	keep := map[NodeID]bool{}
	for _, id := range ids {
		if id == 0 || id == n.id {
			continue
		}
		keep[id] = true
		if n.peers[id] == nil {
			n.peers[id] = &peer{}
		}
	}
	for id := range n.peers {
		if !keep[id] {
			delete(n.peers, id)
			n.det.Forget(id)
		}
	}
	n.order = n.order[:0]
	for id := range n.peers {
		n.order = append(n.order, id)
	}
	slices.Sort(n.order)
}

func (n *Node) resetViewState() {
	n.log = map[uint64]*Message{}
	n.recv, n.delivered, n.gcPoint, n.maxKnown = 0, 0, 0, 0
	n.nextSeq = 1
	n.seqOrigin = map[NodeID]originOrder{}
	n.seqHeld = map[NodeID]map[uint64]Message{}
	for _, q := range n.queue {
		q.sent = false
	}
	n.ackedSeq, n.flushRecv, n.knownStable = 0, 0, 0
}

// send queues m for the wire (and for ourselves when it concerns us).
func (n *Node) send(m Message) {
	m.From = n.id
	m.Incarnation = n.inc
	if m.To == n.id {
		n.loop = append(n.loop, m)
		return
	}
	n.msgs = append(n.msgs, m)
	if m.To == 0 {
		switch m.Type {
		case MsgPropose, MsgSync, MsgOrdered:
			n.loop = append(n.loop, m)
		}
	}
}

func (n *Node) drain() {
	for len(n.loop) > 0 {
		m := n.loop[0]
		n.loop = n.loop[1:]
		n.handle(m)
	}
	n.loop = nil
}

// Tick advances time by one tick: heartbeats, failure detection,
// transitions, retransmissions.
func (n *Node) Tick() {
	n.tick++
	if n.leaving {
		if n.tick%n.hbTicks == 0 {
			n.send(Message{Type: MsgLeave})
		}
		return
	}
	if n.tick%n.hbTicks == 0 {
		n.heartbeat()
	}
	n.checkTransition()
	n.coordTick()
	n.memberTick()
	n.flushSends()
	n.unicastTick()
	n.sendAck()
	n.drain()
}

func (n *Node) heartbeat() {
	m := Message{Type: MsgHeartbeat, View: n.view.ID, Round: n.follow, Members: slices.Clone(n.view.Members),
		Alive: n.aliveSet(), Seq: n.reportRecv()}
	if n.isSequencer() {
		m.Last = n.nextSeq - 1
	}
	n.stamp++
	m.Stamp = n.stamp
	if n.leaving {
		m.Flags |= FlagLeaving
	}
	n.send(m)
}

// aliveSet is self plus the configured peers the detector deems alive.
func (n *Node) aliveSet() []NodeID {
	s := []NodeID{n.id}
	for _, id := range n.order {
		if n.det.Alive(id, n.tick) {
			s = append(s, id)
		}
	}
	slices.Sort(s)
	return s
}

// target is the member set this node would like as its view: alive, not
// leaving peers.
func (n *Node) target() []NodeID {
	s := []NodeID{n.id}
	for _, id := range n.order {
		p := n.peers[id]
		if p.heard && !p.left && !p.silent && n.det.Alive(id, n.tick) {
			s = append(s, id)
		}
	}
	slices.Sort(s)
	return s
}

func (n *Node) isSequencer() bool { return n.view.ID.Coord == n.id && !n.following }

// Step processes a message from a peer. Messages from nodes that are not
// configured peers, from older incarnations, or malformed for their type
// return an error and change nothing.
func (n *Node) Step(m Message) error {
	if m.From == 0 || m.From == n.id {
		return fmt.Errorf("membership: step: %s message with bad sender %d", m.Type, m.From)
	}
	if m.To != 0 && m.To != n.id {
		return fmt.Errorf("membership: step: %s message from %d addressed to node %d, not us", m.Type, m.From, m.To)
	}
	if m.Type == 0 || m.Type >= msgTypeEnd {
		return fmt.Errorf("membership: step: unknown message type %d from %d", m.Type, m.From)
	}
	p := n.peers[m.From]
	if p == nil {
		return fmt.Errorf("%w: node %d", ErrNotPeer, m.From)
	}
	if m.Incarnation < p.inc {
		return nil // a dead incarnation's late message
	}
	if m.Incarnation > p.inc {
		if p.heard {
			n.debugf("node %d: node %d restarted (incarnation %d)", n.id, m.From, m.Incarnation)
		}
		p.inc = m.Incarnation
		p.left = false
		p.hb = false
		p.hbStamp = 0
		p.stView, p.stRecv = ViewID{}, 0
		if c := n.coord; c != nil && contains(c.members, m.From) {
			// Its flush state died with the old incarnation.
			n.restartRound(c.members, fmt.Sprintf("node %d restarted", m.From))
		}
	}
	p.heard, p.wasSeen, p.lastHeard, p.silent = true, true, n.tick, false
	n.det.Heard(m.From, n.tick)
	if n.leaving {
		return nil
	}
	n.handle(m)
	n.drain()
	return nil
}

func (n *Node) handle(m Message) {
	switch m.Type {
	case MsgHeartbeat:
		n.onHeartbeat(m)
	case MsgLeave:
		n.onLeave(m)
	case MsgPropose:
		n.onPropose(m)
	case MsgFlush:
		n.onFlush(m)
	case MsgSync:
		n.onSync(m)
	case MsgCommit:
		n.onCommit(m)
	case MsgInstall:
		n.onInstall(m)
	case MsgData:
		n.onData(m)
	case MsgOrdered:
		n.onOrdered(m)
	case MsgNack:
		n.onNack(m)
	case MsgUnicast:
		n.onUnicast(m)
	case MsgUnicastAck:
		n.onUnicastAck(m)
	case MsgAck:
		n.onAck(m)
	}
}

func (n *Node) seeSeq(s uint64) {
	if s > n.maxSeq {
		n.maxSeq = s
	}
}

func (n *Node) onHeartbeat(m Message) {
	p := n.peers[m.From]
	if p.hb && m.Stamp <= p.hbStamp {
		return
	}
	p.hb, p.hbStamp = true, m.Stamp
	p.hbView, p.hbRound = m.View, m.Round
	n.seeSeq(m.View.Seq)
	n.seeSeq(m.Round.Seq)
	if m.Flags&FlagLeaving != 0 {
		p.left = true
	}
	if m.View != n.view.ID {
		n.checkExcluded(m)
		return
	}
	// Tail loss: the sequencer has ordered more than we received.
	if m.From == n.view.ID.Coord && m.Last > n.maxKnown {
		n.maxKnown = m.Last
	}
	n.onAck(m)
}

// onAck records what a peer received of our view's order.
func (n *Node) onAck(m Message) {
	if m.View != n.view.ID {
		return
	}
	p := n.peers[m.From]
	if p.stView != m.View {
		p.stView, p.stRecv = m.View, 0
	}
	if m.Seq > p.stRecv {
		p.stRecv = m.Seq
		n.advance()
	}
}

// stable is the highest seq every member of the view has received.
func (n *Node) stable() uint64 {
	st := n.recv
	for _, id := range n.view.Members {
		if id == n.id {
			continue
		}
		p := n.peers[id]
		if p == nil || p.stView != n.view.ID {
			return 0
		}
		st = min(st, p.stRecv)
	}
	return st
}

// advance delivers what became stable (outside transitions) and drops
// what everyone has.
func (n *Node) advance() {
	n.knownStable = max(n.knownStable, n.stable())
	if !n.following {
		n.deliverUpTo(n.knownStable)
	}
	n.collect()
}

// reportRecv is what we tell others we received. In a transition it stays
// at what our Flush reported: a message acknowledged beyond that could
// become stable (and delivered by others) without being in the cut.
func (n *Node) reportRecv() uint64 {
	if n.following {
		return n.flushRecv
	}
	return n.recv
}

// sendAck tells the view what we received, at most once per tick.
func (n *Node) sendAck() {
	rr := n.reportRecv()
	if rr <= n.ackedSeq || n.ackTick == n.tick || len(n.view.Members) == 1 {
		return
	}
	n.ackedSeq, n.ackTick = rr, n.tick
	n.send(Message{Type: MsgAck, View: n.view.ID, Seq: rr})
}

// checkExcluded notices that a member of our view has moved on to a newer
// view without us: our view is dead, so we leave it for a singleton view
// and rejoin through a new transition.
func (n *Node) checkExcluded(m Message) {
	if n.following || n.coord != nil || !n.view.Contains(m.From) || m.View.Seq <= n.view.ID.Seq {
		return
	}
	if _, in := slices.BinarySearch(m.Members, n.id); in {
		return
	}
	n.deliverFlush(Cut{View: n.view.ID, Seq: n.recv, Stable: max(n.knownStable, n.delivered), Survivors: []NodeID{n.id}})
	n.maxSeq++
	r := Round{Seq: n.maxSeq, Coord: n.id}
	n.follow = r
	n.installView(r, []NodeID{n.id}, n.ownGroups(n.recv), nil, fmt.Sprintf("excluded by %d", m.From))
}

func (n *Node) onLeave(m Message) {
	p := n.peers[m.From]
	if !p.left {
		n.debugf("node %d: node %d announced leave", n.id, m.From)
	}
	p.left = true
}

// ---- transitions: coordinator side ----

func (n *Node) checkTransition() {
	if n.leaving {
		return
	}
	if n.tick <= 2*n.hbTicks {
		// Fresh start: hear the others' heartbeats (and their view Seqs)
		// before coordinating anything.
		return
	}
	t := n.target()
	if t[0] != n.id {
		if n.coord != nil {
			n.debugf("node %d: abandons round %s, node %d is alive and lower", n.id, n.coord.id, t[0])
			n.coord = nil
		}
		return
	}
	if c := n.coord; c != nil {
		want := without(t, c.excluded)
		for _, id := range c.members {
			if _, ok := slices.BinarySearch(want, id); !ok {
				n.restartRound(want, "member lost")
				return
			}
		}
		return
	}
	if !slices.Equal(t, n.view.Members) || n.inconsistent() {
		n.startRound(t, Round{Seq: n.maxSeq + 1, Coord: n.id})
	}
}

// inconsistent reports whether a member of our view is in another view or
// round, or restarted; it resends a lost Install on the way.
func (n *Node) inconsistent() bool {
	bad := false
	for _, id := range n.view.Members {
		if id == n.id {
			continue
		}
		p := n.peers[id]
		if p == nil {
			return true
		}
		if p.inc != n.viewInc[id] {
			bad = true
			continue
		}
		if !p.hb || p.hbView == n.view.ID {
			continue
		}
		switch {
		case p.hbRound == n.installed && p.hbView.Seq < n.view.ID.Seq:
			if n.lastInstall != nil && n.tick >= p.resentInstall+n.hbTicks {
				p.resentInstall = n.tick
				im := *n.lastInstall
				im.To = id
				n.send(im)
			}
		case p.hbRound.Less(n.installed):
			// stale heartbeat, sent before it followed our round
		default:
			bad = true
		}
	}
	return bad
}

func without(s []NodeID, ex map[NodeID]bool) []NodeID {
	var out []NodeID
	for _, id := range s {
		if !ex[id] {
			out = append(out, id)
		}
	}
	return out
}

func (n *Node) startRound(members []NodeID, id Round) {
	n.seeSeq(id.Seq)
	ex := map[NodeID]bool{}
	if n.coord != nil && n.coord.id.Seq == id.Seq {
		ex = n.coord.excluded
	}
	c := &coordRound{id: id, members: members, phase: 1, phaseStart: n.tick, lastSend: n.tick,
		flush: map[NodeID]Message{}, commits: map[NodeID]Message{}, lastReply: map[NodeID]uint64{}, excluded: ex}
	if id.Attempt == 0 {
		n.counters.Transitions++
	} else {
		n.counters.RoundRestarts++
	}
	n.coord = c
	n.debugf("node %d: proposes round %s members %v", n.id, id, members)
	n.send(Message{Type: MsgPropose, Round: id, Members: slices.Clone(members)})
}

func (n *Node) restartRound(members []NodeID, why string) {
	c := n.coord
	id := c.id
	id.Attempt++
	n.debugf("node %d: restarts round %s (%s) with %v", n.id, c.id, why, members)
	n.startRound(members, id)
}

func (n *Node) coordTick() {
	c := n.coord
	if c == nil {
		return
	}
	var silent []NodeID
	for _, id := range c.members {
		if _, ok := c.flush[id]; ok && c.phase == 1 {
			continue
		}
		if cm, ok := c.commits[id]; ok && cm.Flags&FlagDone != 0 {
			continue
		}
		last, ok := c.lastReply[id]
		if !ok {
			last = c.phaseStart
		}
		// A member that answers but never gets its messages is as good as silent.
		if n.tick >= last+n.trTicks || n.tick >= c.phaseStart+phaseLimit*n.trTicks {
			silent = append(silent, id)
		}
	}
	if len(silent) > 0 {
		for _, id := range silent {
			c.excluded[id] = true
			if p := n.peers[id]; p != nil {
				p.silent = true
			}
		}
		n.restartRound(without(c.members, c.excluded), fmt.Sprintf("silent %v", silent))
		return
	}
	if n.tick >= c.lastSend+resendTicks {
		c.lastSend = n.tick
		switch c.phase {
		case 1:
			n.send(Message{Type: MsgPropose, Round: c.id, Members: slices.Clone(c.members)})
		case 2:
			n.send(Message{Type: MsgSync, Round: c.id, Cuts: slices.Clone(c.cuts)})
		}
	}
}

func (n *Node) onFlush(m Message) {
	c := n.coord
	if c == nil || m.Round != c.id || c.phase != 1 || !contains(c.members, m.From) {
		return
	}
	if m.Flags&FlagRefuse != 0 {
		n.seeSeq(m.Seq)
		members := c.members
		n.coord = nil
		n.startRound(members, Round{Seq: n.maxSeq + 1, Coord: n.id})
		return
	}
	c.flush[m.From] = m
	c.lastReply[m.From] = n.tick
	if len(c.flush) < len(c.members) {
		return
	}
	// Everyone flushed: the cut of each old view is the most any survivor holds.
	best := map[ViewID]Cut{}
	for _, id := range c.members {
		f := c.flush[id]
		b, ok := best[f.View]
		if !ok {
			b = Cut{View: f.View, Seq: f.Seq, Holder: id}
		}
		if f.Seq > b.Seq {
			b.Seq, b.Holder = f.Seq, id
		}
		b.Stable = max(b.Stable, f.Last)
		b.Survivors = append(b.Survivors, id)
		best[f.View] = b
	}
	c.cuts = c.cuts[:0]
	for _, cut := range best {
		c.cuts = append(c.cuts, cut)
	}
	slices.SortFunc(c.cuts, func(a, b Cut) int {
		if a.View.Less(b.View) {
			return -1
		}
		if b.View.Less(a.View) {
			return 1
		}
		return 0
	})
	c.phase, c.phaseStart, c.lastSend = 2, n.tick, n.tick
	c.lastReply = map[NodeID]uint64{}
	n.send(Message{Type: MsgSync, Round: c.id, Cuts: slices.Clone(c.cuts)})
}

func (n *Node) onCommit(m Message) {
	c := n.coord
	if c == nil || m.Round != c.id || c.phase != 2 || !contains(c.members, m.From) || m.Incarnation != c.flush[m.From].Incarnation {
		return
	}
	c.lastReply[m.From] = n.tick
	if prev, ok := c.commits[m.From]; ok && prev.Flags&FlagDone != 0 {
		return
	}
	c.commits[m.From] = m
	for _, id := range c.members {
		if c.commits[id].Flags&FlagDone == 0 {
			return
		}
	}
	// All hold their cut: install.
	groups := map[string][]NodeID{}
	for _, id := range c.members {
		for _, g := range c.commits[id].Groups {
			groups[g.Name] = append(groups[g.Name], id)
		}
	}
	var gm []GroupMembers
	for _, name := range sortedKeys(groups) {
		gm = append(gm, GroupMembers{Name: name, Members: groups[name]})
	}
	var left []NodeID
	for _, id := range n.view.Members {
		if p := n.peers[id]; p != nil && p.left && !contains(c.members, id) {
			left = append(left, id)
		}
	}
	im := Message{Type: MsgInstall, Round: c.id, Members: slices.Clone(c.members), Cuts: slices.Clone(c.cuts), Groups: gm, Alive: left}
	im.From, im.Incarnation = n.id, n.inc
	incs := map[NodeID]uint64{}
	for _, id := range c.members {
		incs[id] = c.flush[id].Incarnation
	}
	n.coord = nil
	if !n.applyInstall(im, incs) {
		n.warnf("node %d: cannot install its own round %s", n.id, im.Round)
		return
	}
	n.lastInstall = &im
	n.send(im)
}

// ---- transitions: member side ----

func (n *Node) onPropose(m Message) {
	r := m.Round
	if m.From != r.Coord || len(m.Members) == 0 || m.Members[0] != r.Coord || !contains(m.Members, n.id) || !slices.IsSorted(m.Members) {
		return
	}
	n.seeSeq(r.Seq)
	if r.Seq <= n.view.ID.Seq || r.Less(n.follow) {
		hint := max(n.view.ID.Seq, n.follow.Seq)
		n.send(Message{Type: MsgFlush, To: r.Coord, Round: r, View: n.view.ID, Seq: hint, Flags: FlagRefuse})
		return
	}
	if r != n.follow || !n.following {
		if n.coord != nil && n.coord.id != r {
			n.debugf("node %d: abandons round %s for round %s", n.id, n.coord.id, r)
			n.coord = nil
		}
		n.follow = r
		n.following = true
		n.inSync = false
		// What we flush is fixed for the round: repeats of the Propose get
		// the same answer, since the coordinator may already have cut.
		n.knownStable = max(n.knownStable, n.stable())
		n.flushRecv = n.recv
		n.flushStable = max(n.knownStable, n.delivered)
	}
	n.send(Message{Type: MsgFlush, To: r.Coord, Round: r, View: n.view.ID, Seq: n.flushRecv, Last: n.flushStable})
}

func (n *Node) onSync(m Message) {
	if !n.following || m.Round != n.follow || m.From != m.Round.Coord {
		return
	}
	if !n.inSync {
		found := false
		for _, c := range m.Cuts {
			if c.View == n.view.ID {
				n.syncCut, found = c, true
			}
		}
		if !found {
			return
		}
		n.inSync = true
	}
	n.commitProgress()
}

// commitProgress answers the coordinator in phase 2 and fetches what we miss.
func (n *Node) commitProgress() {
	cut := n.syncCut
	if n.recv >= cut.Seq {
		n.doneRound, n.doneValid = n.follow, true
		var gs []GroupMembers
		for _, g := range n.ownGroups(cut.Seq) {
			gs = append(gs, GroupMembers{Name: g})
		}
		n.send(Message{Type: MsgCommit, To: n.follow.Coord, Round: n.follow, Flags: FlagDone, Groups: gs})
		return
	}
	if cut.Seq > n.maxKnown {
		n.maxKnown = cut.Seq
	}
	n.nack(cut.Holder, true)
	n.send(Message{Type: MsgCommit, To: n.follow.Coord, Round: n.follow})
}

func (n *Node) memberTick() {
	if n.following && n.inSync && n.tick%resendTicks == 0 && !(n.doneValid && n.doneRound == n.follow) {
		n.commitProgress()
	}
	if !n.following && n.maxKnown > n.recv {
		n.nack(n.view.ID.Coord, false)
	}
}

// ownGroups is the groups this node belongs to after delivering up to seq.
func (n *Node) ownGroups(upto uint64) []string {
	in := map[string]bool{}
	for g, ms := range n.view.Groups {
		if contains(ms, n.id) {
			in[g] = true
		}
	}
	for s := n.delivered + 1; s <= upto; s++ {
		m := n.log[s]
		if m == nil || m.Origin != n.id || m.OriginInc != n.inc {
			continue
		}
		switch m.Op {
		case OpJoin:
			in[m.Group] = true
		case OpLeave:
			delete(in, m.Group)
		}
	}
	return sortedKeys(in)
}

func (n *Node) onInstall(m Message) {
	if m.From != m.Round.Coord || !n.following || m.Round != n.follow || !n.doneValid || n.doneRound != m.Round {
		return
	}
	n.applyInstall(m, nil)
}

// applyInstall delivers our old view up to its cut and installs the new view.
func (n *Node) applyInstall(m Message, incs map[NodeID]uint64) bool {
	if m.Round.Seq <= n.view.ID.Seq || !contains(m.Members, n.id) || !slices.IsSorted(m.Members) {
		return false
	}
	cut, found := Cut{}, false
	for _, c := range m.Cuts {
		if c.View == n.view.ID {
			cut, found = c, true
		}
	}
	if !found || n.recv < cut.Seq {
		n.warnf("node %d: install %s without our cut (view %s received %d)", n.id, m.Round, n.view.ID, n.recv)
		return false
	}
	n.deliverFlush(cut)
	groups := map[string][]NodeID{}
	for _, g := range m.Groups {
		groups[g.Name] = slices.Clone(g.Members)
	}
	left := map[NodeID]bool{}
	for _, id := range m.Alive {
		left[id] = true
	}
	n.installViewGroups(m.Round, m.Members, groups, left, n.reason(m, left), incs)
	return true
}

func (n *Node) reason(m Message, left map[NodeID]bool) string {
	var joined, suspected, gone []NodeID
	for _, id := range m.Members {
		if !n.view.Contains(id) {
			joined = append(joined, id)
		}
	}
	for _, id := range n.view.Members {
		if contains(m.Members, id) {
			continue
		}
		p := n.peers[id]
		if left[id] || (p != nil && p.left) {
			gone = append(gone, id)
		} else {
			suspected = append(suspected, id)
		}
	}
	olds := 0
	for _, c := range m.Cuts {
		if c.View.Seq > 0 {
			olds++
		}
	}
	var parts []string
	if olds > 1 {
		parts = append(parts, "merged")
	} else if len(joined) > 0 {
		parts = append(parts, "joined "+idList(joined))
	}
	if len(suspected) > 0 {
		parts = append(parts, "suspected "+idList(suspected))
	}
	if len(gone) > 0 {
		parts = append(parts, "left "+idList(gone))
	}
	if len(parts) == 0 {
		return "resync"
	}
	return strings.Join(parts, "; ")
}

func idList(ids []NodeID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, " ")
}

func (n *Node) installView(r Round, members []NodeID, own []string, incs map[NodeID]uint64, reason string) {
	groups := map[string][]NodeID{}
	for _, g := range own {
		groups[g] = []NodeID{n.id}
	}
	n.installViewGroups(r, members, groups, nil, reason, incs)
}

func (n *Node) installViewGroups(r Round, members []NodeID, groups map[string][]NodeID, left map[NodeID]bool, reason string, incs map[NodeID]uint64) {
	old := n.view
	for _, id := range members {
		if !old.Contains(id) {
			n.counters.Joins++
		}
	}
	for _, id := range old.Members {
		if !contains(members, id) {
			if p := n.peers[id]; left[id] || (p != nil && p.left) {
				n.counters.Leaves++
			} else {
				n.counters.Failures++
			}
		}
	}
	n.view = View{ID: ViewID{Seq: r.Seq, Coord: r.Coord}, Members: slices.Clone(members), Groups: groups}
	n.seeSeq(r.Seq)
	n.installed = r
	n.follow = r
	n.following, n.inSync, n.doneValid = false, false, false
	n.viewInc = map[NodeID]uint64{n.id: n.inc}
	for _, id := range members {
		if p := n.peers[id]; p != nil {
			n.viewInc[id] = p.inc
			p.wasSeen = true
		}
	}
	for id, inc := range incs {
		if id != n.id {
			n.viewInc[id] = inc
		}
	}
	// Unicasts to nodes that left the view are dropped.
	for _, id := range n.order {
		p := n.peers[id]
		if len(p.uQueue) > 0 && !contains(members, id) {
			n.counters.Dropped += uint64(len(p.uQueue))
			p.uQueue = nil
		}
	}
	n.resetViewState()
	n.counters.ViewsInstalled++
	n.events = append(n.events, Event{View: n.view.Clone(), Reason: reason})
	n.infof("node %d installed view %s members %v (%s)", n.id, n.view.ID, n.view.Members, reason)
	n.flushSends()
}

// ---- ordered messaging ----

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
		n.deliver(m)
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
			n.deliver(m)
		}
	}
}

func (n *Node) deliver(m *Message) {
	// Dedupe by (origin, incarnation, msgid).
	if m.Origin == n.id {
		if m.OriginInc != n.inc {
			return
		}
		if len(n.queue) == 0 || n.queue[0].msgID != m.MsgID {
			return
		}
		n.queue = n.queue[1:]
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
			n.events = append(n.events, Event{Delivery: &Delivery{Group: m.Group, From: m.Origin, Seq: m.Seq, Payload: m.Payload}})
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
		if q.sent && n.tick < q.lastSent+n.rtTicks {
			continue
		}
		if q.sent {
			n.counters.Retransmits++
		}
		q.sent, q.lastSent = true, n.tick
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

// ---- unicast ----

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
		if u.sent && n.tick < u.lastSent+n.rtTicks {
			continue
		}
		if u.sent {
			n.counters.Retransmits++
		}
		u.sent, u.lastSent = true, n.tick
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

// ---- leave, ready, status ----

// Leave announces a graceful leave: peers install a view without us and
// count it as a leave, not a failure. The node stops taking part.
func (n *Node) Leave() {
	if n.leaving {
		return
	}
	n.leaving = true
	n.coord = nil
	n.counters.Dropped += uint64(len(n.queue))
	n.queue = nil
	n.infof("node %d leaves the cluster", n.id)
	n.send(Message{Type: MsgLeave})
	n.heartbeat()
}

// HasReady reports whether Ready has anything.
func (n *Node) HasReady() bool { return len(n.msgs) > 0 || len(n.events) > 0 }

// Ready returns the output gathered since the last Advance. Send the
// messages, then apply the events in order, then call Advance.
func (n *Node) Ready() Ready {
	n.rdMsgs, n.rdEvs = len(n.msgs), len(n.events)
	return Ready{Messages: n.msgs[:n.rdMsgs:n.rdMsgs], Events: n.events[:n.rdEvs:n.rdEvs]}
}

// Advance drops the output returned by the last Ready.
func (n *Node) Advance() {
	n.msgs = append([]Message(nil), n.msgs[n.rdMsgs:]...)
	n.events = append([]Event(nil), n.events[n.rdEvs:]...)
	if len(n.msgs) == 0 {
		n.msgs = nil
	}
	if len(n.events) == 0 {
		n.events = nil
	}
	n.rdMsgs, n.rdEvs = 0, 0
}

// Status returns a snapshot of the node.
func (n *Node) Status() Status {
	s := Status{ID: n.id, Incarnation: n.inc, Tick: n.tick, View: *n.view.Clone(), Coordinator: n.view.ID.Coord, MaxSeq: n.maxSeq,
		InTransition: n.following || n.coord != nil, Leaving: n.leaving, Counters: n.counters, QueueLen: len(n.queue)}
	self := PeerStatus{ID: n.id, State: StateJoined, Incarnation: n.inc, LastHeard: n.tick}
	if n.leaving {
		self.State = StateLeaving
	}
	s.Nodes = append(s.Nodes, self)
	for _, id := range n.order {
		p := n.peers[id]
		ps := PeerStatus{ID: id, Incarnation: p.inc, LastHeard: p.lastHeard}
		switch {
		case n.view.Contains(id) && p.left:
			ps.State = StateLeaving
		case n.view.Contains(id):
			ps.State = StateJoined
		case !p.wasSeen:
			ps.State = StateConfigured
		case !p.left && n.det.Alive(id, n.tick):
			ps.State = StateUp
		default:
			ps.State = StateDown
		}
		s.Nodes = append(s.Nodes, ps)
	}
	slices.SortFunc(s.Nodes, func(a, b PeerStatus) int { return int(a.ID) - int(b.ID) })
	return s
}

func contains(s []NodeID, id NodeID) bool {
	for _, x := range s {
		if x == id {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
