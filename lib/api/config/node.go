package config

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"strings"
)

// Node returns the node with the given number, or nil.
func (c *Cluster) Node(number uint16) *Node {
	for i := range c.Nodes {
		if c.Nodes[i].Number == number {
			return &c.Nodes[i]
		}
	}
	return nil
}

// NodeByName returns the node with the given name, or nil. Names
// compare without regard to case, as host names do.
func (c *Cluster) NodeByName(name string) *Node {
	for i := range c.Nodes {
		if strings.EqualFold(c.Nodes[i].Name, name) {
			return &c.Nodes[i]
		}
	}
	return nil
}

// NodeByMAC returns the node that has a link with the given MAC, or nil.
func (c *Cluster) NodeByMAC(mac net.HardwareAddr) *Node {
	for i := range c.Nodes {
		for _, l := range c.Nodes[i].Links {
			if bytes.Equal(l.MAC, mac) {
				return &c.Nodes[i]
			}
		}
	}
	return nil
}

// NewNode builds a node to add to c: number 0 picks the lowest free
// number, votes 0 means 1, links are "IFNAME MAC" strings, and the UUID
// is derived from the cluster and node names. It fails when c with the
// new node would not validate.
func NewNode(c *Cluster, name string, number uint16, votes uint32, links []string, attrs map[string]string) (*Node, error) {
	if c == nil {
		return nil, fmt.Errorf("config: node %q: no cluster configuration to add it to", name)
	}
	if number == 0 {
		for n := uint16(1); n != 0; n++ {
			if c.Node(n) == nil {
				number = n
				break
			}
		}
	}
	ls, err := ParseLinks(links)
	if err != nil {
		return nil, fmt.Errorf("config: node %q: %v", name, err)
	}
	n := Node{Number: number, Name: name, Votes: votes, Links: ls}
	if len(attrs) > 0 {
		n.Attrs = make(map[string]string, len(attrs))
		for k, v := range attrs {
			n.Attrs[k] = v
		}
	}
	if n.Votes == 0 {
		n.Votes = 1
	}
	n.UUID = DefaultUUID(c.Name, name)
	next := *c
	next.Nodes = append(slices.Clip(slices.Clone(c.Nodes)), n)
	slices.SortStableFunc(next.Nodes, func(a, b Node) int { return int(a.Number) - int(b.Number) })
	if err := next.Validate(); err != nil {
		return nil, err
	}
	return &n, nil
}
