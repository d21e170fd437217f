package membership

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Scenario tests named after the spec's sentences and Pacemaker CTS
// scenarios. They run on the simulated network with every invariant of
// sim.event checked on each step.

func settle(t *testing.T, s *sim, ids []NodeID, limit int) {
	t.Helper()
	if !s.runUntil(limit, func() bool { return s.converged(ids) }) {
		t.Fatalf("nodes %v did not converge in %d ticks:\n%s", ids, limit, s.describe())
	}
}

// newViews returns the views node id installed after view after.
func newViews(s *sim, id NodeID, after ViewID) []*View {
	var out []*View
	seen := false
	for _, v := range viewsOf(s.nodes[id]) {
		if seen {
			out = append(out, v)
		}
		if v.ID == after {
			seen = true
		}
	}
	return out
}

func startCluster(t *testing.T, n int) *sim {
	t.Helper()
	s := newSim(t, 1, n)
	s.record = true
	settle(t, s, s.ids, 100)
	return s
}

func TestStartupFormsOneView(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 7} {
		s := newSim(t, int64(n), n)
		settle(t, s, s.ids, 200)
		v := s.nodes[1].n.view
		if !slices.Equal(v.Members, s.ids) {
			t.Fatalf("view %s members %v, want %v", v.ID, v.Members, s.ids)
		}
	}
}

func TestKillOneOfThreeNewViewWithoutIt(t *testing.T) {
	s := startCluster(t, 3)
	old := s.nodes[1].n.view.ID
	s.crash(3)
	settle(t, s, []NodeID{1, 2}, 100)
	for _, id := range []NodeID{1, 2} {
		vs := newViews(s, id, old)
		if len(vs) != 1 || !slices.Equal(vs[0].Members, []NodeID{1, 2}) {
			t.Fatalf("node %d: views after %s: %v, want exactly one with [1 2]", id, old, vs)
		}
		if r := lastReason(s, id); r != "suspected 3" {
			t.Errorf("node %d: reason %q, want %q", id, r, "suspected 3")
		}
		st := s.nodes[id].n.Status()
		if got := st.NodeState(3); got != "down" {
			t.Errorf("node %d: node 3 state %q, want down", id, got)
		}
		if st.Counters.Failures != 1 {
			t.Errorf("node %d: Failures = %d, want 1", id, st.Counters.Failures)
		}
	}
}

func lastReason(s *sim, id NodeID) string {
	r := ""
	for _, ev := range s.nodes[id].events {
		if ev.View != nil {
			r = ev.Reason
		}
	}
	return r
}

func TestTwoSimultaneousFailuresOneTransition(t *testing.T) {
	for _, kill := range [][2]NodeID{{4, 5}, {1, 3}, {1, 2}} {
		t.Run(fmt.Sprintf("kill%d+%d", kill[0], kill[1]), func(t *testing.T) {
			s := startCluster(t, 5)
			s.run(7) // heartbeats under way, detectors out of phase
			old := s.nodes[s.ids[0]].n.view.ID
			s.crash(kill[0])
			s.crash(kill[1])
			var survivors []NodeID
			for _, id := range s.ids {
				if id != kill[0] && id != kill[1] {
					survivors = append(survivors, id)
				}
			}
			settle(t, s, survivors, 200)
			for _, id := range survivors {
				vs := newViews(s, id, old)
				if len(vs) != 1 || !slices.Equal(vs[0].Members, survivors) {
					t.Fatalf("node %d: views after %s: %v, want exactly one with %v", id, old, viewList(vs), survivors)
				}
			}
		})
	}
}

func viewList(vs []*View) string {
	var b []string
	for _, v := range vs {
		b = append(b, fmt.Sprintf("%s%v", v.ID, v.Members))
	}
	return strings.Join(b, " ")
}

