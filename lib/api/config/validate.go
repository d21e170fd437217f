package config

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Defaults and limits. Durations are documented in concord.conf(5).
const (
	// A tick and a heartbeat of 40ms with a dead_time of 120ms: a node is
	// suspected after three heartbeat intervals without a frame (two lost
	// heartbeats are tolerated), and noticed at most four ticks (160ms)
	// after it died, as a heartbeat is only read at the receiver's next
	// tick. Each node wakes 25 times a second, not 33 as with 30ms: idle
	// CPU is wake-ups, not frames. link_dead_time leaves each of two
	// links two heartbeats, so they can take turns.
	DefaultTick              = 40 * time.Millisecond
	DefaultHeartbeatInterval = 40 * time.Millisecond
	DefaultDeadTime          = 120 * time.Millisecond
	DefaultLinkDeadTime      = 160 * time.Millisecond
	DefaultJoinTimeout       = 100 * time.Millisecond
	DefaultLMSWindow         = 10 * time.Second

	MaxNodes         = 256
	MaxLinks         = 8
	MaxVotes         = 65535   // per node
	MaxExpectedVotes = 1 << 24 // comfortably above MaxNodes*MaxVotes
	MaxNameLen       = 32      // cluster name
	MaxNodeNameLen   = 64
	MaxOptionKeyLen  = 64
	MaxOptionValLen  = 1024
	MaxIfNameLen     = 15 // IFNAMSIZ-1
)

// nodeNamespace roots the name-based (version 5) node UUIDs, so that
// every node derives the same UUID for the same cluster and node name.
var nodeNamespace = uuid.MustParse("636cb453-e04d-4909-b40d-5dad491d3499")

// DefaultID is the cluster id used when none is configured: FNV-1a of
// the name, never 0 because 0 means "unset".
func DefaultID(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	if id := h.Sum32(); id != 0 {
		return id
	}
	return 1
}

// DefaultUUID is the UUID a node gets when none is configured.
func DefaultUUID(cluster, node string) uuid.UUID {
	return uuid.NewSHA1(nodeNamespace, []byte(cluster+"\x00"+node))
}

// Defaults fills every zero field that has a default: id, timings,
// last_man_standing_window, node votes and node UUIDs. wait_for_all's
// default depends on whether the key was written at all, so Parse
// settles it before calling Defaults.
func (c *Cluster) Defaults() {
	if c.ID == 0 && c.Name != "" {
		c.ID = DefaultID(c.Name)
	}
	t := &c.Totem
	setDur(&t.HeartbeatInterval, DefaultHeartbeatInterval)
	// The tick may not exceed the heartbeat interval, so a shorter
	// heartbeat_interval written alone brings the default tick down with it.
	setDur(&t.Tick, min(DefaultTick, t.HeartbeatInterval))
	setDur(&t.DeadTime, DefaultDeadTime)
	setDur(&t.LinkDeadTime, DefaultLinkDeadTime)
	setDur(&t.JoinTimeout, DefaultJoinTimeout)
	setDur(&c.Quorum.LMSWindow, DefaultLMSWindow)
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.Votes == 0 {
			n.Votes = 1
		}
		if n.UUID == uuid.Nil {
			n.UUID = DefaultUUID(c.Name, n.Name)
		}
	}
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// fieldError is one problem with one setting. Validate returns it as
// is; Parse adds the line where the setting was written.
type fieldError struct {
	sec   string // "cluster", "quorum", "options" or "node NAME"
	key   string // line lookup key: "", "votes", "link.2", "attr.rack"
	label string // how the setting is shown; "" shows nothing
	msg   string
}

func (e *fieldError) Error() string {
	if e.label == "" {
		return "[" + e.sec + "]: " + e.msg
	}
	return "[" + e.sec + "]: " + e.label + ": " + e.msg
}

func clusterErr(key, format string, a ...any) *fieldError {
	return &fieldError{sec: "cluster", key: key, label: key, msg: fmt.Sprintf(format, a...)}
}

func quorumErr(key, format string, a ...any) *fieldError {
	return &fieldError{sec: "quorum", key: key, label: key, msg: fmt.Sprintf(format, a...)}
}

func nodeErr(n *Node, key, format string, a ...any) *fieldError {
	return &fieldError{sec: "node " + n.Name, key: key, label: key, msg: fmt.Sprintf(format, a...)}
}

func linkErr(n *Node, i int, format string, a ...any) *fieldError {
	l := n.Links[i]
	return &fieldError{sec: "node " + n.Name, key: "link." + strconv.Itoa(i),
		label: fmt.Sprintf("link %q", l.Interface+" "+l.MAC.String()), msg: fmt.Sprintf(format, a...)}
}

