package confstore

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/store/atomicfile"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// NodeID is a raft id: the node number.
type NodeID = uint16

// Logger receives the store's and raft's log lines.
type Logger interface {
	Debugf(format string, a ...any)
	Infof(format string, a ...any)
	Warnf(format string, a ...any)
}

// Sentinel errors of the store.
var (
	ErrNoLeader = errors.New("confstore: no leader")
	// ErrStateLost: the leader holds this node as a voter with entries
	// this node does not have, so its state directory was lost or
	// replaced. Raft cannot mend that by itself (see ReplicaOut).
	ErrStateLost      = errors.New("confstore: this node's replicated log is missing entries the leader knows it had")
	ErrDropped        = errors.New("confstore: proposal dropped")
	ErrNotInitialized = errors.New("confstore: no replicated state yet (Bootstrap or Join first)")
	ErrInitialized    = errors.New("confstore: replicated state already exists")
	ErrStaleReady     = errors.New("confstore: Advance called without the pending Ready")
	ErrReadyPending   = errors.New("confstore: a Ready is pending; call Advance first")
)

// Files in the state directory.
const (
	WALFile     = "raft.wal"     // append-only log of batches
	SnapFile    = "raft.snap"    // last snapshot, replaced atomically
	ClusterFile = "cluster.json" // applied configuration, for humans and concordctl
)

// Timing and sizes, in ticks of the daemon's Tick calls (100 ms each).
const (
	// Raft here orders configuration changes, which people make: a new
	// leader within 1.5–3 s of the old one's death is soon enough, and an
	// idle cluster should cost next to nothing. Membership, not Raft,
	// detects failures quickly.
	ElectionTicks  = 15 // a follower campaigns after 15..29 ticks without a leader
	HeartbeatTicks = 4  // the leader's heartbeats, 2.5 a second

	defaultCompactEvery = 1000    // applied entries between snapshots
	retryTicks          = 20      // re-propose an unapplied change after this many ticks
	maxTries            = 5       // proposals of one change, the first included
	maxMsgSize          = 1 << 10 // MsgApp batches stay near one Ethernet frame
)

// Outgoing is one raft message for the daemon to carry to node To.
type Outgoing struct {
	To   uint16
	Data []byte
}

// Result is the outcome of one applied change. Err is nil or wraps ErrRejected.
type Result struct {
	ReqID uint64
	Op    Op
	Err   error
}

// Ready is one batch of work: see Advance for the order of handling.
type Ready struct {
	Outgoing []Outgoing // send after Advance returned nil
	Applied  []Result   // valid after Advance returned nil
	Changed  bool       // Cluster() changed

	seq uint64
}

// Status describes the local raft node.
type Status struct {
	Self    uint16
	Leader  uint16 // 0: none known
	State   string // "leader", "follower", "candidate", "pre-candidate"
	Term    uint64
	Commit  uint64
	Applied uint64
	Voters  []uint16
}

// Store is the replicated configuration. It is not safe for concurrent use:
// one goroutine calls all its methods.
type Store struct {
	fs   atomicfile.FS
	dir  string
	self uint16
	log  Logger

	ms   *raft.MemoryStorage
	rn   *raft.RawNode
	lost bool // the leader's heartbeats commit entries we lack (see Step)
	w    *wal
	st   *state
	conf *raftpb.ConfState

	applied      uint64
	snapIndex    uint64
	compactEvery uint64

	pending   *pendingReady
	seq       uint64
	ticks     uint64
	nextReq   uint64
	inflight  []*inflight
	initTerm  uint64
	replaying bool
	failed    error

	snapsReceived int // snapshots installed from a leader, for tests
}

type inflight struct {
	op    Op
	at    uint64
	tries int
}

type pendingReady struct {
	seq     uint64
	rd      raft.Ready
	out     []Outgoing
	results []Result
	next    *state // nil: unchanged
	changed bool
	ccs     []*raftpb.ConfChange
	snapTo  []uint64
	applied uint64
	err     error
}

