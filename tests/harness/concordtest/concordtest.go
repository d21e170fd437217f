package concordtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/tests/harness/cluster"
)

// Options shape a Concord test cluster.
type Options struct {
	Nodes     int
	Quorum    string // extra lines for the [quorum] section
	Totem     string // extra lines for the [cluster] section (timings)
	NoStart   bool   // boot and configure, but leave concord-noded stopped
	ConfNodes int    // nodes listed in cluster.conf and started; default Nodes
	// LinksDown leaves the heartbeat NICs down, as a fresh install does
	// (see cluster.Options.LinksDown): concord-noded must set them up.
	LinksDown bool
	// Packages are Debian packages the nodes need beyond the harness's
	// defaults (a compiler, say); the rootfs cache is keyed by the list.
	Packages []string
	// Debs are more .deb files installed in every node after Concord's
	// (concord-dev.deb, say), in order.
	Debs []string
}

// Cluster is a booted test cluster with Concord installed and configured.
type Cluster struct {
	*cluster.Cluster
	Key  []byte
	Conf string
}

// Deb is the package under test, from CONCORD_DEB; "" when unset or missing.
func Deb() string {
	p := os.Getenv("CONCORD_DEB")
	if p == "" {
		return ""
	}
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// DevDeb is concord-dev.deb (libconcord's header and pkg-config file),
// built beside the package under test; "" when it is not there.
func DevDeb() string {
	d := Deb()
	if d == "" {
		return ""
	}
	p := filepath.Join(filepath.Dir(d), "concord-dev.deb")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// BootTest is Boot for an integration test: it skips the test when it
// cannot run here (not root, nspawn or the package missing), fails it when
// the cluster does not boot, and gives it a context that ends after limit.
func BootTest(t *testing.T, o Options, limit time.Duration) (*Cluster, context.Context) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: the nspawn cluster needs root")
	}
	if m := cluster.Missing(); m != "" {
		t.Skip("skipping: " + m)
	}
	if Deb() == "" {
		t.Skip("skipping: CONCORD_DEB is not set to a built package (make integration sets it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	c, err := Boot(ctx, t, o)
	if err != nil {
		t.Fatal(err)
	}
	return c, ctx
}

// Boot boots the nodes, installs the .deb, writes the configuration and the
// key, and starts concord-noded on every node unless o.NoStart.
func Boot(ctx context.Context, env cluster.Env, o Options) (*Cluster, error) {
	deb := Deb()
	if deb == "" {
		return nil, errors.New("CONCORD_DEB does not name a built package (run make deb, or make integration)")
	}
	co := cluster.Options{Nodes: o.Nodes, Deb: deb, LinksDown: o.LinksDown}
	if len(o.Packages) > 0 {
		co.Rootfs.Packages = append(slices.Clone(cluster.DefaultPackages), o.Packages...)
		// Its own name, so that building it does not prune the default
		// tree other tests boot from (and the other way round).
		co.Rootfs.Name = "concord-extra"
	}
	hc, err := cluster.New(ctx, env, co)
	if err != nil {
		return nil, err
	}
	for _, d := range o.Debs {
		for i := 1; i <= o.Nodes; i++ {
			if err := hc.InstallDeb(ctx, i, d); err != nil {
				return nil, fmt.Errorf("node%d: install %s: %w", i, d, err)
			}
		}
	}
	c := &Cluster{Cluster: hc, Key: []byte(strings.Repeat("k", 32) + strconv.FormatInt(time.Now().UnixNano(), 10))}
	n := o.ConfNodes
	if n == 0 {
		n = o.Nodes
	}
	c.Conf = c.ConfText(n, o.Quorum, o.Totem)
	for i := 1; i <= o.Nodes; i++ {
		if err := c.Configure(i, c.Conf); err != nil {
			return nil, err
		}
	}
	if !o.NoStart {
		for i := 1; i <= n; i++ {
			if err := c.StartDaemon(ctx, i); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// ConfText is a cluster.conf listing nodes 1..n with their real MACs.
func (c *Cluster) ConfText(n int, quorum, totem string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by the Concord test harness\n[cluster]\nname = %s\n%s\n", c.Tag(), strings.TrimSpace(totem))
	if quorum != "" {
		fmt.Fprintf(&b, "[quorum]\n%s\n\n", strings.TrimSpace(quorum))
	}
	for i := 1; i <= n; i++ {
		b.WriteString(c.NodeSection(i))
	}
	return b.String()
}

// NodeSection is the [node] section of node i.
func (c *Cluster) NodeSection(i int) string {
	nd := c.Node(i)
	var b strings.Builder
	fmt.Fprintf(&b, "[node %s]\nnumber = %d\n", nd.Hostname, i)
	for l, mac := range nd.MACs {
		fmt.Fprintf(&b, "link = %s %s\n", cluster.LinkName(l), mac)
	}
	b.WriteString("\n")
	return b.String()
}

// Configure writes cluster.conf and the key into node i.
func (c *Cluster) Configure(i int, conf string) error {
	if err := c.WriteFile(i, "/etc/concord/cluster.conf", []byte(conf), 0o644); err != nil {
		return err
	}
	return c.WriteFile(i, "/etc/concord/authkey", c.Key, 0o600)
}

// ConfigureIn writes the configuration and key of cluster context name
// into node i: /etc/concord/NAME/, made with mode 0700 as concordctl
// keygen makes it.
func (c *Cluster) ConfigureIn(ctx context.Context, i int, name, conf string, key []byte) error {
	dir := "/etc/concord/" + name
	if _, err := c.Exec(ctx, i, "install", "-d", "-m", "0700", dir); err != nil {
		return err
	}
	if err := c.WriteFile(i, dir+"/cluster.conf", []byte(conf), 0o644); err != nil {
		return err
	}
	return c.WriteFile(i, dir+"/authkey", key, 0o600)
}

// StartDaemonIn starts concord-noded@name on node i with systemctl.
func (c *Cluster) StartDaemonIn(ctx context.Context, i int, name string) error {
	unit := "concord-noded@" + name
	if out, err := c.Systemctl(ctx, i, "start", unit); err != nil {
		j, _ := c.Exec(ctx, i, "journalctl", "-u", unit, "--no-pager", "-n", "30")
		return fmt.Errorf("node%d: systemctl start %s: %v: %s\n%s", i, unit, err, out, j)
	}
	return nil
}

// StartDaemon starts concord-noded on node i with systemctl.
func (c *Cluster) StartDaemon(ctx context.Context, i int) error {
	out, err := c.Systemctl(ctx, i, "start", "concord-noded")
	if err != nil {
		j, _ := c.Exec(ctx, i, "journalctl", "-u", "concord-noded", "--no-pager", "-n", "30")
		return fmt.Errorf("node%d: systemctl start concord-noded: %v: %s\n%s", i, err, out, j)
	}
	return nil
}

// StopDaemon stops concord-noded on node i with systemctl (a clean leave).
func (c *Cluster) StopDaemon(ctx context.Context, i int) error {
	_, err := c.Systemctl(ctx, i, "stop", "concord-noded")
	return err
}

// Exec runs argv in node i and returns stdout; stderr is folded into the error.
func (c *Cluster) Exec(ctx context.Context, i int, argv ...string) (string, error) {
	out, errOut, err := c.Cluster.Exec(ctx, i, argv...)
	if err != nil {
		return out, fmt.Errorf("node%d: %s: %v: %s", i, strings.Join(argv, " "), err, strings.TrimSpace(errOut))
	}
	return out, nil
}

// Status is `concordctl --json status` on node i.
func (c *Cluster) Status(ctx context.Context, i int) (nodebus.Status, error) {
	return c.StatusIn(ctx, i, "")
}

// StatusIn is `concordctl --cluster name --json status` on node i: the
// status of cluster context name ("" is the default context).
func (c *Cluster) StatusIn(ctx context.Context, i int, name string) (nodebus.Status, error) {
	var s nodebus.Status
	argv := []string{"concordctl", "--json", "status"}
	if name != "" {
		argv = []string{"concordctl", "--cluster", name, "--json", "status"}
	}
	out, err := c.Exec(ctx, i, argv...)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return s, fmt.Errorf("node%d: %s: %v: %q", i, strings.Join(argv, " "), err, out)
	}
	return s, nil
}

// BusView reads the view and quorum properties on node i with busctl, to
// check they agree with concordctl.
func (c *Cluster) BusView(ctx context.Context, i int) (seq uint64, members []uint16, quorate bool, err error) {
	get := func(name string) (string, error) {
		return c.Exec(ctx, i, "busctl", "get-property", nodebus.BusName, string(nodebus.ManagerPath), nodebus.ManagerIface, name)
	}
	s, err := get("ViewSeq") // "t 5"
	if err != nil {
		return 0, nil, false, err
	}
	if _, err := fmt.Sscanf(s, "t %d", &seq); err != nil {
		return 0, nil, false, fmt.Errorf("busctl ViewSeq: %q", s)
	}
	m, err := get("ViewMembers") // "aq 3 1 2 3"
	if err != nil {
		return 0, nil, false, err
	}
	f := strings.Fields(m)
	if len(f) < 2 || f[0] != "aq" {
		return 0, nil, false, fmt.Errorf("busctl ViewMembers: %q", m)
	}
	for _, x := range f[2:] {
		v, err := strconv.Atoi(x)
		if err != nil {
			return 0, nil, false, fmt.Errorf("busctl ViewMembers: %q", m)
		}
		members = append(members, uint16(v))
	}
	q, err := get("Quorate") // "b true"
	if err != nil {
		return 0, nil, false, err
	}
	return seq, members, strings.TrimSpace(q) == "b true", nil
}

// WaitView waits until every node in nodes has installed the same view with
// exactly members, and returns its seq.
func (c *Cluster) WaitView(ctx context.Context, nodes []int, members []uint16, timeout time.Duration) (uint64, error) {
	return c.WaitViewIn(ctx, "", nodes, members, timeout)
}

// WaitViewIn is WaitView for cluster context name ("" is the default).
func (c *Cluster) WaitViewIn(ctx context.Context, name string, nodes []int, members []uint16, timeout time.Duration) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := fmt.Sprint(members)
	var seq uint64
	err := cluster.Eventually(ctx, func() (bool, string) {
		var seqs []uint64
		for _, i := range nodes {
			s, err := c.StatusIn(ctx, i, name)
			if err != nil {
				return false, err.Error()
			}
			if got := fmt.Sprint(s.View.Members); got != want {
				return false, fmt.Sprintf("node%d: view %d members %s, want %s", i, s.View.Seq, got, want)
			}
			seqs = append(seqs, s.View.Seq)
		}
		for _, q := range seqs {
			if q != seqs[0] {
				return false, fmt.Sprintf("view seqs differ: %v", seqs)
			}
		}
		seq = seqs[0]
		return true, ""
	})
	return seq, err
}

// ViewLines returns node i's "installed view" journal lines since t.
func (c *Cluster) ViewLines(ctx context.Context, i int, since time.Time) ([]string, error) {
	out, err := c.Exec(ctx, i, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat",
		"--since", "@"+strconv.FormatFloat(float64(since.UnixNano())/1e9, 'f', 6, 64))
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "installed view") {
			lines = append(lines, l)
		}
	}
	return lines, nil
}
