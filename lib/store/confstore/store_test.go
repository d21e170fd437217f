package confstore

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/api/config"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// agree checks that every live store holds the same configuration and
// voter set, and returns that configuration.
func agree(t *testing.T, tn *testNet) *config.Cluster {
	t.Helper()
	var first *config.Cluster
	var firstID uint16
	var voters []uint16
	for _, id := range tn.ids() {
		c := tn.stores[id].Cluster()
		v := tn.stores[id].Status().Voters
		if first == nil {
			first, firstID, voters = c, id, v
			continue
		}
		if !reflect.DeepEqual(c, first) {
			t.Fatalf("node %d and node %d differ:\n%+v\n%+v", firstID, id, first, c)
		}
		if !slices.Equal(v, voters) {
			t.Fatalf("node %d has voters %v, node %d has %v", firstID, voters, id, v)
		}
	}
	return first
}

func numbers(c *config.Cluster) []uint16 {
	var n []uint16
	for _, x := range c.Nodes {
		n = append(n, x.Number)
	}
	return n
}

func TestBootstrapAndElect(t *testing.T) {
	for _, size := range []int{1, 3, 5} {
		tn := newNet(t, size)
		l := tn.tickUntilLeader()
		tn.tick(3)
		c := agree(t, tn)
		if want := testCluster(size); !reflect.DeepEqual(c, want) {
			t.Fatalf("%d nodes: leader %d: configuration\n%+v\nwant\n%+v", size, l, c, want)
		}
		for _, id := range tn.ids() {
			st := tn.stores[id].Status()
			if !slices.Equal(st.Voters, numbers(c)) {
				t.Errorf("%d nodes: node %d voters %v, want %v", size, id, st.Voters, numbers(c))
			}
			if !tn.stores[id].st.Sealed {
				t.Errorf("%d nodes: node %d did not apply the founding configuration", size, id)
			}
			b, err := os.ReadFile(filepath.Join(tn.dirs[id], ClusterFile))
			if err != nil {
				t.Fatal(err)
			}
			var onDisk config.Cluster
			if err := json.Unmarshal(b, &onDisk); err != nil {
				t.Fatalf("node %d: %s: %v", id, ClusterFile, err)
			}
			if !reflect.DeepEqual(&onDisk, c) {
				t.Errorf("node %d: %s holds %+v, want %+v", id, ClusterFile, onDisk, c)
			}
		}
	}
}

// TestFoundingConfigurationsConverge: founding nodes whose files differ
// (other than in node numbers) end up with the first leader's copy.
func TestFoundingConfigurationsConverge(t *testing.T) {
	tn := &testNet{t: t, dirs: map[uint16]string{}, stores: map[uint16]*Store{},
		results: map[uint16]map[uint64]error{}, compactEvery: defaultCompactEvery}
	for id := uint16(1); id <= 3; id++ {
		c := testCluster(3)
		c.Options["colour"] = []string{"", "red", "green", "blue"}[id]
		if err := tn.open(id).Bootstrap(c); err != nil {
			t.Fatal(err)
		}
	}
	tn.elect(2)
	if got := agree(t, tn).Options["colour"]; got != "green" {
		t.Fatalf("colour = %q, want the leader's green", got)
	}
}

func TestProposeWithoutLeader(t *testing.T) {
	tn := newNet(t, 3)
	_, err := tn.stores[1].Propose(Op{Kind: SetOption, Key: "a", Value: "b"})
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("propose before any election: %v, want ErrNoLeader", err)
	}
	uninit, err := Open(t.TempDir(), 9, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uninit.Propose(Op{Kind: SetOption, Key: "a", Value: "b"}); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("propose on an empty store: %v, want ErrNotInitialized", err)
	}
	if err := tn.stores[1].Join(); !errors.Is(err, ErrInitialized) {
		t.Fatalf("join on a bootstrapped store: %v, want ErrInitialized", err)
	}
}