func TestSecondFailureDuringTransitionMerges(t *testing.T) {
	s := startCluster(t, 5)
	old := s.nodes[1].n.view.ID
	s.crash(5)
	// Step until the coordinator has started the round for the first
	// failure, then kill a member of that round before it answers.
	if !s.runUntil(100, func() bool { return s.nodes[1].n.coord != nil }) {
		t.Fatal("coordinator never started a round")
	}
	if m := s.nodes[1].n.coord.members; !slices.Equal(m, []NodeID{1, 2, 3, 4}) {
		t.Fatalf("first round members %v, want [1 2 3 4]", m)
	}
	s.crash(4)
	settle(t, s, []NodeID{1, 2, 3}, 200)
	for _, id := range []NodeID{1, 2, 3} {
		vs := newViews(s, id, old)
		if len(vs) != 1 || !slices.Equal(vs[0].Members, []NodeID{1, 2, 3}) {
			t.Fatalf("node %d: views after %s: %s, want exactly one with [1 2 3]", id, old, viewList(vs))
		}
		if r := lastReason(s, id); r != "suspected 4 5" {
			t.Errorf("node %d: reason %q, want %q", id, r, "suspected 4 5")
		}
	}
	if st := s.nodes[1].n.Status(); st.Counters.RoundRestarts == 0 {
		t.Errorf("coordinator did not restart its round: %+v", st.Counters)
	}
}

func TestFrozenNodeRejoinsWithNewView(t *testing.T) {
	for _, frozen := range []NodeID{3, 1} { // a member, and the coordinator
		t.Run(fmt.Sprintf("node%d", frozen), func(t *testing.T) {
			s := startCluster(t, 3)
			old := s.nodes[frozen].n.view.ID
			s.freeze(frozen)
			var others []NodeID
			for _, id := range s.ids {
				if id != frozen {
					others = append(others, id)
				}
			}
			settle(t, s, others, 100)
			moved := s.nodes[others[0]].n.view.ID
			for i := 0; i < 20; i++ { // traffic the frozen node misses
				if err := s.broadcast(others[i%2], "", 8); err != nil {
					t.Fatal(err)
				}
			}
			s.run(200)
			s.thaw(frozen)
			settle(t, s, s.ids, 200)
			vs := newViews(s, frozen, old)
			if len(vs) == 0 {
				t.Fatalf("frozen node %d installed nothing after thawing", frozen)
			}
			for _, v := range vs {
				if v.ID.Seq <= moved.Seq {
					t.Errorf("node %d installed view %s, not newer than %s that the others moved on to", frozen, v.ID, moved)
				}
			}
			final := vs[len(vs)-1]
			if !slices.Equal(final.Members, s.ids) {
				t.Errorf("final view %s%v, want all nodes", final.ID, final.Members)
			}
			// It never delivered the traffic of the view it was not in.
			if len(s.nodes[frozen].seen) != 0 {
				t.Errorf("frozen node delivered %d messages of a view it was not in", len(s.nodes[frozen].seen))
			}
		})
	}
}

func TestCrashedNodeRestartsAndRejoins(t *testing.T) {
	s := startCluster(t, 3)
	s.crash(2)
	settle(t, s, []NodeID{1, 3}, 100)
	mid := s.nodes[1].n.view.ID
	s.restart(2)
	settle(t, s, s.ids, 100)
	v := s.nodes[2].n.view
	if v.ID.Seq <= mid.Seq || !slices.Equal(v.Members, s.ids) {
		t.Fatalf("restarted node in view %s%v, want a view newer than %s with all", v.ID, v.Members, mid)
	}
	if got := lastReason(s, 1); got != "joined 2" {
		t.Errorf("reason %q, want %q", got, "joined 2")
	}
}

func TestCleanLeaveIsNotAFailure(t *testing.T) {
	s := startCluster(t, 3)
	old := s.nodes[1].n.view.ID
	s.nodes[3].n.Leave()
	s.nodes[3].left = true
	s.collect(s.nodes[3])
	settle(t, s, []NodeID{1, 2}, 100)
	for _, id := range []NodeID{1, 2} {
		vs := newViews(s, id, old)
		if len(vs) != 1 || !slices.Equal(vs[0].Members, []NodeID{1, 2}) {
			t.Fatalf("node %d: views after %s: %s, want one with [1 2]", id, old, viewList(vs))
		}
		if r := lastReason(s, id); r != "left 3" {
			t.Errorf("node %d: reason %q, want %q", id, r, "left 3")
		}
		c := s.nodes[id].n.Status().Counters
		if c.Failures != 0 || c.Leaves != 1 {
			t.Errorf("node %d: Failures %d Leaves %d, want 0 and 1", id, c.Failures, c.Leaves)
		}
	}
	if err := s.nodes[3].n.Broadcast("", []byte("12345678")); err != ErrLeaving {
		t.Errorf("Broadcast after Leave: %v, want ErrLeaving", err)
	}
}