// Open loads the durable state in dir, if any, and replays the committed
// changes. Without state, call Bootstrap or Join.
func Open(dir string, self uint16, logger Logger) (*Store, error) {
	return open(atomicfile.OS, dir, self, logger)
}

// open is Open on fsys, which tests replace to simulate crashes.
func open(fsys atomicfile.FS, dir string, self uint16, logger Logger) (*Store, error) {
	if self == 0 {
		return nil, errors.New("confstore: node number 0 is invalid")
	}
	if logger == nil {
		logger = nopLogger{}
	}
	if err := fsys.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("confstore: %v", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	s := &Store{fs: fsys, dir: dir, self: self, log: logger, compactEvery: defaultCompactEvery,
		nextReq: uint64(binary.LittleEndian.Uint32(rnd[:])) << 16}
	_, err := fsys.Stat(s.path(WALFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("confstore: %v", err)
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

// Initialized reports whether durable raft state exists.
func (s *Store) Initialized() bool { return s.rn != nil }

// Bootstrap creates the state of a founding node: the voters are initial's
// node numbers, the state is initial. Every founding node must bootstrap
// with the same node numbers; the first leader's copy of initial becomes
// the agreed configuration on all of them.
func (s *Store) Bootstrap(initial *config.Cluster) error {
	if s.rn != nil {
		return ErrInitialized
	}
	if initial == nil || len(initial.Nodes) == 0 {
		return errors.New("confstore: bootstrap: the configuration has no nodes")
	}
	// Every change is validated against the state, so the state starts valid.
	if err := initial.Validate(); err != nil {
		return fmt.Errorf("confstore: bootstrap: %w", err)
	}
	var voters []uint64
	self := false
	for _, n := range initial.Nodes {
		voters = append(voters, uint64(n.Number))
		self = self || n.Number == s.self
	}
	if !self {
		return fmt.Errorf("confstore: bootstrap: this node (%d) is not in the configuration", s.self)
	}
	slices.Sort(voters)
	st := &state{Cluster: *cloneCluster(initial)}
	st.index()
	// Index 1, term 1, as raft recommends for a manual bootstrap.
	snap := &raftpb.Snapshot{Data: st.encode(), Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(1), Term: proto.Uint64(1),
		ConfState: raftpb.EnsureConfState(&raftpb.ConfState{Voters: voters}),
	}}
	if err := writeSnapFile(s.fs, s.path(SnapFile), snap); err != nil {
		return fmt.Errorf("confstore: bootstrap: %v", err)
	}
	body, err := encodeBatch(batch{hs: &raftpb.HardState{Term: proto.Uint64(1), Vote: proto.Uint64(0), Commit: proto.Uint64(1)}})
	if err != nil {
		return fmt.Errorf("confstore: bootstrap: %v", err)
	}
	// The log file appears last: its existence means "initialized".
	if err := atomicfile.WriteFS(s.fs, s.path(WALFile), appendRecord(nil, body), 0o600); err != nil {
		return fmt.Errorf("confstore: bootstrap: %v", err)
	}
	return s.load()
}

// Join creates the empty state of a node added to a running cluster: raft
// without peers, waiting for the leader to send it a snapshot.
func (s *Store) Join() error {
	if s.rn != nil {
		return ErrInitialized
	}
	if err := s.fs.Remove(s.path(SnapFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("confstore: join: %v", err)
	}
	if err := atomicfile.WriteFS(s.fs, s.path(WALFile), nil, 0o600); err != nil {
		return fmt.Errorf("confstore: join: %v", err)
	}
	return s.load()
}

// load rebuilds storage, state and raft from the files, then applies the
// committed entries so Cluster() is current when Open returns.
func (s *Store) load() error {
	snap, err := readSnapFile(s.fs, s.path(SnapFile))
	if err != nil {
		return fmt.Errorf("confstore: %v", err)
	}
	rep := replayed{snap: snap}
	if err := replayWAL(s.fs, s.path(WALFile), &rep); err != nil {
		return fmt.Errorf("confstore: %v", err)
	}
	if rep.torn >= 0 {
		s.log.Warnf("confstore: %s: cut off a torn record at offset %d (a crash interrupted a write)", s.path(WALFile), rep.torn)
	}
	ms := raft.NewMemoryStorage()
	base := rep.baseIndex()
	st := &state{}
	st.index()
	conf := raftpb.EnsureConfState(nil)
	if rep.snap != nil && base > 0 {
		if err := ms.ApplySnapshot(rep.snap); err != nil {
			return fmt.Errorf("confstore: snapshot %d: %v", base, err)
		}
		if st, err = decodeState(rep.snap.Data); err != nil {
			return fmt.Errorf("confstore: snapshot %d: bad state: %v", base, err)
		}
		conf = rep.snap.GetMetadata().GetConfState()
	}
	if err := ms.Append(rep.ents); err != nil {
		return fmt.Errorf("confstore: %v", err)
	}
	if hs := rep.hs; hs != nil {
		last := base + uint64(len(rep.ents))
		if hs.GetCommit() > last {
			return fmt.Errorf("confstore: %s: hard state commits index %d but the log ends at %d", s.path(WALFile), hs.GetCommit(), last)
		}
		if hs.GetCommit() < base {
			hs.Commit = proto.Uint64(base) // a snapshot is committed by definition
		}
		if err := ms.SetHardState(hs); err != nil {
			return fmt.Errorf("confstore: %v", err)
		}
	}
	w, err := openWAL(s.fs, s.path(WALFile))
	if err != nil {
		return fmt.Errorf("confstore: %v", err)
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        uint64(s.self),
		ElectionTick:              ElectionTicks,
		HeartbeatTick:             HeartbeatTicks,
		Storage:                   ms,
		Applied:                   base,
		MaxSizePerMsg:             maxMsgSize,
		MaxCommittedSizePerReady:  1 << 20,
		MaxUncommittedEntriesSize: 1 << 20,
		MaxInflightMsgs:           64,
		CheckQuorum:               true,
		PreVote:                   true,
		StepDownOnRemoval:         true,
		Logger:                    raftLogger{s.log},
	})
	if err != nil {
		w.close()
		return fmt.Errorf("confstore: raft: %v", err)
	}
	s.ms, s.rn, s.w, s.st, s.conf = ms, rn, w, st, conf
	s.applied, s.snapIndex = base, base

	// Apply what was committed before the restart; callers are gone, so no results.
	s.replaying = true
	defer func() { s.replaying = false }()
	for s.rn.HasReady() {
		rd, ok := s.Ready()
		if !ok {
			break
		}
		if err := s.Advance(rd); err != nil {
			return err
		}
	}
	if len(s.st.Cluster.Nodes) > 0 {
		s.writeClusterFile()
	}
	return nil
}

// Close releases the log file. The store must not be used afterwards.
func (s *Store) Close() error {
	err := s.w.close()
	s.rn = nil
	return err
}

// Tick advances raft's clock by one tick; the daemon calls it every 100 ms.
func (s *Store) Tick() {
	if s.rn == nil || s.failed != nil || s.pending != nil {
		return
	}
	s.ticks++
	s.rn.Tick()
	s.retry()
}

// retry re-proposes local changes not applied after retryTicks: a forwarded
// proposal can be lost in transit, and a leader drops a membership change
// while another is pending. Apply drops a ReqID already applied, so a
// change retried after it was applied takes effect once.
func (s *Store) retry() {
	if s.rn.BasicStatus().Lead == raft.None {
		return
	}
	keep := s.inflight[:0]
	for _, p := range s.inflight {
		if s.ticks-p.at >= retryTicks {
			if p.tries >= maxTries {
				s.log.Warnf("confstore: %s (request %d) not applied after %d proposals; giving up", p.op, p.op.ReqID, p.tries)
				continue
			}
			if err := s.propose(p.op); err != nil {
				s.log.Debugf("confstore: re-proposing %s: %v", p.op, err)
			}
			p.at = s.ticks
			p.tries++
		}
		keep = append(keep, p)
	}
	s.inflight = keep
}

// Step hands raft a message that node from sent (the Data of an Outgoing).
func (s *Store) Step(from uint16, data []byte) error {
	if s.rn == nil {
		return ErrNotInitialized
	}
	if s.failed != nil {
		return s.failed
	}
	if s.pending != nil {
		return ErrReadyPending
	}
	m := &raftpb.Message{}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("confstore: message from node %d: %v", from, err)
	}
	if err := s.checkMessage(from, m); err != nil {
		return fmt.Errorf("confstore: message from node %d: %w", from, err)
	}
	// A leader commits in a heartbeat only what it knows we hold. If it
	// commits more, our log was lost, and until the leader starts over
	// (ReplicaOut, ReplicaIn) its appends would be refused forever, each
	// refusal answered at once by the same append: a storm. So refuse
	// them without an answer while that lasts.
	if m.GetType() == raftpb.MsgHeartbeat {
		last, _ := s.ms.LastIndex()
		s.lost = m.GetCommit() > last
		if s.lost {
			return fmt.Errorf("confstore: message from node %d: %w: heartbeat commits index %d beyond our last entry %d",
				from, ErrStateLost, m.GetCommit(), last)
		}
	}
	if s.lost && m.GetType() == raftpb.MsgApp {
		return fmt.Errorf("confstore: message from node %d: %w: append refused until the leader starts over", from, ErrStateLost)
	}
	if err := s.step(m); err != nil {
		return fmt.Errorf("confstore: %s from node %d: %w", m.GetType(), from, err)
	}
	return nil
}

// step runs raft's Step; raft trusts its peers and panics on some
// impossible messages, which from the network must be errors instead.
func (s *Store) step(m *raftpb.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("raft refused the message: %v", r)
		}
	}()
	return s.rn.Step(m)
}

