package quorum

import (
	"strings"
	"testing"
)

// step is one input to a Tracker in a scenario.
type step struct {
	view   []uint16 // install this view (nil with tick only: a Tick call)
	tick   uint64
	cfg    *Config // SetConfig
	tickOn bool    // call Tick(tick) instead of Update

	quorate  bool
	expected uint32 // 0: not checked
	reason   string // substring; "": not checked
}

func votes(n int) map[uint16]uint32 {
	m := map[uint16]uint32{}
	for i := 1; i <= n; i++ {
		m[uint16(i)] = 1
	}
	return m
}

func view(ns ...uint16) []uint16 { return ns }

func TestScenarios(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"three nodes lose one: still quorate", Config{Votes: votes(3)}, []step{
			{view: view(1, 2, 3), quorate: true, expected: 3, reason: "3 of 3 votes"},
			{view: view(1, 2), quorate: true, expected: 3, reason: "2 of 3 votes"},
			{view: view(1), quorate: false, reason: "1 of 3 votes, need 2"},
		}},
		{"partition 2|1: the pair is quorate", Config{Votes: votes(3)}, []step{
			{view: view(1, 2, 3), quorate: true},
			{view: view(3), quorate: false, expected: 3},
		}},
		{"partition 2|1: the single node is not", Config{Votes: votes(3)}, []step{
			{view: view(1, 2, 3), quorate: true},
			{view: view(1, 2), quorate: true},
		}},
		{"4 nodes 2|2 without tie_breaker: neither half", Config{Votes: votes(4)}, []step{
			{view: view(1, 2, 3, 4), quorate: true},
			{view: view(1, 2), quorate: false, reason: "a tie and no tie_breaker"},
		}},
		{"4 nodes 2|2 tie_breaker lowest: the half with node 1", Config{Votes: votes(4), TieBreaker: "lowest"}, []step{
			{view: view(1, 2, 3, 4), quorate: true},
			{view: view(1, 3), quorate: true, reason: "tie_breaker: holds lowest node 1"},
		}},
		{"4 nodes 2|2 tie_breaker lowest: the other half", Config{Votes: votes(4), TieBreaker: "lowest"}, []step{
			{view: view(2, 4), quorate: false, reason: "tie_breaker: lowest node 1 is in the other half"},
		}},
		{"4 nodes 2|2 tie_breaker highest", Config{Votes: votes(4), TieBreaker: "highest"}, []step{
			{view: view(2, 4), quorate: true, reason: "holds highest node 4"},
			{view: view(1, 3), quorate: false},
		}},
		{"4 nodes 2|2 tie_breaker node 3", Config{Votes: votes(4), TieBreaker: "3"}, []step{
			{view: view(1, 2), quorate: false},
			{view: view(3, 4), quorate: true, reason: "tie_breaker: holds node 3"},
		}},
		{"tie_breaker does not help below half", Config{Votes: votes(4), TieBreaker: "lowest"}, []step{
			{view: view(1), quorate: false, reason: "1 of 4 votes, need 3"},
		}},
		{"two_node: either survives alone", Config{Votes: votes(2), TwoNode: true}, []step{
			{view: view(1, 2), quorate: true, reason: "two_node: 2 of 2 votes"},
			{view: view(1), quorate: true, expected: 2, reason: "two_node: 1 of 2 votes"},
			{view: view(1, 2), quorate: true},
			{view: view(2), quorate: true},
		}},
		{"two_node with wait_for_all: cold start alone waits", Config{Votes: votes(2), TwoNode: true, WaitForAll: true}, []step{
			{view: view(2), quorate: false, reason: "wait_for_all"},
			{view: view(1, 2), quorate: true},
			{view: view(2), quorate: true},
		}},
		{"wait_for_all cold start: majority still waits", Config{Votes: votes(3), WaitForAll: true}, []step{
			{view: view(1, 2), quorate: false, reason: "wait_for_all: not all nodes seen since start"},
			{view: view(1, 2, 3), quorate: true},
			{view: view(1, 3), quorate: true, reason: "2 of 3 votes"},
		}},
		{"wait_for_all: nodes seen one by one do not count", Config{Votes: votes(3), WaitForAll: true}, []step{
			{view: view(1, 2), quorate: false},
			{view: view(1, 3), quorate: false},
			{view: view(2, 3), quorate: false, reason: "wait_for_all"},
		}},
		{"LMS 5 -> 4 -> 3 -> 2 keeps quorum step by step", Config{Votes: votes(5), LastManStanding: true, LMSWindowTicks: 10}, []step{
			{view: view(1, 2, 3, 4, 5), tick: 0, quorate: true, expected: 5},
			{view: view(1, 2, 3, 4), tick: 100, quorate: true, expected: 5},
			{tickOn: true, tick: 109, quorate: true, expected: 5},
			{tickOn: true, tick: 110, quorate: true, expected: 4},
			{view: view(1, 2, 3), tick: 200, quorate: true, expected: 4},
			{tickOn: true, tick: 210, quorate: true, expected: 3},
			{view: view(1, 2), tick: 300, quorate: true, expected: 3},
			{tickOn: true, tick: 310, quorate: true, expected: 2},
			{view: view(1), tick: 400, quorate: false, expected: 2, reason: "1 of 2 votes, need 2"},
			{tickOn: true, tick: 500, quorate: false, expected: 2},
		}},
		{"LMS: a second loss inside the window loses quorum", Config{Votes: votes(5), LastManStanding: true, LMSWindowTicks: 10}, []step{
			{view: view(1, 2, 3, 4, 5), tick: 0, quorate: true},
			{view: view(1, 2, 3), tick: 100, quorate: true},
			{view: view(1, 2), tick: 105, quorate: false, expected: 5},
			{tickOn: true, tick: 200, quorate: false, expected: 5},
		}},
		{"LMS: same members again do not restart the window", Config{Votes: votes(3), LastManStanding: true, LMSWindowTicks: 10}, []step{
			{view: view(1, 2, 3), tick: 0, quorate: true},
			{view: view(1, 2), tick: 100, quorate: true},
			{view: view(2, 1), tick: 105, quorate: true},
			{tickOn: true, tick: 110, quorate: true, expected: 2},
		}},
		{"LMS: expected votes rise again when nodes return", Config{Votes: votes(5), LastManStanding: true, LMSWindowTicks: 10}, []step{
			{view: view(1, 2, 3, 4, 5), tick: 0, quorate: true},
			{view: view(1, 2, 3, 4), tick: 10, quorate: true},
			{tickOn: true, tick: 20, quorate: true, expected: 4},
			{view: view(1, 2, 3), tick: 30, quorate: true},
			{tickOn: true, tick: 40, quorate: true, expected: 3},
			{view: view(1, 2, 3, 4, 5), tick: 50, quorate: true, expected: 5},
			// Back to five: a 2|3 split right away must not leave the pair quorate.
			{view: view(4, 5), tick: 51, quorate: false, expected: 5},
		}},
		{"LMS with tie_breaker goes down to one node", Config{Votes: votes(3), LastManStanding: true, LMSWindowTicks: 5, TieBreaker: "lowest"}, []step{
			{view: view(1, 2, 3), tick: 0, quorate: true},
			{view: view(1, 2), tick: 10, quorate: true},
			{tickOn: true, tick: 15, expected: 2, quorate: true},
			{view: view(1), tick: 20, quorate: true, reason: "tie_breaker: holds lowest node 1"},
			{tickOn: true, tick: 25, expected: 1, quorate: true, reason: "1 of 1 votes"},
		}},
		{"votes weighted: one heavy node outvotes two", Config{Votes: map[uint16]uint32{1: 3, 2: 1, 3: 1}}, []step{
			{view: view(1, 2, 3), quorate: true, expected: 5, reason: "5 of 5 votes"},
			{view: view(1), quorate: true, reason: "3 of 5 votes"},
			{view: view(2, 3), quorate: false, reason: "2 of 5 votes, need 3"},
		}},
		{"expected_votes above the sum", Config{Votes: votes(3), ExpectedVotes: 5}, []step{
			{view: view(1, 2, 3), quorate: true, expected: 5},
			{view: view(1, 2), quorate: false, reason: "2 of 5 votes, need 3"},
		}},
		{"expected_votes below the sum rises to what was seen", Config{Votes: votes(5), ExpectedVotes: 3}, []step{
			{view: view(1, 2), quorate: true, expected: 3},
			{view: view(1, 2, 3, 4, 5), quorate: true, expected: 5},
			{view: view(1, 2), quorate: false, expected: 5},
		}},
		{"unknown members count for nothing", Config{Votes: votes(3)}, []step{
			{view: view(1, 9, 9, 10), quorate: false, reason: "1 of 3 votes"},
		}},
		{"SetConfig: adding a node raises expected votes", Config{Votes: votes(3)}, []step{
			{view: view(1, 2), quorate: true},
			{cfg: &Config{Votes: votes(4)}, quorate: false, expected: 4},
			{cfg: &Config{Votes: votes(2)}, quorate: true, expected: 2},
		}},
		{"SetConfig keeps an LMS reduction", Config{Votes: votes(5), LastManStanding: true, LMSWindowTicks: 1}, []step{
			{view: view(1, 2, 3, 4, 5), tick: 0, quorate: true},
			{view: view(1, 2, 3), tick: 1, quorate: true},
			{tickOn: true, tick: 2, expected: 3, quorate: true},
			{cfg: &Config{Votes: votes(6), LastManStanding: true, LMSWindowTicks: 1}, expected: 3, quorate: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := NewTracker(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				var st State
				switch {
				case s.cfg != nil:
					if st, err = tr.SetConfig(*s.cfg); err != nil {
						t.Fatalf("step %d: SetConfig: %v", i, err)
					}
				case s.tickOn:
					st, _ = tr.Tick(s.tick)
				default:
					st = tr.Update(s.view, s.tick)
				}
				if st.Quorate != s.quorate || s.expected != 0 && st.ExpectedVotes != s.expected || !strings.Contains(st.Reason, s.reason) {
					t.Fatalf("step %d (view %v tick %d): got %+v, want quorate=%v expected=%d reason~%q",
						i, s.view, s.tick, st, s.quorate, s.expected, s.reason)
				}
				if st != tr.State() {
					t.Fatalf("step %d: State() = %+v, returned %+v", i, tr.State(), st)
				}
			}
		})
	}
}

