package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/concord-ha/concord/tests/harness/cluster"
	"github.com/concord-ha/concord/tests/harness/concordtest"
	"github.com/concord-ha/concord/tests/harness/corosync"
)

const nodes = 3

// benchCase is one row group of the table.
type benchCase struct {
	name    string
	size    int   // bytes per message
	senders []int // node indexes that send
	paced   bool  // one message every -interval from node 1, else a flood
}

var allCases = []benchCase{
	{"64b-1s", 64, []int{1}, false},
	{"64b-3s", 64, []int{1, 2, 3}, false},
	{"1k-1s", 1024, []int{1}, false},
	{"1k-3s", 1024, []int{1, 2, 3}, false},
	{"16k-1s", 16384, []int{1}, false},
	{"16k-3s", 16384, []int{1, 2, 3}, false},
	{"paced", 1024, []int{1}, true},
}

func (c benchCase) String() string {
	if c.paced {
		return fmt.Sprintf("%s paced, 1 sender (n1)", sizeName(c.size))
	}
	s := "1 sender (n1)"
	if len(c.senders) > 1 {
		s = fmt.Sprintf("%d senders (1 per node)", len(c.senders))
	}
	return fmt.Sprintf("%s flood, %s", sizeName(c.size), s)
}

func sizeName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

type options struct {
	runs, msgs, paced int
	interval          time.Duration
	cases             []benchCase
	idleWindow        time.Duration // 0: no idle measurement
	idleRounds        int
	cpuprofile        string // host file for node1's concord-noded CPU profile
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 4, "runs of every case (interleaved: run 1 of each case, then run 2, ...)")
	flag.IntVar(&o.msgs, "msgs", 20000, "messages per sender in each flood run (16 KiB floods: a quarter, to keep the run short)")
	flag.IntVar(&o.paced, "paced", 250, "messages in each paced run")
	flag.DurationVar(&o.interval, "interval", 20*time.Millisecond, "pace of the paced case")
	flag.DurationVar(&o.idleWindow, "idle-window", 20*time.Second, "window of each idle measurement (0: skip the idle cost)")
	flag.IntVar(&o.idleRounds, "idle-rounds", 2, "idle windows with and without a group session open")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write node1's concord-noded CPU profile (pprof, daemon start to the end of the runs) to `file`")
	cases := flag.String("cases", "all", "comma-separated cases to run, of: "+caseNames())
	flag.Parse()
	if err := o.check(*cases); err != nil {
		fmt.Fprintln(os.Stderr, "bench groups:", err)
		os.Exit(2)
	}
	env := &cluster.CLIEnv{W: os.Stderr}
	defer env.Close()
	if err := run(env, o); err != nil {
		env.Fail()
		fmt.Fprintln(os.Stderr, "bench groups: FAILED:", err)
		env.Close()
		os.Exit(1)
	}
}

func caseNames() string {
	var n []string
	for _, c := range allCases {
		n = append(n, c.name)
	}
	return strings.Join(n, ",")
}

func (o *options) check(cases string) error {
	if o.runs < 1 || o.runs > 1000 {
		return fmt.Errorf("-runs %d: want 1..1000", o.runs)
	}
	if o.msgs < 2 || o.msgs > 10_000_000 {
		return fmt.Errorf("-msgs %d: want 2..10000000", o.msgs)
	}
	if o.paced < 1 || o.paced > 1_000_000 {
		return fmt.Errorf("-paced %d: want 1..1000000", o.paced)
	}
	if o.interval < time.Millisecond || o.interval > 10*time.Second {
		return fmt.Errorf("-interval %v: want 1ms..10s", o.interval)
	}
	if o.idleWindow != 0 && (o.idleWindow < 5*time.Second || o.idleWindow > 10*time.Minute) {
		return fmt.Errorf("-idle-window %v: want 0 or 5s..10m", o.idleWindow)
	}
	if o.idleRounds < 1 || o.idleRounds > 100 {
		return fmt.Errorf("-idle-rounds %d: want 1..100", o.idleRounds)
	}
	if cases == "all" {
		o.cases = allCases
		return nil
	}
	for _, name := range strings.Split(cases, ",") {
		i := slices.IndexFunc(allCases, func(c benchCase) bool { return c.name == strings.TrimSpace(name) })
		if i < 0 {
			return fmt.Errorf("-cases: no case %q; the cases are %s", name, caseNames())
		}
		if slices.ContainsFunc(o.cases, func(c benchCase) bool { return c.name == allCases[i].name }) {
			return fmt.Errorf("-cases: %q twice", name)
		}
		o.cases = append(o.cases, allCases[i])
	}
	return nil
}

