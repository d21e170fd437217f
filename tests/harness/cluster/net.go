package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Each heartbeat link l is one host bridge, a switch joined to nothing
// real. Faults are nftables rules in a bridge-family table named after the
// cluster: frames are dropped in the bridge's forward path, so carriers
// stay up and the nodes see a switch that stopped passing their frames.

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft: %v: %s\nscript:\n%s", err, strings.TrimSpace(string(out)), script)
	}
	return nil
}

func noIPv6(ifname string) {
	os.WriteFile("/proc/sys/net/ipv6/conf/"+ifname+"/disable_ipv6", []byte("1"), 0o644)
}

func (c *Cluster) makeNetwork() error {
	for l := 0; l < c.links; l++ {
		br := fmt.Sprintf("%sb%d", c.tag, l)
		// No multicast snooping: Concord's multicast is plain Ethernet
		// multicast and must be flooded like on a dumb switch.
		if err := run("ip", "link", "add", br, "type", "bridge", "mcast_snooping", "0", "stp_state", "0"); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		c.bridges = append(c.bridges, br)
		noIPv6(br)
		if err := run("ip", "link", "set", br, "up"); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	err := nft(fmt.Sprintf("table bridge %s {\n\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n\t}\n}\n", c.tag))
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// attach puts a node's host-side veth into its bridge once nspawn made it.
func (c *Cluster) attach(ctx context.Context, ifname, br string) error {
	err := Poll(ctx, 20*time.Millisecond, func() (bool, string) {
		_, err := os.Stat("/sys/class/net/" + ifname)
		return err == nil, ifname + " not created yet"
	})
	if err != nil {
		return err
	}
	noIPv6(ifname)
	return run("ip", "link", "set", ifname, "master", br, "up")
}

// CutLink drops every frame node i sends or receives on heartbeat link l
// (0-based), both directions; its carrier stays up.
func (c *Cluster) CutLink(i, l int) error {
	c.checkLink(i, l)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cuts[[2]int{i, l}] = true
	return c.applyRules()
}

// CutLinkTx drops the frames node i sends on heartbeat link l, and only
// those: the node still receives on the link, so only its peers can tell
// (a one-way failure, such as a bad transmit pair).
func (c *Cluster) CutLinkTx(i, l int) error {
	c.checkLink(i, l)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.txCuts[[2]int{i, l}] = true
	return c.applyRules()
}

// RestoreLink undoes CutLink and CutLinkTx.
func (c *Cluster) RestoreLink(i, l int) error {
	c.checkLink(i, l)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cuts, [2]int{i, l})
	delete(c.txCuts, [2]int{i, l})
	return c.applyRules()
}

// Isolate cuts every link of node i.
func (c *Cluster) Isolate(i int) error {
	c.checkLink(i, 0)
	c.mu.Lock()
	defer c.mu.Unlock()
	for l := 0; l < c.links; l++ {
		c.cuts[[2]int{i, l}] = true
	}
	return c.applyRules()
}

// Partition splits the cluster into sets of nodes (1-based numbers):
// frames between nodes of different sets are dropped on every link. A node
// in no set is alone. It replaces the previous partition; cut links stay cut.
func (c *Cluster) Partition(sets [][]int) error {
	seen := map[int]bool{}
	for _, s := range sets {
		for _, i := range s {
			if i < 1 || i > len(c.nodes) || seen[i] {
				return fmt.Errorf("cluster: partition %v: bad or repeated node %d", sets, i)
			}
			seen[i] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups = sets
	return c.applyRules()
}

// Heal removes every partition and link cut.
func (c *Cluster) Heal() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups = nil
	c.cuts = map[[2]int]bool{}
	c.txCuts = map[[2]int]bool{}
	return c.applyRules()
}

// Rules returns the cluster's nft table as nft lists it.
func (c *Cluster) Rules() (string, error) {
	out, err := exec.Command("nft", "list", "table", "bridge", c.tag).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("nft list table bridge %s: %v: %s", c.tag, err, out)
	}
	return string(out), nil
}

func (c *Cluster) checkLink(i, l int) {
	c.Node(i)
	if l < 0 || l >= c.links {
		panic(fmt.Sprintf("cluster: no link %d (have %d)", l, c.links))
	}
}

// applyRules replaces the forward chain in one nft transaction. Called
// with c.mu held.
func (c *Cluster) applyRules() error {
	var b strings.Builder
	fmt.Fprintf(&b, "flush chain bridge %s forward\n", c.tag)
	for i := 1; i <= len(c.nodes); i++ {
		for l := 0; l < c.links; l++ {
			if c.cuts[[2]int{i, l}] {
				h := c.nodes[i-1].HostIfs[l]
				fmt.Fprintf(&b, "add rule bridge %s forward iifname %q counter drop comment \"cut node%d hb%d\"\n", c.tag, h, i, l)
				fmt.Fprintf(&b, "add rule bridge %s forward oifname %q counter drop comment \"cut node%d hb%d\"\n", c.tag, h, i, l)
			}
			if c.txCuts[[2]int{i, l}] {
				h := c.nodes[i-1].HostIfs[l]
				fmt.Fprintf(&b, "add rule bridge %s forward iifname %q counter drop comment \"tx cut node%d hb%d\"\n", c.tag, h, i, l)
			}
		}
	}
	if c.groups != nil {
		group := map[int]int{}
		for g, s := range c.groups {
			for _, i := range s {
				group[i] = g + 1
			}
		}
		for a := 1; a <= len(c.nodes); a++ {
			for z := 1; z <= len(c.nodes); z++ {
				if a == z || group[a] != 0 && group[a] == group[z] {
					continue
				}
				for l := 0; l < c.links; l++ {
					fmt.Fprintf(&b, "add rule bridge %s forward iifname %q oifname %q counter drop comment \"partition node%d node%d\"\n",
						c.tag, c.nodes[a-1].HostIfs[l], c.nodes[z-1].HostIfs[l], a, z)
				}
			}
		}
	}
	if err := nft(b.String()); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}