var networkMsgs = map[raftpb.MessageType]bool{
	raftpb.MsgProp: true, raftpb.MsgApp: true, raftpb.MsgAppResp: true,
	raftpb.MsgVote: true, raftpb.MsgVoteResp: true, raftpb.MsgPreVote: true, raftpb.MsgPreVoteResp: true,
	raftpb.MsgSnap: true, raftpb.MsgHeartbeat: true, raftpb.MsgHeartbeatResp: true,
	raftpb.MsgTransferLeader: true, raftpb.MsgTimeoutNow: true,
}

// checkMessage rejects what raft would panic on or could not apply.
func (s *Store) checkMessage(from uint16, m *raftpb.Message) error {
	if m.Type == nil || !networkMsgs[m.GetType()] {
		return fmt.Errorf("message type %v is not a network message", m.GetType())
	}
	if from == 0 || m.GetFrom() != uint64(from) {
		return fmt.Errorf("%s claims to be from node %d", m.GetType(), m.GetFrom())
	}
	if m.GetTo() != uint64(s.self) {
		return fmt.Errorf("%s is addressed to node %d, this is node %d", m.GetType(), m.GetTo(), s.self)
	}
	if len(m.Responses) > 0 {
		return fmt.Errorf("%s carries %d local responses", m.GetType(), len(m.Responses))
	}
	for i, e := range m.Entries {
		switch e.GetType() {
		case raftpb.EntryNormal:
		case raftpb.EntryConfChange:
			if err := proto.Unmarshal(e.GetData(), &raftpb.ConfChange{}); err != nil {
				return fmt.Errorf("entry %d: bad conf change: %v", i, err)
			}
		default:
			return fmt.Errorf("entry %d: unsupported type %v", i, e.GetType())
		}
		if m.GetType() == raftpb.MsgApp && e.GetIndex() != m.GetIndex()+uint64(i)+1 {
			return fmt.Errorf("entry %d has index %d after index %d", i, e.GetIndex(), m.GetIndex())
		}
	}
	if m.GetType() == raftpb.MsgSnap {
		sn := m.GetSnapshot()
		if sn == nil || sn.GetMetadata() == nil || sn.GetMetadata().GetIndex() == 0 {
			return errors.New("snapshot without metadata")
		}
		if _, err := decodeState(sn.GetData()); err != nil {
			return fmt.Errorf("snapshot %d: bad state: %v", sn.GetMetadata().GetIndex(), err)
		}
		m.Snapshot = raftpb.EnsureSnapshot(sn)
	}
	return nil
}