// system is one group service under test, on its own 3-node cluster.
type system struct {
	name    string // in the table
	version string
	b       backend
	c       *cluster.Cluster
	bin     string   // the client, in every node
	pids    []string // the daemon's main process in every node
	// The daemon's journal line that marks a new membership, to tell
	// whether one formed during the runs.
	viewMark string
	views0   []int
	figs     map[string]*figures
}

func run(env *cluster.CLIEnv, o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	tmp, err := os.MkdirTemp("", "groupbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	deb := concordtest.Deb()
	if deb == "" {
		return errors.New("CONCORD_DEB does not name a built package (make bench sets it; or run make deb)")
	}
	sysroot := path.Join(tmp, "sysroot")
	if err := unpackConcord(deb, sysroot); err != nil {
		return err
	}
	cb := concordBackend(sysroot)
	concordBin, err := buildClient(cb, tmp)
	if err != nil {
		return err
	}
	cpgBin, err := buildClient(cpgBackend, tmp)
	if err != nil {
		return err
	}

	cc, err := concordtest.Boot(ctx, env, concordtest.Options{Nodes: nodes, NoStart: true})
	if cc != nil {
		defer cc.Close()
	}
	if err != nil {
		return fmt.Errorf("concord cluster: %w", err)
	}
	for i := 1; i <= nodes; i++ {
		// Corosync runs at real-time priority (SCHED_RR 99): its floods
		// leave the other nodes' systemd, which is not real-time, so little
		// CPU on these 2 cores that it took a watchdog ping too late and
		// killed a concord-noded whose loop ran fine (seen 11:17 on
		// 2026-12-02, during Corosync's 16 KiB run, Concord idle). A longer
		// watchdog here keeps the runs going; it does not change what
		// either system does.
		if err := cc.WriteFile(i, "/etc/systemd/system/concord-noded.service.d/bench-watchdog.conf",
			[]byte("[Service]\nWatchdogSec=60s\n"), 0o644); err != nil {
			return err
		}
		if _, err := cc.Systemctl(ctx, i, "daemon-reload"); err != nil {
			return err
		}
		if i == 1 && o.cpuprofile != "" {
			if err := profileDropIn(ctx, cc); err != nil {
				return err
			}
		}
		if err := cc.StartDaemon(ctx, i); err != nil {
			return err
		}
	}
	if _, err := cc.WaitView(ctx, []int{1, 2, 3}, []uint16{1, 2, 3}, time.Minute); err != nil {
		return fmt.Errorf("concord cluster: %w", err)
	}
	cv, _ := cc.Exec(ctx, 1, "dpkg-query", "-W", "-f", "${Version}", "concord")
	env.Logf("concord %s formed a %d-node cluster", cv, nodes)
	kc, err := corosync.Boot(ctx, env, nodes)
	if kc != nil {
		defer kc.Close()
	}
	if err != nil {
		return fmt.Errorf("corosync cluster: %w", err)
	}
	kv := kc.Version(ctx, 1)
	env.Logf("corosync %s formed a %d-node cluster beside it", kv, nodes)
	systems := []*system{
		{name: "Concord", version: strings.TrimSpace(cv), b: cb, c: cc.Cluster, bin: concordBin, viewMark: "installed view"},
		{name: "Corosync CPG", version: kv, b: cpgBackend, c: kc.Cluster, bin: cpgBin, viewMark: "A new membership"},
	}
	for _, s := range systems {
		data, err := os.ReadFile(s.bin)
		if err != nil {
			return err
		}
		s.bin = "/usr/local/bin/" + path.Base(s.bin)
		for i := 1; i <= nodes; i++ {
			if err := s.c.WriteFile(i, s.bin, data, 0o755); err != nil {
				return err
			}
		}
		if s.pids, err = mainPIDs(ctx, s.c, s.b.daemon); err != nil {
			return err
		}
		s.figs = map[string]*figures{}
	}
	// Start-up work is not part of the figures; the host's load meanwhile,
	// with both clusters idle, is the other work sharing the CPUs.
	busy0 := hostBusy()
	time.Sleep(3 * time.Second)
	idleBusy := busyPercent(busy0, hostBusy())

	var idleRows []idleRow
	if o.idleWindow > 0 {
		if idleRows, err = idleCost(ctx, env, systems, o.idleWindow, o.idleRounds); err != nil {
			return err
		}
	}
	for _, s := range systems {
		if s.views0, err = viewCount(ctx, s); err != nil {
			return err
		}
	}

	start := time.Now()
	for r := 1; r <= o.runs; r++ {
		for _, bc := range o.cases {
			// Each case on both systems back to back, the first of the
			// two taking turns, so both see the same machine.
			order := []*system{systems[0], systems[1]}
			if r%2 == 0 {
				order[0], order[1] = order[1], order[0]
			}
			for _, s := range order {
				if err := runCase(ctx, env, s, bc, o, r); err != nil {
					return err
				}
			}
		}
	}
	elapsed := time.Since(start).Round(time.Second)
	var warnings []string
	for _, s := range systems {
		views1, err := viewCount(ctx, s)
		if err != nil {
			return err
		}
		for i := range views1 {
			if d := views1[i] - s.views0[i]; d != 0 {
				warnings = append(warnings, fmt.Sprintf("WARNING: %s on node%d formed %d new membership(s) during the runs: the figures include a reconfiguration", s.name, i+1, d))
			}
		}
	}
	if o.cpuprofile != "" {
		if err := fetchProfile(ctx, env, cc, o.cpuprofile); err != nil {
			return err
		}
	}

	fmt.Printf("\nProcess groups on %d nspawn nodes per system: Concord %s (libconcord, concord_group_send, CONCORD_ORDER_AGREED) beside Corosync %s CPG (libcpg, cpg_mcast_joined, CPG_TYPE_AGREED), both clusters up together, each case run on one then the other (alternating which first); %d runs per case, %d msgs per sender per flood run (16 KiB: %d), %d paced msgs per run every %v; %v total.\n",
		nodes, systems[0].version, kv, o.runs, o.msgs, floodMsgs(o.msgs, 16384), o.paced, o.interval, elapsed)
	fmt.Printf("The nodes share the host's %d CPUs with any other work on it: host CPU busy %.1f %% with both clusters idle just before the runs.\n\n", runtime.NumCPU(), idleBusy)
	fmt.Println("| case | figure | Concord median | min | max | Corosync median | min | max | n | Concord / Corosync |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, bc := range o.cases {
		printCase(os.Stdout, bc, systems[0].figs[bc.name], systems[1].figs[bc.name])
	}
	for _, r := range idleRows {
		r.print()
	}
	fmt.Println("\nChecks passed in every run on both systems: each member delivered every sender's messages once, in sequence, and all members' digests of the total delivery order were identical.")
	for _, w := range warnings {
		fmt.Println(w)
	}
	return nil
}

// runCase runs bc once on s and adds its figures.
func runCase(ctx context.Context, env *cluster.CLIEnv, s *system, bc benchCase, o options, r int) error {
	f := s.figs[bc.name]
	if f == nil {
		f = &figures{}
		s.figs[bc.name] = f
	}
	busy0 := hostBusy()
	cpu0, err := daemonCPU(ctx, s.c, s.pids)
	if err != nil {
		return err
	}
	t0 := time.Now()
	res, err := runOnce(ctx, s, bc, o, r)
	wall := time.Since(t0).Seconds()
	if err != nil {
		return fmt.Errorf("%s, run %d, %s: %w", s.name, r, bc, err)
	}
	f.busy = append(f.busy, busyPercent(busy0, hostBusy()))
	cpu1, err := daemonCPU(ctx, s.c, s.pids)
	if err != nil {
		return err
	}
	f.add(bc, res)
	f.daemonUS = append(f.daemonUS, (cpu1-cpu0)/res[0].num("delivered")*1e6)
	f.daemonPct = append(f.daemonPct, (cpu1-cpu0)/wall/nodes*100)
	env.Logf("run %d/%d %-7s %-12s %s", r, o.runs, bc.name, s.name, summary(bc, res))
	return nil
}

// member is one client's output line, key=value.
type member map[string]string

func (m member) num(k string) float64 {
	v, _ := strconv.ParseFloat(m[k], 64) // parseLine checked it
	return v
}

var numericKeys = []string{"id", "size", "msgs", "sent", "send_s", "retries", "delivered", "span_s", "rate", "lost", "dup", "bad", "cpu_s"}
var latencyKeys = []string{"lat_n", "lat_min_us", "lat_med_us", "lat_p99_us", "lat_max_us"}

// parseLine finds the one GROUPBENCH line in a client's output.
func parseLine(out string, paced bool) (member, error) {
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "GROUPBENCH ") {
			if line != "" {
				return nil, errors.New("more than one GROUPBENCH line")
			}
			line = l
		}
	}
	if line == "" {
		return nil, errors.New("no GROUPBENCH line in the output")
	}
	m := member{}
	for _, f := range strings.Fields(line)[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("field %q is not key=value", f)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("key %s twice", k)
		}
		m[k] = v
	}
	keys := numericKeys
	if paced {
		keys = append(slices.Clone(keys), latencyKeys...)
	}
	for _, k := range keys {
		if _, err := strconv.ParseFloat(m[k], 64); err != nil {
			return nil, fmt.Errorf("%s=%q: want a number", k, m[k])
		}
	}
	for _, k := range []string{"status", "digest", "backend"} {
		if m[k] == "" {
			return nil, fmt.Errorf("no %s", k)
		}
	}
	return m, nil
}

