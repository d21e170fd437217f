package groups

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
)

type group struct {
	members  []Member // sorted
	id       GroupViewID
	barriers map[string]map[mkey]bool // open barrier -> entered members
}

type session struct {
	m        Member
	joined   map[string]bool // member by the order
	pending  map[string]bool // join or leave sent, not yet ordered
	queue    int             // events not yet consumed
	inflight int             // messages sent, not yet ordered back
	blocked  bool            // told ErrWouldBlock
	closing  bool            // MsgGone sent for close or death; no more events
	removing bool            // MsgGone sent for removal
	txOpen   bool
	tx       []Part
	txN      uint64
}

// Core is one node's process-group state machine. Not safe for concurrent use.
type Core struct {
	cfg  Config
	me   NodeID
	inc  uint64
	view ViewID
	// nodes of the current node view
	nodes []NodeID
	// settled: the state exchange of this node view is complete.
	settled bool
	syncs   map[NodeID]*Msg
	held    []Msg // ordered while not settled
	// holding: an unstable safe message came (membership's flush); it and
	// all after it wait for the next node view.
	holding   bool
	flushHeld []Msg
	// diverged: an unstable message was delivered; group views made from
	// here to the next node view are per side (Branch set).
	diverged bool
	// tag is the Branch of settled group views: 0, except in a boot view
	// (Seq 0), which every incarnation of the node has under the same id.
	tag uint64

	groups     map[string]*group
	sessions   map[uint32]*session
	nextClient uint32
	nextSeq    uint64
	out        Ready
}

// New returns a Core in node view v (members sorted, self included); the
// daemon calls NodeView for each view membership installs after that.
func New(cfg Config, v ViewID, nodes []NodeID) (*Core, error) {
	if cfg.Node == 0 {
		return nil, fmt.Errorf("groups: config: node id 0 is reserved")
	}
	if cfg.MaxQueue < 0 || cfg.MaxInFlight < 0 || cfg.MaxPayload < 0 {
		return nil, fmt.Errorf("groups: config: negative MaxQueue %d, MaxInFlight %d or MaxPayload %d", cfg.MaxQueue, cfg.MaxInFlight, cfg.MaxPayload)
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = 4096
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = 65536
	}
	c := &Core{cfg: cfg, me: cfg.Node, inc: cfg.Incarnation, groups: map[string]*group{}, sessions: map[uint32]*session{}}
	if err := c.NodeView(v, nodes, nodes); err != nil {
		return nil, err
	}
	return c, nil
}

// Ready returns the output accumulated since the last call and clears it.
func (c *Core) Ready() Ready {
	r := c.out
	c.out = Ready{}
	return r
}

// Settled reports whether the state exchange of the current node view is complete.
func (c *Core) Settled() bool { return c.settled }

// Members returns the members of group, as this node knows them.
func (c *Core) Members(group string) (GroupViewID, []Member) {
	g := c.groups[group]
	if g == nil {
		return GroupViewID{}, nil
	}
	return g.id, slices.Clone(g.members)
}

// Groups returns the names of known groups, sorted.
func (c *Core) Groups() []string { return slices.Sorted(maps.Keys(c.groups)) }

func (c *Core) broadcast(m Msg) {
	c.nextSeq++
	m.ID = MsgID{Node: c.me, Inc: c.inc, Seq: c.nextSeq}
	c.out.Broadcast = append(c.out.Broadcast, m)
}

// Local client calls.

// Open opens a session for process pid of uid and returns its client id.
func (c *Core) Open(pid, uid uint32) uint32 {
	c.nextClient++
	id := c.nextClient
	c.sessions[id] = &session{m: Member{Node: c.me, Inc: c.inc, Client: id, PID: pid, UID: uid},
		joined: map[string]bool{}, pending: map[string]bool{}}
	return id
}

func (c *Core) session(client uint32) (*session, error) {
	s := c.sessions[client]
	if s == nil || s.closing {
		return nil, fmt.Errorf("%w: client %d", ErrNoSession, client)
	}
	return s, nil
}

