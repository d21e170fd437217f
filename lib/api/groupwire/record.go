package groupwire

import (
	"fmt"
)

// Version is the protocol version this package speaks.
const Version = 1

// Limits.
const (
	MaxPacket     = 256 << 10 // bytes in one packet
	MaxPayload    = 64 << 10  // bytes of one message's payload
	MaxName       = 255       // bytes of a group or barrier name
	MaxClientName = 64        // bytes of hello's client name
	MaxText       = 1024      // bytes of a reply's text or a reason
	HeaderLen     = 12
)

// Type is a record's type.
type Type uint16

// Requests.
const (
	THello Type = iota + 1
	TJoin
	TLeave
	TSend
	TSendTo
	TBarrier
	TTxBegin
	TTxAdd
	TTxCommit
	TGroups
	TMembers
	TBye
	requestEnd
)

// Events and answers.
const (
	TWelcome Type = iota + 64
	TReply
	TView
	TMessage
	TTx
	TBarrierDone
	TSendFailed
	TCredit
	TGroupList
	TMemberList
	eventEnd
)

var typeNames = map[Type]string{
	THello: "hello", TJoin: "join", TLeave: "leave", TSend: "send", TSendTo: "send-to", TBarrier: "barrier",
	TTxBegin: "tx-begin", TTxAdd: "tx-add", TTxCommit: "tx-commit", TGroups: "groups", TMembers: "members", TBye: "bye",
	TWelcome: "welcome", TReply: "reply", TView: "view", TMessage: "message", TTx: "tx",
	TBarrierDone: "barrier-done", TSendFailed: "send-failed", TCredit: "credit", TGroupList: "group-list",
	TMemberList: "member-list",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type(%d)", uint16(t))
}

// IsRequest reports whether t is a record a client sends.
func (t Type) IsRequest() bool { return t >= THello && t < requestEnd }

// IsEvent reports whether t is a record the daemon sends.
func (t Type) IsEvent() bool { return t >= TWelcome && t < eventEnd }

// Code is a reply's or send failure's outcome.
type Code uint16

// Codes. The C library returns each as an errno: Invalid and BadName
// EINVAL, NotMember ENOTCONN, Already EALREADY, TooLarge EMSGSIZE,
// WouldBlock EAGAIN, NoTx EPROTO, Denied EACCES, BadVersion EPROTONOSUPPORT,
// Unavailable ESHUTDOWN, NotFound ENOENT.
const (
	OK          Code = iota
	Invalid          // malformed record, or a request out of place
	BadName          // group or barrier name empty, too long, or not UTF-8
	NotMember        // not a member of the group (or the 1-1 target is not)
	Already          // already a member of the group, or joining it
	TooLarge         // payload above the welcome's max payload
	WouldBlock       // no credit left: wait for a credit record
	NoTx             // tx-add or tx-commit with no transaction open
	Denied           // the configuration does not let this uid do that
	BadVersion       // no protocol version in common
	Unavailable      // the daemon is stopping, or has no cluster yet
	NotFound         // no such group (members)
	codeEnd
)

var codeNames = [...]string{"ok", "invalid", "bad name", "not a member", "already a member", "too large",
	"would block", "no transaction", "denied", "bad version", "unavailable", "not found"}

func (c Code) String() string {
	if c < codeEnd {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// Order is a message's delivery order.
type Order uint8

// Orders.
const (
	Agreed Order = 0
	Safe   Order = 1
)

// ChangeKind says why a member entered or left a view.
type ChangeKind uint8

// Change kinds.
const (
	Joined ChangeKind = iota + 1
	Left
	Closed
	Died
	Removed
	Lost
	Merged
	changeEnd
)

var changeNames = [...]string{"", "joined", "left", "closed", "died", "removed", "lost", "merged"}

func (k ChangeKind) String() string {
	if k > 0 && k < changeEnd {
		return changeNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Member is a process in a group.
type Member struct {
	Node   uint16
	Inc    uint64
	Client uint32
	PID    uint32
	UID    uint32
}

func (m Member) String() string { return fmt.Sprintf("%d/%d(pid %d)", m.Node, m.Client, m.PID) }

// ViewID names a group view (see lib/core/groups.GroupViewID).
type ViewID struct {
	Seq    uint64
	Coord  uint16
	N      uint32
	Branch uint64
}

func (v ViewID) String() string {
	if v.Branch != 0 {
		return fmt.Sprintf("%d.%d/%d~%04x", v.Seq, v.Coord, v.N, v.Branch&0xffff)
	}
	return fmt.Sprintf("%d.%d/%d", v.Seq, v.Coord, v.N)
}

// MsgID names a message cluster-wide.
type MsgID struct {
	Node uint16
	Inc  uint64
	Seq  uint64
}

// Change is one member's entry into or exit from a view.
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

// GroupInfo is one line of a group-list.
type GroupInfo struct {
	Group   string
	View    ViewID
	Members uint32
}

// Record is one record of either direction; Type says which fields count.
// Decoded byte slices (Payload, Parts' payloads) alias the packet.
type Record struct {
	Type Type
	Tag  uint32

	Version    uint16 // hello, welcome
	Name       string // hello: client name; welcome: cluster name
	Self       Member // welcome
	Window     uint32 // welcome
	MaxPayload uint32 // welcome
	MaxQueue   uint32 // welcome

	Group   string // join, leave, send, send-to, barrier, tx-add, members, view, message, barrier-done, member-list
	Barrier string // barrier, barrier-done
	Order   Order  // send, tx-commit, message, tx
	To      Member // send-to
	Payload []byte // send, send-to, tx-add, message

	Code    Code   // reply, send-failed
	Text    string // reply text; send-failed and barrier-done reason
	View    ViewID // view, message, member-list
	Members []Member
	Changes []Change
	From    Member // message, tx
	Direct  bool   // message
	ID      MsgID  // message, tx, send-failed
	Tx      uint64 // tx
	Parts   []Part // tx
	Failed  bool   // barrier-done
	Count   uint32 // credit
	Groups  []GroupInfo
}