// Validate checks the whole configuration. The error names the section
// and key at fault, e.g. `config: [node beta]: votes: must be 1..65535`.
func (c *Cluster) Validate() error {
	if e := c.validate(); e != nil {
		return fmt.Errorf("config: %w", e)
	}
	return nil
}

// IsQuorumError reports whether err is Validate's complaint about a
// [quorum] setting, which a node change can cause as well as a quorum one.
func IsQuorumError(err error) bool {
	var fe *fieldError
	return errors.As(err, &fe) && fe.sec == "quorum"
}

// QuorumHint is what to tell an admin whose node change breaks a quorum
// rule.
const QuorumHint = "change the quorum settings first (concordctl quorum set)"

// ValidateQuorum checks the [quorum] settings against the nodes, which is
// all that a change of either can break.
func (c *Cluster) ValidateQuorum() error {
	if e := c.validateQuorumTimes(); e != nil {
		return fmt.Errorf("config: %w", e)
	}
	if e := c.validateQuorum(); e != nil {
		return fmt.Errorf("config: %w", e)
	}
	return nil
}

func (c *Cluster) validate() *fieldError {
	if err := checkName(c.Name, MaxNameLen); err != nil {
		return clusterErr("name", "%v", err)
	}
	if c.ID == 0 {
		return clusterErr("id", "must not be 0")
	}
	if e := c.Totem.validate(); e != nil {
		return e
	}
	if e := c.validateQuorumTimes(); e != nil {
		return e
	}
	for _, k := range sortedKeys(c.Options) {
		if e := optionErr(k, c.Options[k]); e != nil {
			return e
		}
	}
	if len(c.Nodes) == 0 {
		return &fieldError{sec: "cluster", msg: "no nodes: add a [node NAME] section for each node"}
	}
	if len(c.Nodes) > MaxNodes {
		return &fieldError{sec: "node " + c.Nodes[MaxNodes].Name, msg: fmt.Sprintf("too many nodes: at most %d", MaxNodes)}
	}
	for i := range c.Nodes {
		if e := c.Nodes[i].validate(); e != nil {
			return e
		}
	}
	if e := c.validateUnique(); e != nil {
		return e
	}
	return c.validateQuorum()
}

func (t *Timing) validate() *fieldError {
	type check struct {
		key      string
		d        time.Duration
		min, max time.Duration
	}
	for _, ck := range []check{
		{"tick", t.Tick, time.Millisecond, time.Second},
		{"heartbeat_interval", t.HeartbeatInterval, time.Millisecond, 10 * time.Second},
		{"dead_time", t.DeadTime, time.Millisecond, 10 * time.Minute},
		{"link_dead_time", t.LinkDeadTime, time.Millisecond, 10 * time.Minute},
		{"join_timeout", t.JoinTimeout, time.Millisecond, time.Minute},
	} {
		if ck.d < ck.min || ck.d > ck.max {
			return clusterErr(ck.key, "%v is out of range %v..%v", ck.d, ck.min, ck.max)
		}
	}
	switch {
	case t.Tick > t.HeartbeatInterval:
		return clusterErr("tick", "%v must not exceed heartbeat_interval (%v)", t.Tick, t.HeartbeatInterval)
	case t.DeadTime <= 2*t.HeartbeatInterval:
		return clusterErr("dead_time", "%v must be more than 2*heartbeat_interval (%v)", t.DeadTime, 2*t.HeartbeatInterval)
	case t.LinkDeadTime <= 2*t.HeartbeatInterval:
		return clusterErr("link_dead_time", "%v must be more than 2*heartbeat_interval (%v)", t.LinkDeadTime, 2*t.HeartbeatInterval)
	case t.JoinTimeout < t.Tick:
		return clusterErr("join_timeout", "%v must be at least one tick (%v)", t.JoinTimeout, t.Tick)
	}
	return nil
}

func (c *Cluster) validateQuorumTimes() *fieldError {
	w := c.Quorum.LMSWindow
	if w < c.Totem.Tick || w > 24*time.Hour {
		return quorumErr("last_man_standing_window", "%v is out of range tick (%v)..24h", w, c.Totem.Tick)
	}
	return nil
}

// Validate checks a node on its own, without the other nodes: what a
// [node NAME] section may hold. Errors read as Validate's do.
func (n *Node) Validate() error {
	if e := n.validate(); e != nil {
		return fmt.Errorf("config: %w", e)
	}
	return nil
}