// Propose submits op; raft forwards it to the leader. The outcome comes back
// in a later Ready's Applied under the returned ReqID.
func (s *Store) Propose(op Op) (reqID uint64, err error) {
	if s.rn == nil {
		return 0, ErrNotInitialized
	}
	if s.failed != nil {
		return 0, s.failed
	}
	if s.pending != nil {
		return 0, ErrReadyPending
	}
	// What a node or option can be checked for on its own is refused at
	// once, in the words apply would use; the rest waits for apply.
	switch op.Kind {
	case AddNode:
		if err := op.Node.Validate(); err != nil {
			return 0, reject(op, "%s", strings.TrimPrefix(err.Error(), "config: "))
		}
	case EditNode:
		if op.Number == 0 {
			return 0, reject(op, "node number 0 is invalid")
		}
		n := editedNode(op)
		if err := n.Validate(); err != nil {
			return 0, reject(op, "%s", strings.TrimPrefix(err.Error(), "config: "))
		}
	case SetOption:
		if err := config.CheckOption(op.Key, op.Value); err != nil {
			return 0, reject(op, "%s", strings.TrimPrefix(err.Error(), "config: "))
		}
	case DeleteNode, ReplicaOut, ReplicaIn:
		if op.Number == 0 {
			return 0, reject(op, "node number 0 is invalid")
		}
	case SetQuorum:
	default:
		return 0, reject(op, "unknown operation kind %d", uint8(op.Kind))
	}
	// Every member must decode the op exactly as it is applied here.
	if back, err := decodeOp(encodeOp(op)); err != nil || !reflect.DeepEqual(normalOp(back), normalOp(op)) {
		return 0, reject(op, "the change does not survive encoding (%v)", err)
	}
	if s.rn.BasicStatus().Lead == raft.None {
		return 0, ErrNoLeader
	}
	s.nextReq++
	op.ReqID = uint64(s.self)<<48 | s.nextReq&(1<<48-1)
	op.Origin = s.self
	if err := s.propose(op); err != nil {
		return 0, err
	}
	s.inflight = append(s.inflight, &inflight{op: op, at: s.ticks, tries: 1})
	return op.ReqID, nil
}

