package membership

import (
	"fmt"
	"slices"
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
	ordered  bool // seen ordered in this view: only its delivery is awaited
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
	ackDue      bool   // an ack waits for the next Ready
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
		q.sent, q.ordered = false, false
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

// sendAck notes that the view should hear what we received. The ack goes
// out when the output is next taken (Ready), once for everything received
// since: a message is delivered only once every member acknowledged it,
// so acks wait for nothing else (an ack per tick made every delivery wait
// up to a tick), and a burst of frames still costs one ack.
func (n *Node) sendAck() {
	if n.reportRecv() > n.ackedSeq && len(n.view.Members) > 1 {
		n.ackDue = true
	}
}

// flushAck sends the ack sendAck noted.
func (n *Node) flushAck() {
	if !n.ackDue {
		return
	}
	n.ackDue = false
	if rr := n.reportRecv(); rr > n.ackedSeq && len(n.view.Members) > 1 {
		n.ackedSeq = rr
		n.send(Message{Type: MsgAck, View: n.view.ID, Seq: rr})
	}
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