func TestAddNode(t *testing.T) {
	tn := newNet(t, 3)
	tn.elect(1)
	s4 := tn.open(4)
	if err := s4.Join(); err != nil {
		t.Fatal(err)
	}
	if len(s4.Cluster().Nodes) != 0 {
		t.Fatalf("a joining node has a configuration before catching up: %+v", s4.Cluster())
	}
	// Proposed on a follower: raft forwards it to the leader.
	if err := tn.do(2, Op{Kind: AddNode, Node: testNode(4)}); err != nil {
		t.Fatalf("add node 4: %v", err)
	}
	tn.tick(5)
	c := agree(t, tn)
	if !slices.Equal(numbers(c), []uint16{1, 2, 3, 4}) {
		t.Fatalf("nodes %v after adding 4", numbers(c))
	}
	if !reflect.DeepEqual(c.Nodes[3], testNode(4)) {
		t.Fatalf("node 4 is %+v, want %+v", c.Nodes[3], testNode(4))
	}
	if v := s4.Status().Voters; !slices.Equal(v, []uint16{1, 2, 3, 4}) {
		t.Fatalf("node 4 sees voters %v", v)
	}
	// The new voter counts: with 1 and 2 down, 3 and 4 cannot elect (2 of 4).
	tn.crash(1)
	tn.crash(2)
	tn.tick(50)
	if l := tn.leader(); l != 0 {
		t.Fatalf("nodes 3 and 4 elected %d without a majority of 4", l)
	}
	tn.open(2)
	if l := tn.tickUntilLeader(); l == 0 {
		t.Fatal("no leader with 3 of 4 voters")
	}
	if err := tn.do(4, Op{Kind: SetOption, Key: "from4", Value: "yes"}); err != nil {
		t.Fatalf("change proposed on the new node: %v", err)
	}
}