// check fails unless every member delivered each sender's msgs messages
// once and in order, and all members saw one total order.
func check(bc benchCase, msgs int, ms []member) error {
	var errs []error
	for i, m := range ms {
		n := i + 1
		if m["status"] != "ok" {
			errs = append(errs, fmt.Errorf("node%d: status %s (lost %s, duplicate or late %s, malformed %s)", n, m["status"], m["lost"], m["dup"], m["bad"]))
		}
		if m.num("lost") != 0 || m.num("dup") != 0 || m.num("bad") != 0 {
			errs = append(errs, fmt.Errorf("node%d: lost %s, duplicate or late %s, malformed %s", n, m["lost"], m["dup"], m["bad"]))
		}
		if want := msgs * len(bc.senders); int(m.num("delivered")) != want {
			errs = append(errs, fmt.Errorf("node%d: delivered %s messages, want %d", n, m["delivered"], want))
		}
		if slices.Contains(bc.senders, n) && int(m.num("sent")) != msgs {
			errs = append(errs, fmt.Errorf("node%d: sent %s messages, want %d", n, m["sent"], msgs))
		}
		if int(m.num("id")) != n {
			errs = append(errs, fmt.Errorf("node%d: the client says it is id %s", n, m["id"]))
		}
	}
	for i := 1; i < len(ms); i++ {
		if ms[i]["digest"] != ms[0]["digest"] {
			var d []string
			for j, m := range ms {
				d = append(d, fmt.Sprintf("node%d %s", j+1, m["digest"]))
			}
			errs = append(errs, fmt.Errorf("the members delivered in different orders: digests %s", strings.Join(d, ", ")))
			break
		}
	}
	return errors.Join(errs...)
}

