package groups

import "fmt"

// MsgKind is the kind of a message this layer broadcasts.
type MsgKind uint8

// Message kinds, all sent to every node through membership's total order.
const (
	MsgJoin    MsgKind = iota + 1 // Sender joins Group
	MsgLeave                      // Sender leaves Group
	MsgGone                       // Sender leaves every group (Change: closed, died, removed; Reason)
	MsgData                       // Payload to Group's members (Order)
	MsgDirect                     // Payload 1-1 to To, a member of Group
	MsgBarrier                    // Sender enters barrier Barrier of Group
	MsgTx                         // a transaction: Parts, delivered all or nothing (Tx, Order)
	MsgSync                       // state exchange for node view View: the sender's members and barrier entries
	msgKindEnd
)

var msgNames = [...]string{"", "join", "leave", "gone", "data", "direct", "barrier", "tx", "sync"}

func (k MsgKind) String() string {
	if k > 0 && k < msgKindEnd {
		return msgNames[k]
	}
	return fmt.Sprintf("msg(%d)", uint8(k))
}

// MsgID names a message: the sending node, its incarnation and a number
// that grows per sending Core.
type MsgID struct {
	Node NodeID
	Inc  uint64
	Seq  uint64
}

// Msg is what this layer broadcasts through membership, encoded with
// MarshalBinary.
type Msg struct {
	Kind    MsgKind
	ID      MsgID
	Sender  Member
	Group   string
	Order   Order
	To      Member
	Barrier string
	Payload []byte
	Parts   []Part
	Tx      uint64
	Change  ChangeKind // MsgGone
	Reason  string     // MsgGone
	View    ViewID     // MsgSync
	Sync    []SyncGroup
}

// SyncGroup is one group's share of a node's state in a MsgSync: its
// local members and which of them entered which open barrier.
type SyncGroup struct {
	Group    string
	Members  []Member
	Barriers []SyncBarrier
}

// SyncBarrier is a barrier's entered local members.
type SyncBarrier struct {
	Name    string
	Entered []Member
}

func (m *Msg) safe() bool {
	return (m.Kind == MsgData || m.Kind == MsgDirect || m.Kind == MsgTx) && m.Order == Safe
}

// check validates a message delivered from node from.
func (m *Msg) check(from NodeID) error {
	if m.Kind == 0 || m.Kind >= msgKindEnd {
		return fmt.Errorf("%w: unknown kind %d from node %d", ErrBadMsg, m.Kind, from)
	}
	if m.ID.Node != from {
		return fmt.Errorf("%w: %s from node %d names node %d as its sender", ErrBadMsg, m.Kind, from, m.ID.Node)
	}
	if m.Kind != MsgSync && m.Sender.Node != from {
		return fmt.Errorf("%w: %s from node %d for a member of node %d", ErrBadMsg, m.Kind, from, m.Sender.Node)
	}
	if m.Order > Safe {
		return fmt.Errorf("%w: %s from node %d with order %d", ErrBadMsg, m.Kind, from, m.Order)
	}
	switch m.Kind {
	case MsgJoin, MsgLeave, MsgData, MsgDirect, MsgBarrier:
		if !goodName(m.Group) {
			return fmt.Errorf("%w: %s from node %d with group name %q", ErrBadMsg, m.Kind, from, m.Group)
		}
	case MsgGone:
		if m.Change != Closed && m.Change != Died && m.Change != Removed {
			return fmt.Errorf("%w: gone from node %d with change %s", ErrBadMsg, from, m.Change)
		}
	case MsgTx:
		if len(m.Parts) == 0 {
			return fmt.Errorf("%w: empty transaction from node %d", ErrBadMsg, from)
		}
		for _, p := range m.Parts {
			if !goodName(p.Group) {
				return fmt.Errorf("%w: transaction from node %d with group name %q", ErrBadMsg, from, p.Group)
			}
		}
	case MsgSync:
		for _, g := range m.Sync {
			if !goodName(g.Group) {
				return fmt.Errorf("%w: sync from node %d with group name %q", ErrBadMsg, from, g.Group)
			}
			for _, x := range g.Members {
				if x.Node != from {
					return fmt.Errorf("%w: sync from node %d lists member %s of another node", ErrBadMsg, from, x)
				}
			}
		}
	}
	if m.Kind == MsgBarrier && !goodName(m.Barrier) {
		return fmt.Errorf("%w: barrier from node %d with name %q", ErrBadMsg, from, m.Barrier)
	}
	return nil
}

func goodName(s string) bool { return s != "" && len(s) <= MaxName }
