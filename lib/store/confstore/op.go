package confstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/concord-ha/concord/lib/api/config"
)

// OpKind names a configuration change.
type OpKind uint8

// The configuration changes.
const (
	AddNode    OpKind = iota + 1 // add Op.Node; it becomes a raft voter
	DeleteNode                   // delete node Op.Number; it stops being a voter
	EditNode                     // replace node Op.Number by Op.Node (same number)
	SetOption                    // set cluster option Op.Key to Op.Value; "" removes it
	SetQuorum                    // set [quorum] setting Op.Key to Op.Value, written as in cluster.conf
	ReplicaOut                   // take node Op.Number out of the Raft voters; the node list is unchanged
	ReplicaIn                    // make node Op.Number a Raft voter again, replicated from scratch
)

func (k OpKind) String() string {
	switch k {
	case AddNode:
		return "add node"
	case DeleteNode:
		return "delete node"
	case EditNode:
		return "edit node"
	case SetOption:
		return "set option"
	case SetQuorum:
		return "set quorum"
	case ReplicaOut:
		return "replica out"
	case ReplicaIn:
		return "replica in"
	}
	return fmt.Sprintf("op kind %d", uint8(k))
}

// Op is one configuration change, carried through the raft log.
type Op struct {
	Kind   OpKind
	Node   config.Node // AddNode, EditNode: the whole new node
	Number uint16      // DeleteNode, EditNode: the node changed
	Key    string      // SetOption, SetQuorum
	Value  string      // SetOption: empty removes the option; SetQuorum
	ReqID  uint64      // set by Propose; unique in the cluster
	Origin uint16      // the proposing node, set by Propose
}

func (o Op) String() string {
	switch o.Kind {
	case AddNode:
		return fmt.Sprintf("add node %d (%s)", o.Node.Number, o.Node.Name)
	case DeleteNode:
		return fmt.Sprintf("delete node %d", o.Number)
	case EditNode:
		return fmt.Sprintf("edit node %d (%s)", o.Number, o.Node.Name)
	case SetOption:
		if o.Value == "" {
			return fmt.Sprintf("remove option %s", o.Key)
		}
		return fmt.Sprintf("set option %s=%s", o.Key, o.Value)
	case SetQuorum:
		return fmt.Sprintf("set quorum %s=%s", o.Key, o.Value)
	case ReplicaOut:
		return fmt.Sprintf("take node %d's replica out", o.Number)
	case ReplicaIn:
		return fmt.Sprintf("take node %d's replica back in", o.Number)
	}
	return o.Kind.String()
}

// ErrRejected is wrapped by every error that apply-time validation reports.
var ErrRejected = errors.New("confstore: change rejected")

type rejectError struct{ msg string }

func (e *rejectError) Error() string { return e.msg }
func (e *rejectError) Unwrap() error { return ErrRejected }

func reject(op Op, format string, a ...any) error {
	return &rejectError{"confstore: " + op.String() + ": " + fmt.Sprintf(format, a...)}
}

// Entry data starts with a tag byte; the rest is JSON.
const (
	tagOp   = 'o' // an Op
	tagInit = 'i' // a state: the founding configuration, first applied one wins
)

func encodeOp(op Op) []byte {
	b, err := json.Marshal(op)
	if err != nil {
		panic(fmt.Sprintf("confstore: encode op: %v", err)) // plain data, cannot fail
	}
	return append([]byte{tagOp}, b...)
}

func decodeOp(b []byte) (Op, error) {
	var op Op
	if len(b) == 0 || b[0] != tagOp {
		return op, fmt.Errorf("not an op (tag %v)", firstByte(b))
	}
	if err := json.Unmarshal(b[1:], &op); err != nil {
		return op, fmt.Errorf("op: %v", err)
	}
	return op, nil
}

// normalOp is op with its node in the clones' normal form.
func normalOp(op Op) Op {
	op.Node = *cloneNode(&op.Node)
	return op
}

// maxRecent bounds the replicated list of applied ReqIDs used to drop
// retried proposals that were already applied. Retries stop 100 ticks
// (10 s) after a proposal, so this covers 64 changes in that window, and
// keeps snapshots small enough for the daemon's frames.
const maxRecent = 64

// state is the replicated state machine: the configuration plus the
// bookkeeping that must be identical on every member.
type state struct {
	Sealed  bool // a founding configuration (tagInit) has been applied
	Cluster config.Cluster
	Recent  []uint64 // ReqIDs applied, oldest first

	seen map[uint64]bool
}

// wireState is the JSON form of state in snapshots and init entries.
type wireState struct {
	Version int             `json:"version"`
	Sealed  bool            `json:"sealed"`
	Cluster *config.Cluster `json:"cluster,omitempty"`
	Recent  []uint64        `json:"recent,omitempty"`
}

func (s *state) encode() []byte {
	w := wireState{Version: 1, Sealed: s.Sealed, Recent: s.Recent}
	if s.Cluster.Name != "" || len(s.Cluster.Nodes) > 0 {
		c := cloneCluster(&s.Cluster)
		w.Cluster = c
	}
	b, err := json.Marshal(w)
	if err != nil {
		panic(fmt.Sprintf("confstore: encode state: %v", err)) // plain data, cannot fail
	}
	return b
}

func decodeState(b []byte) (*state, error) {
	var w wireState
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	if w.Version != 1 {
		return nil, fmt.Errorf("state version %d, want 1", w.Version)
	}
	s := &state{Sealed: w.Sealed, Recent: w.Recent}
	if w.Cluster != nil {
		s.Cluster = *w.Cluster
	}
	s.index()
	return s, nil
}