// runOnce runs one client per node for one case and checks their lines.
func runOnce(ctx context.Context, s *system, bc benchCase, o options, r int) ([]member, error) {
	msgs, interval := floodMsgs(o.msgs, bc.size), time.Duration(0)
	if bc.paced {
		msgs, interval = o.paced, o.interval
	}
	// A bound for a run that went wrong, not a figure: a flood moves at
	// least 5 MB/s even on a loaded machine.
	timeout := 60*time.Second + time.Duration(msgs)*interval +
		time.Duration(float64(msgs*len(bc.senders)*bc.size)/5e6*float64(time.Second))
	rctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	var senders []string
	for _, s := range bc.senders {
		senders = append(senders, strconv.Itoa(s))
	}
	type out struct {
		i              int
		stdout, errout string
		err            error
	}
	done := make(chan out, nodes)
	for i := 1; i <= nodes; i++ {
		go func() {
			so, se, err := s.c.Exec(rctx, i, s.bin, "-group", fmt.Sprintf("groupbench-%s-r%d", bc.name, r),
				"-id", strconv.Itoa(i), "-members", strconv.Itoa(nodes), "-senders", strings.Join(senders, ","),
				"-msgs", strconv.Itoa(msgs), "-size", strconv.Itoa(bc.size),
				"-interval-us", strconv.FormatInt(interval.Microseconds(), 10),
				"-timeout", strconv.Itoa(int(timeout.Seconds())))
			done <- out{i, so, se, err}
		}()
	}
	ms := make([]member, nodes)
	var errs []error
	for range nodes {
		o := <-done
		m, perr := parseLine(o.stdout, bc.paced)
		if perr != nil {
			// No figures at all: the client itself failed; say why.
			return nil, fmt.Errorf("node%d: %v (%v)\n%s", o.i, perr, o.err, strings.TrimSpace(o.errout))
		}
		if m["backend"] != s.b.name {
			return nil, fmt.Errorf("node%d: the client measured backend %q, want %q", o.i, m["backend"], s.b.name)
		}
		if o.err != nil && m["status"] == "ok" {
			errs = append(errs, fmt.Errorf("node%d: %v", o.i, o.err))
		}
		if m["status"] != "ok" {
			errs = append(errs, fmt.Errorf("node%d: %s", o.i, strings.TrimSpace(o.errout)))
		}
		ms[o.i-1] = m
	}
	if err := check(bc, msgs, ms); err != nil {
		errs = append([]error{err}, errs...)
	}
	return ms, errors.Join(errs...)
}

