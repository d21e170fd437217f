// Package corosync boots Debian's Corosync 3 on the nspawn test cluster,
// configured as in ../shared/anchor-bench, so benchmarks can measure
// Concord beside the stack it replaces on the same kind of nodes.
package corosync

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/concord-ha/concord/tests/harness/cluster"
)

// Cluster is Debian's Corosync 3 on the same kind of nodes as Concord's
// (nspawn, two heartbeat NICs on two host bridges), configured as in
// ../shared/anchor-bench: knet, aes256/sha256, votequorum, here with one
// knet link per heartbeat NIC, as Concord uses both.
type Cluster struct {
	*cluster.Cluster
}

// Rootfs is the node tree: the harness's default packages and corosync
// (which brings libcpg and the other client libraries). Every user shares
// it, so one cached tree serves all benchmarks.
func Rootfs() cluster.Rootfs {
	return cluster.Rootfs{Name: "corosync", Packages: append(append([]string(nil), cluster.DefaultPackages...), "corosync")}
}

// Boot starts n nodes, configures Corosync on the heartbeat links and
// waits until every node reports a quorate cluster of n votes. On error
// the returned cluster, if not nil, is still registered with env for
// teardown.
func Boot(ctx context.Context, env cluster.Env, n int) (*Cluster, error) {
	hc, err := cluster.New(ctx, env, cluster.Options{Nodes: n, Rootfs: Rootfs()})
	if err != nil {
		return nil, err
	}
	c := &Cluster{hc}
	key := make([]byte, 256)
	rand.Read(key)
	conf := Conf(n)
	for i := 1; i <= n; i++ {
		for l := 0; l < 2; l++ {
			// Test addresses only, on the harness's own bridges (198.18.0.0/15).
			if _, _, err := c.Exec(ctx, i, "ip", "addr", "add", fmt.Sprintf("198.18.%d.%d/24", 10+l, i), "dev", cluster.LinkName(l)); err != nil {
				return c, err
			}
			if _, _, err := c.Exec(ctx, i, "ip", "link", "set", cluster.LinkName(l), "up"); err != nil {
				return c, err
			}
		}
		if err := c.WriteFile(i, "/etc/corosync/corosync.conf", []byte(conf), 0o644); err != nil {
			return c, err
		}
		if err := c.WriteFile(i, "/etc/corosync/authkey", key, 0o400); err != nil {
			return c, err
		}
		if _, err := c.Systemctl(ctx, i, "restart", "corosync"); err != nil {
			return c, err
		}
	}
	return c, cluster.Eventually(ctx, func() (bool, string) {
		for i := 1; i <= n; i++ {
			out, _, _ := c.Exec(ctx, i, "corosync-quorumtool", "-s")
			if !strings.Contains(out, "Quorate:          Yes") || !strings.Contains(out, fmt.Sprintf("Total votes:      %d", n)) {
				return false, fmt.Sprintf("node%d: corosync-quorumtool -s:\n%s", i, out)
			}
		}
		return true, ""
	})
}

// Version is the installed corosync package's version in node i, or ""
// when it cannot be read.
func (c *Cluster) Version(ctx context.Context, i int) string {
	out, _, err := c.Exec(ctx, i, "dpkg-query", "-W", "-f", "${Version}", "corosync")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// Conf is corosync.conf for nodes 1..n, node i at 198.18.10.i and
// 198.18.11.i.
func Conf(n int) string {
	var b strings.Builder
	b.WriteString(`# written by Concord's bench, as ../shared/anchor-bench does (default token)
totem {
    version: 2
    cluster_name: bench
    transport: knet
    crypto_cipher: aes256
    crypto_hash: sha256
}
nodelist {
`)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "    node {\n        ring0_addr: 198.18.10.%d\n        ring1_addr: 198.18.11.%d\n        name: node%d\n        nodeid: %d\n    }\n", i, i, i, i)
	}
	b.WriteString(`}
quorum {
    provider: corosync_votequorum
}
logging {
    to_logfile: no
    to_syslog: yes
    to_stderr: no
}
`)
	return b.String()
}
