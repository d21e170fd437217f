package noded

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concord-ha/concord/tests/harness/cluster"
	"github.com/concord-ha/concord/tests/harness/concordtest"
)

// TestReliability runs the node-service part of Pacemaker's CTS list (see
// anchors.md §4d) on five nodes, with an audit after every step: the
// running nodes that can hear each other agree on one view of exactly
// themselves, each is quorate exactly when its view holds 3 of the 5
// votes, they hold the same replicated configuration, and no daemon died
// unless the step killed it. Random choices come from a logged seed.
func TestReliability(t *testing.T) {
	c, ctx := boot(t, concordtest.Options{Nodes: 5})
	all := []int{1, 2, 3, 4, 5}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CONCORD_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CONCORD_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("seed %d (CONCORD_SEED=%d replays the same choices)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	r := &rel{t: t, ctx: ctx, c: c, up: map[int]bool{}, restarts: map[int]int{}}
	for _, i := range all {
		r.up[i] = true
	}
	r.audit("boot", [][]int{all})

	// SimulStop / SimulStart: everything at once.
	r.parallel(all, func(i int) error { return c.StopDaemon(ctx, i) })
	for _, i := range all {
		r.up[i] = false
		out, _, _ := c.Cluster.Exec(ctx, i, "journalctl", "-u", "concord-noded", "-o", "cat", "--no-pager", "-n", "20")
		if !strings.Contains(out, "left the cluster") {
			t.Errorf("SimulStop: node%d did not leave cleanly:\n%s", i, out)
		}
	}
	r.parallel(all, func(i int) error { return c.StartDaemon(ctx, i) })
	for _, i := range all {
		r.started(i)
	}
	r.audit("SimulStart", [][]int{all})

	// StopOnebyOne down to one node (crossing the quorum point), then
	// StartOnebyOne back up, in a random order.
	order := slices.Clone(all)
	rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
	for _, i := range order[:4] {
		if err := c.StopDaemon(ctx, i); err != nil {
			t.Fatal(err)
		}
		r.up[i] = false
		r.audit(fmt.Sprintf("StopOnebyOne node%d", i), [][]int{r.running()})
	}
	for _, i := range order[:4] {
		if err := c.StartDaemon(ctx, i); err != nil {
			t.Fatal(err)
		}
		r.started(i)
		r.audit(fmt.Sprintf("StartOnebyOne node%d", i), [][]int{r.running()})
	}

	// RestartOnebyOne.
	for _, i := range all {
		if _, err := c.Systemctl(ctx, i, "restart", "concord-noded"); err != nil {
			t.Fatal(err)
		}
		r.started(i)
		r.audit(fmt.Sprintf("RestartOnebyOne node%d", i), [][]int{all})
	}

	// ComponentFail: SIGKILL the daemon; the others drop it, systemd
	// restarts it, it rejoins.
	for k := 0; k < 2; k++ {
		i := all[rng.IntN(len(all))]
		seqBefore := r.viewSeq(all[0])
		if _, err := c.Systemctl(ctx, i, "kill", "-s", "KILL", "concord-noded"); err != nil {
			t.Fatal(err)
		}
		r.restarts[i]++
		others := slices.DeleteFunc(slices.Clone(all), func(n int) bool { return n == i })
		if _, err := c.WaitView(ctx, others, ids(others...), changeTimeout); err != nil {
			// The restart can be quicker than the survivors' audit; then
			// a higher view of all five is fine.
			if s := r.viewSeq(all[0]); s <= seqBefore {
				t.Fatalf("ComponentFail node%d: %v", i, err)
			}
		}
		r.audit(fmt.Sprintf("ComponentFail node%d", i), [][]int{all})
	}

	// SplitBrainTest: random 2- and 3-way partitions, then heal.
	for k := 0; k < 4; k++ {
		sets := randomPartition(rng, all, 2+rng.IntN(2))
		if err := c.Partition(sets); err != nil {
			t.Fatal(err)
		}
		r.audit(fmt.Sprintf("SplitBrain %v", sets), sets)
		if err := c.Heal(); err != nil {
			t.Fatal(err)
		}
		r.audit("Heal", [][]int{all})
	}

	// PartialStart: stop a node before it is fully up; then a node that
	// dies (SIGKILL) while it joins, which systemd restarts.
	for k := 0; k < 2; k++ {
		i := all[rng.IntN(len(all))]
		if err := c.StopDaemon(ctx, i); err != nil {
			t.Fatal(err)
		}
		r.up[i] = false
		r.audit(fmt.Sprintf("PartialStart stop node%d", i), [][]int{r.running()})
		if _, err := c.Systemctl(ctx, i, "start", "--no-block", "concord-noded"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		if k == 0 {
			if err := c.StopDaemon(ctx, i); err != nil {
				t.Fatal(err)
			}
			r.audit(fmt.Sprintf("PartialStart node%d stopped while starting", i), [][]int{r.running()})
			if err := c.StartDaemon(ctx, i); err != nil {
				t.Fatal(err)
			}
			r.started(i)
		} else {
			r.started(i)
			if _, err := c.Systemctl(ctx, i, "kill", "-s", "KILL", "concord-noded"); err != nil {
				t.Fatal(err)
			}
			r.restarts[i]++
		}
		r.audit(fmt.Sprintf("PartialStart node%d back", i), [][]int{all})
	}

	// ResyncConfig: a node that was down while the configuration changed
	// catches up when it starts (the audit compares every node's copy).
	{
		i := all[rng.IntN(len(all))]
		if err := c.StopDaemon(ctx, i); err != nil {
			t.Fatal(err)
		}
		r.up[i] = false
		other := r.running()[0]
		if _, err := c.Exec(ctx, other, "concordctl", "config", "set", "resync", fmt.Sprint(seed)); err != nil {
			t.Fatal(err)
		}
		r.audit(fmt.Sprintf("ResyncConfig node%d down, option set on node%d", i, other), [][]int{r.running()})
		if err := c.StartDaemon(ctx, i); err != nil {
			t.Fatal(err)
		}
		r.started(i)
		r.audit(fmt.Sprintf("ResyncConfig node%d back", i), [][]int{all})
	}

	// ResyncCIB's counterpart: a node whose state directory was lost
	// (a replaced disk) starts empty and gets the configuration back,
	// including a change made while it was down, and its journal says
	// what happened.
	{
		i := all[rng.IntN(len(all))]
		if err := c.StopDaemon(ctx, i); err != nil {
			t.Fatal(err)
		}
		r.up[i] = false
		if _, err := c.Exec(ctx, i, "sh", "-c", "rm -rf /var/lib/concord/*"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, r.running()[0], "concordctl", "config", "set", "wiped", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		if err := c.StartDaemon(ctx, i); err != nil {
			t.Fatal(err)
		}
		r.started(i)
		r.audit(fmt.Sprintf("WipedState node%d back", i), [][]int{all})
		if conf, err := c.Exec(ctx, i, "concordctl", "config", "show"); err != nil || !strings.Contains(conf, fmt.Sprintf("wiped = %d", i)) {
			t.Errorf("WipedState: node%d's configuration lacks the change made while it was down: %v\n%s", i, err, conf)
		}
		j, _ := c.Exec(ctx, i, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat")
		t.Logf("WipedState: node%d reported its state lost and was replicated again: %v (no when it had led, since a new leader starts everyone over)",
			i, strings.Contains(j, "replicated configuration state was lost"))
	}

	// NearQuorumPoint: stop a random 2 or 3 nodes at once, then start
	// them at once.
	for k := 0; k < 2; k++ {
		n := 2 + rng.IntN(2)
		down := slices.Clone(all)
		rng.Shuffle(len(down), func(a, b int) { down[a], down[b] = down[b], down[a] })
		down = down[:n]
		slices.Sort(down)
		r.parallel(down, func(i int) error { return c.StopDaemon(ctx, i) })
		for _, i := range down {
			r.up[i] = false
		}
		r.audit(fmt.Sprintf("NearQuorumPoint stop %v", down), [][]int{r.running()})
		r.parallel(down, func(i int) error { return c.StartDaemon(ctx, i) })
		for _, i := range down {
			r.started(i)
		}
		r.audit(fmt.Sprintf("NearQuorumPoint start %v", down), [][]int{all})
	}
}

type rel struct {
	t        *testing.T
	ctx      context.Context
	c        *concordtest.Cluster
	up       map[int]bool // concord-noded meant to be running
	restarts map[int]int  // restarts the test caused (SIGKILL)
}

// started records a start the test made; systemd counts in NRestarts only
// the restarts it makes itself after the last such start.
func (r *rel) started(i int) {
	r.up[i] = true
	r.restarts[i] = 0
}

func (r *rel) running() []int {
	var ns []int
	for i := 1; i <= r.c.Size(); i++ {
		if r.up[i] {
			ns = append(ns, i)
		}
	}
	return ns
}

func (r *rel) parallel(nodes []int, f func(int) error) {
	r.t.Helper()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for k, i := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[k] = f(i) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *rel) viewSeq(i int) uint64 {
	s, err := r.c.Status(r.ctx, i)
	if err != nil {
		return 0
	}
	return s.View.Seq
}

// audit checks the settled cluster against sets: the running nodes of each
// set form one view of exactly themselves.
func (r *rel) audit(step string, sets [][]int) {
	r.t.Helper()
	start := time.Now()
	for _, set := range sets {
		var live []int
		for _, i := range set {
			if r.up[i] {
				live = append(live, i)
			}
		}
		if len(live) == 0 {
			continue
		}
		if _, err := r.c.WaitView(r.ctx, live, ids(live...), changeTimeout); err != nil {
			r.t.Fatalf("%s: nodes %v never agreed on a view of themselves: %v", step, live, err)
		}
		want := 2*len(live) > r.c.Size() // one vote each, expected 5
		for _, i := range live {
			s := mustQuorate(r.t, r.ctx, r.c, i, want)
			if s.State != "joined" {
				r.t.Errorf("%s: node%d is %s", step, i, s.State)
			}
		}
		// A node that was away catches up through Raft, a little after
		// it is back in the view.
		err := cluster.Eventually(withTimeout(r.ctx, changeTimeout), func() (bool, string) {
			var first string
			for _, i := range live {
				cf, err := r.c.Exec(r.ctx, i, "concordctl", "config", "show")
				if err != nil {
					return false, err.Error()
				}
				if first == "" {
					first = cf
				} else if cf != first {
					return false, fmt.Sprintf("node%d's replicated configuration:\n%s\nnode%d's:\n%s", i, cf, live[0], first)
				}
			}
			return true, ""
		})
		if err != nil {
			r.t.Errorf("%s: the nodes' configurations differ: %v", step, err)
		}
	}
	for _, i := range r.running() {
		out, _, _ := r.c.Cluster.Exec(r.ctx, i, "systemctl", "show", "-p", "NRestarts", "--value", "concord-noded")
		if got := strings.TrimSpace(out); got != fmt.Sprint(r.restarts[i]) {
			r.t.Errorf("%s: node%d's daemon was restarted %s times, the test killed it %d times", step, i, got, r.restarts[i])
		}
	}
	r.t.Logf("%s: settled and audited in %v", step, time.Since(start).Round(time.Millisecond))
}

// randomPartition splits nodes into k non-empty sets.
func randomPartition(rng *rand.Rand, nodes []int, k int) [][]int {
	ns := slices.Clone(nodes)
	rng.Shuffle(len(ns), func(a, b int) { ns[a], ns[b] = ns[b], ns[a] })
	sets := make([][]int, k)
	for j, i := range ns {
		if j < k {
			sets[j] = append(sets[j], i)
			continue
		}
		s := rng.IntN(k)
		sets[s] = append(sets[s], i)
	}
	for _, s := range sets {
		slices.Sort(s)
	}
	return sets
}
