package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/concord-ha/concord/tests/harness/cluster"
)

// corosyncCluster is Debian's Corosync 3 on the same kind of nodes as
// Concord's (nspawn, two heartbeat NICs on two host bridges), configured as
// in ../shared/anchor-bench: knet, aes256/sha256, votequorum, here with one
// knet link per heartbeat NIC, as Concord uses both.
type corosyncCluster struct {
	*cluster.Cluster
}

func bootCorosync(ctx context.Context, env cluster.Env, n int) (*corosyncCluster, error) {
	rootfs := cluster.Rootfs{Name: "corosync", Packages: append(append([]string(nil), cluster.DefaultPackages...), "corosync")}
	hc, err := cluster.New(ctx, env, cluster.Options{Nodes: n, Rootfs: rootfs})
	if err != nil {
		return nil, err
	}
	c := &corosyncCluster{hc}
	key := make([]byte, 256)
	rand.Read(key)
	conf := corosyncConf(n)
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

func corosyncConf(n int) string {
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

// settle waits a little after a cluster formed: start-up work is not idle.
func settle() { time.Sleep(5 * time.Second) }
