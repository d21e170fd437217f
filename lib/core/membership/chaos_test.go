package membership

import (
	"flag"
	"fmt"
	"math/rand"
	"testing"
)

var (
	flagSeeds    = flag.Int("seeds", 0, "number of seeds for TestRandomized (default 400, 80 with -short)")
	flagSeedBase = flag.Int64("seed", 1, "first seed for TestRandomized")
	flagChaos    = flag.Int("chaosticks", 400, "ticks of random faults per seed in TestRandomized")
)

// TestRandomized runs the protocol under random faults on many seeds,
// checking the safety invariants on every step, then heals everything and
// checks liveness.
func TestRandomized(t *testing.T) {
	// 400 seeds cost about 15 s of CPU with -race (17 s of wall time on
	// two busy cores). Each ordering bug pinned by testdata/scripts fails
	// about one seed in ten here.
	seeds := 400
	if testing.Short() {
		seeds = 80
	}
	if *flagSeeds > 0 {
		seeds = *flagSeeds
	}
	for i := 0; i < seeds; i++ {
		seed := *flagSeedBase + int64(i)
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { chaos(t, seed) })
	}
}

func chaos(t *testing.T, seed int64) {
	n := 3 + rand.New(rand.NewSource(seed)).Intn(5)
	s := newSim(t, seed, n)
	r := s.rng
	s.drop = []float64{0, 0.01, 0.05, 0.1}[r.Intn(4)]
	s.dup = []float64{0, 0.02, 0.1}[r.Intn(3)]
	s.delay = []float64{0, 0.1, 0.3}[r.Intn(3)]
	for _, id := range s.ids {
		if r.Intn(2) == 0 {
			if err := s.nodes[id].n.JoinGroup("g"); err != nil {
				t.Fatal(err)
			}
		}
	}
	chaosTicks := *flagChaos
	var faults []string
	for i := 0; i < chaosTicks; i++ {
		// traffic
		if r.Intn(2) == 0 {
			id := s.ids[r.Intn(n)]
			if s.live(id) {
				group := ""
				if r.Intn(4) == 0 {
					group = "g"
				}
				if err := s.broadcast(id, group, 8+r.Intn(64)); err != nil && err != ErrQueueFull && err != ErrLeaving {
					t.Fatalf("broadcast: %v", err)
				}
			}
		}
		if r.Intn(10) == 0 {
			from, to := s.ids[r.Intn(n)], s.ids[r.Intn(n)]
			if from != to && s.live(from) {
				_ = s.unicast(from, to) // ErrNotMember is fine here
			}
		}
		if r.Intn(40) == 0 {
			id := s.ids[r.Intn(n)]
			if s.live(id) {
				if r.Intn(2) == 0 {
					_ = s.nodes[id].n.JoinGroup("g")
				} else {
					_ = s.nodes[id].n.LeaveGroup("g")
				}
			}
		}
		// faults
		if r.Intn(25) == 0 {
			id := s.ids[r.Intn(n)]
			sn := s.nodes[id]
			switch k := r.Intn(8); {
			case k == 0:
				var a []NodeID
				for _, x := range s.ids {
					if r.Intn(2) == 0 {
						a = append(a, x)
					}
				}
				s.partition(a)
				faults = append(faults, fmt.Sprintf("%d:partition%v", s.tick, a))
			case k == 1:
				s.heal()
				faults = append(faults, fmt.Sprintf("%d:heal", s.tick))
			case k == 2 && !sn.crashed && len(s.running()) > 1:
				s.crash(id)
				faults = append(faults, fmt.Sprintf("%d:crash%d", s.tick, id))
			case k == 3 && sn.crashed:
				s.restart(id)
				faults = append(faults, fmt.Sprintf("%d:restart%d", s.tick, id))
			case k == 4 && !sn.frozen && !sn.crashed:
				s.freeze(id)
				faults = append(faults, fmt.Sprintf("%d:freeze%d", s.tick, id))
			case k == 5 && sn.frozen:
				s.thaw(id)
				faults = append(faults, fmt.Sprintf("%d:thaw%d", s.tick, id))
			case k == 6 && s.live(id) && len(s.running()) > 1 && r.Intn(3) == 0:
				sn.n.Leave()
				s.collect(sn)
				sn.left = true
				faults = append(faults, fmt.Sprintf("%d:leave%d", s.tick, id))
			case k == 7:
				s.drop = []float64{0, 0.01, 0.05, 0.1}[r.Intn(4)]
			}
		}
		s.step()
		if i%50 == 49 {
			s.checkOrder()
		}
	}
	// Heal: thaw frozen nodes, restart crashed and left ones, clean network.
	s.heal()
	s.drop, s.dup = 0, 0
	for _, id := range s.ids {
		sn := s.nodes[id]
		if sn.left || sn.crashed {
			s.restart(id)
		} else if sn.frozen {
			s.thaw(id)
		}
	}
	if !s.runUntil(1500, func() bool { return s.converged(s.ids) }) {
		t.Fatalf("no convergence after healing (faults %v):\n%s", faults, s.describe())
	}
	// Liveness: everything a still-running sender broadcast was delivered
	// by itself (then by all its view's survivors, by virtual synchrony).
	for num, sm := range s.sent {
		if sm.group != "" {
			continue
		}
		sn := s.nodes[sm.from.id]
		if sn.inc != sm.from.inc {
			continue // the sender crashed since
		}
		if !sn.seen[num] {
			t.Fatalf("message %d from live sender %v never delivered (faults %v):\n%s", num, sm.from, faults, s.describe())
		}
	}
	// A final message from each node reaches everyone.
	var finals []uint64
	for _, id := range s.ids {
		if err := s.broadcast(id, "", 8); err != nil {
			t.Fatal(err)
		}
		finals = append(finals, s.nextMsg)
	}
	ok := s.runUntil(300, func() bool {
		for _, id := range s.ids {
			for _, f := range finals {
				if !s.nodes[id].seen[f] {
					return false
				}
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("final messages not delivered everywhere:\n%s", s.describe())
	}
	s.checkOrder()
}
