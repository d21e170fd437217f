package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options shape a cluster.
type Options struct {
	Nodes int    // number of nodes, named node1..nodeN; default 3
	Links int    // heartbeat NICs per node, hb0..; default 2
	Deb   string // Concord .deb to install in every node after boot; "" installs nothing
	// LinksDown leaves hb0.. administratively down in every node, as a
	// fresh install does (udev keeps network managers off them).
	LinksDown bool
	Rootfs    Rootfs // rootfs cache; zero value uses the defaults

	BootTimeout time.Duration // per node; default 3 minutes
}

// Timings are what the harness measured, for reports.
type Timings struct {
	Rootfs   time.Duration   // ensuring the rootfs cache (build time on a cold cache)
	Boot     []time.Duration // per node, nspawn start to "running", first boot
	Teardown time.Duration
}

// MedianBoot is the median of Boot.
func (t Timings) MedianBoot() time.Duration {
	if len(t.Boot) == 0 {
		return 0
	}
	b := append([]time.Duration(nil), t.Boot...)
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	return b[len(b)/2]
}

// Node is one systemd-nspawn container. Fields are fixed at creation,
// except MACs, which are read after each boot.
type Node struct {
	Index     int    // 1-based
	Hostname  string // node1..nodeN
	Machine   string // nspawn machine name, unique on the host
	MachineID string
	HostIfs   []string           // host side of hb0, hb1, ...
	MACs      []net.HardwareAddr // of hb0, hb1, ... inside the node

	dir, root string   // temp dir; overlay mount point (the node's /)
	cgroups   []string // per-hierarchy cgroup dirs; cgroups[0] is the freezer
	mounted   bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when nspawn exits
	leader int           // PID of the node's PID 1 on the host, 0 when down
}

// Cluster is a set of nodes on two (Options.Links) host bridges.
type Cluster struct {
	Timings Timings

	env       Env
	tag       string // unique per cluster on this host; prefix of every name
	lower     string
	dir       string
	links     int
	linksDown bool
	bridges   []string
	nodes     []*Node

	mu     sync.Mutex
	cuts   map[[2]int]bool // {node, link}: both directions
	txCuts map[[2]int]bool // {node, link}: what the node sends only
	groups [][]int         // current partition, nil when healed

	closeOnce sync.Once
}

var clusterSeq atomic.Uint32

// namePrefix starts every name the harness gives to host objects (links,
// nft tables, cgroups "concord-cc…", temp dirs "concord-cc…"), so Sweep can
// find them by name.
const namePrefix = "cc"

// newTag returns "cc" + this process's PID (5 base-36 digits) + a sequence
// digit: 8 characters, leaving room in 15-character interface names.
func newTag() string {
	pid := strconv.FormatInt(int64(os.Getpid()), 36)
	pid = strings.Repeat("0", 5-len(pid)) + pid
	return namePrefix + pid + strconv.FormatInt(int64(clusterSeq.Add(1)%36), 36)
}

