package config

import (
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/google/uuid"
)

// The JSON form is what the replicated store keeps and what
// `concordctl --json` prints: lower_snake_case names matching the file
// keys, durations as strings ("150ms"), MACs as "52:54:00:00:01:01".
// Fields are only ever added; unknown fields are ignored on reading so
// that older nodes can read what newer ones wrote.

type jsonCluster struct {
	Name    string            `json:"name"`
	ID      uint32            `json:"id"`
	Timing  Timing            `json:"timing"`
	Quorum  Quorum            `json:"quorum"`
	Options map[string]string `json:"options,omitempty"`
	Nodes   []Node            `json:"nodes,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (c Cluster) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonCluster{c.Name, c.ID, c.Totem, c.Quorum, c.Options, c.Nodes})
}

// UnmarshalJSON implements json.Unmarshaler. It neither applies
// defaults nor validates.
func (c *Cluster) UnmarshalJSON(b []byte) error {
	var j jsonCluster
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = Cluster{Name: j.Name, ID: j.ID, Totem: j.Timing, Quorum: j.Quorum, Options: nilIfEmpty(j.Options), Nodes: j.Nodes}
	if len(c.Nodes) == 0 {
		c.Nodes = nil
	}
	return nil
}

type jsonTiming struct {
	Tick              duration `json:"tick"`
	HeartbeatInterval duration `json:"heartbeat_interval"`
	DeadTime          duration `json:"dead_time"`
	LinkDeadTime      duration `json:"link_dead_time"`
	JoinTimeout       duration `json:"join_timeout"`
}

// MarshalJSON implements json.Marshaler.
func (t Timing) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonTiming{duration(t.Tick), duration(t.HeartbeatInterval), duration(t.DeadTime),
		duration(t.LinkDeadTime), duration(t.JoinTimeout)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Timing) UnmarshalJSON(b []byte) error {
	var j jsonTiming
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*t = Timing{time.Duration(j.Tick), time.Duration(j.HeartbeatInterval), time.Duration(j.DeadTime),
		time.Duration(j.LinkDeadTime), time.Duration(j.JoinTimeout)}
	return nil
}

type jsonQuorum struct {
	ExpectedVotes   uint32   `json:"expected_votes"`
	TwoNode         bool     `json:"two_node"`
	WaitForAll      bool     `json:"wait_for_all"`
	LastManStanding bool     `json:"last_man_standing"`
	LMSWindow       duration `json:"last_man_standing_window"`
	TieBreaker      string   `json:"tie_breaker"`
}

// MarshalJSON implements json.Marshaler.
func (q Quorum) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonQuorum{q.ExpectedVotes, q.TwoNode, q.WaitForAll, q.LastManStanding, duration(q.LMSWindow), q.TieBreaker})
}

// UnmarshalJSON implements json.Unmarshaler.
func (q *Quorum) UnmarshalJSON(b []byte) error {
	var j jsonQuorum
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*q = Quorum{j.ExpectedVotes, j.TwoNode, j.WaitForAll, j.LastManStanding, time.Duration(j.LMSWindow), j.TieBreaker}
	return nil
}

type jsonNode struct {
	Number uint16            `json:"number"`
	UUID   uuid.UUID         `json:"uuid"`
	Name   string            `json:"name"`
	Votes  uint32            `json:"votes"`
	Links  []Link            `json:"links,omitempty"`
	Attrs  map[string]string `json:"attrs,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (n Node) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonNode(n))
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Node) UnmarshalJSON(b []byte) error {
	var j jsonNode
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*n = Node{j.Number, j.UUID, j.Name, j.Votes, j.Links, nilIfEmpty(j.Attrs)}
	if len(n.Links) == 0 {
		n.Links = nil
	}
	return nil
}

type jsonLink struct {
	Interface string `json:"interface"`
	MAC       string `json:"mac"`
}

// MarshalJSON implements json.Marshaler.
func (l Link) MarshalJSON() ([]byte, error) {
	m := ""
	if len(l.MAC) > 0 {
		m = l.MAC.String()
	}
	return json.Marshal(jsonLink{l.Interface, m})
}

// UnmarshalJSON implements json.Unmarshaler.
func (l *Link) UnmarshalJSON(b []byte) error {
	var j jsonLink
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*l = Link{Interface: j.Interface}
	if j.MAC != "" {
		m, err := net.ParseMAC(j.MAC)
		if err != nil {
			return fmt.Errorf("link %q: bad MAC address %q", j.Interface, j.MAC)
		}
		l.MAC = m
	}
	return nil
}

// duration is a time.Duration written as a string such as "150ms".
type duration time.Duration

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q", b)
	}
	*d = duration(v)
	return nil
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

var (
	_ json.Marshaler   = Cluster{}
	_ json.Unmarshaler = (*Cluster)(nil)
	_ json.Marshaler   = Node{}
	_ json.Unmarshaler = (*Node)(nil)
)
