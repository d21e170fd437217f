package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/concord-ha/concord/tests/harness/cluster"
	"github.com/concord-ha/concord/tests/harness/concordtest"
)

// idleRow is one line of the idle-cost table: a figure of both systems.
type idleRow struct {
	figure string
	a, b   []float64 // Concord's, Corosync's
	prec   int
	n      string
}

func (r idleRow) print() {
	x, y := summarize(r.a, r.prec), summarize(r.b, r.prec)
	ratio := "–"
	if y.med != 0 {
		ratio = strconv.FormatFloat(x.med/y.med, 'f', 2, 64)
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', r.prec, 64) }
	fmt.Printf("| idle cost | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.figure,
		num(x.med), num(x.lo), num(x.hi), num(y.med), num(y.lo), num(y.hi), r.n, ratio)
}

func summarize(v []float64, prec int) stat {
	s := append([]float64(nil), v...)
	if len(s) == 0 {
		return stat{prec: prec}
	}
	m := median(s)
	lo, hi := s[0], s[0]
	for _, x := range s {
		lo, hi = min(lo, x), max(hi, x)
	}
	return stat{med: m, lo: lo, hi: hi, prec: prec}
}

// usage is one daemon's CPU over a window and its RSS at the end.
type usage struct{ cpuPct, rssMB float64 }

// idleCost measures every daemon of both systems in the same windows,
// first with no client, then with a groupbench session per node joined to
// one group and no traffic, rounds times. /proc counts CPU in 10 ms ticks:
// a 20 s window resolves 0.05 % of a core.
func idleCost(ctx context.Context, env *cluster.CLIEnv, systems []*system, window time.Duration, rounds int) ([]idleRow, error) {
	type key struct{ sys, session int }
	cpu := map[key][]float64{}
	rss := map[key][]float64{}
	time.Sleep(5 * time.Second) // start-up work is not idle
	for r := 1; r <= rounds; r++ {
		for session := 0; session <= 1; session++ {
			var wg sync.WaitGroup
			clientErr := make([]error, len(systems)*nodes)
			if session == 1 {
				for k, s := range systems {
					for i := 1; i <= nodes; i++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							clientErr[k*nodes+i-1] = idleClient(ctx, s, i, window+8*time.Second)
						}()
					}
				}
				time.Sleep(4 * time.Second) // join and the first views are not idle
			}
			res := make([]usage, len(systems)*nodes)
			errs := make([]error, len(res))
			var mw sync.WaitGroup
			for k, s := range systems {
				for i := 1; i <= nodes; i++ {
					mw.Add(1)
					go func() {
						defer mw.Done()
						res[k*nodes+i-1], errs[k*nodes+i-1] = footprint(ctx, s.c, i, s.pids[i-1], window)
					}()
				}
			}
			mw.Wait()
			wg.Wait()
			if err := errors.Join(append(errs, clientErr...)...); err != nil {
				return nil, fmt.Errorf("idle cost: %w", err)
			}
			for k := range systems {
				for i := 0; i < nodes; i++ {
					u := res[k*nodes+i]
					cpu[key{k, session}] = append(cpu[key{k, session}], u.cpuPct)
					rss[key{k, session}] = append(rss[key{k, session}], u.rssMB)
				}
			}
		}
		env.Logf("idle round %d of %d done", r, rounds)
	}
	n := fmt.Sprintf("%d windows of %v × %d nodes", rounds, window, nodes)
	return []idleRow{
		{"daemon CPU % of a core per node, no client", cpu[key{0, 0}], cpu[key{1, 0}], 2, n},
		{"daemon CPU % of a core per node, one member per node in one group, no traffic", cpu[key{0, 1}], cpu[key{1, 1}], 2, n},
		{"daemon RSS MB per node, no client", rss[key{0, 0}], rss[key{1, 0}], 1, n},
		{"daemon RSS MB per node, one member per node in one group", rss[key{0, 1}], rss[key{1, 1}], 1, n},
	}, nil
}

// idleClient runs a groupbench in node i that joins, waits for the other
// nodes' members and stays for d without traffic.
func idleClient(ctx context.Context, s *system, i int, d time.Duration) error {
	out, errOut, err := s.c.Exec(ctx, i, s.bin, "-group", "groupbench-idle", "-id", strconv.Itoa(i),
		"-members", strconv.Itoa(nodes), "-idle-s", strconv.Itoa(int(d.Seconds())))
	if err != nil || !strings.Contains(out, fmt.Sprintf("GROUPBENCH-IDLE members=%d", nodes)) {
		return fmt.Errorf("%s node%d: idle client: %v: %s %s", s.name, i, err, strings.TrimSpace(out), strings.TrimSpace(errOut))
	}
	return nil
}

// footprint reads a process's CPU over d (% of one core) and its RSS at
// the end.
func footprint(ctx context.Context, c *cluster.Cluster, i int, pid string, d time.Duration) (usage, error) {
	cpu0, err := daemonCPU1(ctx, c, i, pid)
	if err != nil {
		return usage{}, err
	}
	t0 := time.Now()
	time.Sleep(d)
	cpu1, err := daemonCPU1(ctx, c, i, pid)
	if err != nil {
		return usage{}, err
	}
	wall := time.Since(t0).Seconds()
	st, _, err := c.Exec(ctx, i, "grep", "VmRSS", "/proc/"+pid+"/status")
	if err != nil {
		return usage{}, fmt.Errorf("node%d: /proc/%s/status: %v", i, pid, err)
	}
	var kb float64
	if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(st, "VmRSS:")), "%f", &kb); err != nil {
		return usage{}, fmt.Errorf("node%d: /proc/%s/status: VmRSS %q", i, pid, st)
	}
	return usage{cpuPct: (cpu1 - cpu0) / wall * 100, rssMB: kb / 1024}, nil
}

// profilePath is where node1's concord-noded writes its CPU profile: one
// of the few paths its unit lets it write.
const profilePath = "/var/lib/concord/groupbench-cpu.prof"

// profileDropIn makes node1's concord-noded write a CPU profile from its
// start until it stops.
func profileDropIn(ctx context.Context, c *concordtest.Cluster) error {
	conf := "[Service]\nExecStart=\nExecStart=/usr/sbin/concord-noded -cpuprofile " + profilePath + "\n"
	if err := c.WriteFile(1, "/etc/systemd/system/concord-noded.service.d/cpuprofile.conf", []byte(conf), 0o644); err != nil {
		return err
	}
	_, err := c.Systemctl(ctx, 1, "daemon-reload")
	return err
}

// fetchProfile stops node1's concord-noded, which writes the profile out,
// and copies it to file on the host.
func fetchProfile(ctx context.Context, env *cluster.CLIEnv, c *concordtest.Cluster, file string) error {
	if err := c.StopDaemon(ctx, 1); err != nil {
		return err
	}
	data, err := c.ReadFile(1, profilePath)
	if err != nil {
		return fmt.Errorf("node1: the CPU profile: %w", err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return err
	}
	env.Logf("node1's concord-noded CPU profile: %s (go tool pprof -top build/bin/concord-noded %s)", file, file)
	return nil
}