func (s *Store) propose(op Op) error {
	data := encodeOp(op)
	var err error
	switch op.Kind {
	case AddNode:
		err = s.rn.ProposeConfChange(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(),
			NodeId: proto.Uint64(uint64(op.Node.Number)), Context: data})
	case DeleteNode, ReplicaOut:
		err = s.rn.ProposeConfChange(&raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(),
			NodeId: proto.Uint64(uint64(op.Number)), Context: data})
	case ReplicaIn:
		err = s.rn.ProposeConfChange(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(),
			NodeId: proto.Uint64(uint64(op.Number)), Context: data})
	default:
		err = s.rn.Propose(data)
	}
	if errors.Is(err, raft.ErrProposalDropped) {
		return fmt.Errorf("%w: %s (leader changing?)", ErrDropped, op)
	}
	return err
}

// Ready returns the next batch of work, if any. Handle it with Advance
// before calling any other method.
func (s *Store) Ready() (Ready, bool) {
	if s.rn == nil || s.failed != nil {
		return Ready{}, false
	}
	if p := s.pending; p != nil {
		return Ready{Outgoing: p.out, Applied: p.results, Changed: p.changed, seq: p.seq}, true
	}
	s.maybeInit()
	if !s.rn.HasReady() {
		return Ready{}, false
	}
	rd := s.rn.Ready()
	s.seq++
	p := &pendingReady{seq: s.seq, rd: rd, applied: s.applied}
	for _, m := range rd.Messages {
		if m.GetTo() == uint64(s.self) || m.GetTo() > math.MaxUint16 {
			continue
		}
		b, err := proto.Marshal(m)
		if err != nil {
			s.log.Warnf("confstore: cannot encode %s to node %d: %v", m.GetType(), m.GetTo(), err)
			continue
		}
		p.out = append(p.out, Outgoing{To: uint16(m.GetTo()), Data: b})
		if m.GetType() == raftpb.MsgSnap {
			p.snapTo = append(p.snapTo, m.GetTo())
		}
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		ns, err := decodeState(rd.Snapshot.GetData())
		if err != nil {
			p.err = fmt.Errorf("confstore: snapshot %d: bad state: %v", rd.Snapshot.GetMetadata().GetIndex(), err)
		} else {
			p.next, p.changed = ns, true
			p.applied = rd.Snapshot.GetMetadata().GetIndex()
		}
	}
	voters := map[uint64]bool{}
	for _, v := range s.conf.GetVoters() {
		voters[v] = true
	}
	if p.next != nil {
		voters = map[uint64]bool{}
		for _, v := range rd.Snapshot.GetMetadata().GetConfState().GetVoters() {
			voters[v] = true
		}
	}
	for _, e := range rd.CommittedEntries {
		if e.GetIndex() <= p.applied {
			continue
		}
		s.applyEntry(p, e, voters)
		p.applied = e.GetIndex()
	}
	if s.replaying {
		p.results = nil
	}
	s.pending = p
	return Ready{Outgoing: p.out, Applied: p.results, Changed: p.changed, seq: p.seq}, true
}