func (c *Core) member(client uint32, group string) (*session, error) {
	s, err := c.session(client)
	if err != nil {
		return nil, err
	}
	if !goodName(group) {
		return nil, fmt.Errorf("%w: %q", ErrBadGroup, group)
	}
	if !s.joined[group] || s.pending[group] {
		return nil, fmt.Errorf("%w: client %d, group %q", ErrNotMember, client, group)
	}
	return s, nil
}

// Join asks for client to join group; it is a member from its view event on.
func (c *Core) Join(client uint32, group string) error {
	s, err := c.session(client)
	if err != nil {
		return err
	}
	if !goodName(group) {
		return fmt.Errorf("%w: %q", ErrBadGroup, group)
	}
	if s.joined[group] || s.pending[group] {
		return fmt.Errorf("%w: client %d, group %q", ErrMember, client, group)
	}
	s.pending[group] = true
	c.broadcast(Msg{Kind: MsgJoin, Sender: s.m, Group: group})
	return nil
}

// Leave asks for client to leave group.
func (c *Core) Leave(client uint32, group string) error {
	s, err := c.member(client, group)
	if err != nil {
		return err
	}
	s.pending[group] = true
	c.broadcast(Msg{Kind: MsgLeave, Sender: s.m, Group: group})
	return nil
}

func (c *Core) sendable(s *session, size int) error {
	if size > c.cfg.MaxPayload {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, size, c.cfg.MaxPayload)
	}
	if s.inflight >= c.cfg.MaxInFlight {
		s.blocked = true
		return ErrWouldBlock
	}
	s.inflight++
	return nil
}

// Send sends payload to every member of group, client's group, in order.
func (c *Core) Send(client uint32, group string, order Order, payload []byte) (MsgID, error) {
	s, err := c.member(client, group)
	if err != nil {
		return MsgID{}, err
	}
	if order > Safe {
		return MsgID{}, fmt.Errorf("groups: bad order %d", order)
	}
	if err := c.sendable(s, len(payload)); err != nil {
		return MsgID{}, err
	}
	c.broadcast(Msg{Kind: MsgData, Sender: s.m, Group: group, Order: order, Payload: slices.Clone(payload)})
	return c.out.Broadcast[len(c.out.Broadcast)-1].ID, nil
}

// SendTo sends payload 1-1 to member to of group, in the group's order.
func (c *Core) SendTo(client uint32, group string, to Member, payload []byte) (MsgID, error) {
	s, err := c.member(client, group)
	if err != nil {
		return MsgID{}, err
	}
	if err := c.sendable(s, len(payload)); err != nil {
		return MsgID{}, err
	}
	c.broadcast(Msg{Kind: MsgDirect, Sender: s.m, Group: group, To: to, Payload: slices.Clone(payload)})
	return c.out.Broadcast[len(c.out.Broadcast)-1].ID, nil
}

// EnterBarrier enters client into barrier name of group.
func (c *Core) EnterBarrier(client uint32, group, name string) error {
	s, err := c.member(client, group)
	if err != nil {
		return err
	}
	if !goodName(name) {
		return fmt.Errorf("groups: bad barrier name %q", name)
	}
	c.broadcast(Msg{Kind: MsgBarrier, Sender: s.m, Group: group, Barrier: name})
	return nil
}

// TxBegin opens a transaction for client (dropping one left open).
func (c *Core) TxBegin(client uint32) error {
	s, err := c.session(client)
	if err != nil {
		return err
	}
	s.txOpen, s.tx = true, nil
	return nil
}

// TxAdd adds a message to group to client's open transaction.
func (c *Core) TxAdd(client uint32, group string, payload []byte) error {
	s, err := c.member(client, group)
	if err != nil {
		return err
	}
	if !s.txOpen {
		return ErrNoTx
	}
	s.tx = append(s.tx, Part{Group: group, Payload: slices.Clone(payload)})
	return nil
}