// New boots a cluster and registers its teardown with env first, so
// everything is removed however the test ends. It returns once every node's
// systemd reports running (or degraded) and the .deb, if any, is installed.
func New(ctx context.Context, env Env, o Options) (*Cluster, error) {
	if m := Missing(); m != "" {
		return nil, errors.New(m)
	}
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Links == 0 {
		o.Links = 2
	}
	if o.Nodes < 1 || o.Nodes > 32 || o.Links < 1 || o.Links > 8 {
		return nil, fmt.Errorf("cluster: %d nodes with %d links: want 1..32 nodes, 1..8 links", o.Nodes, o.Links)
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = 3 * time.Minute
	}
	if err := ensureBus(env); err != nil {
		return nil, err
	}
	SweepStale(env)

	start := time.Now()
	lower, err := o.Rootfs.Ensure(ctx, env)
	if err != nil {
		return nil, err
	}
	c := &Cluster{env: env, tag: newTag(), lower: lower, links: o.Links, linksDown: o.LinksDown, cuts: map[[2]int]bool{}, txCuts: map[[2]int]bool{}}
	c.Timings.Rootfs = time.Since(start)
	env.Cleanup(c.Close)

	if c.dir, err = os.MkdirTemp("", "concord-"+c.tag+"-"); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := c.makeNetwork(); err != nil {
		return nil, err
	}
	for i := 1; i <= o.Nodes; i++ {
		if err := c.makeNode(i); err != nil {
			return nil, err
		}
	}
	c.logf("%s: booting %d nodes from %s in %s", c.tag, o.Nodes, lower, c.dir)
	c.Timings.Boot = make([]time.Duration, o.Nodes)
	err = c.parallel(func(n *Node) error {
		bctx, cancel := context.WithTimeout(ctx, o.BootTimeout)
		defer cancel()
		t := time.Now()
		if err := c.boot(bctx, n); err != nil {
			return err
		}
		c.Timings.Boot[n.Index-1] = time.Since(t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.logf("%s: %d nodes running, median boot %v", c.tag, o.Nodes, c.Timings.MedianBoot().Round(time.Millisecond))
	if o.Deb != "" {
		if err := c.parallel(func(n *Node) error { return c.InstallDeb(ctx, n.Index, o.Deb) }); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) logf(format string, args ...any) {
	c.env.Logf("cluster: "+format, args...)
}

func (c *Cluster) parallel(f func(*Node) error) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Tag is the cluster's unique name prefix on this host.
func (c *Cluster) Tag() string { return c.tag }

// Size is the number of nodes.
func (c *Cluster) Size() int { return len(c.nodes) }

// Bridge is the host bridge of heartbeat link l (0-based: hb0 is link 0).
func (c *Cluster) Bridge(l int) string { return c.bridges[l] }

// Node returns node i (1-based); it panics on a bad index, a test bug.
func (c *Cluster) Node(i int) *Node {
	if i < 1 || i > len(c.nodes) {
		panic(fmt.Sprintf("cluster: no node %d in a cluster of %d", i, len(c.nodes)))
	}
	return c.nodes[i-1]
}

// LinkName is the name of heartbeat link l inside every node.
func LinkName(l int) string { return "hb" + strconv.Itoa(l) }

// makeNode adds node i and prepares its disk. The node joins c.nodes
// first, so Close undoes whatever part of this succeeded.
func (c *Cluster) makeNode(i int) error {
	id := make([]byte, 16)
	rand.Read(id)
	n := &Node{
		Index:     i,
		Hostname:  "node" + strconv.Itoa(i),
		Machine:   c.tag + "n" + strconv.Itoa(i),
		MachineID: hex.EncodeToString(id),
		dir:       filepath.Join(c.dir, "node"+strconv.Itoa(i)),
	}
	c.nodes = append(c.nodes, n)
	for l := 0; l < c.links; l++ {
		n.HostIfs = append(n.HostIfs, fmt.Sprintf("%sn%dh%d", c.tag, i, l))
	}
	n.root = filepath.Join(n.dir, "root")
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o755); err != nil {
			return fmt.Errorf("cluster: %s: %w", n.Hostname, err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", c.lower, filepath.Join(n.dir, "upper"), filepath.Join(n.dir, "work"))
	if err := syscall.Mount("overlay", n.root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("cluster: %s: mount overlay %s: %w", n.Hostname, opts, err)
	}
	n.mounted = true
	n.cgroups = nodeCgroups(filepath.Join("concord-"+c.tag, n.Hostname))
	if err := c.WriteFile(i, "/etc/hostname", []byte(n.Hostname+"\n"), 0o644); err != nil {
		return err
	}
	if err := c.WriteFile(i, "/etc/machine-id", []byte(n.MachineID+"\n"), 0o444); err != nil {
		return err
	}
	return nil
}

// bootScript joins the node's cgroups before exec'ing nspawn, so nspawn and
// everything it starts are inside them from the first instruction.
const bootScript = `for d in $CONCORD_CGROUPS; do echo $$ >"$d/cgroup.procs" || exit 1; done; exec systemd-nspawn "$@"`

func (c *Cluster) boot(ctx context.Context, n *Node) error {
	n.mu.Lock()
	if n.leader != 0 {
		n.mu.Unlock()
		return fmt.Errorf("cluster: %s is already running", n.Hostname)
	}
	n.mu.Unlock()
	if err := c.waitLinksGone(ctx, n); err != nil {
		return err
	}
	if err := makeCgroups(n.cgroups); err != nil {
		return fmt.Errorf("cluster: %s: %w", n.Hostname, err)
	}
	args := []string{"-c", bootScript, "sh", "--quiet", "--boot", "--register=no", "--keep-unit",
		"--link-journal=no", "--resolv-conf=off", "--timezone=off", "--console=read-only",
		"--directory=" + n.root, "--machine=" + n.Machine, "--hostname=" + n.Hostname,
		"--uuid=" + n.MachineID, "--capability=CAP_NET_ADMIN,CAP_IPC_LOCK,CAP_SYS_NICE"}
	for l, h := range n.HostIfs {
		args = append(args, "--network-veth-extra="+h+":"+LinkName(l))
	}
	console, err := os.OpenFile(filepath.Join(n.dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %s: %w", n.Hostname, err)
	}
	defer console.Close()
	cmd := exec.Command("/bin/sh", args...)
	cmd.Env = append(os.Environ(), "CONCORD_CGROUPS="+strings.Join(n.cgroups, " "))
	cmd.Stdout, cmd.Stderr = console, console
	// If the harness dies (test timeout), nspawn dies too; Sweep does the rest.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cluster: %s: start systemd-nspawn: %w", n.Hostname, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()

	var leader int
	err = Poll(ctx, 20*time.Millisecond, func() (bool, string) {
		select {
		case <-done:
			return true, ""
		default:
		}
		leader = findLeader(cmd.Process.Pid)
		return leader != 0, "no container PID 1 under systemd-nspawn yet"
	})
	if err == nil && leader == 0 {
		err = fmt.Errorf("systemd-nspawn exited: %s", cmd.ProcessState)
	}
	if err != nil {
		return fmt.Errorf("cluster: %s: %w\nconsole: %s", n.Hostname, err, c.consoleTail(n))
	}
	n.mu.Lock()
	n.leader = leader
	n.mu.Unlock()
	for l, h := range n.HostIfs {
		if err := c.attach(ctx, h, c.bridges[l]); err != nil {
			return fmt.Errorf("cluster: %s: %w", n.Hostname, err)
		}
	}
	if err := c.WaitBooted(ctx, n.Index); err != nil {
		return err
	}
	// Quiet links: no IPv6 autoconfiguration frames among the heartbeats.
	var sh strings.Builder
	for l := 0; l < c.links; l++ {
		up := "ip link set %[1]s up || exit 1; "
		if c.linksDown {
			up = ""
		}
		fmt.Fprintf(&sh, "echo 1 >/proc/sys/net/ipv6/conf/%[1]s/disable_ipv6 2>/dev/null; "+up+"cat /sys/class/net/%[1]s/address; ", LinkName(l))
	}
	out, _, err := c.Exec(ctx, n.Index, "sh", "-c", sh.String())
	if err != nil {
		return err
	}
	var macs []net.HardwareAddr
	for _, f := range strings.Fields(out) {
		mac, err := net.ParseMAC(f)
		if err != nil {
			return fmt.Errorf("cluster: %s: bad MAC %q: %w", n.Hostname, f, err)
		}
		macs = append(macs, mac)
	}
	if len(macs) != c.links {
		return fmt.Errorf("cluster: %s: read %d MACs, want %d: %q", n.Hostname, len(macs), c.links, out)
	}
	n.mu.Lock()
	n.MACs = macs
	n.mu.Unlock()
	return nil
}

// findLeader returns the container's PID 1 as seen from the host: the child
// of nspawn that is PID 1 in its own PID namespace.
func findLeader(nspawn int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", nspawn))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			st, _ := os.ReadFile("/proc/" + f + "/status")
			for _, line := range strings.Split(string(st), "\n") {
				if strings.HasPrefix(line, "NSpid:") {
					ids := strings.Fields(line)
					if len(ids) == 3 && ids[2] == "1" {
						pid, _ := strconv.Atoi(f)
						return pid
					}
				}
			}
		}
	}
	return 0
}

func (c *Cluster) consoleTail(n *Node) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "console.log"))
	return tail(b, 1500)
}

// WaitBooted waits until systemd in node i reports running or degraded;
// degraded is logged with the failed units.
func (c *Cluster) WaitBooted(ctx context.Context, i int) error {
	n := c.Node(i)
	var state string
	err := Poll(ctx, 100*time.Millisecond, func() (bool, string) {
		if !c.Running(i) {
			return false, "node is down"
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		out, _, _ := c.Exec(qctx, i, "systemctl", "is-system-running")
		state = strings.TrimSpace(out)
		return state == "running" || state == "degraded", "systemctl is-system-running: " + state
	})
	if err != nil {
		return fmt.Errorf("cluster: %s did not boot: %w\nconsole: %s", n.Hostname, err, c.consoleTail(n))
	}
	if state == "degraded" {
		failed, _, _ := c.Exec(ctx, i, "systemctl", "--failed", "--no-legend", "--plain")
		c.logf("%s booted degraded; failed units:\n%s", n.Hostname, failed)
	}
	return nil
}

// Running reports whether node i's container is up.
func (c *Cluster) Running(i int) bool {
	n := c.Node(i)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leader == 0 {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

func (n *Node) leaderPID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader
}

// Leader is the host PID of node i's PID 1, 0 when the node is down.
// Tests use it to enter the node's namespaces (e.g. /proc/PID/ns/net).
func (c *Cluster) Leader(i int) int { return c.Node(i).leaderPID() }

// Exec runs argv inside node i (all its namespaces, its root) with a clean
// environment, and returns its output. The error names the node, the
// command and its stderr.
func (c *Cluster) Exec(ctx context.Context, i int, argv ...string) (stdout, stderr string, err error) {
	n := c.Node(i)
	pid := n.leaderPID()
	if pid == 0 {
		return "", "", fmt.Errorf("%s: %s: node is down", n.Hostname, strings.Join(argv, " "))
	}
	// A command in a frozen node would hang, and its context could not
	// end it (SIGKILL waits for the thaw): refuse instead.
	if st, _ := freezerState(n.cgroups[0]); st != "THAWED" {
		return "", "", fmt.Errorf("%s: %s: node is %s", n.Hostname, strings.Join(argv, " "), st)
	}
	// The command joins the node's freezer cgroup, so Freeze and Kill
	// reach it like any process of the node.
	args := append([]string{"-c", `echo $$ >"$0/cgroup.procs" && exec nsenter "$@"`, n.cgroups[0],
		"--target=" + strconv.Itoa(pid), "--all", "--root", "--wd", "--",
		"/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=cat"}, argv...)
	cmd := exec.CommandContext(ctx, "/bin/sh", args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s: %s: %v: %s", n.Hostname, strings.Join(argv, " "), err, strings.TrimSpace(tail(e.Bytes(), 2000)))
	}
	return o.String(), e.String(), err
}

// Systemctl runs systemctl in node i and returns its standard output.
func (c *Cluster) Systemctl(ctx context.Context, i int, args ...string) (string, error) {
	out, _, err := c.Exec(ctx, i, append([]string{"systemctl"}, args...)...)
	return out, err
}

// Journal returns node i's journal of the current boot.
func (c *Cluster) Journal(ctx context.Context, i int) (string, error) {
	out, _, err := c.Exec(ctx, i, "journalctl", "-b", "--no-pager", "-o", "short-precise")
	return out, err
}

// RestartDaemon restarts concord-noded in node i.
func (c *Cluster) RestartDaemon(ctx context.Context, i int) error {
	_, err := c.Systemctl(ctx, i, "restart", "concord-noded")
	return err
}

// WriteFile writes a file in node i's root (its overlay, so it works
// whether the node is up or down), creating parent directories.
func (c *Cluster) WriteFile(i int, path string, data []byte, mode os.FileMode) error {
	n := c.Node(i)
	r, err := os.OpenRoot(n.root)
	if err != nil {
		return fmt.Errorf("%s: write %s: %w", n.Hostname, path, err)
	}
	defer r.Close()
	rel := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	if err := r.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return fmt.Errorf("%s: write %s: %w", n.Hostname, path, err)
	}
	if err := r.WriteFile(rel, data, mode); err != nil {
		return fmt.Errorf("%s: write %s: %w", n.Hostname, path, err)
	}
	if err := r.Chmod(rel, mode); err != nil {
		return fmt.Errorf("%s: write %s: %w", n.Hostname, path, err)
	}
	return nil
}

// ReadFile reads a file from node i's root.
func (c *Cluster) ReadFile(i int, path string) ([]byte, error) {
	n := c.Node(i)
	r, err := os.OpenRoot(n.root)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", n.Hostname, path, err)
	}
	defer r.Close()
	b, err := r.ReadFile(strings.TrimPrefix(filepath.Clean("/"+path), "/"))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", n.Hostname, path, err)
	}
	return b, nil
}

