// Command noded benchmarks concord-noded on the nspawn test cluster and
// prints a table: failure detection (kill to the survivors' new view),
// group messaging on 3 nodes at 1 KiB, and the idle footprint per node.
// Figures, not pass/fail: `make bench` runs it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/concord-ha/concord/tests/harness/cluster"
	"github.com/concord-ha/concord/tests/harness/concordtest"
	"github.com/concord-ha/concord/tests/harness/corosync"
)

var (
	rounds     int
	noCorosync bool
)

func main() {
	trials := flag.Int("trials", 10, "failure-detection trials")
	msgs := flag.Int("messages", 2000, "group messages for the throughput run (0: skip)")
	totem := flag.String("totem", "", "extra [cluster] lines, e.g. \"tick = 30ms\"")
	flag.IntVar(&rounds, "idle-rounds", 3, "30 s windows of idle measurement")
	flag.BoolVar(&noCorosync, "no-corosync", false, "measure concord-noded's idle cost alone")
	flag.Parse()
	env := &cluster.CLIEnv{W: os.Stderr}
	defer env.Close()
	if err := run(env, *trials, *msgs, strings.ReplaceAll(*totem, ";", "\n")); err != nil {
		env.Fail()
		fmt.Fprintln(os.Stderr, "bench noded:", err)
		env.Close()
		os.Exit(1)
	}
}

func run(env *cluster.CLIEnv, trials, msgs int, totem string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	c, err := concordtest.Boot(ctx, env, concordtest.Options{Nodes: 3, Totem: totem})
	if err != nil {
		return err
	}
	all := []int{1, 2, 3}
	if _, err := c.WaitView(ctx, all, []uint16{1, 2, 3}, time.Minute); err != nil {
		return err
	}
	fmt.Println("| benchmark | median | min | max | n |")
	fmt.Println("|---|---|---|---|---|")

	// Idle footprint first, while nothing else runs: concord-noded and
	// Corosync on clusters of the same kind, up together, measured in the
	// same windows, so both see the same machine.
	if err := idle(ctx, env, c, rounds, !noCorosync); err != nil {
		return err
	}

	if msgs > 0 {
		if err := groups(ctx, c, msgs); err != nil {
			return err
		}
	}
	if trials > 0 {
		det, err := detection(ctx, env, c, trials)
		if err != nil {
			return err
		}
		row("failure detection: kill -> survivors' new view (ms); Corosync 3 default for 3 nodes: 8000 (derived)", det, "%.1f")
	}
	return nil
}

// groups: node 1 sends stamped 1 KiB messages, every node watches: once
// as fast as it can (throughput; latency then includes queueing), once
// paced at 20 ms (latency of the protocol itself).
func groups(ctx context.Context, c *concordtest.Cluster, msgs int) error {
	if err := groupRun(ctx, c, "bench", msgs, 0); err != nil {
		return err
	}
	return groupRun(ctx, c, "paced", 200, 20*time.Millisecond)
}

func groupRun(ctx context.Context, c *concordtest.Cluster, group string, msgs int, interval time.Duration) error {
	all := []int{1, 2, 3}
	for _, i := range all {
		// group watch joins the group itself, as a member.
		c.Exec(ctx, i, "systemctl", "reset-failed", "gbench")
		if _, err := c.Exec(ctx, i, "systemd-run", "--unit=gbench", "sh", "-c",
			fmt.Sprintf("concordctl group watch %s --stats --count %d --timeout 300s > /tmp/gbench.txt 2>&1", group, msgs)); err != nil {
			return err
		}
	}
	time.Sleep(time.Second)
	start := time.Now()
	if _, err := c.Exec(ctx, 1, "concordctl", "group", "send", group, "--count", strconv.Itoa(msgs), "--size", "1024",
		"--interval", interval.String(), "m"); err != nil {
		return err
	}
	sendSecs := time.Since(start).Seconds()
	var rates, lats []float64
	for _, i := range all {
		err := cluster.Eventually(ctx, func() (bool, string) {
			out, _ := c.Exec(ctx, i, "systemctl", "is-active", "gbench")
			return strings.TrimSpace(out) != "active", "watcher running"
		})
		if err != nil {
			return err
		}
		b, err := c.Exec(ctx, i, "cat", "/tmp/gbench.txt")
		if err != nil {
			return err
		}
		f := fields(b)
		rates = append(rates, f["rate_per_s"])
		lats = append(lats, f["latency_median_us"]/1000)
		if int(f["messages"]) != msgs {
			return fmt.Errorf("node%d delivered %v of %d messages: %s", i, f["messages"], msgs, b)
		}
	}
	if interval == 0 {
		row(fmt.Sprintf("group messages/s at 1 KiB, 3 nodes, delivered per node (%d msgs, 1 sender, D-Bus batches of 64)", msgs), rates, "%.0f")
		row("group message latency at 1 KiB when saturated, median per node (ms)", lats, "%.2f")
		fmt.Printf("| sender side: %d messages sent in %.2f s | | | | |\n", msgs, sendSecs)
		return nil
	}
	row(fmt.Sprintf("group message latency at 1 KiB, one every %v, median per node (ms)", interval), lats, "%.2f")
	return nil
}