// maybeInit has a leader of a cluster that never agreed on its founding
// configuration propose its own; the first one applied wins everywhere.
func (s *Store) maybeInit() {
	if s.st.Sealed {
		return
	}
	bs := s.rn.BasicStatus()
	if bs.RaftState != raft.StateLeader || s.initTerm == bs.HardState.GetTerm() || len(s.st.Cluster.Nodes) == 0 {
		return
	}
	s.initTerm = bs.HardState.GetTerm()
	if err := s.rn.Propose(append([]byte{tagInit}, s.st.encode()...)); err != nil {
		s.log.Warnf("confstore: proposing the founding configuration: %v", err)
	}
}

// applyEntry computes the effect of one committed entry on p.next; raft's
// own configuration changes wait for Advance, after the entry is durable.
func (s *Store) applyEntry(p *pendingReady, e *raftpb.Entry, voters map[uint64]bool) {
	if p.next == nil {
		p.next = s.st.clone()
	}
	next := p.next
	switch e.GetType() {
	case raftpb.EntryNormal:
		d := e.GetData()
		if len(d) == 0 {
			return // a new leader's empty entry
		}
		switch d[0] {
		case tagInit:
			if next.Sealed {
				return
			}
			ns, err := decodeState(d[1:])
			if err != nil {
				s.log.Warnf("confstore: entry %d: bad founding configuration: %v", e.GetIndex(), err)
				return
			}
			next.Sealed, next.Cluster, p.changed = true, ns.Cluster, true
		case tagOp:
			op, err := decodeOp(d)
			if err != nil {
				s.log.Warnf("confstore: entry %d: %v", e.GetIndex(), err)
				return
			}
			if op.Kind == AddNode || op.Kind == DeleteNode || op.Kind == ReplicaOut || op.Kind == ReplicaIn {
				s.log.Warnf("confstore: entry %d: %s outside a conf change entry; ignored", e.GetIndex(), op)
				return
			}
			s.applyOp(p, op)
		default:
			s.log.Warnf("confstore: entry %d: unknown data tag %#x", e.GetIndex(), d[0])
		}
	case raftpb.EntryConfChange:
		cc := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), cc); err != nil {
			s.log.Warnf("confstore: entry %d: bad conf change: %v", e.GetIndex(), err)
			return
		}
		op, err := decodeOp(cc.GetContext())
		if err != nil {
			s.log.Warnf("confstore: entry %d: conf change without a valid op: %v", e.GetIndex(), err)
			return
		}
		var typ raftpb.ConfChangeType
		var id uint64
		switch op.Kind {
		case AddNode:
			typ, id = raftpb.ConfChangeAddNode, uint64(op.Node.Number)
		case DeleteNode, ReplicaOut:
			typ, id = raftpb.ConfChangeRemoveNode, uint64(op.Number)
		case ReplicaIn:
			typ, id = raftpb.ConfChangeAddNode, uint64(op.Number)
		default:
			s.log.Warnf("confstore: entry %d: conf change carrying %s; ignored", e.GetIndex(), op)
			return
		}
		if cc.GetNodeId() != id || cc.GetType() != typ {
			s.log.Warnf("confstore: entry %d: conf change %s %d does not match %s; ignored", e.GetIndex(), cc.GetType(), cc.GetNodeId(), op)
			return
		}
		if !s.applyOp(p, op) {
			return
		}
		if typ == raftpb.ConfChangeRemoveNode && len(voters) == 1 && voters[id] {
			s.log.Warnf("confstore: entry %d: not removing the last voter %d", e.GetIndex(), id)
			return
		}
		if typ == raftpb.ConfChangeAddNode {
			voters[id] = true
		} else {
			delete(voters, id)
		}
		p.ccs = append(p.ccs, &raftpb.ConfChange{Type: typ.Enum(), NodeId: proto.Uint64(id)})
	default:
		s.log.Warnf("confstore: entry %d: unsupported entry type %s; ignored", e.GetIndex(), e.GetType())
	}
}