// The checks of one setting, shared by Parse (as each line is read) and
// Validate (which the replicated store runs on every change), so that the
// file and the store refuse the same settings in the same words.

func nodeNameErr(name string) *fieldError {
	if err := checkName(name, MaxNodeNameLen); err != nil {
		return &fieldError{sec: "node " + name, msg: "bad node name: " + err.Error()}
	}
	return nil
}

func checkNumber(v uint16) error {
	if v == 0 {
		return errors.New("0 is out of range 1..65535")
	}
	return nil
}

func checkVotes(v uint32) error {
	if v == 0 || v > MaxVotes {
		return fmt.Errorf("%d is out of range 1..%d", v, MaxVotes)
	}
	return nil
}

func checkUUID(u uuid.UUID) error {
	if u == uuid.Nil {
		return errors.New("must not be the nil UUID")
	}
	return nil
}

// optionErr checks one [options] line: a bad name is shown without the
// key label (the name is in the message), a bad value with it.
func optionErr(key, value string) *fieldError {
	if err := ValidOptionKey(key); err != nil {
		return &fieldError{sec: "options", key: key, msg: "option " + err.Error()}
	}
	if err := ValidOptionValue(value); err != nil {
		return &fieldError{sec: "options", key: key, label: key, msg: err.Error()}
	}
	if label, ok := strings.CutPrefix(key, GroupAllowPrefix); ok {
		if label == "" {
			return &fieldError{sec: "options", key: key, msg: "option " + key + ": a label must follow " + GroupAllowPrefix}
		}
		if _, err := ParseGroupRule(label, value); err != nil {
			return &fieldError{sec: "options", key: key, label: key, msg: err.Error()}
		}
	}
	return nil
}

// attrErr checks one attr.NAME line of node n, like optionErr.
func attrErr(n *Node, name, value string) *fieldError {
	if err := ValidOptionKey(name); err != nil {
		return &fieldError{sec: "node " + n.Name, key: "attr." + name, msg: "attribute " + err.Error()}
	}
	if err := ValidOptionValue(value); err != nil {
		return nodeErr(n, "attr."+name, "%v", err)
	}
	return nil
}

// CheckOption checks a cluster option as [options] and the replicated
// store take it; an empty value is allowed.
func CheckOption(key, value string) error {
	if e := optionErr(key, value); e != nil {
		return fmt.Errorf("config: %w", e)
	}
	return nil
}

func (n *Node) validate() *fieldError {
	if e := nodeNameErr(n.Name); e != nil {
		return e
	}
	if err := checkNumber(n.Number); err != nil {
		return nodeErr(n, "number", "%v", err)
	}
	if err := checkVotes(n.Votes); err != nil {
		return nodeErr(n, "votes", "%v", err)
	}
	if err := checkUUID(n.UUID); err != nil {
		return nodeErr(n, "uuid", "%v", err)
	}
	if len(n.Links) == 0 {
		return &fieldError{sec: "node " + n.Name, msg: "no links: add at least one \"link = IFNAME MAC\""}
	}
	if len(n.Links) > MaxLinks {
		return linkErr(n, MaxLinks, "too many links: at most %d", MaxLinks)
	}
	for i, l := range n.Links {
		if err := checkLink(l); err != nil {
			return linkErr(n, i, "%v", err)
		}
		for j := range i {
			if n.Links[j].Interface == l.Interface {
				return linkErr(n, i, "interface %s is already link %d", l.Interface, j)
			}
			if bytes.Equal(n.Links[j].MAC, l.MAC) {
				return linkErr(n, i, "MAC address is already link %d", j)
			}
		}
	}
	for _, k := range sortedKeys(n.Attrs) {
		if e := attrErr(n, k, n.Attrs[k]); e != nil {
			return e
		}
	}
	return nil
}

func (c *Cluster) validateUnique() *fieldError {
	numbers := map[uint16]*Node{}
	names := map[string]*Node{}
	uuids := map[uuid.UUID]*Node{}
	type linkRef struct {
		n *Node
		i int
	}
	macs := map[string]linkRef{}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if o := numbers[n.Number]; o != nil {
			return nodeErr(n, "number", "%d is already used by node %s", n.Number, o.Name)
		}
		numbers[n.Number] = n
		if o := names[strings.ToLower(n.Name)]; o != nil {
			return &fieldError{sec: "node " + n.Name, msg: fmt.Sprintf("name is already used by node %d (%s)", o.Number, o.Name)}
		}
		names[strings.ToLower(n.Name)] = n
		if o := uuids[n.UUID]; o != nil {
			return nodeErr(n, "uuid", "%s is already used by node %s", n.UUID, o.Name)
		}
		uuids[n.UUID] = n
		for li, l := range n.Links {
			if o, ok := macs[string(l.MAC)]; ok && o.n != n {
				return linkErr(n, li, "MAC address is already used by node %s link %s", o.n.Name, o.n.Links[o.i].Interface)
			}
			macs[string(l.MAC)] = linkRef{n, li}
		}
	}
	return nil
}

