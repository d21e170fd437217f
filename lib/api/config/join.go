package config

import (
	"bytes"
	"strings"
)

// JoinFile is the join form of cluster.conf: a file without a [cluster]
// section, on a node that joins a running cluster and fetches everything
// else from it. It is empty (or absent), or holds one section:
//
//	[node delta]   # only when delta is not the host name
//	link = eth1    # only when the heartbeat NICs are not named hb*
//
// concord.conf(5) and concord-noded(8) say how a node joins.
type JoinFile struct {
	Name  string   // this node's name; "" means the host name
	Links []string // interfaces to listen on; none means every one named hb*
}

// IsJoinForm reports whether data is the join form of cluster.conf: it
// has no [cluster] section header.
func IsJoinForm(data []byte) bool {
	for _, raw := range bytes.Split(data, []byte("\n")) {
		line := strings.TrimSpace(string(raw))
		if !strings.HasPrefix(line, "[") {
			continue
		}
		inner, _, _ := strings.Cut(line[1:], "]")
		if strings.TrimSpace(inner) == "cluster" {
			return false
		}
	}
	return true
}

// ParseJoin parses the join form of cluster.conf (see IsJoinForm). Errors
// start with file and the line number, as Parse's do, and say what a
// joining node's file may hold.
func ParseJoin(file string, data []byte) (*JoinFile, error) {
	p := &parser{file: file, sections: map[string]int{}, keys: map[string]int{}}
	jf := &JoinFile{}
	nodeLine := 0
	for i, raw := range bytes.Split(data, []byte("\n")) {
		p.line = i + 1
		line, err := p.clean(raw)
		if err != nil {
			return nil, err
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			if err := p.section(line); err != nil {
				return nil, err
			}
			switch {
			case p.node == nil && p.sec == "cluster":
				return nil, p.errorf("[cluster] in the join form: read this file with Parse")
			case p.node == nil:
				return nil, p.errorf("[%s] without [cluster]: a node that joins a running cluster gets its settings from the cluster; write only [node NAME] here, or the whole configuration", p.sec)
			case nodeLine != 0:
				return nil, p.errorf("[%s] after [node %s] (line %d): without [cluster] the file names this node only", p.sec, jf.Name, nodeLine)
			}
			jf.Name, nodeLine = p.node.Name, p.line
			continue
		}
		if p.sec == "" {
			return nil, p.errorf("%q comes before any [section]", line)
		}
		key, val, err := p.keyValue(line)
		if err != nil {
			return nil, err
		}
		if key != "link" {
			return nil, p.keyErr(key, "not set in a file without [cluster]: a joining node gets it from the cluster's configuration (only link = IFNAME may be given here)")
		}
		f := strings.Fields(val)
		if len(f) != 1 {
			return nil, p.keyErr(key, "%q: want only the interface name, the MAC comes from the cluster's configuration", val)
		}
		if err := checkIfName(f[0]); err != nil {
			return nil, p.keyErr(key, "%v", err)
		}
		for j, l := range jf.Links {
			if l == f[0] {
				return nil, p.keyErr(key, "%s repeats link %d", f[0], j)
			}
		}
		if len(jf.Links) == MaxLinks {
			return nil, p.keyErr(key, "more than %d links", MaxLinks)
		}
		jf.Links = append(jf.Links, f[0])
	}
	return jf, nil
}