// InstallDeb installs a .deb in node i with dpkg -i. Concord's package does
// not start its daemon; tests write the config first, then start it.
func (c *Cluster) InstallDeb(ctx context.Context, i int, deb string) error {
	b, err := os.ReadFile(deb)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	const p = "/var/tmp/concord-test.deb"
	if err := c.WriteFile(i, p, b, 0o644); err != nil {
		return err
	}
	if _, _, err := c.Exec(ctx, i, "dpkg", "-i", p); err != nil {
		return err
	}
	_, _, err = c.Exec(ctx, i, "rm", "-f", p)
	return err
}

// Kill is power loss: every process of node i dies at the same instant
// (freeze, SIGKILL all, thaw), with no shutdown and no flush. The node's
// disk (its overlay) survives; Start boots it again from that disk.
func (c *Cluster) Kill(i int) error {
	n := c.Node(i)
	if n.leaderPID() == 0 {
		return fmt.Errorf("cluster: kill %s: node is down", n.Hostname)
	}
	if err := killCgroup(n.cgroups[0]); err != nil {
		return fmt.Errorf("cluster: kill %s: %w", n.Hostname, err)
	}
	n.mu.Lock()
	done, leader := n.done, n.leader
	n.leader = 0
	n.mu.Unlock()
	if done != nil {
		<-done
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Poll(ctx, 10*time.Millisecond, func() (bool, string) {
		return Dead(leader), fmt.Sprintf("PID 1 (host PID %d) still alive", leader)
	}); err != nil {
		return fmt.Errorf("cluster: kill %s: %w", n.Hostname, err)
	}
	// nspawn's payload/supervisor groups go; ours are made again on Start.
	var errs []error
	for _, d := range n.cgroups {
		errs = append(errs, removeCgroup(d))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster: kill %s: %w", n.Hostname, err)
	}
	c.logf("%s killed", n.Hostname)
	return nil
}

// Dead reports whether pid has exited: it is gone or a zombie waiting to
// be reaped by the host's PID 1.
func Dead(pid int) bool {
	if pid <= 0 {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

// Start boots node i again after Kill, on the same overlay (its disk), and
// waits until it runs. Its links come back with the same names and MACs,
// and the link cuts and partitions in force still apply to it.
func (c *Cluster) Start(ctx context.Context, i int) error {
	return c.boot(ctx, c.Node(i))
}

// Freeze stops every process of node i at once (cgroup freezer): the node
// hangs but keeps its links up, like a stalled machine.
func (c *Cluster) Freeze(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := setFreezer(ctx, c.Node(i).cgroups[0], "FROZEN"); err != nil {
		return fmt.Errorf("cluster: freeze %s: %w", c.Node(i).Hostname, err)
	}
	return nil
}

// Thaw resumes a frozen node.
func (c *Cluster) Thaw(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := setFreezer(ctx, c.Node(i).cgroups[0], "THAWED"); err != nil {
		return fmt.Errorf("cluster: thaw %s: %w", c.Node(i).Hostname, err)
	}
	return nil
}

// FreezerCgroup is node i's freezer cgroup directory.
func (c *Cluster) FreezerCgroup(i int) string { return c.Node(i).cgroups[0] }

func (c *Cluster) waitLinksGone(ctx context.Context, n *Node) error {
	// After a kill the kernel destroys the node's network namespace, and
	// with it the veths, asynchronously; nspawn cannot reuse the names
	// until they are gone.
	return Poll(ctx, 20*time.Millisecond, func() (bool, string) {
		for _, h := range n.HostIfs {
			if _, err := net.InterfaceByName(h); err == nil {
				return false, h + " still exists"
			}
		}
		return true, ""
	})
}
