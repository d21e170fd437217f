package config

import (
	"net"
	"time"

	"github.com/google/uuid"
)

// Cluster is the whole static cluster configuration: what
// /etc/concord/cluster.conf holds and what the replicated store keeps.
type Cluster struct {
	Name string // cluster name, 1..32 chars of [a-zA-Z0-9_.-]
	ID   uint32 // cluster id carried in every frame; derived from Name when not set

	Totem   Timing
	Quorum  Quorum
	Options map[string]string // free-form cluster options (name=value)

	Nodes []Node // sorted by Number
}

// Timing holds the failure-detection and messaging timers.
type Timing struct {
	Tick              time.Duration // core tick, default 40ms or HeartbeatInterval if shorter
	HeartbeatInterval time.Duration // default 40ms
	DeadTime          time.Duration // no frame on any link for this long: node suspected; default 120ms
	LinkDeadTime      time.Duration // no frame on one link for this long: link down; default 160ms
	JoinTimeout       time.Duration // transition round timeout; default 100ms
}

// Quorum holds votequorum-style options.
type Quorum struct {
	ExpectedVotes   uint32 // 0 = sum of configured votes
	TwoNode         bool
	WaitForAll      bool // implied by TwoNode unless explicitly set false
	LastManStanding bool
	LMSWindow       time.Duration // default 10s
	TieBreaker      string        // "", "lowest", "highest" or a node number
}

// Node is one configured cluster member.
type Node struct {
	Number uint16    // 1..65535, unique
	UUID   uuid.UUID // unique
	Name   string    // unique host name
	Votes  uint32    // default 1
	Links  []Link
	Attrs  map[string]string // vendor data as name=value pairs
}

// Link is one heartbeat NIC of a node.
type Link struct {
	Interface string           // e.g. "hb0"
	MAC       net.HardwareAddr // the NIC's address
}
