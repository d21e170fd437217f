package nodebus

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
}

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
	State     string `json:"state"` // up | down | local
}
