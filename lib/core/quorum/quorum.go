package quorum

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Limits keep every sum far from uint32 overflow.
const (
	MaxVotes         = 1 << 24 // per node
	MaxExpectedVotes = 1 << 30
)

// Config is the quorum part of the cluster configuration.
type Config struct {
	Votes           map[uint16]uint32 // node number -> votes; every configured node
	ExpectedVotes   uint32            // 0 = sum of Votes
	TwoNode         bool              // 2 nodes of 1 vote: quorum is 1
	WaitForAll      bool              // not quorate until all nodes were seen together once
	LastManStanding bool              // lower expected votes after a stable view
	LMSWindowTicks  uint64            // how long a view must be stable for LMS
	TieBreaker      string            // "", "none", "lowest", "highest" or a node number
}

// State is the quorum as computed for the current view.
type State struct {
	Quorate       bool
	TotalVotes    uint32 // votes of the members of the current view
	ExpectedVotes uint32 // in force: configured, raised by what was seen, lowered by LMS
	Quorum        uint32 // votes needed
	WaitForAll    bool   // still waiting for all nodes to be seen
	Reason        string // short human text
}

// Tracker computes the quorum state. It is not safe for concurrent use.
type Tracker struct {
	cfg         Config
	cfgExpected uint32 // ExpectedVotes, or the sum of Votes

	expected uint32   // base expected votes, see State.ExpectedVotes
	members  []uint16 // current view, sorted, without duplicates
	since    uint64   // tick the current member set was first installed
	hasView  bool
	seenAll  bool     // wait_for_all is satisfied for good
	forced   []uint16 // the view Unblock forced quorum on, sorted; nil when no override holds
	state    State
}

// NewTracker checks cfg and returns a tracker that has seen no view
// yet. Errors name the setting at fault in cluster.conf terms.
func NewTracker(cfg Config) (*Tracker, error) {
	e, err := check(cfg)
	if err != nil {
		return nil, err
	}
	t := &Tracker{cfg: cloneConfig(cfg), cfgExpected: e, expected: e}
	t.state = t.compute()
	return t, nil
}

// check validates cfg and returns its configured expected votes.
func check(cfg Config) (uint32, error) {
	if len(cfg.Votes) == 0 {
		return 0, fmt.Errorf("votes: no nodes configured")
	}
	var sum uint32
	for n, v := range cfg.Votes {
		if n == 0 {
			return 0, fmt.Errorf("votes: node number 0 is not allowed")
		}
		if v > MaxVotes {
			return 0, fmt.Errorf("votes: node %d has %d votes, more than %d", n, v, MaxVotes)
		}
		sum += v // sum <= 2^30 before and v <= 2^24: no overflow
		if sum > MaxExpectedVotes {
			return 0, fmt.Errorf("votes: the sum of votes exceeds %d", MaxExpectedVotes)
		}
	}
	if sum == 0 {
		return 0, fmt.Errorf("votes: no node has a vote")
	}
	if cfg.ExpectedVotes > MaxExpectedVotes {
		return 0, fmt.Errorf("expected_votes: %d exceeds %d", cfg.ExpectedVotes, MaxExpectedVotes)
	}
	if cfg.TwoNode {
		if len(cfg.Votes) != 2 || sum != 2 {
			return 0, fmt.Errorf("two_node: needs exactly 2 nodes of 1 vote each, have %d nodes with %d votes", len(cfg.Votes), sum)
		}
		if cfg.ExpectedVotes != 0 && cfg.ExpectedVotes != 2 {
			return 0, fmt.Errorf("two_node: needs expected_votes 0 or 2, have %d", cfg.ExpectedVotes)
		}
	}
	if cfg.LastManStanding && cfg.LMSWindowTicks == 0 {
		return 0, fmt.Errorf("lms_window_ticks: must be at least 1 with last_man_standing")
	}
	if _, err := parseTieBreaker(cfg.TieBreaker); err != nil {
		return 0, err
	}
	if cfg.ExpectedVotes != 0 {
		return cfg.ExpectedVotes, nil
	}
	return sum, nil
}