// applyOp applies op to p.next unless its ReqID was applied before, and
// reports whether it changed the state.
func (s *Store) applyOp(p *pendingReady, op Op) bool {
	next := p.next
	if op.ReqID != 0 && next.seen[op.ReqID] {
		return false // a retry of an applied change
	}
	err := next.apply(op)
	next.remember(op.ReqID)
	p.results = append(p.results, Result{ReqID: op.ReqID, Op: op, Err: err})
	if err != nil {
		return false
	}
	p.changed = true
	return true
}

// Advance finishes the Ready returned by the last Ready call, in this order:
//
//  1. append the new entries, hard state and any received snapshot to
//     raft.wal as one record and fsync it (raft's "persist");
//  2. apply the committed entries: raft's voter changes, then the new state
//     (cluster.json is rewritten on a change), since committed entries may
//     be the ones just made durable;
//  3. tell raft the Ready is done; snapshot and compact the log after a
//     voter change and every 1000 entries.
//
// Only after Advance returns nil may the daemon send rd.Outgoing (raft's
// "send after persist") and act on rd.Applied and rd.Changed. An error means
// the state on disk could not be updated: stop the daemon.
func (s *Store) Advance(rd Ready) error {
	if s.failed != nil {
		return s.failed
	}
	p := s.pending
	if p == nil || p.seq != rd.seq {
		return ErrStaleReady
	}
	if p.err != nil {
		s.failed = p.err
		return p.err
	}
	r := p.rd
	bt := batch{entries: r.Entries}
	if !raft.IsEmptyHardState(r.HardState) {
		bt.hs = r.HardState
	}
	if !raft.IsEmptySnap(r.Snapshot) {
		bt.snap = r.Snapshot
	}
	if bt.hs != nil || bt.snap != nil || len(bt.entries) > 0 {
		if err := s.w.append(bt, r.MustSync || bt.snap != nil); err != nil {
			s.failed = fmt.Errorf("confstore: persist: %w", err)
			return s.failed
		}
	}
	if bt.snap != nil {
		if err := s.ms.ApplySnapshot(bt.snap); err != nil {
			s.failed = fmt.Errorf("confstore: snapshot %d: %w", bt.snap.GetMetadata().GetIndex(), err)
			return s.failed
		}
		s.conf = bt.snap.GetMetadata().GetConfState()
		s.snapIndex = bt.snap.GetMetadata().GetIndex()
		s.snapsReceived++
	}
	if err := s.ms.Append(bt.entries); err != nil {
		s.failed = fmt.Errorf("confstore: %w", err)
		return s.failed
	}
	if bt.hs != nil {
		_ = s.ms.SetHardState(bt.hs)
	}
	for _, cc := range p.ccs {
		s.conf = s.rn.ApplyConfChange(cc)
	}
	if p.next != nil {
		s.st = p.next
	}
	s.applied = p.applied
	s.rn.Advance(r)
	s.pending = nil
	for _, to := range p.snapTo {
		// The daemon's send is fire-and-forget; a lost snapshot shows up
		// as a rejected probe and raft sends another.
		s.rn.ReportSnapshot(to, raft.SnapshotFinish)
	}
	for _, res := range p.results {
		s.inflight = slices.DeleteFunc(s.inflight, func(f *inflight) bool { return f.op.ReqID == res.ReqID })
	}
	if p.changed && !s.replaying {
		s.writeClusterFile()
	}
	// A node joins from a snapshot, and raft accepts only one whose voters
	// include it: snapshot right after every voter change.
	if s.applied > s.snapIndex && (len(p.ccs) > 0 || s.applied >= s.snapIndex+s.compactEvery) {
		if err := s.compact(); err != nil {
			s.failed = err
			return err
		}
	}
	return nil
}

