package groupclient

import (
	"fmt"

	"github.com/concord-ha/concord/lib/api/groupwire"
)

// Kind is what an event is.
type Kind uint8

// Kinds of events.
const (
	ViewChange  Kind = iota + 1 // a group's new view: Group, View, Members, Changes
	Message                     // Group, View, From, Order, Direct, ID, Payload
	Transaction                 // From, Order, Tx, ID, Parts (this client's share)
	BarrierDone                 // Group, Barrier, Failed, Reason, Members (released together)
	SendFailed                  // Tag, ID, Err (an *Error: code and reason)
)

func (k Kind) String() string {
	switch k {
	case ViewChange:
		return "view"
	case Message:
		return "message"
	case Transaction:
		return "transaction"
	case BarrierDone:
		return "barrier-done"
	case SendFailed:
		return "send-failed"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Event is one thing the daemon delivered to this session, in the order of
// the groups it concerns. Byte slices belong to the caller.
type Event struct {
	Kind    Kind
	Group   string
	View    groupwire.ViewID
	Members []groupwire.Member
	Changes []groupwire.Change
	From    groupwire.Member
	Order   groupwire.Order
	Direct  bool // sent 1-1 to this client
	ID      groupwire.MsgID
	Payload []byte
	Tx      uint64
	Parts   []groupwire.Part
	Barrier string
	Failed  bool
	Reason  string // a failed barrier's
	Tag     uint32 // send-failed: the tag Send, SendTo or Commit returned
	Err     error  // send-failed
}

func eventOf(r *groupwire.Record) Event {
	e := Event{Group: r.Group, View: r.View, Members: r.Members, Changes: r.Changes, From: r.From,
		Order: r.Order, Direct: r.Direct, ID: r.ID, Payload: r.Payload, Tx: r.Tx, Parts: r.Parts}
	switch r.Type {
	case groupwire.TView:
		e.Kind = ViewChange
	case groupwire.TMessage:
		e.Kind = Message
	case groupwire.TTx:
		e.Kind = Transaction
	case groupwire.TBarrierDone:
		e.Kind, e.Barrier, e.Failed, e.Reason = BarrierDone, r.Barrier, r.Failed, r.Text
	case groupwire.TSendFailed:
		e.Kind, e.Tag = SendFailed, r.Tag
		e.Err = &Error{Op: "send", Code: r.Code, Text: r.Text}
	}
	return e
}