// TxCommit sends client's transaction: it is delivered whole, at one
// point of the order, or not at all.
func (c *Core) TxCommit(client uint32, order Order) (MsgID, error) {
	s, err := c.session(client)
	if err != nil {
		return MsgID{}, err
	}
	if !s.txOpen || len(s.tx) == 0 {
		return MsgID{}, ErrNoTx
	}
	size := 0
	for _, p := range s.tx {
		size += len(p.Payload)
	}
	if err := c.sendable(s, size); err != nil {
		return MsgID{}, err
	}
	s.txN++
	c.broadcast(Msg{Kind: MsgTx, Sender: s.m, Order: order, Parts: s.tx, Tx: s.txN})
	s.txOpen, s.tx = false, nil
	return c.out.Broadcast[len(c.out.Broadcast)-1].ID, nil
}

// InFlight returns how many of client's messages (Send, SendTo,
// TxCommit) are sent and not yet ordered back: they complete in the order
// they were sent, so a daemon can count completions for a client's flow
// control from the drop in this number.
func (c *Core) InFlight(client uint32) int {
	if s := c.sessions[client]; s != nil {
		return s.inflight
	}
	return 0
}

// Queued returns how many events client has not consumed yet.
func (c *Core) Queued(client uint32) int {
	if s := c.sessions[client]; s != nil {
		return s.queue
	}
	return 0
}

// Joined returns the groups client is a member of by the order, sorted.
func (c *Core) Joined(client uint32) []string {
	if s := c.sessions[client]; s != nil {
		return slices.Sorted(maps.Keys(s.joined))
	}
	return nil
}

// Consumed records that client read n of its queued events.
func (c *Core) Consumed(client uint32, n int) {
	if s := c.sessions[client]; s != nil {
		s.queue = max(0, s.queue-n)
	}
}

// Close ends client's session: its process closed it, or died.
func (c *Core) Close(client uint32, died bool) error {
	s, err := c.session(client)
	if err != nil {
		return err
	}
	if len(s.joined) == 0 && len(s.pending) == 0 {
		delete(c.sessions, client)
		return nil
	}
	s.closing = true
	kind, why := Closed, "session closed"
	if died {
		kind, why = Died, "process died"
	}
	c.broadcast(Msg{Kind: MsgGone, Sender: s.m, Change: kind, Reason: why})
	return nil
}

// Input from membership.

// NodeView tells the core that membership installed view v (members
// sorted, self included; survivors: the members that pass with this node
// from its previous view, Event.Survivors). Members on other nodes are
// lost at once (a view that may differ between sides, Branch set); then
// every node broadcasts its share of the state (MsgSync) and the group
// views of v follow once all of them are delivered.
func (c *Core) NodeView(v ViewID, nodes, survivors []NodeID) error {
	if !slices.IsSorted(nodes) || !slices.Contains(nodes, c.me) {
		return fmt.Errorf("groups: node view %s %v is not sorted or lacks this node %d", v, nodes, c.me)
	}
	for _, id := range survivors {
		if !slices.Contains(nodes, id) {
			return fmt.Errorf("groups: node view %s %v: survivor %d is not a member", v, nodes, id)
		}
	}
	if c.nodes != nil && !c.view.Less(v) {
		return fmt.Errorf("groups: node view %s does not follow %s", v, c.view)
	}
	// What membership ordered in the view we leave comes first, then the
	// loss of members whose node is gone, then what had to wait for it
	// (unstable safe messages and all after them).
	c.settled = false
	held := c.held
	c.held = nil
	for _, m := range held {
		c.apply(m)
	}
	c.view, c.nodes, c.diverged, c.tag = v, slices.Clone(nodes), false, 0
	if v.Seq == 0 {
		h := fnv.New64a()
		fmt.Fprintf(h, "boot|%d|%d", c.me, c.inc)
		c.tag = h.Sum64() | 1
	}
	for _, name := range c.Groups() {
		g := c.groups[name]
		var ch []Change
		for _, m := range g.members {
			switch {
			case !slices.Contains(nodes, m.Node):
				ch = append(ch, Change{Member: m, Kind: Lost, Reason: fmt.Sprintf("node %d left the cluster view", m.Node)})
			case !slices.Contains(survivors, m.Node):
				// It comes into v from another view: it may lack what we
				// delivered last. The state exchange brings it back.
				ch = append(ch, Change{Member: m, Kind: Lost, Reason: fmt.Sprintf("node %d comes from another cluster view", m.Node)})
			}
		}
		// Every group gets a new view at every node view, losses or not:
		// this node may have delivered in the node view it leaves messages
		// that others entering v from elsewhere never saw, so no group view
		// may span two node views.
		if len(g.members) > 0 {
			c.change(name, g, ch, fmt.Sprintf("view@%s", v))
		}
	}
	c.syncs = map[NodeID]*Msg{}
	flush := c.flushHeld
	c.flushHeld, c.holding = nil, false
	for _, m := range flush {
		c.apply(m)
	}
	c.broadcast(c.syncMsg())
	return nil
}