func TestPartitionHealMerges(t *testing.T) {
	s := startCluster(t, 5)
	s.partition([]NodeID{1, 2})
	settle(t, s, []NodeID{1, 2}, 100)
	settle(t, s, []NodeID{3, 4, 5}, 100)
	a, b := s.nodes[1].n.view.ID, s.nodes[3].n.view.ID
	for i := 0; i < 30; i++ {
		if err := s.broadcast(s.ids[i%5], "", 8); err != nil {
			t.Fatal(err)
		}
		s.step()
	}
	s.heal()
	settle(t, s, s.ids, 200)
	v := s.nodes[1].n.view
	if v.ID.Seq <= max(a.Seq, b.Seq) {
		t.Errorf("merged view %s not newer than %s and %s", v.ID, a, b)
	}
	for _, id := range s.ids {
		if r := lastReason(s, id); r != "merged" {
			t.Errorf("node %d: reason %q, want merged", id, r)
		}
	}
	s.checkOrder()
}

func TestThreeSendersOneGroupMemberKilled(t *testing.T) {
	for _, tc := range []struct {
		name string
		kill NodeID
	}{
		{"sequencer", 1},
		{"sender", 3},
		{"member", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, 7, 5)
			s.drop, s.delay = 0.02, 0.1
			for _, id := range s.ids {
				if err := s.nodes[id].n.JoinGroup("g"); err != nil {
					t.Fatal(err)
				}
			}
			settle(t, s, s.ids, 200)
			senders := []NodeID{2, 3, 4}
			const per = 1000
			count := map[NodeID]int{}
			done := func() bool {
				for _, id := range senders {
					if count[id] < per && !s.nodes[id].crashed {
						return false
					}
				}
				return true
			}
			for tick := 0; !done(); tick++ {
				if tick == 40 {
					s.crash(tc.kill)
				}
				for _, id := range senders {
					for k := 0; k < 10 && count[id] < per; k++ {
						if s.nodes[id].crashed {
							break
						}
						if err := s.broadcast(id, "g", 1024); err != nil {
							t.Fatalf("node %d: broadcast: %v", id, err)
						}
						count[id]++
					}
				}
				s.step()
			}
			var survivors []NodeID
			for _, id := range s.ids {
				if id != tc.kill {
					survivors = append(survivors, id)
				}
			}
			s.drop, s.delay = 0, 0
			settle(t, s, survivors, 2000)
			ref := s.nodes[survivors[0]].groupSeq["g"]
			for _, id := range survivors[1:] {
				if got := s.nodes[id].groupSeq["g"]; !slices.Equal(got, ref) {
					t.Fatalf("node %d delivered %d messages, node %d %d, sequences differ", id, len(got), survivors[0], len(ref))
				}
			}
			for num, sm := range s.sent {
				if sm.from.id == tc.kill {
					continue
				}
				if !s.nodes[survivors[0]].seen[num] {
					t.Fatalf("message %d from live sender %d lost", num, sm.from.id)
				}
			}
			t.Logf("survivors delivered %d messages each in the same order (%d sent)", len(ref), len(s.sent))
		})
	}
}