// detection kills node 3 and times until node 1 installs the new view.
func detection(ctx context.Context, env *cluster.CLIEnv, c *concordtest.Cluster, trials int) ([]float64, error) {
	all := []int{1, 2, 3}
	var det []float64
	for k := 0; k < trials; k++ {
		if _, err := c.WaitView(ctx, all, []uint16{1, 2, 3}, time.Minute); err != nil {
			return nil, err
		}
		time.Sleep(500 * time.Millisecond)
		t0 := time.Now()
		if err := c.Kill(3); err != nil {
			return nil, err
		}
		if _, err := c.WaitView(ctx, []int{1, 2}, []uint16{1, 2}, time.Minute); err != nil {
			return nil, err
		}
		at, err := viewInstalledAt(ctx, c, 1, t0)
		if err != nil {
			return nil, err
		}
		det = append(det, float64(at.Sub(t0).Microseconds())/1000)
		env.Logf("trial %d: detection %.1f ms", k+1, det[len(det)-1])
		if err := c.Start(ctx, 3); err != nil {
			return nil, err
		}
		if err := c.Configure(3, c.Conf); err != nil {
			return nil, err
		}
		if err := c.StartDaemon(ctx, 3); err != nil {
			return nil, err
		}
	}
	return det, nil
}

func row(name string, v []float64, f string) {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	fmt.Printf("| %s | "+f+" | "+f+" | "+f+" | %d |\n", name, s[len(s)/2], s[0], s[len(s)-1], len(s))
}

func fields(s string) map[string]float64 {
	m := map[string]float64{}
	f := strings.Fields(s)
	for i := 0; i+1 < len(f); i += 2 {
		if v, err := strconv.ParseFloat(f[i+1], 64); err == nil {
			m[f[i]] = v
		}
	}
	return m
}

type usage struct{ rssMB, user, sys float64 }

// execFunc runs a command in one node and returns its standard output.
type execFunc func(ctx context.Context, argv ...string) (string, error)

// footprint reads a unit's main process's RSS and its user and system CPU
// over d (% of one core).
func footprint(ctx context.Context, exec execFunc, unit string, d time.Duration) (usage, error) {
	out, err := exec(ctx, "systemctl", "show", "-p", "MainPID", "--value", unit)
	if err != nil {
		return usage{}, err
	}
	pid := strings.TrimSpace(out)
	if pid == "" || pid == "0" {
		return usage{}, fmt.Errorf("%s is not running", unit)
	}
	ticks := func() (float64, float64, error) {
		s, err := exec(ctx, "cat", "/proc/"+pid+"/stat")
		if err != nil {
			return 0, 0, err
		}
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		u, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		return u, st, nil
	}
	u0, s0, err := ticks()
	if err != nil {
		return usage{}, err
	}
	time.Sleep(d)
	u1, s1, err := ticks()
	if err != nil {
		return usage{}, err
	}
	st, err := exec(ctx, "grep", "VmRSS", "/proc/"+pid+"/status")
	if err != nil {
		return usage{}, err
	}
	var kb float64
	fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(st, "VmRSS:")), "%f", &kb)
	const hz = 100 // USER_HZ
	pct := func(t float64) float64 { return t / hz / d.Seconds() * 100 }
	return usage{rssMB: kb / 1024, user: pct(u1 - u0), sys: pct(s1 - s0)}, nil
}