func (c *Core) syncMsg() Msg {
	m := Msg{Kind: MsgSync, Sender: Member{Node: c.me, Inc: c.inc}, View: c.view}
	for _, name := range c.Groups() {
		g := c.groups[name]
		sg := SyncGroup{Group: name}
		for _, x := range g.members {
			if x.Node == c.me {
				sg.Members = append(sg.Members, x)
			}
		}
		if len(sg.Members) == 0 {
			continue
		}
		for _, b := range slices.Sorted(maps.Keys(g.barriers)) {
			sb := SyncBarrier{Name: b}
			for _, x := range sg.Members {
				if g.barriers[b][x.key()] {
					sb.Entered = append(sb.Entered, x)
				}
			}
			if len(sb.Entered) > 0 {
				sg.Barriers = append(sg.Barriers, sb)
			}
		}
		m.Sync = append(m.Sync, sg)
	}
	return m
}

// Deliver hands the core a message membership delivered from node from,
// in the total order. stable says every node of the view that ordered it
// holds it; membership delivers unstable messages only when it finishes a
// view for the nodes that survive it.
func (c *Core) Deliver(from NodeID, m Msg, stable bool) error {
	if err := m.check(from); err != nil {
		return err
	}
	if !stable {
		// Membership is finishing the view for the nodes that survive with
		// us; other sides may finish it differently.
		c.diverged = true
	}
	switch {
	case c.holding || (!stable && m.safe()):
		c.holding = true
		c.flushHeld = append(c.flushHeld, m)
	case m.Kind == MsgSync:
		c.onSync(from, m)
	case !c.settled:
		c.held = append(c.held, m)
	default:
		c.apply(m)
	}
	return nil
}

func (c *Core) onSync(from NodeID, m Msg) {
	if c.settled || m.View != c.view || !slices.Contains(c.nodes, from) {
		return // a share of an older view, resent by membership in this one
	}
	c.syncs[from] = &m
	if len(c.syncs) < len(c.nodes) {
		return
	}
	type gs struct {
		members  []Member
		barriers map[string]map[mkey]bool
	}
	next := map[string]*gs{}
	for _, n := range c.nodes {
		for _, sg := range c.syncs[n].Sync {
			x := next[sg.Group]
			if x == nil {
				x = &gs{barriers: map[string]map[mkey]bool{}}
				next[sg.Group] = x
			}
			x.members = append(x.members, sg.Members...)
			for _, b := range sg.Barriers {
				if x.barriers[b.Name] == nil {
					x.barriers[b.Name] = map[mkey]bool{}
				}
				for _, e := range b.Entered {
					x.barriers[b.Name][e.key()] = true
				}
			}
		}
	}
	names := map[string]bool{}
	for n := range next {
		names[n] = true
	}
	for n := range c.groups {
		names[n] = true
	}
	c.settled = true
	for _, name := range slices.Sorted(maps.Keys(names)) {
		g := c.groups[name]
		if g == nil {
			g = &group{}
		}
		x := next[name]
		if x == nil {
			x = &gs{}
		}
		slices.SortFunc(x.members, compareMembers)
		x.members = slices.CompactFunc(x.members, func(a, b Member) bool { return a.key() == b.key() })
		var ch []Change
		for _, m := range x.members {
			if !slices.ContainsFunc(g.members, func(o Member) bool { return o.key() == m.key() }) {
				ch = append(ch, Change{Member: m, Kind: Merged, Reason: fmt.Sprintf("came with node %d", m.Node)})
			}
		}
		lost := false
		for _, m := range g.members {
			if !slices.ContainsFunc(x.members, func(o Member) bool { return o.key() == m.key() }) {
				ch = append(ch, Change{Member: m, Kind: Lost, Reason: fmt.Sprintf("node %d no longer has it", m.Node)})
				lost = true
			}
		}
		old := g.members
		g.members = x.members
		g.barriers = x.barriers
		if lost {
			c.failBarriers(name, g, "a member was lost with its node")
		}
		g.id = GroupViewID{View: c.view, Branch: c.tag}
		if len(g.members) == 0 {
			delete(c.groups, name)
		} else {
			c.groups[name] = g
		}
		c.emitView(name, g, old, ch)
		if !lost {
			for _, b := range slices.Sorted(maps.Keys(g.barriers)) {
				c.checkBarrier(name, g, b)
			}
		}
	}
	held := c.held
	c.held = nil
	for _, m := range held {
		c.apply(m)
	}
}