// compact snapshots the applied state, then rewrites the log without the
// entries the snapshot covers. A crash between the two steps leaves the
// new snapshot and the old log, which replay reads correctly.
func (s *Store) compact() error {
	snap, err := s.ms.CreateSnapshot(s.applied, raftpb.EnsureConfState(s.conf), s.st.encode())
	if err != nil {
		return fmt.Errorf("confstore: snapshot %d: %w", s.applied, err)
	}
	if err := writeSnapFile(s.fs, s.path(SnapFile), snap); err != nil {
		return fmt.Errorf("confstore: %w", err)
	}
	if err := s.ms.Compact(s.applied); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("confstore: compact: %w", err)
	}
	bt := batch{}
	hs, _, _ := s.ms.InitialState()
	if !raft.IsEmptyHardState(hs) {
		bt.hs = hs
	}
	last, _ := s.ms.LastIndex()
	if last > s.applied {
		ents, err := s.ms.Entries(s.applied+1, last+1, math.MaxUint64)
		if err != nil {
			return fmt.Errorf("confstore: compact: %w", err)
		}
		bt.entries = ents
	}
	if err := s.w.rewrite(bt); err != nil {
		return fmt.Errorf("confstore: compact: %w", err)
	}
	s.snapIndex = s.applied
	s.log.Debugf("confstore: compacted the log at index %d", s.applied)
	return nil
}

func (s *Store) writeClusterFile() {
	b, err := json.MarshalIndent(&s.st.Cluster, "", "  ")
	if err == nil {
		err = atomicfile.WriteFS(s.fs, s.path(ClusterFile), append(b, '\n'), 0o644)
	}
	if err != nil {
		// The log stays the source of truth; this copy is for people.
		s.log.Warnf("confstore: writing %s: %v", s.path(ClusterFile), err)
	}
}

// Cluster returns a copy of the applied configuration.
func (s *Store) Cluster() *config.Cluster {
	if s.st == nil {
		return &config.Cluster{}
	}
	return cloneCluster(&s.st.Cluster)
}

// NonVoters lists the configured nodes that are not Raft voters: only
// between a ReplicaOut and its ReplicaIn, or if the ReplicaIn was lost.
func (s *Store) NonVoters() []uint16 {
	if s.st == nil || s.rn == nil {
		return nil
	}
	voters := s.conf.GetVoters()
	var out []uint16
	for _, n := range s.st.Cluster.Nodes {
		if !slices.Contains(voters, uint64(n.Number)) {
			out = append(out, n.Number)
		}
	}
	return out
}

// Status reports the local raft state.
func (s *Store) Status() Status {
	st := Status{Self: s.self}
	if s.rn == nil {
		return st
	}
	bs := s.rn.BasicStatus()
	st.Leader = uint16(bs.Lead)
	st.State = map[raft.StateType]string{raft.StateLeader: "leader", raft.StateFollower: "follower",
		raft.StateCandidate: "candidate", raft.StatePreCandidate: "pre-candidate"}[bs.RaftState]
	st.Term = bs.HardState.GetTerm()
	st.Commit = bs.HardState.GetCommit()
	st.Applied = s.applied
	for _, v := range s.conf.GetVoters() {
		st.Voters = append(st.Voters, uint16(v))
	}
	slices.Sort(st.Voters)
	return st
}
