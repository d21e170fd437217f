package quorum

import (
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"testing"
	"testing/quick"
)

// event is one call made to a Tracker.
type event struct {
	kind    string // "update", "tick", "config", "unblock"
	members []uint16
	tick    uint64
	cfg     Config
}

// oracle recomputes the state after events[k] from the whole history,
// the slow and obvious way: sets as maps, quorum found by counting up,
// LMS windows found by scanning back through the history.
func oracle(cfg0 Config, events []event, k int) State {
	cfgAt := func(i int) Config { // the configuration in force after event i
		c := cfg0
		for j := 0; j <= i; j++ {
			if events[j].kind == "config" {
				c = events[j].cfg
			}
		}
		return c
	}
	viewAt := func(i int) ([]uint16, bool) { // the view in force after event i
		for j := i; j >= 0; j-- {
			if events[j].kind == "update" {
				return events[j].members, true
			}
		}
		return nil, false
	}
	setOf := func(ms []uint16) map[uint16]bool {
		s := map[uint16]bool{}
		for _, m := range ms {
			s[m] = true
		}
		return s
	}
	totalOf := func(c Config, ms []uint16) uint32 {
		var t uint32
		for m := range setOf(ms) {
			t += c.Votes[m]
		}
		return t
	}
	configured := configuredOf
	var state func(i int) (State, uint32)
	// unblocked reports whether event j was an Unblock that took effect:
	// there was a view with votes, and it was not quorate.
	unblocked := func(j int) bool {
		if events[j].kind != "unblock" {
			return false
		}
		ms, ok := viewAt(j)
		prev, _ := state(j - 1)
		return ok && !prev.Quorate && totalOf(cfgAt(j), ms) > 0
	}
	seenAllBy := func(i int) bool {
		for j := 0; j <= i; j++ {
			if unblocked(j) {
				return true
			}
			ms, ok := viewAt(j)
			if !ok || events[j].kind == "tick" {
				continue
			}
			s, all := setOf(ms), true
			for n := range cfgAt(j).Votes {
				all = all && s[n]
			}
			if all {
				return true
			}
		}
		return false
	}
	// stableSince is the tick of the first of the trailing updates that
	// installed the same member set as the view in force after event i.
	stableSince := func(i int) uint64 {
		var since uint64
		var cur map[uint16]bool
		for j := i; j >= 0; j-- {
			if events[j].kind != "update" {
				continue
			}
			s := setOf(events[j].members)
			if cur == nil {
				cur = s
			} else if !sameSet(cur, s) {
				break
			}
			since = events[j].tick
		}
		return since
	}
	// Base expected votes, event by event.
	stateWith := func(i int, base uint32) State {
		c := cfgAt(i)
		ms, _ := viewAt(i)
		total := totalOf(c, ms)
		exp := base
		if total > exp {
			exp = total
		}
		q := uint32(1)
		for 2*q <= exp { // the smallest q that two disjoint groups cannot both reach
			q++
		}
		if c.TwoNode {
			q = 1
		}
		st := State{TotalVotes: total, ExpectedVotes: exp, Quorum: q}
		if c.WaitForAll && !seenAllBy(i) {
			st.WaitForAll = true
			return st
		}
		st.Quorate = total >= q
		if !st.Quorate && 2*total == exp {
			var tb uint16
			var nums []int
			for n := range c.Votes {
				nums = append(nums, int(n))
			}
			sort.Ints(nums)
			switch c.TieBreaker {
			case "", "none":
			case "lowest":
				tb = uint16(nums[0])
			case "highest":
				tb = uint16(nums[len(nums)-1])
			default:
				x, _ := strconv.Atoi(c.TieBreaker)
				tb = uint16(x)
			}
			st.Quorate = tb != 0 && setOf(ms)[tb]
		}
		return st
	}
	type memo struct {
		st     State
		base   uint32
		forced map[uint16]bool
	}
	memos := map[int]memo{}
	state = func(i int) (State, uint32) {
		if i < 0 {
			return State{}, configured(cfg0)
		}
		if m, ok := memos[i]; ok {
			return m.st, m.base
		}
		prevState, base := state(i - 1)
		forced := memos[i-1].forced
		ev := events[i]
		c := cfgAt(i)
		ms, hasView := viewAt(i)
		switch ev.kind {
		case "config":
			prevCfg := cfgAt(i - 1)
			if i == 0 {
				prevCfg = cfg0
			}
			forced = nil
			if base < configured(prevCfg) {
				base = min(base, configured(c))
			} else {
				base = configured(c)
			}
		case "unblock":
			if unblocked(i) {
				base = totalOf(c, ms)
				forced = setOf(ms)
			}
		case "tick":
			if c.LastManStanding && hasView && ev.tick >= stableSince(i) && ev.tick-stableSince(i) >= c.LMSWindowTicks &&
				prevState.Quorate && totalOf(c, ms) < base {
				base = totalOf(c, ms)
			}
		}
		if ev.kind == "update" {
			if prev, ok := viewAt(i - 1); ok {
				old := setOf(prev)
				for _, m := range ms {
					if _, configured := c.Votes[m]; configured && !old[m] && !forced[m] {
						base = max(base, configuredOf(c))
						forced = nil
					}
				}
			}
		}
		if hasView && ev.kind != "tick" && totalOf(c, ms) > base {
			base = totalOf(c, ms)
		}
		st := stateWith(i, base)
		memos[i] = memo{st, base, forced}
		return st, base
	}
	st, _ := state(k)
	return st
}