// viewInstalledAt is when node i logged its first view install after t0.
func viewInstalledAt(ctx context.Context, c *concordtest.Cluster, i int, t0 time.Time) (time.Time, error) {
	out, err := c.Exec(ctx, i, "journalctl", "-u", "concord-noded", "-o", "json", "--no-pager",
		"--since", "@"+strconv.FormatFloat(float64(t0.UnixNano())/1e9, 'f', 6, 64))
	if err != nil {
		return time.Time{}, err
	}
	for _, l := range strings.Split(out, "\n") {
		var e struct {
			Message string `json:"MESSAGE"`
			RT      string `json:"__REALTIME_TIMESTAMP"`
			At      string `json:"INSTALLED_AT_US"` // the daemon's own clock reading
		}
		if json.Unmarshal([]byte(l), &e) != nil || !strings.HasPrefix(e.Message, "installed view") {
			continue
		}
		if e.At != "" {
			e.RT = e.At
		}
		us, err := strconv.ParseInt(e.RT, 10, 64)
		if err != nil {
			continue
		}
		if t := time.UnixMicro(us); t.After(t0) {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("node%d logged no view install after %v", i, t0)
}

// idle measures concord-noded on c, and Corosync on a cluster of the same
// size booted beside it, in `rounds` windows of 30 s: all daemons at once
// in each window. /proc counts CPU in 10 ms ticks, so a short window cannot
// tell 0.7 % from 0.8 %.
func idle(ctx context.Context, env *cluster.CLIEnv, c *concordtest.Cluster, rounds int, withCorosync bool) error {
	type probe struct {
		name string
		exec execFunc
		unit string
	}
	var probes []probe
	for i := 1; i <= c.Size(); i++ {
		probes = append(probes, probe{"concord", func(ctx context.Context, argv ...string) (string, error) {
			return c.Exec(ctx, i, argv...)
		}, "concord-noded"})
	}
	if withCorosync {
		cc, err := corosync.Boot(ctx, env, c.Size())
		if cc != nil {
			defer cc.Close()
		}
		if err != nil {
			return fmt.Errorf("corosync cluster: %w", err)
		}
		for i := 1; i <= cc.Size(); i++ {
			probes = append(probes, probe{"corosync", func(ctx context.Context, argv ...string) (string, error) {
				out, _, err := cc.Exec(ctx, i, argv...)
				return out, err
			}, "corosync"})
		}
		env.Logf("corosync %s formed a %d-node cluster beside Concord's", cc.Version(ctx, 1), cc.Size())
	}
	settle()
	res := map[string]*struct{ rss, cpu, usr, sys []float64 }{}
	for r := 0; r < rounds; r++ {
		fps := make([]usage, len(probes))
		errs := make([]error, len(probes))
		var wg sync.WaitGroup
		for k, p := range probes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fps[k], errs[k] = footprint(ctx, p.exec, p.unit, 30*time.Second)
			}()
		}
		wg.Wait()
		for k, p := range probes {
			if errs[k] != nil {
				return fmt.Errorf("%s: %w", p.name, errs[k])
			}
			a := res[p.name]
			if a == nil {
				a = &struct{ rss, cpu, usr, sys []float64 }{}
				res[p.name] = a
			}
			f := fps[k]
			a.rss = append(a.rss, f.rssMB)
			a.cpu = append(a.cpu, f.user+f.sys)
			a.usr = append(a.usr, f.user)
			a.sys = append(a.sys, f.sys)
		}
		env.Logf("idle round %d of %d done", r+1, rounds)
	}
	n := fmt.Sprintf("%d nodes, %d windows of 30 s", c.Size(), rounds)
	a := res["concord"]
	row("idle RSS of concord-noded per node (MB)", a.rss, "%.1f")
	row("idle CPU of concord-noded per node (% of a core), "+n, a.cpu, "%.2f")
	row("  of which user time (% of a core)", a.usr, "%.2f")
	row("  of which system time, incl. veth/bridge forwarding charged to the sender (% of a core)", a.sys, "%.2f")
	if b := res["corosync"]; b != nil {
		row("idle RSS of corosync per node (MB), same run", b.rss, "%.1f")
		row("idle CPU of corosync per node (% of a core), same run and windows, knet with 2 links, aes256", b.cpu, "%.2f")
		row("  of which user time (% of a core)", b.usr, "%.2f")
		row("  of which system time (% of a core)", b.sys, "%.2f")
	}
	return nil
}

// settle waits a little after a cluster formed: start-up work is not idle.
func settle() { time.Sleep(5 * time.Second) }
