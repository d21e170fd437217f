package config

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Format writes c as canonical cluster.conf text: every setting
// explicit, nodes in number order, options and attributes sorted.
// Parse reads the text of a valid configuration back to an equal Cluster.
func Format(c *Cluster) []byte {
	var b bytes.Buffer
	b.WriteString("# Concord cluster configuration; see concord.conf(5).\n")
	b.WriteString("[cluster]\n")
	kv(&b, "name", c.Name)
	kv(&b, "id", strconv.FormatUint(uint64(c.ID), 10))
	kv(&b, "tick", c.Totem.Tick.String())
	kv(&b, "heartbeat_interval", c.Totem.HeartbeatInterval.String())
	kv(&b, "dead_time", c.Totem.DeadTime.String())
	kv(&b, "link_dead_time", c.Totem.LinkDeadTime.String())
	kv(&b, "join_timeout", c.Totem.JoinTimeout.String())

	q := &c.Quorum
	b.WriteString("\n[quorum]\n")
	if q.ExpectedVotes != 0 {
		kv(&b, "expected_votes", strconv.FormatUint(uint64(q.ExpectedVotes), 10))
	}
	kv(&b, "two_node", yesNo(q.TwoNode))
	kv(&b, "wait_for_all", yesNo(q.WaitForAll))
	kv(&b, "last_man_standing", yesNo(q.LastManStanding))
	kv(&b, "last_man_standing_window", q.LMSWindow.String())
	tb := q.TieBreaker
	if tb == "" {
		tb = "none"
	}
	kv(&b, "tie_breaker", tb)

	if len(c.Options) > 0 {
		b.WriteString("\n[options]\n")
		for _, k := range sortedKeys(c.Options) {
			kv(&b, k, quote(c.Options[k]))
		}
	}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		fmt.Fprintf(&b, "\n[node %s]\n", n.Name)
		kv(&b, "number", strconv.FormatUint(uint64(n.Number), 10))
		kv(&b, "uuid", n.UUID.String())
		kv(&b, "votes", strconv.FormatUint(uint64(n.Votes), 10))
		for _, l := range n.Links {
			kv(&b, "link", l.Interface+" "+l.MAC.String())
		}
		for _, k := range sortedKeys(n.Attrs) {
			kv(&b, "attr."+k, quote(n.Attrs[k]))
		}
	}
	return b.Bytes()
}

func kv(b *bytes.Buffer, k, v string) {
	b.WriteString(k)
	b.WriteString(" = ")
	b.WriteString(v)
	b.WriteByte('\n')
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// quote returns v as written in the file: bare when that reads back
// unchanged, else as a double-quoted Go string.
func quote(v string) string {
	if v == "" || strings.TrimSpace(v) != v || strings.ContainsAny(v, "#\"\t") || !strconv.CanBackquote(v) {
		return strconv.Quote(v)
	}
	return v
}