// parseTieBreaker returns the kind ("", "lowest", "highest") or, for a
// node number, that number as node.
func parseTieBreaker(s string) (tb tieBreaker, err error) {
	switch s {
	case "", "none":
		return tieBreaker{}, nil
	case "lowest", "highest":
		return tieBreaker{kind: s}, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return tieBreaker{}, fmt.Errorf("tie_breaker: %q is not none, lowest, highest or a node number 1..65535", s)
	}
	return tieBreaker{kind: "node", node: uint16(n)}, nil
}

type tieBreaker struct {
	kind string // "" (none), "lowest", "highest", "node"
	node uint16
}

func cloneConfig(c Config) Config {
	v := make(map[uint16]uint32, len(c.Votes))
	for n, x := range c.Votes {
		v[n] = x
	}
	c.Votes = v
	return c
}

// Update installs a new view with the given members at tick and returns
// the new state. Members not in the configuration count for nothing.
func (t *Tracker) Update(members []uint16, tick uint64) State {
	m := slices.Clone(members)
	slices.Sort(m)
	m = slices.Compact(m)
	if !t.hasView || !slices.Equal(m, t.members) {
		t.since = tick
	}
	if t.hasView && t.arrivals(m) {
		// A returning node may have expected votes as high as
		// configured (votequorum takes the highest any member holds),
		// so a last_man_standing reduction or an Unblock ends here.
		// Nodes of the unblocked view itself were told of the
		// override, so their coming back does not end it.
		t.expected = max(t.expected, t.cfgExpected)
		t.forced = nil
	}
	t.members, t.hasView = m, true
	t.noteView()
	t.state = t.compute()
	return t.state
}

// noteView records what the current view shows: all nodes together
// (wait_for_all) and its votes (expected votes never stay below what a
// single view held).
func (t *Tracker) noteView() {
	if !t.seenAll && t.holdsAll() {
		t.seenAll = true
	}
	t.expected = max(t.expected, t.total())
}

// Tick lets the last_man_standing window expire: once the current view
// has been stable for LMSWindowTicks and is quorate, expected votes drop
// to its total. A later view with a node the previous view lacked
// restores the configured expected votes. Tick reports whether the
// state changed.
//
// Only that window moves with time, and every other change recomputes the
// state itself, so a tick that lowers nothing costs nothing: it runs on
// every node every tick.
func (t *Tracker) Tick(tick uint64) (State, bool) {
	if !t.cfg.LastManStanding || !t.hasView || tick < t.since || tick-t.since < t.cfg.LMSWindowTicks ||
		!t.state.Quorate || t.total() >= t.expected {
		return t.state, false
	}
	t.expected = t.total()
	s := t.compute()
	changed := s != t.state
	t.state = s
	return s, changed
}

// SetConfig replaces the configuration. Expected votes become the new
// configured value, except that a reduction by last_man_standing is kept
// (but never above the new configured value).
func (t *Tracker) SetConfig(cfg Config) (State, error) {
	e, err := check(cfg)
	if err != nil {
		return t.state, err
	}
	lowered := t.expected < t.cfgExpected
	t.cfg, t.cfgExpected = cloneConfig(cfg), e
	t.forced = nil
	if lowered {
		t.expected = min(t.expected, e)
	} else {
		t.expected = e
	}
	if t.hasView {
		t.noteView()
	}
	t.state = t.compute()
	return t.state, nil
}

// Errors of Unblock.
var (
	ErrNoView         = errors.New("quorum: no view installed yet")
	ErrAlreadyQuorate = errors.New("quorum: already quorate, nothing to unblock")
	ErrNoVotes        = errors.New("quorum: the members of this view hold no votes")
)

