package groups

import (
	"cmp"
	"errors"
	"fmt"

	"github.com/concord-ha/concord/lib/core/membership"
)

// NodeID and ViewID are membership's.
type (
	NodeID = membership.NodeID
	ViewID = membership.ViewID
)

// Member is a process in a group: its node, the node's incarnation (so a
// restarted daemon's clients never alias its previous life's), the local
// client id the daemon gave its session, and the process's pid and uid.
type Member struct {
	Node   NodeID
	Inc    uint64
	Client uint32
	PID    uint32
	UID    uint32
}

func (m Member) String() string { return fmt.Sprintf("%d/%d(pid %d)", m.Node, m.Client, m.PID) }

func (m Member) key() mkey { return mkey{m.Node, m.Inc, m.Client} }

type mkey struct {
	node   NodeID
	inc    uint64
	client uint32
}

func compareMembers(a, b Member) int {
	return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Inc, b.Inc), cmp.Compare(a.Client, b.Client))
}

// GroupViewID names a group view. In a settled node view (the state
// exchange of that view is complete) View is the node view and N counts the
// group's changes since; Branch is 0. Views made while the node view is not
// settled (a node was lost, or the state exchange was cut short by another
// view change) may differ between sides of a partition, so they carry a
// Branch hashed from the previous group view and the change: equal ids
// still mean equal views.
type GroupViewID struct {
	View   ViewID
	N      uint32
	Branch uint64
}

func (g GroupViewID) String() string {
	if g.Branch != 0 {
		return fmt.Sprintf("%s/%d~%04x", g.View, g.N, g.Branch&0xffff)
	}
	return fmt.Sprintf("%s/%d", g.View, g.N)
}

// Order is a message's delivery order.
type Order uint8

// Orders. Agreed: one total order per group. Safe: also delivered only
// once every member node of the group view holds the message.
const (
	Agreed Order = iota
	Safe
)

// ChangeKind says why a member entered or left a group view.
type ChangeKind uint8

// Change kinds.
const (
	Joined  ChangeKind = iota + 1 // the member joined
	Left                          // the member left
	Closed                        // its session closed
	Died                          // its process died
	Removed                       // removed by the daemon (its queue passed the bound)
	Lost                          // lost with its node (crashed, partitioned away, restarted)
	Merged                        // came in with its node at a merge or node join
)

var kindNames = [...]string{"", "joined", "left", "closed", "died", "removed", "lost", "merged"}

func (k ChangeKind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Change is one member's entry into or exit from a group view.
type Change struct {
	Member Member
	Kind   ChangeKind
	Reason string
}

// Part is one group's message in a transaction.
type Part struct {
	Group   string
	Payload []byte
}

// EventKind is the kind of an Event.
type EventKind uint8

// Event kinds.
const (
	EvView       EventKind = iota + 1 // a new group view (View, Members, Changes)
	EvMessage                         // a message (From, Order, Payload; Direct for 1-1)
	EvTx                              // a transaction's parts for this client's groups (From, Parts, Tx)
	EvBarrier                         // a barrier released (Members) or failed (Reason)
	EvSendFailed                      // a message or transaction of this client was not delivered (Reason)
	EvWritable                        // the client may send again after ErrWouldBlock
)

// Event is an event for one local client, in the order the client must
// see it.
type Event struct {
	Client  uint32
	Kind    EventKind
	Group   string
	View    GroupViewID
	Members []Member // EvView: the new view; EvBarrier: released set
	Changes []Change // EvView
	From    Member
	Order   Order
	Direct  bool // EvMessage: sent 1-1 to this client
	Payload []byte
	Parts   []Part
	Tx      uint64 // EvTx: sender's transaction number
	Barrier string
	Failed  bool   // EvBarrier
	Reason  string // EvBarrier failed, EvSendFailed
	ID      MsgID  // EvMessage, EvTx, EvSendFailed: the message's id
}

// Ready is a batch of output: messages for membership's total order
// (Broadcast to all nodes, group ""), then events for local clients, and
// for observers every group view made, in order, local members or not.
type Ready struct {
	Broadcast []Msg
	Events    []Event
	Views     []GroupView
}

// GroupView is a group view made on this node, for observers (the
// daemon's D-Bus objects): the group's view id, members and the changes
// from its previous view. No members: the group has none left.
type GroupView struct {
	Group   string
	View    GroupViewID
	Members []Member
	Changes []Change
}

// Errors for local client calls.
var (
	ErrNoSession  = errors.New("groups: no such session")
	ErrBadGroup   = errors.New("groups: bad group name")
	ErrMember     = errors.New("groups: already a member or joining")
	ErrNotMember  = errors.New("groups: not a member of the group")
	ErrWouldBlock = errors.New("groups: too many messages in flight; wait for EvWritable")
	ErrTooLarge   = errors.New("groups: payload too large")
	ErrNoTx       = errors.New("groups: no transaction open")
	ErrBadMsg     = errors.New("groups: malformed message")
)

// MaxName bounds group and barrier names.
const MaxName = 255

// Config configures a Core.
type Config struct {
	Node        NodeID
	Incarnation uint64 // the membership incarnation of this daemon
	// MaxQueue bounds events queued for a client and not yet consumed; past
	// it the client is removed from its groups. Default 4096.
	MaxQueue int
	// MaxInFlight bounds a client's messages sent and not yet delivered
	// back; past it Send returns ErrWouldBlock. Default 256.
	MaxInFlight int
	// MaxPayload bounds a message's payload (a transaction's total). Default 65536.
	MaxPayload int
}
