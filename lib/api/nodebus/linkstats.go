package nodebus

// LinkStat is what this node knows of one peer on one of its links, as
// GetLinkStats returns it and `concordctl status --links` shows it.
type LinkStat struct {
	// Node is the peer's number; 0 for frames from a source address that
	// is no configured node's (Name is then "").
	Node      uint16 `json:"node"`
	Name      string `json:"name"`
	Link      uint8  `json:"link"`
	Interface string `json:"interface"` // this node's NIC of the link
	State     string `json:"state"`     // up | down; "" for node 0
	// FramesIn are the authentic frames from the peer on this link,
	// copies from other links included; FramesOut are the frames this
	// node sent on the link that the peer receives: those to every node
	// and those to it.
	FramesIn  uint64 `json:"frames_in"`
	FramesOut uint64 `json:"frames_out"`
	// Drops are the frames from the peer's address on this link that were
	// dropped, by reason (auth, cluster, short, malformed, stale,
	// unknown_node, unknown_kind, rejected, backlog).
	Drops map[string]uint64 `json:"drops,omitempty"`
	// LastHeardMs is how long ago the last authentic frame came, in
	// milliseconds (to the daemon's tick); -1: never.
	LastHeardMs int64 `json:"last_heard_ms"`
	// RTTMicros is the round-trip time of the last echo on this link, in
	// microseconds, daemon to daemon; -1: none answered lately.
	RTTMicros int64 `json:"rtt_us"`
}

// TotalDrops is the sum of the drops of every reason.
func (l LinkStat) TotalDrops() uint64 {
	var n uint64
	for _, v := range l.Drops {
		n += v
	}
	return n
}

// OtherCluster is a source of frames of another cluster id on a link of
// this node.
type OtherCluster struct {
	ClusterID uint32 `json:"cluster_id"`
	MAC       string `json:"mac"`
	Link      uint8  `json:"link"`
	Interface string `json:"interface"`
	Frames    uint64 `json:"frames"`
	Last      string `json:"last"` // RFC 3339
	// AlsoMember is the node of this cluster's view whose address sends
	// them: that host is a member of both clusters (another cluster
	// context), so they are expected, not a fault.
	AlsoMember string `json:"also_member,omitempty"`
}

// LinkStatRow is a LinkStat as GetLinkStats sends it on D-Bus:
// (qsyssttxxa{st}).
type LinkStatRow struct {
	Node      uint16
	Name      string
	Link      uint8
	Interface string
	State     string
	FramesIn  uint64
	FramesOut uint64
	LastHeard int64
	RTT       int64
	Drops     map[string]uint64
}

// Row is l as a D-Bus row.
func (l LinkStat) Row() LinkStatRow {
	drops := l.Drops
	if drops == nil {
		drops = map[string]uint64{}
	}
	return LinkStatRow{l.Node, l.Name, l.Link, l.Interface, l.State, l.FramesIn, l.FramesOut, l.LastHeardMs, l.RTTMicros, drops}
}

// LinkStat is r as a LinkStat.
func (r LinkStatRow) LinkStat() LinkStat {
	l := LinkStat{Node: r.Node, Name: r.Name, Link: r.Link, Interface: r.Interface, State: r.State,
		FramesIn: r.FramesIn, FramesOut: r.FramesOut, LastHeardMs: r.LastHeard, RTTMicros: r.RTT}
	if len(r.Drops) > 0 {
		l.Drops = r.Drops
	}
	return l
}

// LinkStats is every peer's statistics on every link, from GetLinkStats.
func (c *Client) LinkStats() ([]LinkStat, error) {
	var rows []LinkStatRow
	if err := c.call("GetLinkStats").Store(&rows); err != nil {
		return nil, callErr(err, false)
	}
	out := make([]LinkStat, len(rows))
	for i, r := range rows {
		out[i] = r.LinkStat()
	}
	return out, nil
}
