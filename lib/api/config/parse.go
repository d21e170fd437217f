package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// DefaultPath is where every node reads the cluster configuration.
const DefaultPath = "/etc/concord/cluster.conf"

// Load reads and parses the configuration file at path. Parse errors
// start with path and the line number.
func Load(path string) (*Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data)
}

// Parse parses the text of a cluster.conf, applies defaults and
// validates the result. Errors start with "cluster.conf:LINE:".
func Parse(data []byte) (*Cluster, error) {
	return parse("cluster.conf", data)
}

var (
	clusterKeys = []string{"name", "id", "tick", "heartbeat_interval", "dead_time", "link_dead_time", "join_timeout"}
	quorumKeys  = []string{"expected_votes", "two_node", "wait_for_all", "last_man_standing", "last_man_standing_window", "tie_breaker"}
	nodeKeys    = []string{"number", "uuid", "votes", "link", "attr.NAME"}
)

type parser struct {
	file string
	c    Cluster
	line int // current line

	sec      string         // current section: "cluster", "quorum", "options", "node NAME"; "" before any
	node     *Node          // current node section
	sections map[string]int // section -> line of its header
	keys     map[string]int // section+"\x00"+key -> line
	wfaSet   bool           // wait_for_all was written
}

// clean checks one raw line (UTF-8, no control characters) and returns
// it without its line end and surrounding space.
func (p *parser) clean(raw []byte) (string, error) {
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	if !utf8.Valid(raw) {
		return "", p.errorf("line is not valid UTF-8")
	}
	line := string(raw)
	for _, r := range line {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return "", p.errorf("control character %q", r)
		}
	}
	return strings.TrimSpace(line), nil
}

func parse(file string, data []byte) (*Cluster, error) {
	p := &parser{file: file, sections: map[string]int{}, keys: map[string]int{}}
	var nodes []*Node
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
			if p.node != nil {
				nodes = append(nodes, p.node)
			}
			continue
		}
		if p.sec == "" {
			return nil, p.errorf("%q comes before any [section]", line)
		}
		key, val, err := p.keyValue(line)
		if err != nil {
			return nil, err
		}
		if err := p.set(key, val); err != nil {
			return nil, err
		}
	}
	p.line = 0
	c := &p.c
	if _, ok := p.sections["cluster"]; !ok {
		return nil, p.errorf("[cluster] section is missing")
	}
	if c.Name == "" {
		p.line = p.sections["cluster"]
		return nil, p.errorf("[cluster]: name is required")
	}
	for _, n := range nodes {
		if _, ok := p.keys["node "+n.Name+"\x00number"]; !ok {
			p.line = p.sections["node "+n.Name]
			return nil, p.errorf("[node %s]: number is required", n.Name)
		}
		c.Nodes = append(c.Nodes, *n)
	}
	slices.SortStableFunc(c.Nodes, func(a, b Node) int { return int(a.Number) - int(b.Number) })
	if c.Quorum.TwoNode && !p.wfaSet {
		c.Quorum.WaitForAll = true
	}
	c.Defaults()
	if e := c.validate(); e != nil {
		p.line = p.lineOf(e)
		return nil, p.errorf("%s", e.Error())
	}
	return c, nil
}

// lineOf finds where the setting an error names was written: the key,
// else its section header, else nowhere (0).
func (p *parser) lineOf(e *fieldError) int {
	if l, ok := p.keys[e.sec+"\x00"+e.key]; ok && e.key != "" {
		return l
	}
	return p.sections[e.sec]
}

func (p *parser) errorf(format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	if p.line == 0 {
		return errors.New(p.file + ": " + msg)
	}
	return fmt.Errorf("%s:%d: %s", p.file, p.line, msg)
}

// fieldErr reports a setting refused by a check shared with Validate.
func (p *parser) fieldErr(e *fieldError) error {
	return p.errorf("%s", e.Error())
}

// keyErr reports a bad value of key in the current section.
func (p *parser) keyErr(key, format string, a ...any) error {
	return p.errorf("[%s]: %s: %s", p.sec, key, fmt.Sprintf(format, a...))
}

func (p *parser) section(line string) error {
	end := strings.IndexByte(line, ']')
	if end < 0 {
		return p.errorf("section header %q has no closing ']'", line)
	}
	if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest[0] != '#' {
		return p.errorf("unexpected %q after section header", rest)
	}
	inner := strings.TrimSpace(line[1:end])
	f := strings.Fields(inner)
	p.node = nil
	var sec string
	switch {
	case len(f) == 1 && (f[0] == "cluster" || f[0] == "quorum" || f[0] == "options"):
		sec = f[0]
	case len(f) >= 1 && f[0] == "node":
		// The whole rest is the name, so that "[node a b]" is refused
		// as the name "a b", in the words the store uses.
		name := strings.TrimSpace(strings.TrimPrefix(inner, "node"))
		if name == "" {
			return p.errorf("node section needs one name: [node NAME]")
		}
		if e := nodeNameErr(name); e != nil {
			return p.fieldErr(e)
		}
		// Names that differ only in case are refused by Validate.
		sec = "node " + name
		p.node = &Node{Name: name}
	default:
		hint := ""
		if len(f) > 0 {
			hint = suggest(f[0], []string{"cluster", "quorum", "options", "node"})
		}
		return p.errorf("unknown section %s%s", line[:end+1], hint)
	}
	if l, ok := p.sections[sec]; ok {
		return p.errorf("[%s] appears twice (first on line %d)", sec, l)
	}
	p.sections[sec] = p.line
	p.sec = sec
	return nil
}