func (c *Cluster) validateQuorum() *fieldError {
	q := &c.Quorum
	var sum uint32
	for _, n := range c.Nodes {
		sum += n.Votes
	}
	if q.ExpectedVotes > MaxExpectedVotes {
		return quorumErr("expected_votes", "%d is out of range 1..%d", q.ExpectedVotes, MaxExpectedVotes)
	}
	if q.ExpectedVotes != 0 && q.ExpectedVotes < sum {
		return quorumErr("expected_votes", "%d is less than the %d votes of the configured nodes, so a minority could be quorate", q.ExpectedVotes, sum)
	}
	if q.TwoNode {
		if len(c.Nodes) != 2 {
			return quorumErr("two_node", "needs exactly 2 nodes, found %d", len(c.Nodes))
		}
		if sum != 2 {
			return quorumErr("two_node", "needs 1 vote per node, found %d votes", sum)
		}
		if q.ExpectedVotes != 0 && q.ExpectedVotes != 2 {
			return quorumErr("two_node", "needs expected_votes = 2, found %d", q.ExpectedVotes)
		}
	}
	switch tb := q.TieBreaker; tb {
	case "", "none", "lowest", "highest":
	default:
		num, err := strconv.ParseUint(tb, 10, 16)
		if err != nil || num == 0 {
			return quorumErr("tie_breaker", "%q is not lowest, highest, none or a node number", tb)
		}
		if c.Node(uint16(num)) == nil {
			return quorumErr("tie_breaker", "no node has number %d", num)
		}
		if tb != strconv.FormatUint(num, 10) {
			return quorumErr("tie_breaker", "%q: write the node number as %d", tb, num)
		}
	}
	return nil
}

// checkName checks a cluster or node name: [A-Za-z0-9_.-], starting
// with a letter or digit.
func checkName(s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%q must have 1..%d characters", s, max)
	}
	for i, r := range s {
		if !nameChar(r) {
			return fmt.Errorf("%q: character %q is not one of [A-Za-z0-9_.-]", s, r)
		}
		if i == 0 && (r == '_' || r == '.' || r == '-') {
			return fmt.Errorf("%q must start with a letter or digit", s)
		}
	}
	return nil
}

func nameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'
}

// ValidOptionKey checks the name of a cluster option or node attribute.
func ValidOptionKey(key string) error {
	if key == "" || len(key) > MaxOptionKeyLen {
		return fmt.Errorf("name %q must have 1..%d characters", key, MaxOptionKeyLen)
	}
	for _, r := range key {
		if !nameChar(r) {
			return fmt.Errorf("name %q: character %q is not one of [A-Za-z0-9_.-]", key, r)
		}
	}
	return nil
}

// ValidOptionValue checks the value of a cluster option or node
// attribute: UTF-8 text of at most 1024 bytes without control characters.
func ValidOptionValue(v string) error {
	if len(v) > MaxOptionValLen {
		return fmt.Errorf("value of %d bytes exceeds %d", len(v), MaxOptionValLen)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("value %q is not UTF-8", v)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("value has control character %q", r)
		}
	}
	return nil
}

func checkLink(l Link) error {
	if err := checkIfName(l.Interface); err != nil {
		return err
	}
	return checkMAC(l.MAC)
}

func checkIfName(s string) error {
	if s == "" || len(s) > MaxIfNameLen {
		return fmt.Errorf("interface name %q must have 1..%d characters", s, MaxIfNameLen)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("interface name %q is not allowed", s)
	}
	for _, r := range s {
		if !nameChar(r) && r != ':' && r != '@' {
			return fmt.Errorf("interface name %q: character %q is not allowed", s, r)
		}
	}
	return nil
}

func checkMAC(m net.HardwareAddr) error {
	switch {
	case len(m) != 6:
		return fmt.Errorf("bad MAC address %q: want 6 bytes", m.String())
	case m[0]&1 != 0:
		return fmt.Errorf("MAC address %s is a multicast address", m)
	case bytes.Equal(m, make([]byte, 6)):
		return fmt.Errorf("MAC address %s is all zeros", m)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