func TestTickReportsChange(t *testing.T) {
	tr, err := NewTracker(Config{Votes: votes(3), LastManStanding: true, LMSWindowTicks: 5})
	if err != nil {
		t.Fatal(err)
	}
	tr.Update(view(1, 2, 3), 0)
	tr.Update(view(1, 2), 10)
	for tick, want := range map[uint64]bool{11: false, 14: false} {
		if _, changed := tr.Tick(tick); changed != want {
			t.Errorf("Tick(%d) changed = %v, want %v", tick, changed, want)
		}
	}
	if st, changed := tr.Tick(15); !changed || st.ExpectedVotes != 2 || st.Quorum != 2 {
		t.Errorf("Tick(15) = %+v, %v; want expected 2, quorum 2, changed", st, changed)
	}
	if _, changed := tr.Tick(16); changed {
		t.Error("Tick(16) changed again")
	}
}

func TestBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no nodes", Config{}, "votes: no nodes configured"},
		{"node 0", Config{Votes: map[uint16]uint32{0: 1}}, "votes: node number 0"},
		{"no votes at all", Config{Votes: map[uint16]uint32{1: 0}}, "votes: no node has a vote"},
		{"too many votes", Config{Votes: map[uint16]uint32{1: MaxVotes + 1}}, "votes: node 1 has 16777217 votes"},
		{"expected too big", Config{Votes: votes(1), ExpectedVotes: MaxExpectedVotes + 1}, "expected_votes: 1073741825 exceeds"},
		{"two_node with 3 nodes", Config{Votes: votes(3), TwoNode: true}, "two_node: needs exactly 2 nodes of 1 vote each, have 3 nodes"},
		{"two_node weighted", Config{Votes: map[uint16]uint32{1: 2, 2: 1}, TwoNode: true}, "two_node: needs exactly 2 nodes of 1 vote each, have 2 nodes with 3 votes"},
		{"two_node expected 3", Config{Votes: votes(2), TwoNode: true, ExpectedVotes: 3}, "two_node: needs expected_votes 0 or 2, have 3"},
		{"LMS without window", Config{Votes: votes(3), LastManStanding: true}, "lms_window_ticks: must be at least 1"},
		{"bad tie breaker", Config{Votes: votes(3), TieBreaker: "low"}, `tie_breaker: "low" is not none, lowest, highest or a node number`},
		{"tie breaker 0", Config{Votes: votes(3), TieBreaker: "0"}, `tie_breaker: "0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTracker(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewTracker error %v, want %q", err, tt.want)
			}
		})
	}
	tr, err := NewTracker(Config{Votes: votes(3)})
	if err != nil {
		t.Fatal(err)
	}
	before := tr.Update(view(1, 2), 0)
	st, err := tr.SetConfig(Config{Votes: votes(3), TwoNode: true})
	if err == nil || st != before {
		t.Errorf("SetConfig with a bad config: %+v, %v; want the old state and an error", st, err)
	}
}

func TestConfigIsCopied(t *testing.T) {
	v := votes(3)
	tr, err := NewTracker(Config{Votes: v})
	if err != nil {
		t.Fatal(err)
	}
	v[1] = 100
	if st := tr.Update(view(1), 0); st.Quorate {
		t.Errorf("the caller's map changed the tracker: %+v", st)
	}
}

func TestReturningNodesEndLMSReduction(t *testing.T) {
	// Nodes 3, 6 and 9 (5 of 8 votes) were away while 7 and 8 kept the
	// cluster going with expected votes lowered to 3. Then 8 joins the
	// returning nodes and 7 is cut off.
	cfg := Config{Votes: map[uint16]uint32{3: 1, 6: 1, 7: 2, 8: 1, 9: 3}, LastManStanding: true, LMSWindowTicks: 1}
	tr, err := NewTracker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []struct {
		view     []uint16
		expected uint32
	}{{view(3, 6, 7, 8, 9), 8}, {view(6, 7, 8, 9), 7}, {view(6, 7, 8), 4}, {view(7, 8), 3}} {
		tr.Update(s.view, uint64(2*i))
		if st, _ := tr.Tick(uint64(2*i + 1)); !st.Quorate || st.ExpectedVotes != s.expected {
			t.Fatalf("view %v after the LMS window: %+v, want quorate with expected %d", s.view, st, s.expected)
		}
	}
	if st := tr.Update(view(3, 6, 8), 10); st.Quorate || st.ExpectedVotes != 8 {
		t.Errorf("8 with the returning 3 and 6: %+v, want not quorate with expected 8", st)
	}
}

// Unblock: a surviving minority is made quorate on the admin's word, and
// the override ends when a missing node comes back.
func TestUnblockForcesQuorumUntilANodeReturns(t *testing.T) {
	votes := map[uint16]uint32{1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
	tr, err := NewTracker(Config{Votes: votes, WaitForAll: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Unblock(); err != ErrNoView {
		t.Fatalf("before any view: err %v, want ErrNoView", err)
	}
	tr.Update([]uint16{1, 2, 3, 4, 5}, 1)
	if _, err := tr.Unblock(); err != ErrAlreadyQuorate {
		t.Fatalf("quorate: err %v, want ErrAlreadyQuorate", err)
	}
	if st := tr.Update([]uint16{1, 2}, 2); st.Quorate {
		t.Fatalf("2 of 5 quorate before unblock: %+v", st)
	}
	st, err := tr.Unblock()
	if err != nil || !st.Quorate || st.ExpectedVotes != 2 || st.Quorum != 2 || !strings.Contains(st.Reason, "forced by quorum unblock") {
		t.Fatalf("after unblock: %+v, %v", st, err)
	}
	// Losing one more of the two: 1 of 2 is no quorum (the override is
	// not a licence for any remnant).
	if st := tr.Update([]uint16{1}, 3); st.Quorate {
		t.Fatalf("1 of the 2 unblocked nodes quorate: %+v", st)
	}
	if st := tr.Update([]uint16{1, 2}, 4); !st.Quorate {
		t.Fatalf("the unblocked pair again: %+v", st)
	}
	// Node 3 returns: configured expected votes are back, 3 of 5 holds.
	st = tr.Update([]uint16{1, 2, 3}, 5)
	if !st.Quorate || st.ExpectedVotes != 5 || strings.Contains(st.Reason, "forced") {
		t.Fatalf("after node 3 returns: %+v", st)
	}
	if st := tr.Update([]uint16{1, 2}, 6); st.Quorate {
		t.Fatalf("the pair after the override ended: %+v", st)
	}
}

func TestUnblockNeedsVotes(t *testing.T) {
	tr, _ := NewTracker(Config{Votes: map[uint16]uint32{1: 1, 2: 1, 3: 0}})
	tr.Update([]uint16{3}, 1)
	if _, err := tr.Unblock(); err != ErrNoVotes {
		t.Fatalf("err %v, want ErrNoVotes", err)
	}
}

func TestUnblockEndsWaitForAll(t *testing.T) {
	tr, _ := NewTracker(Config{Votes: map[uint16]uint32{1: 1, 2: 1, 3: 1}, WaitForAll: true})
	if st := tr.Update([]uint16{1, 2}, 1); st.Quorate || !st.WaitForAll {
		t.Fatalf("cold start of 2 of 3 with wait_for_all: %+v", st)
	}
	if st, err := tr.Unblock(); err != nil || !st.Quorate || st.WaitForAll {
		t.Fatalf("unblock during wait_for_all: %+v, %v", st, err)
	}
}