func configuredOf(c Config) uint32 {
	if c.ExpectedVotes != 0 {
		return c.ExpectedVotes
	}
	var s uint32
	for _, v := range c.Votes {
		s += v
	}
	return s
}

func sameSet(a, b map[uint16]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// randomConfig makes a valid configuration of 1..7 nodes.
func randomConfig(r *rand.Rand) Config {
	n := 1 + r.Intn(7)
	c := Config{Votes: map[uint16]uint32{}}
	for len(c.Votes) < n {
		v := uint32(1)
		if r.Intn(3) == 0 {
			v = uint32(r.Intn(4)) // 0..3, 0 = a node without a vote
		}
		c.Votes[uint16(1+r.Intn(9))] = v
	}
	var sum uint32
	for _, v := range c.Votes {
		sum += v
	}
	if sum == 0 {
		for k := range c.Votes {
			c.Votes[k] = 1
			sum = 1
			break
		}
	}
	if r.Intn(3) == 0 {
		c.ExpectedVotes = uint32(1 + r.Intn(int(sum)+3))
	}
	if len(c.Votes) == 2 && sum == 2 && r.Intn(2) == 0 {
		c.TwoNode = true
		if c.ExpectedVotes != 0 {
			c.ExpectedVotes = 2
		}
	}
	c.WaitForAll = r.Intn(3) == 0
	if r.Intn(2) == 0 {
		c.LastManStanding = true
		c.LMSWindowTicks = uint64(1 + r.Intn(5))
	}
	c.TieBreaker = []string{"", "none", "lowest", "highest", strconv.Itoa(1 + r.Intn(9))}[r.Intn(5)]
	return c
}

func randomEvents(r *rand.Rand, cfg Config) []event {
	var evs []event
	var tick uint64
	for range 1 + r.Intn(25) {
		tick += uint64(r.Intn(4))
		switch x := r.Intn(10); {
		case x < 5:
			var ms []uint16
			for n := uint16(1); n <= 10; n++ { // 10 is never configured
				if r.Intn(3) != 0 {
					ms = append(ms, n)
				}
			}
			if r.Intn(4) == 0 { // everyone configured, as after a full merge
				ms = ms[:0]
				for n := range cfg.Votes {
					ms = append(ms, n)
				}
			}
			if len(ms) > 0 && r.Intn(5) == 0 {
				ms = append(ms, ms[0]) // a duplicate
			}
			evs = append(evs, event{kind: "update", members: ms, tick: tick})
		case x < 8:
			evs = append(evs, event{kind: "tick", tick: tick})
		case x < 9:
			evs = append(evs, event{kind: "unblock", tick: tick})
		default:
			cfg = randomConfig(r)
			evs = append(evs, event{kind: "config", cfg: cfg})
		}
	}
	return evs
}

// TestTrackerMatchesOracle drives random configurations and histories
// through the Tracker and checks every state against the oracle.
func TestTrackerMatchesOracle(t *testing.T) {
	check := func(seed int64) bool {
		r := rand.New(rand.NewSource(seed))
		cfg := randomConfig(r)
		evs := randomEvents(r, cfg)
		tr, err := NewTracker(cfg)
		if err != nil {
			t.Errorf("seed %d: NewTracker(%+v): %v", seed, cfg, err)
			return false
		}
		for i, ev := range evs {
			var got State
			switch ev.kind {
			case "update":
				got = tr.Update(ev.members, ev.tick)
			case "tick":
				got, _ = tr.Tick(ev.tick)
			case "unblock":
				got, _ = tr.Unblock()
			case "config":
				if got, err = tr.SetConfig(ev.cfg); err != nil {
					t.Errorf("seed %d: SetConfig(%+v): %v", seed, ev.cfg, err)
					return false
				}
			}
			want := oracle(cfg, evs, i)
			got.Reason = ""
			if got != want {
				t.Errorf("seed %d, config %+v, event %d %+v:\n got %+v\nwant %+v\nhistory %s", seed, cfg, i, ev, got, want, history(evs[:i+1]))
				return false
			}
		}
		return true
	}
	if err := quick.Check(check, &quick.Config{MaxCount: 3000, Rand: rand.New(rand.NewSource(1))}); err != nil {
		t.Error(err)
	}
}

func history(evs []event) string {
	s := ""
	for _, e := range evs {
		switch e.kind {
		case "update":
			s += fmt.Sprintf("\n  update %v @%d", e.members, e.tick)
		case "tick":
			s += fmt.Sprintf("\n  tick @%d", e.tick)
		case "unblock":
			s += "\n  unblock"
		default:
			s += fmt.Sprintf("\n  config %+v", e.cfg)
		}
	}
	return s
}

// TestNoSplitBrain checks the safety promise directly: two trackers with
// the same history that then see disjoint views are never both quorate
// (two_node excepted: there fencing decides; expected votes below the
// sum excepted: that is the admin's explicit choice).
func TestNoSplitBrain(t *testing.T) {
	check := func(seed int64) bool {
		r := rand.New(rand.NewSource(seed))
		cfg := randomConfig(r)
		if cfg.TwoNode {
			return true
		}
		if cfg.ExpectedVotes != 0 { // below the sum it is the admin's own risk, as in votequorum
			var sum uint32
			for _, v := range cfg.Votes {
				sum += v
			}
			cfg.ExpectedVotes = max(cfg.ExpectedVotes, sum)
		}
		a, err := NewTracker(cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := NewTracker(cfg)
		var tick uint64
		for _, ev := range randomEvents(r, cfg) {
			tick = ev.tick
			switch ev.kind {
			case "update":
				a.Update(ev.members, ev.tick)
				b.Update(ev.members, ev.tick)
			case "tick":
				a.Tick(ev.tick)
				b.Tick(ev.tick)
			}
		}
		// With last_man_standing only the nodes of the last shared view
		// may take part: a node returning on just one side is the risk
		// votequorum documents too.
		pool := cfg.Votes
		if cfg.LastManStanding {
			pool = map[uint16]uint32{}
			for _, n := range a.members {
				pool[n] = 1
			}
		}
		var left, right []uint16
		for n := range pool {
			if r.Intn(2) == 0 {
				left = append(left, n)
			} else {
				right = append(right, n)
			}
		}
		tick++
		sa, sb := a.Update(left, tick), b.Update(right, tick)
		for range 10 { // let LMS windows run out on both sides
			tick++
			sa, _ = a.Tick(tick)
			sb, _ = b.Tick(tick)
		}
		if sa.Quorate && sb.Quorate {
			t.Errorf("seed %d, config %+v: both %v (%s) and %v (%s) are quorate", seed, cfg, left, sa.Reason, right, sb.Reason)
			return false
		}
		return true
	}
	if err := quick.Check(check, &quick.Config{MaxCount: 3000, Rand: rand.New(rand.NewSource(2))}); err != nil {
		t.Error(err)
	}
}
