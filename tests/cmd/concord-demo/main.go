package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/tests/harness/cluster"
)

func main() {
	deb := flag.String("deb", os.Getenv("CONCORD_DEB"), "Concord .deb to install in the nodes")
	nodes := flag.Int("nodes", 3, "number of nodes (at least 3, so two survive with quorum)")
	flag.Parse()
	if *deb == "" || flag.NArg() > 0 || *nodes < 3 {
		fmt.Fprintln(os.Stderr, "usage: concord-demo -deb build/concord.deb [-nodes N>=3]")
		os.Exit(2)
	}
	if m := cluster.Missing(); m != "" {
		fmt.Fprintln(os.Stderr, "concord-demo: "+m)
		os.Exit(1)
	}
	env := &cluster.CLIEnv{W: os.Stdout}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, env, *deb, *nodes)
	stop()
	if err != nil {
		env.Fail()
		env.Logf("FAILED: %v", err)
	}
	env.Close()
	if err != nil {
		os.Exit(1)
	}
}

func step(env cluster.Logger, format string, args ...any) {
	env.Logf("==> "+format, args...)
}

func run(ctx context.Context, env *cluster.CLIEnv, deb string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()

	step(env, "booting %d systemd nodes, each with heartbeat NICs hb0 and hb1 on two bridges", n)
	c, err := cluster.New(ctx, env, cluster.Options{Nodes: n, Deb: deb})
	if err != nil {
		return err
	}
	env.Logf("booted in %v (median per node), Concord installed from %s", c.Timings.MedianBoot().Round(time.Millisecond), deb)

	step(env, "writing /etc/concord/cluster.conf and one shared key on every node")
	conf := &config.Cluster{Name: "demo"}
	for i := 1; i <= n; i++ {
		node := c.Node(i)
		var links []config.Link
		for l, mac := range node.MACs {
			links = append(links, config.Link{Interface: cluster.LinkName(l), MAC: mac})
		}
		conf.Nodes = append(conf.Nodes, config.Node{Number: uint16(i), Name: node.Hostname, Links: links})
	}
	conf.Defaults()
	if err := conf.Validate(); err != nil {
		return err
	}
	text := config.Format(conf)
	fmt.Printf("%s\n", text)
	if _, _, err := c.Exec(ctx, 1, "concordctl", "keygen"); err != nil {
		return err
	}
	key, err := c.ReadFile(1, "/etc/concord/authkey")
	if err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		if err := c.WriteFile(i, "/etc/concord/cluster.conf", text, 0o600); err != nil {
			return err
		}
		if err := c.WriteFile(i, "/etc/concord/authkey", key, 0o600); err != nil {
			return err
		}
	}

	step(env, "systemctl start concord-noded on every node")
	for i := 1; i <= n; i++ {
		if _, err := c.Systemctl(ctx, i, "start", "concord-noded"); err != nil {
			return err
		}
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i + 1
	}
	start := time.Now()
	if err := waitView(ctx, c, all, all); err != nil {
		return err
	}
	env.Logf("all %d nodes agree on one view %v after %v", n, all, time.Since(start).Round(time.Millisecond))
	if err := waitSettled(ctx, c, 1); err != nil {
		return err
	}
	env.Logf("the replicated configuration has a leader and heartbeats alternate between the links after %v", time.Since(start).Round(time.Millisecond))
	if err := show(ctx, env, c, 1); err != nil {
		return err
	}

	step(env, "power loss on node%d (every process killed at once)", n)
	start = time.Now()
	if err := c.Kill(n); err != nil {
		return err
	}
	survivors := all[:n-1]
	if err := waitView(ctx, c, survivors, survivors); err != nil {
		return err
	}
	env.Logf("survivors %v installed a view without node%d %v after Kill was called (polled every 20 ms)",
		survivors, n, time.Since(start).Round(time.Millisecond))
	// For a moment the dead node was heard on one link but not the other
	// (heartbeats take turns), which puts heartbeats on every link; the
	// status is shown once that has passed.
	if err := waitSettled(ctx, c, 1); err != nil {
		return err
	}
	if err := show(ctx, env, c, 1); err != nil {
		return err
	}
	env.Logf("node1$ journalctl -u concord-noded -n 12 (what the daemon logged, and why)")
	if out, _, err := c.Exec(ctx, 1, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "short-precise", "-n", "12"); err == nil {
		fmt.Print(out)
	}
	step(env, "done; tearing down")
	return nil
}

// waitView waits until every node in on reports exactly members as its view.
func waitView(ctx context.Context, c *cluster.Cluster, on, members []int) error {
	want := fmt.Sprintf("aq %d", len(members))
	for _, m := range members {
		want += " " + strconv.Itoa(m)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return cluster.Poll(wctx, 20*time.Millisecond, func() (bool, string) {
		for _, i := range on {
			out, _, err := c.Exec(wctx, i, "busctl", "get-property", "org.concordha.node1",
				"/org/concordha/node1", "org.concordha.node1.Manager", "ViewMembers")
			if err != nil {
				return false, err.Error()
			}
			if got := strings.TrimSpace(out); got != want {
				return false, fmt.Sprintf("node%d: ViewMembers %q, want %q", i, got, want)
			}
		}
		return true, ""
	})
}

// waitSettled waits until node i names a configuration leader (the store
// listens 1.5 s for a running cluster before it bootstraps) and its
// heartbeats alternate, so the status shown is the steady one.
func waitSettled(ctx context.Context, c *cluster.Cluster, i int) error {
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return cluster.Poll(wctx, 50*time.Millisecond, func() (bool, string) {
		out, _, err := c.Exec(wctx, i, "busctl", "get-property", "org.concordha.node1",
			"/org/concordha/node1", "org.concordha.node1.Manager", "ConfigLeader", "Heartbeats")
		if err != nil {
			return false, err.Error()
		}
		out = strings.TrimSpace(out)
		return !strings.HasPrefix(out, "q 0") && strings.HasSuffix(out, `s "alternating"`), "node1: " + out
	})
}

func show(ctx context.Context, env cluster.Logger, c *cluster.Cluster, i int) error {
	out, _, err := c.Exec(ctx, i, "concordctl", "status")
	if err != nil {
		return err
	}
	env.Logf("node%d$ concordctl status\n%s", i, out)
	return nil
}