// keyValue splits "key = value  # comment". A value in double quotes
// is a Go string literal and may hold '#', '"' and outer spaces.
func (p *parser) keyValue(line string) (string, string, error) {
	k, v, ok := strings.Cut(line, "=")
	if !ok {
		return "", "", p.errorf("[%s]: %q: expected \"key = value\"", p.sec, line)
	}
	key := strings.TrimSpace(k)
	if key == "" {
		return "", "", p.errorf("[%s]: %q: key is missing", p.sec, line)
	}
	// Option and attribute names are checked with their values, as the
	// store checks them.
	free := p.sec == "options" || p.node != nil && strings.HasPrefix(key, "attr.")
	for _, r := range key {
		if !nameChar(r) && !free {
			return "", "", p.errorf("[%s]: bad key %q: character %q is not one of [A-Za-z0-9_.-]", p.sec, key, r)
		}
	}
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, `"`) {
		q, err := strconv.QuotedPrefix(v)
		if err != nil {
			return "", "", p.keyErr(key, "bad quoted value %s", v)
		}
		if rest := strings.TrimSpace(v[len(q):]); rest != "" && rest[0] != '#' {
			return "", "", p.keyErr(key, "unexpected %q after quoted value", rest)
		}
		s, err := strconv.Unquote(q)
		if err != nil || q[0] != '"' {
			return "", "", p.keyErr(key, "bad quoted value %s", q)
		}
		return key, s, nil
	}
	if i := strings.IndexByte(v, '#'); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return key, v, nil
}

func (p *parser) set(key, val string) error {
	full := p.sec + "\x00" + key
	repeatable := key == "link"
	if l, ok := p.keys[full]; ok && !repeatable {
		return p.keyErr(key, "given twice (first on line %d)", l)
	}
	p.keys[full] = p.line
	switch {
	case p.sec == "cluster":
		return p.setCluster(key, val)
	case p.sec == "quorum":
		return p.setQuorum(key, val)
	case p.sec == "options":
		if e := optionErr(key, val); e != nil {
			return p.fieldErr(e)
		}
		if p.c.Options == nil {
			p.c.Options = map[string]string{}
		}
		p.c.Options[key] = val
		return nil
	}
	return p.setNode(key, val)
}

func (p *parser) setCluster(key, val string) error {
	c := &p.c
	t := &c.Totem
	switch key {
	case "name":
		if err := checkName(val, MaxNameLen); err != nil {
			return p.keyErr(key, "%v", err)
		}
		c.Name = val
		return nil
	case "id":
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil || n == 0 {
			return p.keyErr(key, "%q is not a number in 1..%d", val, uint32(1<<32-1))
		}
		c.ID = uint32(n)
		return nil
	case "tick":
		return p.duration(key, val, &t.Tick)
	case "heartbeat_interval":
		return p.duration(key, val, &t.HeartbeatInterval)
	case "dead_time":
		return p.duration(key, val, &t.DeadTime)
	case "link_dead_time":
		return p.duration(key, val, &t.LinkDeadTime)
	case "join_timeout":
		return p.duration(key, val, &t.JoinTimeout)
	}
	return p.unknown(key, clusterKeys)
}

func (p *parser) setQuorum(key, val string) error {
	q := &p.c.Quorum
	switch key {
	case "expected_votes":
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil || n == 0 || n > MaxExpectedVotes {
			return p.keyErr(key, "%q is not a number in 1..%d", val, MaxExpectedVotes)
		}
		q.ExpectedVotes = uint32(n)
		return nil
	case "two_node":
		return p.boolean(key, val, &q.TwoNode)
	case "wait_for_all":
		p.wfaSet = true
		return p.boolean(key, val, &q.WaitForAll)
	case "last_man_standing":
		return p.boolean(key, val, &q.LastManStanding)
	case "last_man_standing_window":
		return p.duration(key, val, &q.LMSWindow)
	case "tie_breaker":
		switch val {
		case "none":
			q.TieBreaker = ""
		case "lowest", "highest":
			q.TieBreaker = val
		default:
			n, err := strconv.ParseUint(val, 10, 16)
			if err != nil || n == 0 {
				return p.keyErr(key, "%q is not lowest, highest, none or a node number 1..65535", val)
			}
			q.TieBreaker = strconv.FormatUint(n, 10)
		}
		return nil
	}
	return p.unknown(key, quorumKeys)
}