// change applies membership changes ch to group g and tells local members.
func (c *Core) change(name string, g *group, ch []Change, tag string) {
	old := g.members
	g.members = slices.DeleteFunc(slices.Clone(g.members), func(m Member) bool {
		return slices.ContainsFunc(ch, func(x Change) bool { return x.Member.key() == m.key() && x.Kind != Joined })
	})
	for _, x := range ch {
		if x.Kind == Joined {
			g.members = append(g.members, x.Member)
		}
	}
	slices.SortFunc(g.members, compareMembers)
	if c.settled && !c.diverged {
		if g.id.View != c.view || g.id.Branch != c.tag {
			g.id = GroupViewID{View: c.view, Branch: c.tag} // a group new in this settled view
		}
		g.id.N++
	} else {
		h := fnv.New64a()
		fmt.Fprintf(h, "%s|%d|%d|%s|", g.id.View, g.id.N, g.id.Branch, tag)
		for _, x := range ch {
			fmt.Fprintf(h, "%d.%d.%d/%d;", x.Member.Node, x.Member.Inc, x.Member.Client, x.Kind)
		}
		g.id = GroupViewID{View: c.view, N: g.id.N + 1, Branch: h.Sum64() | 1}
	}
	for _, x := range ch {
		if x.Kind != Joined {
			c.failBarriers(name, g, fmt.Sprintf("member %s %s", x.Member, x.Kind))
			break
		}
	}
	// An empty group stays until the next state exchange, so a group made
	// again in this view does not reuse a view id.
	c.groups[name] = g
	c.emitView(name, g, old, ch)
	if len(g.members) > 0 {
		for _, b := range slices.Sorted(maps.Keys(g.barriers)) {
			c.checkBarrier(name, g, b)
		}
	}
}

// emitView tells local members of the new view, and local members who
// just left it, about the new view.
func (c *Core) emitView(name string, g *group, old []Member, ch []Change) {
	tell := map[uint32]bool{}
	for _, m := range append(slices.Clone(old), g.members...) {
		if m.Node == c.me && m.Inc == c.inc {
			tell[m.Client] = true
		}
	}
	for _, m := range g.members {
		if s := c.sessions[m.Client]; m.Node == c.me && s != nil {
			s.joined[name] = true
		}
	}
	for _, x := range ch {
		if s := c.sessions[x.Member.Client]; x.Member.Node == c.me && x.Member.Inc == c.inc && s != nil {
			delete(s.pending, name)
			if x.Kind != Joined && x.Kind != Merged {
				delete(s.joined, name)
			}
		}
	}
	c.out.Views = append(c.out.Views, GroupView{Group: name, View: g.id, Members: slices.Clone(g.members), Changes: slices.Clone(ch)})
	for _, id := range slices.Sorted(maps.Keys(tell)) {
		c.emit(id, Event{Kind: EvView, Group: name, View: g.id, Members: slices.Clone(g.members), Changes: slices.Clone(ch)})
	}
}

