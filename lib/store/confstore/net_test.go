package confstore

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/store/atomicfile"
	"github.com/concord-ha/concord/lib/store/atomicfile/crashfs"
	"github.com/google/uuid"
)

// testNet is a synchronous in-process network of stores: rounds of
// Ready/Advance on every live store, then delivery of what they sent.
type testNet struct {
	t            testing.TB
	dirs         map[uint16]string
	stores       map[uint16]*Store // live stores
	queue        []testMsg
	results      map[uint16]map[uint64]error // per node, ReqID -> Err as applied there
	compactEvery uint64
	mem          *crashfs.FS // if set, the stores' files are kept here, not on disk
	memDirs      int

	drop         func(m testMsg) bool                  // drop a message in transit
	afterAdvance func(id uint16, rd Ready) (send bool) // false: discard rd.Outgoing
}

type testMsg struct {
	from, to uint16
	data     []byte
}

type testLogger struct {
	t  testing.TB
	id uint16
}

func (l testLogger) Debugf(string, ...any) {}
func (l testLogger) Infof(f string, a ...any) {
	if strings.Contains(f, "ignoring conf") {
		l.t.Logf("node %d: "+f, append([]any{l.id}, a...)...)
	}
}
func (l testLogger) Warnf(f string, a ...any) {
	l.t.Helper()
	l.t.Logf("node %d: "+f, append([]any{l.id}, a...)...)
}

func testNode(n uint16) config.Node {
	return config.Node{
		Number: n,
		UUID:   uuid.UUID{15: byte(n), 14: byte(n >> 8)},
		Name:   fmt.Sprintf("node%d", n),
		Votes:  1,
		Links: []config.Link{
			{Interface: "hb0", MAC: net.HardwareAddr{2, 0, 0, 0, byte(n >> 8), byte(n)}},
			{Interface: "hb1", MAC: net.HardwareAddr{2, 0, 0, 1, byte(n >> 8), byte(n)}},
		},
		Attrs: map[string]string{"rack": "r1"},
	}
}

func testCluster(n int) *config.Cluster {
	c := &config.Cluster{Name: "test", ID: 7, Options: map[string]string{"colour": "blue"}}
	c.Quorum.TwoNode = n == 2
	for i := 1; i <= n; i++ {
		c.Nodes = append(c.Nodes, testNode(uint16(i)))
	}
	c.Defaults()
	return c
}

// newNet bootstraps n founding stores.
func newNet(t testing.TB, n int) *testNet {
	return newNetOn(t, n, nil)
}

// newMemNet is newNet with the files in memory: faster, for tests that
// are not about files.
func newMemNet(t testing.TB, n int) *testNet {
	return newNetOn(t, n, crashfs.New())
}

func newNetOn(t testing.TB, n int, mem *crashfs.FS) *testNet {
	tn := &testNet{t: t, dirs: map[uint16]string{}, stores: map[uint16]*Store{},
		results: map[uint16]map[uint64]error{}, compactEvery: defaultCompactEvery, mem: mem}
	initial := testCluster(n)
	for i := 1; i <= n; i++ {
		id := uint16(i)
		s := tn.open(id)
		if s.Initialized() {
			t.Fatalf("node %d: fresh directory reports state", id)
		}
		if err := s.Bootstrap(initial); err != nil {
			t.Fatalf("node %d: bootstrap: %v", id, err)
		}
	}
	return tn
}

// open opens (or reopens) the store of node id from its directory.
func (tn *testNet) open(id uint16) *Store {
	tn.t.Helper()
	var fsys atomicfile.FS = atomicfile.OS
	switch {
	case tn.mem != nil:
		fsys = tn.mem
		if tn.dirs[id] == "" {
			tn.memDirs++
			tn.dirs[id] = fmt.Sprintf("/state%d/node%d", tn.memDirs, id)
		}
	case tn.dirs[id] == "":
		tn.dirs[id] = tn.t.TempDir()
	}
	s, err := open(fsys, tn.dirs[id], id, testLogger{tn.t, id})
	if err != nil {
		tn.t.Fatalf("node %d: open: %v", id, err)
	}
	s.compactEvery = tn.compactEvery
	tn.stores[id] = s
	tn.t.Cleanup(func() { s.Close() })
	return s
}

// crash stops node id; what it persisted stays on disk.
func (tn *testNet) crash(id uint16) {
	if s := tn.stores[id]; s != nil {
		s.Close()
	}
	delete(tn.stores, id)
}

