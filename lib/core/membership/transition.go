package membership

import (
	"fmt"
	"slices"
	"strings"
)

// Transitions, coordinator side.

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

// Transitions, member side.

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
	n.installViewGroups(m.Round, m.Members, groups, left, n.reason(m, left), incs, cut.Survivors)
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
	n.installViewGroups(r, members, groups, nil, reason, incs, []NodeID{n.id})
}

func (n *Node) installViewGroups(r Round, members []NodeID, groups map[string][]NodeID, left map[NodeID]bool, reason string, incs map[NodeID]uint64, survivors []NodeID) {
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
	n.events = append(n.events, Event{View: n.view.Clone(), Reason: reason, Survivors: slices.Clone(survivors)})
	n.infof("node %d installed view %s members %v (%s)", n.id, n.view.ID, n.view.Members, reason)
	n.flushSends()
}