// failBarriers fails every open barrier of g for the members waiting in
// it; an entry ordered later starts a new barrier.
func (c *Core) failBarriers(name string, g *group, why string) {
	for _, b := range slices.Sorted(maps.Keys(g.barriers)) {
		var local []uint32
		for k := range g.barriers[b] {
			if k.node == c.me && k.inc == c.inc {
				local = append(local, k.client)
			}
		}
		slices.Sort(local)
		for _, cl := range local {
			c.emit(cl, Event{Kind: EvBarrier, Group: name, View: g.id, Barrier: b, Failed: true, Reason: why})
		}
	}
	g.barriers = nil
}

func (c *Core) checkBarrier(name string, g *group, b string) {
	for _, m := range g.members {
		if !g.barriers[b][m.key()] {
			return
		}
	}
	delete(g.barriers, b)
	for _, m := range g.members {
		if m.Node == c.me && m.Inc == c.inc {
			c.emit(m.Client, Event{Kind: EvBarrier, Group: name, View: g.id, Barrier: b, Members: slices.Clone(g.members)})
		}
	}
}

// emit queues ev for a local client; a client whose queue passes the bound
// is removed from its groups through the order, so every node sees why.
func (c *Core) emit(client uint32, ev Event) {
	s := c.sessions[client]
	if s == nil || s.closing {
		return
	}
	ev.Client = client
	c.out.Events = append(c.out.Events, ev)
	s.queue++
	if s.queue > c.cfg.MaxQueue && !s.removing && len(s.joined) > 0 {
		s.removing = true
		c.broadcast(Msg{Kind: MsgGone, Sender: s.m, Change: Removed,
			Reason: fmt.Sprintf("queue passed %d unread events", c.cfg.MaxQueue)})
	}
}

func (c *Core) isMember(g *group, m Member) bool {
	return g != nil && slices.ContainsFunc(g.members, func(o Member) bool { return o.key() == m.key() })
}

func (c *Core) local(m Member) *session {
	if m.Node != c.me || m.Inc != c.inc {
		return nil
	}
	return c.sessions[m.Client]
}