func (p *parser) setNode(key, val string) error {
	n := p.node
	switch key {
	// Each value is parsed here, then checked as Validate checks it: a
	// zero must be refused now, before Defaults reads it as "unset".
	case "number":
		v, err := strconv.ParseUint(val, 10, 16)
		if err != nil {
			return p.keyErr(key, "%q is not a number in 1..65535", val)
		}
		if err := checkNumber(uint16(v)); err != nil {
			return p.keyErr(key, "%v", err)
		}
		n.Number = uint16(v)
		return nil
	case "uuid":
		u, err := uuid.Parse(val)
		if err != nil {
			return p.keyErr(key, "%q is not a UUID", val)
		}
		if err := checkUUID(u); err != nil {
			return p.keyErr(key, "%v", err)
		}
		n.UUID = u
		return nil
	case "votes":
		v, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return p.keyErr(key, "%q is not a number in 1..%d", val, MaxVotes)
		}
		if err := checkVotes(uint32(v)); err != nil {
			return p.keyErr(key, "%v", err)
		}
		n.Votes = uint32(v)
		return nil
	case "link":
		// Only the syntax here; Validate checks the link (and names
		// it by its line) as it does for the store.
		l, err := splitLink(val)
		if err != nil {
			return p.errorf("[%s]: link %q: %v", p.sec, val, err)
		}
		n.Links = append(n.Links, l)
		p.keys[p.sec+"\x00link."+strconv.Itoa(len(n.Links)-1)] = p.line
		return nil
	}
	if name, ok := strings.CutPrefix(key, "attr."); ok {
		if e := attrErr(n, name, val); e != nil {
			return p.fieldErr(e)
		}
		if n.Attrs == nil {
			n.Attrs = map[string]string{}
		}
		n.Attrs[name] = val
		return nil
	}
	return p.unknown(key, nodeKeys)
}

func (p *parser) unknown(key string, known []string) error {
	return p.errorf("[%s]: unknown key %q%s (known: %s)", p.sec, key, suggest(key, known), strings.Join(known, ", "))
}

func (p *parser) duration(key, val string, d *time.Duration) error {
	v, err := time.ParseDuration(val)
	if err != nil || v <= 0 {
		return p.keyErr(key, "%q is not a positive duration such as 150ms or 10s", val)
	}
	*d = v
	return nil
}

func (p *parser) boolean(key, val string, b *bool) error {
	switch strings.ToLower(val) {
	case "yes", "true", "on", "1":
		*b = true
	case "no", "false", "off", "0":
		*b = false
	default:
		return p.keyErr(key, "%q is not yes or no", val)
	}
	return nil
}

// ParseLink parses and checks "IFNAME MAC", as written after "link =".
func ParseLink(s string) (Link, error) {
	l, err := splitLink(s)
	if err != nil {
		return Link{}, err
	}
	if err := checkLink(l); err != nil {
		return Link{}, err
	}
	return l, nil
}

// splitLink parses "IFNAME MAC" without checking the values.
func splitLink(s string) (Link, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return Link{}, errors.New(`want "IFNAME MAC"`)
	}
	m, err := net.ParseMAC(f[1])
	if err != nil {
		return Link{}, errors.New("bad MAC address")
	}
	return Link{Interface: f[0], MAC: m}, nil
}

// ParseLinks parses a node's links, each "IFNAME MAC", and checks
// their number and that no interface or MAC repeats.
func ParseLinks(ss []string) ([]Link, error) {
	if len(ss) == 0 || len(ss) > MaxLinks {
		return nil, fmt.Errorf("%d links: want 1..%d", len(ss), MaxLinks)
	}
	ls := make([]Link, 0, len(ss))
	for i, s := range ss {
		l, err := ParseLink(s)
		if err != nil {
			return nil, fmt.Errorf("link %d %q: %v", i, s, err)
		}
		for j, o := range ls {
			if o.Interface == l.Interface || bytes.Equal(o.MAC, l.MAC) {
				return nil, fmt.Errorf("link %d %q repeats link %d", i, s, j)
			}
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// suggest returns ` (did you mean "x"?)` for a near miss among known.
func suggest(s string, known []string) string {
	if len(s) > 64 {
		return ""
	}
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(strings.ToLower(s), k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein edit distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// SetQuorum changes one [quorum] setting of c, written as in cluster.conf
// (two_node, yes), and checks the result. Turning two_node
// on also turns wait_for_all on, as it does in the file; either may be
// set afterwards. On error c is unchanged.
//
// Only the quorum rules are checked (see ValidateQuorum), so a store that
// keeps a partial configuration can use it.
func (c *Cluster) SetQuorum(key, value string) error {
	p := &parser{file: "config", c: *c, sec: "quorum"}
	p.c.Quorum = c.Quorum
	if err := p.setQuorum(key, strings.TrimSpace(value)); err != nil {
		return err
	}
	if key == "two_node" && p.c.Quorum.TwoNode && !c.Quorum.TwoNode {
		p.c.Quorum.WaitForAll = true
	}
	if err := p.c.ValidateQuorum(); err != nil {
		return err
	}
	c.Quorum = p.c.Quorum
	return nil
}
