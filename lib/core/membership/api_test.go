package membership

import (
	"bytes"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"id 0", Config{ID: 0}, "node id 0"},
		{"negative heartbeat", Config{ID: 1, HeartbeatTicks: -1}, "negative"},
		{"negative payload", Config{ID: 1, MaxPayload: -5}, "negative"},
	}
	for _, tc := range tests {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	n, err := New(Config{ID: 4, Peers: []NodeID{1, 4, 4, 0, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n.order, []NodeID{1, 2}) {
		t.Errorf("peers %v, want [1 2]", n.order)
	}
	rd := n.Ready()
	if len(rd.Events) != 1 || rd.Events[0].View == nil || rd.Events[0].Reason != "boot" ||
		!slices.Equal(rd.Events[0].View.Members, []NodeID{4}) {
		t.Errorf("first Ready %+v, want the boot view", rd)
	}
	n.Advance()
	if n.HasReady() {
		t.Error("HasReady after Advance")
	}
}

func TestStepRejectsBadInput(t *testing.T) {
	n, _ := New(Config{ID: 1, Peers: []NodeID{1, 2}})
	tests := []struct {
		name string
		m    Message
		want error
	}{
		{"from self", Message{Type: MsgHeartbeat, From: 1}, nil},
		{"from 0", Message{Type: MsgHeartbeat, From: 0}, nil},
		{"not a peer", Message{Type: MsgHeartbeat, From: 9}, ErrNotPeer},
		{"for another node", Message{Type: MsgNack, From: 2, To: 3}, nil},
		{"unknown type", Message{Type: 77, From: 2}, nil},
	}
	for _, tc := range tests {
		err := n.Step(tc.m)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
	// Garbage of a valid type never panics and changes no view.
	for typ := MsgHeartbeat; typ < msgTypeEnd; typ++ {
		m := Message{Type: typ, From: 2, Incarnation: 1, Round: Round{Seq: 5, Coord: 2}, Members: []NodeID{3, 1},
			Cuts: []Cut{{View: ViewID{9, 9}, Seq: 100}}, Seq: 50, Last: 1 << 62, View: ViewID{1, 2}}
		if err := n.Step(m); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	if n.view.ID.Seq != 0 {
		t.Errorf("garbage moved the view to %s", n.view.ID)
	}
}

func TestBroadcastLimits(t *testing.T) {
	n, _ := New(Config{ID: 1, Peers: []NodeID{1, 2}, MaxQueue: 3, MaxPayload: 10})
	n.following = true // hold everything in the queue
	if err := n.Broadcast("", make([]byte, 11)); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("11 bytes: %v, want ErrPayloadTooLarge", err)
	}
	if err := n.JoinGroup(""); !errors.Is(err, ErrBadGroup) {
		t.Errorf("JoinGroup(\"\"): %v, want ErrBadGroup", err)
	}
	if err := n.Broadcast(strings.Repeat("x", MaxGroupName+1), nil); !errors.Is(err, ErrBadGroup) {
		t.Errorf("long group: %v, want ErrBadGroup", err)
	}
	for i := 0; i < 3; i++ {
		if err := n.Broadcast("", make([]byte, 10)); err != nil {
			t.Fatalf("broadcast %d: %v", i, err)
		}
	}
	if err := n.Broadcast("", nil); err != ErrQueueFull {
		t.Errorf("4th broadcast: %v, want ErrQueueFull", err)
	}
	if err := n.Send(2, []byte("x")); !errors.Is(err, ErrNotMember) {
		t.Errorf("Send to a non-member: %v, want ErrNotMember", err)
	}
}

func TestSendReliableFIFO(t *testing.T) {
	s := newSim(t, 3, 3)
	settle(t, s, s.ids, 100)
	s.drop, s.dup, s.delay = 0.2, 0.1, 0.3
	const total = 300
	for i := 0; i < total; i++ {
		if err := s.unicast(1, 2); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			s.step()
		}
	}
	first := s.nextUni - total + 1
	ok := s.runUntil(2000, func() bool { return s.nodes[2].uniLast[nodeKey{1, 1}] == s.nextUni })
	if !ok {
		t.Fatalf("node 2 got unicasts up to %d, want %d (from %d)", s.nodes[2].uniLast[nodeKey{1, 1}], s.nextUni, first)
	}
	if got := s.nodes[2].n.Status().Counters.UnicastReceived; got != total {
		t.Errorf("UnicastReceived = %d, want %d (FIFO and no duplicates are checked per delivery)", got, total)
	}
	if !s.runUntil(500, func() bool { return len(s.nodes[1].n.peers[2].uQueue) == 0 }) {
		t.Error("sender never saw all acknowledgements")
	}
}

func TestSendDroppedWhenPeerLeavesView(t *testing.T) {
	s := newSim(t, 3, 3)
	settle(t, s, s.ids, 100)
	s.crash(3)
	for i := 0; i < 5; i++ {
		if err := s.unicast(1, 3); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, s, []NodeID{1, 2}, 100)
	if q := len(s.nodes[1].n.peers[3].uQueue); q != 0 {
		t.Errorf("%d unicasts still queued for a node out of the view", q)
	}
	if d := s.nodes[1].n.Status().Counters.Dropped; d != 5 {
		t.Errorf("Dropped = %d, want 5", d)
	}
}

func TestGroupDeliveryFollowsMembership(t *testing.T) {
	s := newSim(t, 5, 3)
	settle(t, s, s.ids, 100)
	mustNil(t, s.nodes[1].n.JoinGroup("db"))
	mustNil(t, s.nodes[3].n.JoinGroup("db"))
	settle(t, s, s.ids, 100)
	for _, id := range s.ids {
		if got := s.nodes[id].n.view.Groups["db"]; !slices.Equal(got, []NodeID{1, 3}) {
			t.Fatalf("node %d: group db %v, want [1 3]", id, got)
		}
	}
	mustNil(t, s.broadcast(2, "db", 8)) // a non-member may send to a group
	first := s.nextMsg
	mustNil(t, s.nodes[3].n.LeaveGroup("db"))
	settle(t, s, s.ids, 100)
	mustNil(t, s.broadcast(2, "db", 8))
	second := s.nextMsg
	settle(t, s, s.ids, 100)
	want := map[NodeID][]uint64{1: {first, second}, 2: nil, 3: {first}}
	for id, w := range want {
		if got := s.nodes[id].groupSeq["db"]; !slices.Equal(got, w) {
			t.Errorf("node %d delivered %v in db, want %v", id, got, w)
		}
	}
	// A view change carries group membership; a crashed member drops out.
	s.crash(1)
	settle(t, s, []NodeID{2, 3}, 100)
	if g, ok := s.nodes[2].n.view.Groups["db"]; ok {
		t.Errorf("group db %v after its last member crashed", g)
	}
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSetPeersRemovesNode(t *testing.T) {
	s := newSim(t, 1, 3)
	settle(t, s, s.ids, 100)
	for _, id := range []NodeID{1, 2} {
		s.nodes[id].n.SetPeers([]NodeID{1, 2})
	}
	s.ids = []NodeID{1, 2, 3} // node 3 keeps running and sending
	ok := s.runUntil(100, func() bool {
		return slices.Equal(s.nodes[1].n.view.Members, []NodeID{1, 2}) && s.converged([]NodeID{1, 2})
	})
	if !ok {
		t.Fatalf("no view without the deleted node:\n%s", s.describe())
	}
	if err := s.nodes[1].n.Step(Message{Type: MsgHeartbeat, From: 3, Incarnation: 1}); !errors.Is(err, ErrNotPeer) {
		t.Errorf("frame from deleted node: %v, want ErrNotPeer", err)
	}
	if st := s.nodes[1].n.Status(); st.NodeState(3) != "" {
		t.Errorf("deleted node still in status as %q", st.NodeState(3))
	}
}

// The same seed gives the same run, event for event.
func TestDeterministic(t *testing.T) {
	trace := func() string {
		s := newSim(t, 42, 5)
		s.record = true
		s.drop, s.dup, s.delay = 0.05, 0.05, 0.2
		var b bytes.Buffer
		for i := 0; i < 300; i++ {
			if i%3 == 0 {
				_ = s.broadcast(s.ids[i%5], "", 16)
			}
			switch i {
			case 50:
				s.partition([]NodeID{1, 2})
			case 120:
				s.heal()
			case 150:
				s.crash(4)
			case 200:
				s.restart(4)
			}
			s.step()
		}
		for _, id := range s.ids {
			for _, ev := range s.nodes[id].events {
				if ev.View != nil {
					fmt.Fprintf(&b, "%d view %s %v %s\n", id, ev.View.ID, ev.View.Members, ev.Reason)
				} else {
					fmt.Fprintf(&b, "%d msg %d %x\n", id, ev.Delivery.Seq, ev.Delivery.Payload[:8])
				}
			}
		}
		return b.String()
	}
	a, b := trace(), trace()
	if a != b {
		t.Fatal("two runs of the same seed differ")
	}
	if strings.Count(a, " view ") < 10 {
		t.Fatalf("trace too short to mean anything:\n%s", a)
	}
}

// The core must stay pure: no clocks, sockets, goroutine plumbing or OS.
func TestNoForbiddenImports(t *testing.T) {
	allowed := map[string]bool{"encoding/binary": true, "errors": true, "fmt": true, "slices": true, "strings": true}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[p] {
				t.Errorf("%s imports %q; the protocol core may import only %v", f, p, allowed)
			}
		}
	}
}