// apply carries out an ordered message.
func (c *Core) apply(m Msg) {
	if s := c.local(m.Sender); s != nil && (m.Kind == MsgData || m.Kind == MsgDirect || m.Kind == MsgTx) {
		s.inflight--
		if s.blocked && s.inflight < c.cfg.MaxInFlight {
			s.blocked = false
			c.emit(s.m.Client, Event{Kind: EvWritable})
		}
	}
	g := c.groups[m.Group]
	switch m.Kind {
	case MsgJoin:
		// A join from a node outside the view (ordered before we lost it)
		// would make a member no node stands for.
		if c.isMember(g, m.Sender) || !slices.Contains(c.nodes, m.Sender.Node) {
			return
		}
		if g == nil {
			g = &group{}
		}
		c.change(m.Group, g, []Change{{Member: m.Sender, Kind: Joined}}, msgTag(m.ID))
	case MsgLeave:
		if s := c.local(m.Sender); s != nil {
			delete(s.pending, m.Group)
		}
		if c.isMember(g, m.Sender) {
			c.change(m.Group, g, []Change{{Member: m.Sender, Kind: Left, Reason: "left the group"}}, msgTag(m.ID))
		}
	case MsgGone:
		for _, name := range c.Groups() {
			if g := c.groups[name]; c.isMember(g, m.Sender) {
				c.change(name, g, []Change{{Member: m.Sender, Kind: m.Change, Reason: m.Reason}}, msgTag(m.ID))
			}
		}
		if s := c.local(m.Sender); s != nil {
			if m.Change == Removed {
				s.removing, s.pending = false, map[string]bool{}
			} else {
				delete(c.sessions, s.m.Client)
			}
		}
	case MsgData, MsgDirect:
		if !c.isMember(g, m.Sender) {
			c.failSend(m, "the sender was not a member of the group at its point of the order")
			return
		}
		if m.Kind == MsgDirect && !c.isMember(g, m.To) {
			c.failSend(m, fmt.Sprintf("%s was not a member of the group at its point of the order", m.To))
			return
		}
		for _, x := range g.members {
			if x.Node != c.me || x.Inc != c.inc || (m.Kind == MsgDirect && x.key() != m.To.key()) {
				continue
			}
			c.emit(x.Client, Event{Kind: EvMessage, Group: m.Group, View: g.id, From: m.Sender, Order: m.Order,
				Direct: m.Kind == MsgDirect, Payload: m.Payload, ID: m.ID})
		}
	case MsgBarrier:
		if !c.isMember(g, m.Sender) {
			return
		}
		if g.barriers == nil {
			g.barriers = map[string]map[mkey]bool{}
		}
		if g.barriers[m.Barrier] == nil {
			g.barriers[m.Barrier] = map[mkey]bool{}
		}
		g.barriers[m.Barrier][m.Sender.key()] = true
		c.checkBarrier(m.Group, g, m.Barrier)
	case MsgTx:
		for _, p := range m.Parts {
			if !c.isMember(c.groups[p.Group], m.Sender) {
				c.failSend(m, fmt.Sprintf("the sender was not a member of group %q at the transaction's point of the order", p.Group))
				return
			}
		}
		got := map[uint32][]Part{}
		for _, p := range m.Parts {
			for _, x := range c.groups[p.Group].members {
				if x.Node == c.me && x.Inc == c.inc {
					got[x.Client] = append(got[x.Client], p)
				}
			}
		}
		for _, id := range slices.Sorted(maps.Keys(got)) {
			c.emit(id, Event{Kind: EvTx, From: m.Sender, Order: m.Order, Parts: got[id], Tx: m.Tx, ID: m.ID})
		}
	}
}

// msgTag names a message in the hash of a branch view id; made only for
// view changes, not for every message.
func msgTag(id MsgID) string { return fmt.Sprintf("%d.%d.%d", id.Node, id.Inc, id.Seq) }

func (c *Core) failSend(m Msg, why string) {
	if s := c.local(m.Sender); s != nil {
		c.emit(s.m.Client, Event{Kind: EvSendFailed, Group: m.Group, ID: m.ID, Reason: why})
	}
}

// String describes an event in one line, for logs and test scripts.
func (e Event) String() string {
	var b strings.Builder
	switch e.Kind {
	case EvView:
		fmt.Fprintf(&b, "view %s %s [%s]", e.Group, e.View, memberList(e.Members))
		for _, x := range e.Changes {
			fmt.Fprintf(&b, " %s %s", x.Kind, x.Member)
			if x.Reason != "" {
				fmt.Fprintf(&b, " (%s)", x.Reason)
			}
		}
	case EvMessage:
		kind := "agreed"
		if e.Order == Safe {
			kind = "safe"
		}
		if e.Direct {
			kind = "direct"
		}
		fmt.Fprintf(&b, "msg %s %s from %s: %s", e.Group, kind, e.From, e.Payload)
	case EvTx:
		fmt.Fprintf(&b, "tx %d from %s:", e.Tx, e.From)
		for _, p := range e.Parts {
			fmt.Fprintf(&b, " %s=%s", p.Group, p.Payload)
		}
	case EvBarrier:
		if e.Failed {
			fmt.Fprintf(&b, "barrier %s %s failed (%s)", e.Group, e.Barrier, e.Reason)
		} else {
			fmt.Fprintf(&b, "barrier %s %s released [%s]", e.Group, e.Barrier, memberList(e.Members))
		}
	case EvSendFailed:
		fmt.Fprintf(&b, "send failed %s (%s)", e.Group, e.Reason)
	case EvWritable:
		b.WriteString("writable")
	}
	return b.String()
}

func memberList(ms []Member) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.String()
	}
	return strings.Join(s, " ")
}