func TestDeleteNode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		del, via uint16
	}{
		{"follower", 3, 1},
		{"leader itself", 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := newNet(t, 3)
			tn.elect(1)
			if err := tn.do(tc.via, Op{Kind: DeleteNode, Number: tc.del}); err != nil {
				t.Fatalf("delete node %d: %v", tc.del, err)
			}
			tn.tick(2)
			tn.crash(tc.del) // the daemon of a deleted node stops
			l := tn.tickUntilLeader()
			if l == tc.del {
				t.Fatalf("deleted node %d is still leader", l)
			}
			c := agree(t, tn)
			want := slices.DeleteFunc([]uint16{1, 2, 3}, func(n uint16) bool { return n == tc.del })
			if !slices.Equal(numbers(c), want) || !slices.Equal(tn.stores[l].Status().Voters, want) {
				t.Fatalf("nodes %v voters %v, want %v", numbers(c), tn.stores[l].Status().Voters, want)
			}
			// Two voters left, both needed, both there.
			if err := tn.do(l, Op{Kind: SetOption, Key: "after", Value: "delete"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRestartAllFromDisk(t *testing.T) {
	tn := newNet(t, 3)
	tn.elect(1)
	s4 := tn.open(4)
	if err := s4.Join(); err != nil {
		t.Fatal(err)
	}
	ops := []Op{
		{Kind: AddNode, Node: testNode(4)},
		{Kind: SetOption, Key: "k1", Value: "v1"},
		{Kind: DeleteNode, Number: 2},
		{Kind: EditNode, Number: 3, Node: func() config.Node { n := testNode(3); n.Votes = 2; n.Name = "gamma"; return n }()},
		{Kind: SetOption, Key: "colour", Value: ""},
	}
	for _, op := range ops {
		if err := tn.do(1, op); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	tn.tick(3)
	tn.crash(2)
	before := agree(t, tn)
	for _, id := range tn.ids() {
		tn.crash(id)
	}
	for _, id := range []uint16{1, 3, 4} {
		s := tn.open(id)
		if !s.Initialized() {
			t.Fatalf("node %d: not initialized after restart", id)
		}
		// Open replays the committed changes before any tick.
		if c := s.Cluster(); !reflect.DeepEqual(c, before) {
			t.Fatalf("node %d after restart:\n%+v\nwant\n%+v", id, c, before)
		}
		if v := s.Status().Voters; !slices.Equal(v, []uint16{1, 3, 4}) {
			t.Fatalf("node %d after restart: voters %v", id, v)
		}
	}
	tn.tickUntilLeader()
	if err := tn.do(3, Op{Kind: SetOption, Key: "k2", Value: "v2"}); err != nil {
		t.Fatal(err)
	}
	if c := agree(t, tn); c.Options["k2"] != "v2" || c.Options["k1"] != "v1" || c.Nodes[1].Name != "gamma" {
		t.Fatalf("after restart and a new change: %+v", c)
	}
}

// TestCrashMidChange kills a member right after it persisted (and perhaps
// applied) a change, before anything it sent got out. Whatever was reported
// applied anywhere must survive.
func TestCrashMidChange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		victim   uint16
		mustKeep bool // the change was applied before the crash
		// when: the victim crashes after the Advance in which this holds
		when func(tn *testNet, id uint16, rd Ready, req uint64) bool
	}{
		{"leader after applying", 1, true, func(tn *testNet, id uint16, rd Ready, req uint64) bool {
			return len(rd.Applied) > 0 && rd.Applied[0].ReqID == req
		}},
		{"leader after appending", 1, false, func(tn *testNet, id uint16, rd Ready, req uint64) bool {
			return lastIndex(tn.stores[id]) > tn.stores[id].applied
		}},
		{"follower after appending", 2, true, func(tn *testNet, id uint16, rd Ready, req uint64) bool {
			return lastIndex(tn.stores[id]) > tn.stores[id].applied
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := newNet(t, 3)
			tn.elect(1)
			var req uint64
			crashed := false
			tn.afterAdvance = func(id uint16, rd Ready) bool {
				if id != tc.victim || crashed || !tc.when(tn, id, rd, req) {
					return true
				}
				crashed = true
				tn.crash(id)
				return false // its messages die with it
			}
			req = tn.propose(1, Op{Kind: SetOption, Key: "mid", Value: "change"})
			for i := 0; i < 100 && !crashed; i++ {
				tn.round()
			}
			if !crashed {
				t.Fatal("the victim never reached the crash point")
			}
			tn.afterAdvance = nil
			appliedSomewhere := false
			for _, r := range tn.results {
				if err, ok := r[req]; ok && err == nil {
					appliedSomewhere = true
				}
			}
			if tc.victim != 1 { // the leader commits with the third node
				if err := tn.result(1, req); err != nil {
					t.Fatal(err)
				}
				appliedSomewhere = true
			}
			if tc.mustKeep && !appliedSomewhere {
				t.Fatal("the scenario did not apply the change anywhere")
			}
			tn.tickUntilLeader()
			tn.open(tc.victim)
			tn.tickUntilLeader()
			tn.tick(5)
			c := agree(t, tn)
			if appliedSomewhere && c.Options["mid"] != "change" {
				t.Fatalf("a change reported applied was lost: %+v", c.Options)
			}
			// Either way the cluster goes on.
			if err := tn.do(tc.victim, Op{Kind: SetOption, Key: "next", Value: "1"}); err != nil {
				t.Fatal(err)
			}
			agree(t, tn)
		})
	}
}

func lastIndex(s *Store) uint64 {
	i, _ := s.ms.LastIndex()
	return i
}

func isProp(data []byte) bool {
	m := &raftpb.Message{}
	return proto.Unmarshal(data, m) == nil && m.GetType() == raftpb.MsgProp
}

func TestFollowerCatchesUpBySnapshot(t *testing.T) {
	tn := newNet(t, 3)
	tn.compactEvery = 5
	for _, id := range tn.ids() {
		tn.stores[id].compactEvery = 5
	}
	tn.elect(1)
	tn.crash(3)
	for i := range 12 {
		if err := tn.do(1, Op{Kind: SetOption, Key: "k" + string(rune('a'+i)), Value: "v"}); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := tn.stores[1].ms.FirstIndex()
	if first < 10 {
		t.Fatalf("leader's log starts at %d: compaction did not run", first)
	}
	if _, err := os.Stat(filepath.Join(tn.dirs[1], SnapFile)); err != nil {
		t.Fatalf("no snapshot file after compaction: %v", err)
	}
	s3 := tn.open(3)
	tn.tick(10)
	if s3.snapsReceived == 0 {
		t.Fatal("node 3 caught up without a snapshot")
	}
	c := agree(t, tn)
	if len(c.Options) != 13 {
		t.Fatalf("options after catching up: %v", c.Options)
	}
	// Node 3 restarts from its received snapshot.
	tn.crash(3)
	if c3 := tn.open(3).Cluster(); !reflect.DeepEqual(c3, c) {
		t.Fatalf("node 3 after restart: %+v", c3)
	}
}

// TestJoinAfterCompaction: a node added once the log was compacted gets
// everything from a snapshot.
func TestJoinAfterCompaction(t *testing.T) {
	tn := newNet(t, 3)
	tn.compactEvery = 3
	for _, id := range tn.ids() {
		tn.stores[id].compactEvery = 3
	}
	tn.elect(2)
	for i := range 7 {
		if err := tn.do(2, Op{Kind: SetOption, Key: "o" + string(rune('a'+i)), Value: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tn.open(5).Join(); err != nil {
		t.Fatal(err)
	}
	if err := tn.do(3, Op{Kind: AddNode, Node: testNode(5)}); err != nil {
		t.Fatal(err)
	}
	tn.tick(5)
	c := agree(t, tn)
	if !slices.Equal(numbers(c), []uint16{1, 2, 3, 5}) || c.Options["og"] != "x" {
		t.Fatalf("after join: nodes %v options %v", numbers(c), c.Options)
	}
}

// TestLostProposalIsRetriedOnce: a forwarded proposal lost in transit is
// proposed again, and a retry of an applied change does not apply twice.
func TestLostProposalIsRetriedOnce(t *testing.T) {
	tn := newNet(t, 3)
	tn.elect(1)
	lost := 0
	tn.drop = func(m testMsg) bool {
		if m.from == 2 && m.to == 1 && lost == 0 && isProp(m.data) {
			lost++
			return true
		}
		return false
	}
	req := tn.propose(2, Op{Kind: SetOption, Key: "retry", Value: "1"})
	tn.stabilize()
	if lost != 1 {
		t.Fatal("the proposal was not forwarded")
	}
	if _, ok := tn.results[2][req]; ok {
		t.Fatal("applied although the proposal was lost")
	}
	if err := tn.result(2, req); err != nil {
		t.Fatal(err)
	}
	// The retry is still queued when the change applies after a slow path:
	// propose, then re-propose by hand, and check it applies once.
	req2 := tn.propose(2, Op{Kind: SetOption, Key: "twice", Value: "1"})
	if err := tn.result(2, req2); err != nil {
		t.Fatal(err)
	}
	s2 := tn.stores[2]
	op := Op{Kind: SetOption, Key: "twice", Value: "2", ReqID: req2, Origin: 2}
	if err := s2.propose(op); err != nil {
		t.Fatal(err)
	}
	tn.tick(3)
	if v := agree(t, tn).Options["twice"]; v != "1" {
		t.Fatalf("a duplicate ReqID was applied again: twice=%q", v)
	}
}

// TestConcurrentMembershipChanges: raft lets one membership change be
// pending; the one it drops is retried and both apply.
func TestConcurrentMembershipChanges(t *testing.T) {
	tn := newNet(t, 3)
	tn.elect(1)
	for _, id := range []uint16{4, 5} {
		if err := tn.open(id).Join(); err != nil {
			t.Fatal(err)
		}
	}
	r4 := tn.propose(1, Op{Kind: AddNode, Node: testNode(4)})
	r5 := tn.propose(1, Op{Kind: AddNode, Node: testNode(5)})
	if err := tn.result(1, r4); err != nil {
		t.Fatal(err)
	}
	if err := tn.result(1, r5); err != nil {
		t.Fatal(err)
	}
	tn.tick(3)
	c := agree(t, tn)
	if !slices.Equal(numbers(c), []uint16{1, 2, 3, 4, 5}) || !slices.Equal(tn.stores[5].Status().Voters, numbers(c)) {
		t.Fatalf("nodes %v voters %v", numbers(c), tn.stores[5].Status().Voters)
	}
}

func TestInvalidOps(t *testing.T) {
	dupName := testNode(9)
	dupName.Name = "NODE2"
	dupMAC := testNode(9)
	dupMAC.Links[1].MAC = testNode(3).Links[0].MAC
	dupUUID := testNode(9)
	dupUUID.UUID = testNode(1).UUID
	ownMAC := testNode(9)
	ownMAC.Links[1].MAC = ownMAC.Links[0].MAC
	noName := testNode(9)
	noName.Name = ""
	renumber := testNode(2)
	renumber.Number = 7
	editClash := testNode(2)
	editClash.Name = "node3"
	for _, tc := range []struct {
		name string
		op   Op
		want string
	}{
		{"duplicate number", Op{Kind: AddNode, Node: testNode(2)}, `add node 2 (node2): [node node2]: number: 2 is already used by node node2`},
		{"duplicate name", Op{Kind: AddNode, Node: dupName}, `add node 9 (NODE2): [node NODE2]: name is already used by node 2 (node2)`},
		{"duplicate MAC", Op{Kind: AddNode, Node: dupMAC}, `[node node9]: link "hb1 02:00:00:00:00:03": MAC address is already used by node node3 link hb0`},
		{"duplicate UUID", Op{Kind: AddNode, Node: dupUUID}, "[node node9]: uuid: 00000000-0000-0000-0000-000000000001 is already used by node node1"},
		{"MAC twice in a node", Op{Kind: AddNode, Node: ownMAC}, `[node node9]: link "hb1 02:00:00:00:00:09": MAC address is already link 0`},
		{"no name", Op{Kind: AddNode, Node: noName}, `[node ]: bad node name: "" must have 1..64 characters`},
		{"delete missing", Op{Kind: DeleteNode, Number: 8}, "delete node 8: no node 8"},
		{"edit missing", Op{Kind: EditNode, Number: 8, Node: testNode(8)}, "edit node 8 (node8): no node 8"},
		{"edit renumber", Op{Kind: EditNode, Number: 2, Node: renumber}, "cannot renumber node 2 to 7"},
		{"edit name clash", Op{Kind: EditNode, Number: 2, Node: editClash}, `edit node 2 (node3): [node node3]: name is already used by node 2 (node3)`},
		{"bad option name", Op{Kind: SetOption, Key: "a b", Value: "1"}, `set option a b=1: [options]: option name "a b": character ' ' is not one of`},
		{"empty option name", Op{Kind: SetOption, Key: "", Value: "1"}, `[options]: option name "" must have 1..64 characters`},
		{"control char in value", Op{Kind: SetOption, Key: "k", Value: "a\nb"}, `[options]: k: value has control character '\n'`},
		{"two_node on three nodes", Op{Kind: SetQuorum, Key: "two_node", Value: "yes"}, "set quorum two_node=yes: [quorum]: two_node: needs exactly 2 nodes, found 3"},
		{"unknown quorum key", Op{Kind: SetQuorum, Key: "votes", Value: "1"}, `[quorum]: unknown key "votes"`},
		{"bad quorum value", Op{Kind: SetQuorum, Key: "expected_votes", Value: "many"}, `expected_votes: "many" is not a number`},
		{"tie breaker of a missing node", Op{Kind: SetQuorum, Key: "tie_breaker", Value: "8"}, "tie_breaker: no node has number 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := newMemNet(t, 3)
			tn.elect(1)
			// What can be checked without the state is refused at once;
			// apply must refuse it too (an op from elsewhere skips Propose).
			req, err := tn.stores[2].Propose(tc.op)
			atPropose := err != nil
			if !atPropose {
				err = tn.result(2, req)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrRejected) {
				t.Fatalf("error %v, want one containing %q and wrapping ErrRejected", err, tc.want)
			}
			if atPropose {
				st := &state{Sealed: true, Cluster: *testCluster(3)}
				st.index()
				if aerr := st.apply(tc.op); aerr == nil || aerr.Error() != err.Error() {
					t.Errorf("refused at propose with %v, but apply says %v", err, aerr)
				}
			}
			// Rejected everywhere alike, and nothing changed.
			for _, id := range tn.ids() {
				if e := tn.results[id][tn.lastReq(2)]; !atPropose && (e == nil || e.Error() != err.Error()) {
					t.Errorf("node %d reported %v", id, e)
				}
			}
			if c := agree(t, tn); !reflect.DeepEqual(c, testCluster(3)) {
				t.Fatalf("a rejected change changed the configuration: %+v", c)
			}
		})
	}

	t.Run("rejected at propose", func(t *testing.T) {
		tn := newNet(t, 1)
		tn.elect(1)
		for _, op := range []Op{{Kind: 0}, {Kind: 99}, {Kind: AddNode}, {Kind: DeleteNode}} {
			if _, err := tn.stores[1].Propose(op); !errors.Is(err, ErrRejected) {
				t.Errorf("%s: %v, want ErrRejected", op, err)
			}
		}
		if err := tn.do(1, Op{Kind: DeleteNode, Number: 1}); err == nil || !strings.Contains(err.Error(), "node 1 (node1) is the last node") {
			t.Fatalf("deleting the last node: %v", err)
		}
	})
}

// A two_node cluster grows only once two_node is off: the quorum rules
// are checked against every node change, and can be changed at run time.
func TestTwoNodeClusterGrows(t *testing.T) {
	tn := newNet(t, 2)
	tn.elect(1)
	err := tn.do(1, Op{Kind: AddNode, Node: testNode(3)})
	if err == nil || !errors.Is(err, ErrRejected) ||
		!strings.Contains(err.Error(), "add node 3 (node3): [quorum]: two_node: needs exactly 2 nodes, found 3; change the quorum settings first (concordctl quorum set)") {
		t.Fatalf("adding a third node in two_node mode: %v", err)
	}
	if c := agree(t, tn); len(c.Nodes) != 2 {
		t.Fatalf("the rejected add changed the nodes: %v", numbers(c))
	}
	if err := tn.do(2, Op{Kind: SetQuorum, Key: "two_node", Value: "no"}); err != nil {
		t.Fatalf("two_node off: %v", err)
	}
	if c := agree(t, tn); c.Quorum.TwoNode {
		t.Fatalf("after two_node=no: %+v", c.Quorum)
	}
	if err := tn.open(3).Join(); err != nil {
		t.Fatal(err)
	}
	if err := tn.do(1, Op{Kind: AddNode, Node: testNode(3)}); err != nil {
		t.Fatalf("add node 3 after two_node=no: %v", err)
	}
	tn.tick(5)
	if c := agree(t, tn); !slices.Equal(numbers(c), []uint16{1, 2, 3}) || c.Quorum.TwoNode {
		t.Fatalf("nodes %v, quorum %+v", numbers(c), c.Quorum)
	}
	// Back to two nodes: two_node can be turned on again, and then the
	// tie breaker cannot name a node that is gone.
	if err := tn.do(1, Op{Kind: SetQuorum, Key: "tie_breaker", Value: "3"}); err != nil {
		t.Fatal(err)
	}
	if err := tn.do(1, Op{Kind: DeleteNode, Number: 3}); err == nil || !strings.Contains(err.Error(), "tie_breaker: no node has number 3") {
		t.Fatalf("deleting the tie-breaker node: %v", err)
	}
	for _, op := range []Op{
		{Kind: SetQuorum, Key: "tie_breaker", Value: "lowest"},
		{Kind: DeleteNode, Number: 3},
	} {
		if err := tn.do(1, op); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	tn.tick(2)
	tn.crash(3) // the daemon of a deleted node stops
	if err := tn.do(1, Op{Kind: SetQuorum, Key: "two_node", Value: "yes"}); err != nil {
		t.Fatalf("two_node on again: %v", err)
	}
	tn.tick(5)
	if c := agree(t, tn); !c.Quorum.TwoNode || !c.Quorum.WaitForAll || len(c.Nodes) != 2 {
		t.Fatalf("back to two nodes: %v, quorum %+v, want two_node and with it wait_for_all", numbers(c), c.Quorum)
	}
}

func (tn *testNet) lastReq(id uint16) uint64 {
	s := tn.stores[id]
	return uint64(id)<<48 | s.nextReq&(1<<48-1)
}

// TestFoundersWhoJoin: the daemon joins instead of bootstrapping when it
// hears a peer that already has state; founding nodes doing so get the
// bootstrapped node's configuration, since they are voters in it.
func TestFoundersWhoJoin(t *testing.T) {
	tn := &testNet{t: t, dirs: map[uint16]string{}, stores: map[uint16]*Store{},
		results: map[uint16]map[uint64]error{}, compactEvery: defaultCompactEvery}
	if err := tn.open(1).Bootstrap(testCluster(3)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint16{2, 3} {
		if err := tn.open(id).Join(); err != nil {
			t.Fatal(err)
		}
	}
	l := tn.tickUntilLeader()
	if l != 1 {
		t.Fatalf("leader %d; only node 1 has a configuration to lead with", l)
	}
	tn.tick(3)
	if c := agree(t, tn); !reflect.DeepEqual(c, testCluster(3)) {
		t.Fatalf("configuration %+v", c)
	}
	if err := tn.do(3, Op{Kind: SetOption, Key: "x", Value: "y"}); err != nil {
		t.Fatal(err)
	}
}

// A node whose state directory is lost starts empty and joins; the
// leader's heartbeats then commit entries it does not have, which is
// ErrStateLost. Taking its replica out of Raft and back in makes the
// leader send it everything again, and the node list never changes.
func TestLostStateIsReplicatedAgain(t *testing.T) {
	tn := newNet(t, 3)
	tn.elect(1)
	if err := tn.do(1, Op{Kind: SetOption, Key: "before", Value: "loss"}); err != nil {
		t.Fatal(err)
	}
	tn.tick(5)
	tn.crash(3)
	tn.dirs[3] = "" // a new, empty state directory
	s3 := tn.open(3)
	if err := s3.Join(); err != nil {
		t.Fatal(err)
	}
	var lost error
	tn.drop = func(m testMsg) bool {
		if m.to == 3 && lost == nil {
			if err := tn.stores[3].Step(m.from, m.data); errors.Is(err, ErrStateLost) {
				lost = err
			}
			return true
		}
		return false
	}
	tn.tick(10)
	tn.drop = nil
	if lost == nil {
		t.Fatal("the empty node never saw ErrStateLost")
	}
	if err := tn.do(1, Op{Kind: SetOption, Key: "during", Value: "loss"}); err != nil {
		t.Fatal(err)
	}
	if len(s3.Cluster().Nodes) != 0 {
		t.Fatalf("the empty node has a configuration without the recovery: %+v", s3.Cluster())
	}
	if err := tn.do(2, Op{Kind: ReplicaOut, Number: 3}); err != nil {
		t.Fatalf("replica out: %v", err)
	}
	if v := tn.stores[1].Status().Voters; !slices.Equal(v, []uint16{1, 2}) {
		t.Fatalf("voters after replica out: %v", v)
	}
	if err := tn.do(1, Op{Kind: ReplicaIn, Number: 3}); err != nil {
		t.Fatalf("replica in: %v", err)
	}
	tn.tick(10)
	c := agree(t, tn)
	if !slices.Equal(numbers(c), []uint16{1, 2, 3}) || c.Options["before"] != "loss" || c.Options["during"] != "loss" {
		t.Fatalf("after recovery: nodes %v options %v", numbers(c), c.Options)
	}
	if v := tn.stores[3].Status().Voters; !slices.Equal(v, []uint16{1, 2, 3}) {
		t.Fatalf("node 3's voters after recovery: %v", v)
	}
	for _, op := range []Op{{Kind: ReplicaOut, Number: 9}, {Kind: ReplicaIn, Number: 9}} {
		if err := tn.do(1, op); err == nil || !strings.Contains(err.Error(), "no node 9") {
			t.Errorf("%s: %v", op, err)
		}
	}
}