func (tn *testNet) ids() []uint16 {
	var ids []uint16
	for id := range tn.stores {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// process handles every Ready of node id and reports whether there was one.
func (tn *testNet) process(id uint16) bool {
	tn.t.Helper()
	any := false
	for {
		s := tn.stores[id]
		if s == nil || !s.Initialized() {
			return any
		}
		rd, ok := s.Ready()
		if !ok {
			return any
		}
		any = true
		if err := s.Advance(rd); err != nil {
			tn.t.Fatalf("node %d: advance: %v", id, err)
		}
		if tn.results[id] == nil {
			tn.results[id] = map[uint64]error{}
		}
		for _, r := range rd.Applied {
			if _, dup := tn.results[id][r.ReqID]; dup {
				tn.t.Errorf("node %d: request %d (%s) applied twice", id, r.ReqID, r.Op)
			}
			tn.results[id][r.ReqID] = r.Err
		}
		if tn.afterAdvance != nil && !tn.afterAdvance(id, rd) {
			continue
		}
		for _, o := range rd.Outgoing {
			tn.queue = append(tn.queue, testMsg{from: id, to: o.To, data: o.Data})
		}
	}
}

// round processes every live store once, then delivers the messages sent.
func (tn *testNet) round() bool {
	progress := false
	for _, id := range tn.ids() {
		if tn.process(id) {
			progress = true
		}
	}
	q := tn.queue
	tn.queue = nil
	for _, m := range q {
		s := tn.stores[m.to]
		if s == nil || !s.Initialized() || (tn.drop != nil && tn.drop(m)) {
			continue
		}
		// Errors here are raft's normal refusals (e.g. a response from a
		// removed peer); bad bytes have their own test.
		_ = s.Step(m.from, m.data)
	}
	return progress || len(q) > 0
}

func (tn *testNet) stabilize() {
	tn.t.Helper()
	for i := 0; i < 10000; i++ {
		if !tn.round() {
			return
		}
	}
	tn.t.Fatal("network did not settle in 10000 rounds")
}

func (tn *testNet) tick(k int) {
	tn.t.Helper()
	for range k {
		for _, id := range tn.ids() {
			tn.stores[id].Tick()
		}
		tn.stabilize()
	}
}

// elect makes node id campaign and checks that it wins.
func (tn *testNet) elect(id uint16) {
	tn.t.Helper()
	tn.stabilize()
	if err := tn.stores[id].rn.Campaign(); err != nil {
		tn.t.Fatalf("node %d: campaign: %v", id, err)
	}
	tn.stabilize()
	for _, o := range tn.ids() {
		if l := tn.stores[o].Status().Leader; l != id {
			tn.t.Fatalf("node %d sees leader %d after node %d campaigned", o, l, id)
		}
	}
}

// leader returns the leader all live voters agree on, or 0.
func (tn *testNet) leader() uint16 {
	var l uint16
	for _, id := range tn.ids() {
		st := tn.stores[id].Status()
		if !slices.Contains(st.Voters, id) {
			continue
		}
		if st.Leader == 0 || (l != 0 && st.Leader != l) {
			return 0
		}
		l = st.Leader
	}
	return l
}

// tickUntilLeader ticks until the live voters agree on a leader.
func (tn *testNet) tickUntilLeader() uint16 {
	tn.t.Helper()
	for range 500 {
		tn.tick(1)
		if l := tn.leader(); l != 0 && tn.stores[l] != nil && tn.stores[l].Status().State == "leader" {
			return l
		}
	}
	tn.t.Fatal("no leader after 500 ticks")
	return 0
}

// propose submits op on node id and returns its ReqID.
func (tn *testNet) propose(id uint16, op Op) uint64 {
	tn.t.Helper()
	req, err := tn.stores[id].Propose(op)
	if err != nil {
		tn.t.Fatalf("node %d: propose %s: %v", id, op, err)
	}
	return req
}

// result ticks until node id applied req and returns its error.
func (tn *testNet) result(id uint16, req uint64) error {
	tn.t.Helper()
	tn.stabilize()
	for range 200 {
		if err, ok := tn.results[id][req]; ok {
			return err
		}
		tn.tick(1)
	}
	tn.t.Fatalf("node %d: request %d not applied after 200 ticks", id, req)
	return nil
}

// do proposes op on node id and waits for its result there.
func (tn *testNet) do(id uint16, op Op) error {
	tn.t.Helper()
	return tn.result(id, tn.propose(id, op))
}