func (s *state) index() {
	s.seen = make(map[uint64]bool, len(s.Recent))
	for _, id := range s.Recent {
		s.seen[id] = true
	}
}

func (s *state) clone() *state {
	c := &state{Sealed: s.Sealed, Cluster: *cloneCluster(&s.Cluster), Recent: slices.Clone(s.Recent)}
	c.index()
	return c
}

func (s *state) remember(id uint64) {
	if id == 0 {
		return
	}
	s.Recent = append(s.Recent, id)
	s.seen[id] = true
	if len(s.Recent) > maxRecent {
		delete(s.seen, s.Recent[0])
		s.Recent = slices.Delete(s.Recent, 0, 1)
	}
}

// apply validates op against s and, if valid, changes s. It is deterministic:
// every member computes the same outcome from the same state and op.
//
// The change is made on a copy, and the copy must pass config's Validate,
// the same check cluster.conf passes: the store refuses exactly what the
// file would refuse, in the same words. Node changes are checked against
// the quorum settings too, or a two_node cluster would silently gain a
// third node that the quorum rules cannot count.
func (s *state) apply(op Op) error {
	if !s.Sealed {
		return reject(op, "the cluster configuration is not initialized yet")
	}
	if op.Kind == ReplicaOut || op.Kind == ReplicaIn {
		// Only Raft's voters change (see Store.apply); the node must exist.
		if findNode(&s.Cluster, op.Number) == nil {
			return reject(op, "no node %d", op.Number)
		}
		return nil
	}
	next := cloneCluster(&s.Cluster)
	if err := applyTo(next, op); err != nil {
		return err
	}
	if err := next.Validate(); err != nil {
		msg := strings.TrimPrefix(err.Error(), "config: ")
		if config.IsQuorumError(err) && (op.Kind == AddNode || op.Kind == EditNode || op.Kind == DeleteNode) {
			msg += "; " + config.QuorumHint
		}
		return reject(op, "%s", msg)
	}
	s.Cluster = *next
	return nil
}

// applyTo makes op's change to c, a copy, checking only what Validate
// cannot see: that the node changed exists, is not the last, keeps its
// number.
func applyTo(c *config.Cluster, op Op) error {
	switch op.Kind {
	case AddNode:
		// Stable, as Parse sorts: a clash is blamed on the node added.
		c.Nodes = append(c.Nodes, *cloneNode(&op.Node))
		slices.SortStableFunc(c.Nodes, func(a, b config.Node) int { return int(a.Number) - int(b.Number) })
	case DeleteNode:
		i := slices.IndexFunc(c.Nodes, func(n config.Node) bool { return n.Number == op.Number })
		if i < 0 {
			return reject(op, "no node %d", op.Number)
		}
		if len(c.Nodes) == 1 {
			return reject(op, "node %d (%s) is the last node", op.Number, c.Nodes[i].Name)
		}
		c.Nodes = slices.Delete(c.Nodes, i, i+1)
	case EditNode:
		i := slices.IndexFunc(c.Nodes, func(n config.Node) bool { return n.Number == op.Number })
		if i < 0 {
			return reject(op, "no node %d", op.Number)
		}
		n := editedNode(op)
		if n.Number != op.Number {
			return reject(op, "cannot renumber node %d to %d; delete and add it instead", op.Number, n.Number)
		}
		c.Nodes[i] = *cloneNode(&n)
	case SetOption:
		// Checked here too: removing an option whose name is invalid
		// would otherwise pass as a change of nothing.
		if err := config.CheckOption(op.Key, op.Value); err != nil {
			return reject(op, "%s", strings.TrimPrefix(err.Error(), "config: "))
		}
		if op.Value == "" {
			delete(c.Options, op.Key)
			if len(c.Options) == 0 {
				c.Options = nil
			}
			break
		}
		if c.Options == nil {
			c.Options = map[string]string{}
		}
		c.Options[op.Key] = op.Value
	case SetQuorum:
		if err := c.SetQuorum(op.Key, op.Value); err != nil {
			return reject(op, "%s", strings.TrimPrefix(err.Error(), "config: "))
		}
	default:
		return reject(op, "unknown operation kind %d", uint8(op.Kind))
	}
	return nil
}

// editedNode is the node an EditNode op leaves: number 0 keeps the number.
func editedNode(op Op) config.Node {
	n := op.Node
	if n.Number == 0 {
		n.Number = op.Number
	}
	return n
}

func findNode(c *config.Cluster, number uint16) *config.Node {
	for i := range c.Nodes {
		if c.Nodes[i].Number == number {
			return &c.Nodes[i]
		}
	}
	return nil
}

// The clones use nil for empty slices and maps, as the JSON form does, so a
// state applied in memory and one restored from a snapshot compare equal.

func cloneNode(n *config.Node) *config.Node {
	c := *n
	c.Links = nil
	for _, l := range n.Links {
		c.Links = append(c.Links, config.Link{Interface: l.Interface, MAC: bytes.Clone(l.MAC)})
	}
	c.Attrs = cloneMap(n.Attrs)
	return &c
}

func cloneCluster(c *config.Cluster) *config.Cluster {
	out := *c
	out.Options = cloneMap(c.Options)
	out.Nodes = nil
	for i := range c.Nodes {
		out.Nodes = append(out.Nodes, *cloneNode(&c.Nodes[i]))
	}
	return &out
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
