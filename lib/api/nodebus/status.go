package nodebus

import "fmt"

// Status is everything `concordctl status` shows; its JSON form is stable
// and only grows.
type Status struct {
	Version   string      `json:"version"`
	Cluster   ClusterInfo `json:"cluster"`
	LocalNode uint16      `json:"local_node"`
	LocalName string      `json:"local_name"`
	State     string      `json:"state"` // starting | joining | joined | leaving
	View      ViewInfo    `json:"view"`
	Quorum    QuorumInfo  `json:"quorum"`
	Nodes     []NodeInfo  `json:"nodes"`
	Config    ConfigInfo  `json:"config"`
	// Heartbeats is how heartbeats use the links: "alternating" (one link
	// each, in turn), "on every link (why)", or "on one link".
	Heartbeats string `json:"heartbeats"`
	// OtherClusters are the sources of frames of another cluster id heard
	// on this node's links: two clusters share a link.
	OtherClusters []OtherCluster `json:"other_clusters,omitempty"`
	// LinkStats is filled by `concordctl status --links` only, from
	// GetLinkStats; the daemon's status leaves it out.
	LinkStats []LinkStat `json:"link_stats,omitempty"`
	// LocalLinks are this node's heartbeat NICs, in link order.
	LocalLinks []LocalLink `json:"local_links,omitempty"`
	// Waiting says what the node waits for, "" when nothing: "a working
	// heartbeat link: hb0 no-carrier, hb1 missing" (READY is not sent to
	// systemd and the replicated configuration is not bootstrapped until
	// one works).
	Waiting string `json:"waiting,omitempty"`
}

// LocalLink is one heartbeat link of this node, as its NIC is.
type LocalLink struct {
	Index     uint8  `json:"index"`
	Interface string `json:"interface"` // the NIC used: this node's cluster.conf names it
	MAC       string `json:"mac"`       // the NIC's MAC; "" while there is no such NIC
	// State: up | no-carrier | admin-down | oper-down | missing | renamed
	// (frames cannot flow) | wrong-mac (up, but the configuration gives
	// this link another MAC, so frames sent to this node alone miss it) |
	// no-socket (up, but the link cannot be opened).
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"` // what is wrong, for an admin; "" when up
}

// ConfigInfo is the state of the replicated configuration here.
type ConfigInfo struct {
	Leader uint16 `json:"leader"` // the node ordering changes; 0: none known
	Index  uint64 `json:"index"`  // the last change applied here
}

// ClusterInfo names the cluster.
type ClusterInfo struct {
	Name string `json:"name"`
	ID   uint32 `json:"id"`
}

// ViewInfo is the installed membership view.
type ViewInfo struct {
	Seq         uint64   `json:"seq"`
	Coordinator uint16   `json:"coordinator"`
	Members     []uint16 `json:"members"`
	// ID is "SEQ.COORDINATOR", one per view: a sequence number alone can
	// repeat (a node left through a singleton view 3.2 can later install
	// 3.1 of all nodes), the pair cannot, since a coordinator never
	// reuses a sequence number it has seen (it keeps the highest on disk).
	ID string `json:"id"`
}

// ViewID is the identifier of the view with seq and coordinator.
func ViewID(seq uint64, coordinator uint16) string { return fmt.Sprintf("%d.%d", seq, coordinator) }

// QuorumInfo is the quorum state of the view.
type QuorumInfo struct {
	Quorate       bool   `json:"quorate"`
	TotalVotes    uint32 `json:"total_votes"`
	ExpectedVotes uint32 `json:"expected_votes"`
	Quorum        uint32 `json:"quorum"`
	Reason        string `json:"reason"`
}

// NodeInfo is one configured node as this node sees it.
type NodeInfo struct {
	Number uint16            `json:"number"`
	Name   string            `json:"name"`
	UUID   string            `json:"uuid"`
	State  string            `json:"state"` // configured | up | joined | leaving | down
	Votes  uint32            `json:"votes"`
	InView bool              `json:"in_view"`
	Links  []LinkInfo        `json:"links"`
	Attrs  map[string]string `json:"attributes,omitempty"`
	// AuthFailures counts the frames from this node's link MACs that
	// failed authentication here, usually because its authkey differs
	// from this node's; LastAuthFailure is the time of the last one
	// (RFC 3339), "" if none. AuthFailing: none of its frames
	// authenticated since the last failure.
	AuthFailures    uint64 `json:"auth_failures,omitempty"`
	LastAuthFailure string `json:"last_auth_failure,omitempty"`
	AuthFailing     bool   `json:"auth_failing,omitempty"`
}

// LinkInfo is one heartbeat link of a node, as this node hears it.
type LinkInfo struct {
	Index     uint8  `json:"index"`
	Interface string `json:"interface"`
	MAC       string `json:"mac"`
	// State: for a peer, up | down (frames heard within link_dead_time
	// or not); for this node, its LocalLink's state.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"` // this node's links only: what is wrong
}