// Unblock forces quorum on the current view after a disaster that left it
// a minority, as corosync-quorumtool -e or pcs quorum unblock do: expected
// votes drop to the view's own votes and wait_for_all counts as satisfied.
// It is the admin's word that the missing nodes are down and will stay
// down until they rejoin this partition; if they are running elsewhere,
// both sides act. The override ends when a configured node the view lacked
// joins that was not in the view unblocked (expected votes go back to the
// configured value), or with a new configuration.
func (t *Tracker) Unblock() (State, error) {
	switch {
	case !t.hasView:
		return t.state, ErrNoView
	case t.state.Quorate:
		return t.state, ErrAlreadyQuorate
	case t.total() == 0:
		return t.state, ErrNoVotes
	}
	t.expected = t.total()
	t.seenAll = true
	t.forced = slices.Clone(t.members)
	t.state = t.compute()
	return t.state, nil
}

// Configured is the configured expected votes (expected_votes, or the sum
// of all votes).
func (t *Tracker) Configured() uint32 { return t.cfgExpected }

// State returns the current state.
func (t *Tracker) State() State { return t.state }

func (t *Tracker) total() uint32 {
	var s uint32
	for _, n := range t.members {
		s += t.cfg.Votes[n]
	}
	return s
}

// arrivals reports whether m holds a configured node the current view
// lacks (and that was not in the view an Unblock forced).
func (t *Tracker) arrivals(m []uint16) bool {
	for _, n := range m {
		if _, ok := t.cfg.Votes[n]; !ok {
			continue
		}
		if _, ok := slices.BinarySearch(t.forced, n); ok {
			continue
		}
		if _, ok := slices.BinarySearch(t.members, n); !ok {
			return true
		}
	}
	return false
}

func (t *Tracker) holdsAll() bool {
	for n := range t.cfg.Votes {
		if _, ok := slices.BinarySearch(t.members, n); !ok {
			return false
		}
	}
	return true
}

// tieNode returns the node that breaks a tie, or 0 for none.
func (t *Tracker) tieNode() (uint16, string) {
	tb, _ := parseTieBreaker(t.cfg.TieBreaker) // checked by check
	switch tb.kind {
	case "node":
		return tb.node, fmt.Sprintf("node %d", tb.node)
	case "lowest", "highest":
		var best uint16
		for n := range t.cfg.Votes {
			if best == 0 || tb.kind == "lowest" && n < best || tb.kind == "highest" && n > best {
				best = n
			}
		}
		return best, fmt.Sprintf("%s node %d", tb.kind, best)
	}
	return 0, ""
}

func (t *Tracker) compute() State {
	total := t.total()
	s := State{TotalVotes: total, ExpectedVotes: max(t.expected, total)}
	s.Quorum = s.ExpectedVotes/2 + 1
	if t.cfg.TwoNode {
		s.Quorum = 1
	}
	votes := fmt.Sprintf("%d of %d votes", total, s.ExpectedVotes)
	switch {
	case t.cfg.WaitForAll && !t.seenAll:
		s.WaitForAll = true
		s.Reason = "wait_for_all: not all nodes seen since start"
	case total >= s.Quorum && t.forced != nil && s.ExpectedVotes < t.cfgExpected:
		s.Quorate, s.Reason = true, fmt.Sprintf("forced by quorum unblock: %s (configured %d)", votes, t.cfgExpected)
	case total >= s.Quorum && t.cfg.TwoNode:
		s.Quorate, s.Reason = true, "two_node: "+votes
	case total >= s.Quorum:
		s.Quorate, s.Reason = true, votes
	case 2*uint64(total) == uint64(s.ExpectedVotes):
		node, what := t.tieNode()
		_, holds := slices.BinarySearch(t.members, node)
		switch {
		case node == 0:
			s.Reason = fmt.Sprintf("%s, need %d; a tie and no tie_breaker", votes, s.Quorum)
		case holds:
			s.Quorate, s.Reason = true, "tie_breaker: holds "+what
		default:
			s.Reason = fmt.Sprintf("tie_breaker: %s is in the other half", what)
		}
	default:
		s.Reason = fmt.Sprintf("%s, need %d", votes, s.Quorum)
	}
	return s
}