// floodMsgs is the messages per sender of a flood of size-byte messages:
// 16 KiB floods send a quarter of -msgs, as they move 16 times the bytes.
func floodMsgs(msgs, size int) int {
	if size >= 16384 {
		return max(2, msgs/4)
	}
	return msgs
}

// mainPIDs is unit's main process in every node, as the node sees it.
func mainPIDs(ctx context.Context, c *cluster.Cluster, unit string) ([]string, error) {
	var pids []string
	for i := 1; i <= nodes; i++ {
		out, err := c.Systemctl(ctx, i, "show", "-p", "MainPID", "--value", unit)
		if err != nil {
			return nil, err
		}
		pid := strings.TrimSpace(out)
		if _, err := strconv.Atoi(pid); err != nil || pid == "0" {
			return nil, fmt.Errorf("node%d: %s has no main process (MainPID %q)", i, unit, pid)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// daemonCPU is the CPU time, in seconds, the processes pids[i] in node
// i+1 have used so far, summed over the nodes.
func daemonCPU(ctx context.Context, c *cluster.Cluster, pids []string) (float64, error) {
	var sum float64
	for i, pid := range pids {
		t, err := daemonCPU1(ctx, c, i+1, pid)
		if err != nil {
			return 0, err
		}
		sum += t
	}
	return sum, nil
}

// daemonCPU1 is the CPU time, in seconds, process pid in node i has used.
func daemonCPU1(ctx context.Context, c *cluster.Cluster, i int, pid string) (float64, error) {
	out, _, err := c.Exec(ctx, i, "cat", "/proc/"+pid+"/stat")
	if err != nil {
		// The daemon is gone: its journal says why.
		j, _, _ := c.Exec(ctx, i, "journalctl", "--no-pager", "-n", "40", "-o", "short-precise")
		return 0, fmt.Errorf("node%d: /proc/%s/stat: %v (did the daemon restart?); the node's journal ends:\n%s", i, pid, err, j)
	}
	// Fields after the command name, which is in parentheses: state is
	// the first, utime and stime the 12th and 13th (clock ticks).
	f := strings.Fields(out[strings.LastIndexByte(out, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("node%d: /proc/%s/stat: %q", i, pid, out)
	}
	var sum float64
	for _, v := range f[11:13] {
		t, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("node%d: /proc/%s/stat: %q", i, pid, out)
		}
		sum += t / 100 // USER_HZ
	}
	return sum, nil
}

// viewCount counts the memberships each node's daemon formed so far, to
// tell whether one formed during the runs.
func viewCount(ctx context.Context, s *system) ([]int, error) {
	var n []int
	for i := 1; i <= nodes; i++ {
		out, _, err := s.c.Exec(ctx, i, "journalctl", "-u", s.b.daemon, "-o", "cat", "--no-pager")
		if err != nil {
			return nil, err
		}
		n = append(n, strings.Count(out, s.viewMark))
	}
	return n, nil
}

// hostBusy reads the host's busy and total CPU ticks from /proc/stat; all
// nodes share the host's CPUs, and so does any other work on it.
func hostBusy() [2]float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return [2]float64{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy, total float64
	for k, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if k >= 8 { // guest time is already in user time
			break
		}
		total += x
		if k != 3 && k != 4 { // idle, iowait
			busy += x
		}
	}
	return [2]float64{busy, total}
}

func busyPercent(a, b [2]float64) float64 {
	if b[1] <= a[1] {
		return 0
	}
	return (b[0] - a[0]) / (b[1] - a[1]) * 100
}

func summary(bc benchCase, ms []member) string {
	var s []string
	for i, m := range ms {
		if bc.paced {
			s = append(s, fmt.Sprintf("n%d median %.3f ms", i+1, m.num("lat_med_us")/1000))
		} else {
			s = append(s, fmt.Sprintf("n%d %.0f msg/s", i+1, m.num("rate")))
		}
	}
	return strings.Join(s, ", ") + ", digests equal"
}
