package membership

import (
	"errors"
	"fmt"
	"slices"
)

// NodeID is a node number, 1..65535; 0 means broadcast or unset.
type NodeID uint16

// ViewID names a view. Seq strictly grows along each node's view history;
// (Seq, Coord) is unique because a coordinator installs at most one view per Seq.
type ViewID struct {
	Seq   uint64
	Coord NodeID
}

func (v ViewID) String() string { return fmt.Sprintf("%d.%d", v.Seq, v.Coord) }

// Less orders view ids by Seq, then Coord.
func (v ViewID) Less(w ViewID) bool {
	return v.Seq < w.Seq || (v.Seq == w.Seq && v.Coord < w.Coord)
}

// View is an agreed membership view.
type View struct {
	ID      ViewID
	Members []NodeID            // sorted
	Groups  map[string][]NodeID // group name -> sorted member nodes
}

// Contains reports whether id is a member of v.
func (v *View) Contains(id NodeID) bool {
	_, ok := slices.BinarySearch(v.Members, id)
	return ok
}

// Clone returns a deep copy of v.
func (v *View) Clone() *View {
	c := &View{ID: v.ID, Members: slices.Clone(v.Members), Groups: make(map[string][]NodeID, len(v.Groups))}
	for g, ms := range v.Groups {
		c.Groups[g] = slices.Clone(ms)
	}
	return c
}

// Logger receives one line per notable protocol step. Every view install is
// one Info line in a fixed grammar:
//
//	node <id> installed view <seq>.<coord> members [<id> ...] (<reason>)
//
// where reason is the Event.Reason: "boot", "resync", "merged",
// "joined <ids>", "suspected <ids>", "left <ids>" (several joined by "; "),
// or "excluded by <id>". Example:
// "node 2 installed view 7.1 members [1 2 3] (suspected 4)".
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
	Debugf(format string, args ...any)
}

// Config configures a Node.
type Config struct {
	ID NodeID
	// Incarnation must be strictly greater at each start of the daemon
	// (the daemon passes its start time in ns).
	Incarnation uint64
	// Peers are all configured nodes, self included. See SetPeers.
	Peers []NodeID
	// HeartbeatTicks is the heartbeat period; default 3.
	HeartbeatTicks int
	// Detector decides liveness; nil means NewTimeoutDetector(15).
	Detector Detector
	// TransitionTicks is how long a transition round waits for replies
	// before restarting without the silent nodes; default 5.
	TransitionTicks int
	// MaxPayload bounds Broadcast and Send payloads; default 1200.
	MaxPayload int
	// MaxQueue bounds the send queue (Broadcast, group changes and Send
	// each); default 1024.
	MaxQueue int
	// MinSeq is a floor for the Seq of views this node coordinates. A
	// daemon that persists the highest view Seq it has seen passes it here,
	// so a restarted node never reuses a ViewID of its previous life even
	// when every other witness of that view is gone.
	MinSeq uint64
	// Logger receives log lines; nil discards them.
	Logger Logger
}

// Detector is a swappable failure detector.
type Detector interface {
	// Heard records that a message from peer arrived at tick.
	Heard(from NodeID, tick uint64)
	// Alive reports whether peer counts as alive at tick.
	Alive(peer NodeID, tick uint64) bool
	// Forget drops what is known about peer (it restarted or was removed).
	Forget(peer NodeID)
}

// Errors returned by the Node; callers may compare with errors.Is.
var (
	ErrQueueFull       = errors.New("membership: send queue full")
	ErrPayloadTooLarge = errors.New("membership: payload too large")
	ErrLeaving         = errors.New("membership: node is leaving")
	ErrNotMember       = errors.New("membership: destination is not in the current view")
	ErrNotPeer         = errors.New("membership: message from a node that is not a configured peer")
	ErrBadGroup        = errors.New("membership: bad group name")
	ErrMalformed       = errors.New("membership: malformed message")
)

// MaxGroupName is the longest group name accepted.
const MaxGroupName = 255

// Ready is a batch of output. Messages with To == 0 go to all peers.
// Events are in the order they happened: view installs and deliveries
// interleaved.
type Ready struct {
	Messages []Message
	Events   []Event
}

// Event is either a view install (View set, Reason like "joined 4",
// "suspected 2", "left 3", "merged"; see Logger for the full list) or a
// delivery. Payloads are shared, not copied: do not modify them.
type Event struct {
	View     *View
	Delivery *Delivery
	Reason   string
	// Survivors, for a view install: the nodes that pass with this one
	// from its previous view (they finished it with the same cut), self
	// included. A member of the new view outside it comes from another
	// view and did not see this node's last deliveries.
	Survivors []NodeID
}

// Delivery is a message delivered to this node.
type Delivery struct {
	Group   string
	From    NodeID
	Seq     uint64 // position in the view's total order (Unicast: the sender's FIFO number)
	Payload []byte
	Unicast bool
	// Unstable: delivered while finishing a view, beyond its stable
	// point; a node that left that view may not hold it (process groups
	// deliver their safe messages only after such nodes' members are gone).
	Unstable bool
}

// NodeState is a node's state as seen from this node.
type NodeState uint8

// Node states.
const (
	StateConfigured NodeState = iota // configured, never heard
	StateUp                          // heard but not in our view
	StateJoined                      // in our view
	StateLeaving                     // announced a graceful leave, still in our view
	StateDown                        // was heard or in a view, now not alive and not in our view
)

func (s NodeState) String() string {
	switch s {
	case StateConfigured:
		return "configured"
	case StateUp:
		return "up"
	case StateJoined:
		return "joined"
	case StateLeaving:
		return "leaving"
	case StateDown:
		return "down"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// PeerStatus is what this node knows about one configured node.
type PeerStatus struct {
	ID          NodeID
	State       NodeState
	Incarnation uint64 // last incarnation heard, 0 if never
	LastHeard   uint64 // tick of the last message, 0 if never
}

// Counters count protocol events since New.
type Counters struct {
	ViewsInstalled  uint64
	Transitions     uint64 // rounds this node started as coordinator
	RoundRestarts   uint64 // rounds restarted with a reduced set
	Failures        uint64 // members removed as suspected
	Leaves          uint64 // members removed after a graceful leave
	Joins           uint64 // members added
	Broadcasts      uint64 // messages accepted by Broadcast
	Ordered         uint64 // messages this node sequenced
	Delivered       uint64 // group deliveries to this node
	UnicastSent     uint64
	UnicastReceived uint64
	Retransmits     uint64
	Nacks           uint64
	Dropped         uint64 // unicast or queued messages dropped because the peer left or the sender left
}

// Status is a snapshot of the node.
type Status struct {
	ID           NodeID
	Incarnation  uint64
	Tick         uint64
	View         View
	Coordinator  NodeID // coordinator (and sequencer) of the current view
	InTransition bool   // a transition round is under way (this node coordinates or follows it)
	Leaving      bool
	Nodes        []PeerStatus // sorted by ID, self included
	Counters     Counters
	QueueLen     int // messages queued and not yet ordered
	// MaxSeq is the highest view Seq this node has seen. A daemon that
	// persists it and passes it back as Config.MinSeq after a restart keeps
	// ViewIDs unique even when the whole cluster restarts.
	MaxSeq uint64
}

// NodeState returns the state of id as a word (configured, up, joined,
// leaving, down); "" if id is not configured.
func (s *Status) NodeState(id NodeID) string {
	for _, p := range s.Nodes {
		if p.ID == id {
			return p.State.String()
		}
	}
	return ""
}