func TestStatusStates(t *testing.T) {
	s := newSim(t, 1, 4)
	s.record = true
	s.crash(4) // configured, never started
	settle(t, s, []NodeID{1, 2, 3}, 100)
	states := func() string {
		st := s.nodes[1].n.Status()
		var w []string
		for _, p := range st.Nodes {
			w = append(w, fmt.Sprintf("%d=%s", p.ID, p.State))
		}
		return strings.Join(w, " ")
	}
	if got, want := states(), "1=joined 2=joined 3=joined 4=configured"; got != want {
		t.Fatalf("states %q, want %q", got, want)
	}
	// Track node 2 through leaving and down, node 4 through up and joined.
	var seen2, seen4 []string
	track := func() {
		st := s.nodes[1].n.Status()
		for _, p := range st.Nodes {
			switch p.ID {
			case 2:
				if len(seen2) == 0 || seen2[len(seen2)-1] != p.State.String() {
					seen2 = append(seen2, p.State.String())
				}
			case 4:
				if len(seen4) == 0 || seen4[len(seen4)-1] != p.State.String() {
					seen4 = append(seen4, p.State.String())
				}
			}
		}
	}
	track()
	s.nodes[2].n.Leave()
	s.nodes[2].left = true
	s.collect(s.nodes[2])
	for i := 0; i < 30; i++ {
		s.step()
		track()
	}
	s.crash(2)
	for i := 0; i < 30; i++ {
		s.step()
		track()
	}
	s.restart(4)
	for i := 0; i < 30; i++ {
		s.step()
		track()
	}
	if got, want := strings.Join(seen2, ","), "joined,leaving,down"; got != want {
		t.Errorf("node 2 went %s, want %s", got, want)
	}
	if got, want := strings.Join(seen4, ","), "configured,up,joined"; got != want {
		t.Errorf("node 4 went %s, want %s", got, want)
	}
	st := s.nodes[1].n.Status()
	if st.Coordinator != 1 || !slices.Equal(st.View.Members, []NodeID{1, 3, 4}) || st.InTransition {
		t.Errorf("status: coordinator %d view %v in transition %v", st.Coordinator, st.View.Members, st.InTransition)
	}
	if st.Counters.Leaves != 1 || st.Counters.Failures != 0 {
		t.Errorf("counters: %+v", st.Counters)
	}
}

// TestThawedNodeLeavesDeadViewFirst: a node frozen while the others moved
// on must leave its dead view for a singleton view ("excluded by N") as
// soon as it hears a member of that view in a newer view without it, and
// only then merge. Until it does it still reports its old members, and so
// its old quorum, though they formed a view without it.
func TestThawedNodeLeavesDeadViewFirst(t *testing.T) {
	for _, frozen := range []NodeID{3, 1} { // a member, and the coordinator
		t.Run(fmt.Sprintf("node%d", frozen), func(t *testing.T) {
			s := startCluster(t, 3)
			old := s.nodes[frozen].n.view
			s.freeze(frozen)
			var others []NodeID
			for _, id := range s.ids {
				if id != frozen {
					others = append(others, id)
				}
			}
			settle(t, s, others, 100)
			s.run(30)
			s.thaw(frozen)
			n := s.nodes[frozen].n
			for i := 0; n.view.ID == old.ID; i++ {
				if i == 100 {
					t.Fatalf("node %d still in view %s 100 ticks after thawing:\n%s", frozen, old.ID, s.describe())
				}
				s.step()
				if n.view.ID != old.ID {
					break
				}
				for _, id := range old.Members {
					if p := n.peers[id]; p != nil && p.hb && p.hbView.Seq > old.ID.Seq {
						t.Fatalf("node %d heard node %d in view %s and still reports its dead view %s%v",
							frozen, id, p.hbView, old.ID, n.Status().View.Members)
					}
				}
				if n.following {
					// A Propose came before any heartbeat: the node is in
					// a round, frozen, and this test no longer sees the step.
					t.Fatalf("node %d followed round %s before hearing a heartbeat; change the scenario", frozen, n.follow)
				}
			}
			settle(t, s, s.ids, 200)
			vs := newViews(s, frozen, old.ID)
			if len(vs) < 2 {
				t.Fatalf("node %d views after thawing: %s, want a singleton then a merge", frozen, viewList(vs))
			}
			if !slices.Equal(vs[0].Members, []NodeID{frozen}) {
				t.Errorf("node %d went from %s to %s%v, want a singleton view first", frozen, old.ID, vs[0].ID, vs[0].Members)
			}
			var reason string
			for _, ev := range s.nodes[frozen].events {
				if ev.View != nil && ev.View.ID == vs[0].ID {
					reason = ev.Reason
				}
			}
			if reason != "excluded by "+fmt.Sprint(others[0]) && reason != "excluded by "+fmt.Sprint(others[1]) {
				t.Errorf("node %d left %s with reason %q, want excluded by %v", frozen, old.ID, reason, others)
			}
			if final := vs[len(vs)-1]; !slices.Equal(final.Members, s.ids) {
				t.Errorf("final view %s%v, want all nodes", final.ID, final.Members)
			}
		})
	}
}
