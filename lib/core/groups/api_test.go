package groups

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func newCore(t *testing.T) *Core {
	t.Helper()
	c, err := New(Config{Node: 1, Incarnation: 7, MaxInFlight: 2, MaxPayload: 10}, ViewID{Seq: 3, Coord: 1}, []NodeID{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	c.Ready()
	return c
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		nodes []NodeID
		want  string
	}{
		{Config{}, []NodeID{1}, "node id 0"},
		{Config{Node: 1, MaxQueue: -1}, []NodeID{1}, "negative"},
		{Config{Node: 1}, []NodeID{2}, "lacks this node"},
		{Config{Node: 1}, []NodeID{2, 1}, "not sorted"},
	} {
		if _, err := New(tc.cfg, ViewID{}, tc.nodes); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v, %v) = %v, want an error naming %q", tc.cfg, tc.nodes, err, tc.want)
		}
	}
}

func TestNodeViewMustAdvance(t *testing.T) {
	c := newCore(t)
	if err := c.NodeView(ViewID{Seq: 3, Coord: 1}, []NodeID{1}, []NodeID{1}); err == nil || !strings.Contains(err.Error(), "does not follow") {
		t.Errorf("same view again: %v", err)
	}
}

// TestDeliverRejectsMalformed: each bad message is refused with a reason
// naming the fault, and changes nothing.
func TestDeliverRejectsMalformed(t *testing.T) {
	m2 := Member{Node: 2, Inc: 1, Client: 1}
	id2 := MsgID{Node: 2, Inc: 1, Seq: 1}
	for _, tc := range []struct {
		name string
		from NodeID
		m    Msg
		want string
	}{
		{"kind 0", 2, Msg{ID: id2, Sender: m2}, "unknown kind"},
		{"kind too big", 2, Msg{Kind: msgKindEnd, ID: id2, Sender: m2}, "unknown kind"},
		{"id of another node", 2, Msg{Kind: MsgJoin, ID: MsgID{Node: 3}, Sender: m2, Group: "g"}, "names node 3"},
		{"member of another node", 2, Msg{Kind: MsgJoin, ID: id2, Sender: Member{Node: 3}, Group: "g"}, "member of node 3"},
		{"empty group", 2, Msg{Kind: MsgJoin, ID: id2, Sender: m2}, "group name"},
		{"long group", 2, Msg{Kind: MsgData, ID: id2, Sender: m2, Group: strings.Repeat("g", MaxName+1)}, "group name"},
		{"bad order", 2, Msg{Kind: MsgData, ID: id2, Sender: m2, Group: "g", Order: 9}, "order"},
		{"gone joined", 2, Msg{Kind: MsgGone, ID: id2, Sender: m2, Change: Joined}, "change joined"},
		{"empty tx", 2, Msg{Kind: MsgTx, ID: id2, Sender: m2}, "empty transaction"},
		{"tx bad group", 2, Msg{Kind: MsgTx, ID: id2, Sender: m2, Parts: []Part{{Group: ""}}}, "group name"},
		{"barrier no name", 2, Msg{Kind: MsgBarrier, ID: id2, Sender: m2, Group: "g"}, "barrier"},
		{"sync for another node", 2, Msg{Kind: MsgSync, ID: id2, Sync: []SyncGroup{{Group: "g", Members: []Member{{Node: 1}}}}}, "another node"},
	} {
		c := newCore(t)
		err := c.Deliver(tc.from, tc.m, true)
		if !errors.Is(err, ErrBadMsg) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Deliver = %v, want ErrBadMsg naming %q", tc.name, err, tc.want)
		}
		if rd := c.Ready(); len(rd.Broadcast)+len(rd.Events) > 0 || len(c.held) > 0 || len(c.Groups()) > 0 {
			t.Errorf("%s: a refused message changed the state: %+v", tc.name, rd)
		}
	}
}

func TestClientCallErrors(t *testing.T) {
	c := newCore(t)
	cl := c.Open(100, 0)
	if err := c.Join(cl, ""); !errors.Is(err, ErrBadGroup) {
		t.Errorf("join of an empty name: %v", err)
	}
	if err := c.Join(99, "g"); !errors.Is(err, ErrNoSession) {
		t.Errorf("join by an unknown client: %v", err)
	}
	if err := c.Join(cl, "g"); err != nil {
		t.Fatal(err)
	}
	if err := c.Join(cl, "g"); !errors.Is(err, ErrMember) {
		t.Errorf("second join while the first is under way: %v", err)
	}
	if _, err := c.Send(cl, "g", Agreed, nil); !errors.Is(err, ErrNotMember) {
		t.Errorf("send before the join is ordered: %v", err)
	}
	if err := c.TxAdd(cl, "g", nil); !errors.Is(err, ErrNotMember) {
		t.Errorf("tx add before the join is ordered: %v", err)
	}
	// Order the join: settle the view with both nodes' syncs, then the join.
	rd := c.Ready()
	join := rd.Broadcast[0]
	if join.Kind != MsgJoin {
		t.Fatalf("broadcast %v, want join", join.Kind)
	}
	mustDeliver(t, c, 1, Msg{Kind: MsgSync, ID: MsgID{Node: 1, Inc: 7, Seq: 1}, View: ViewID{Seq: 3, Coord: 1}})
	mustDeliver(t, c, 2, Msg{Kind: MsgSync, ID: MsgID{Node: 2, Inc: 1, Seq: 1}, View: ViewID{Seq: 3, Coord: 1}})
	mustDeliver(t, c, 1, join)
	if !c.Settled() {
		t.Fatal("not settled after both syncs")
	}
	if _, err := c.Send(cl, "g", Agreed, make([]byte, 11)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("11 bytes with MaxPayload 10: %v", err)
	}
	if err := c.TxAdd(cl, "g", nil); !errors.Is(err, ErrNoTx) {
		t.Errorf("tx add without begin: %v", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := c.Send(cl, "g", Safe, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Send(cl, "g", Safe, []byte("x")); !errors.Is(err, ErrWouldBlock) {
		t.Errorf("third message with MaxInFlight 2: %v", err)
	}
	rd = c.Ready()
	mustDeliver(t, c, 1, rd.Broadcast[0])
	var writable bool
	for _, ev := range c.Ready().Events {
		writable = writable || ev.Kind == EvWritable
	}
	if !writable {
		t.Error("no EvWritable once a message in flight was ordered")
	}
	if err := c.Close(cl, true); err != nil {
		t.Fatal(err)
	}
	if err := c.Leave(cl, "g"); !errors.Is(err, ErrNoSession) {
		t.Errorf("leave after close: %v", err)
	}
}

func mustDeliver(t *testing.T, c *Core, from NodeID, m Msg) {
	t.Helper()
	if err := c.Deliver(from, m, true); err != nil {
		t.Fatal(err)
	}
}

// Observers get every group view, also of groups without local members,
// once per change (not per local member), and an empty view when the last
// member goes; Joined and Queued follow the session.
func TestViewsForObservers(t *testing.T) {
	c := newCore(t)
	mustDeliver(t, c, 1, Msg{Kind: MsgSync, ID: MsgID{Node: 1, Inc: 7, Seq: 1}, View: ViewID{Seq: 3, Coord: 1}})
	mustDeliver(t, c, 2, Msg{Kind: MsgSync, ID: MsgID{Node: 2, Inc: 1, Seq: 1}, View: ViewID{Seq: 3, Coord: 1}})
	c.Ready()
	a, b := c.Open(10, 0), c.Open(11, 0)
	for _, cl := range []uint32{a, b} {
		if err := c.Join(cl, "g"); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range c.Ready().Broadcast {
		mustDeliver(t, c, 1, m)
	}
	remote := Member{Node: 2, Inc: 1, Client: 5, PID: 50}
	mustDeliver(t, c, 2, Msg{Kind: MsgJoin, ID: MsgID{Node: 2, Inc: 1, Seq: 2}, Sender: remote, Group: "h"})
	rd := c.Ready()
	var got []string
	for _, v := range rd.Views {
		got = append(got, fmt.Sprintf("%s %s %d %v", v.Group, v.View, len(v.Members), v.Changes[0].Kind))
	}
	want := []string{"g 3.1/1 1 joined", "g 3.1/2 2 joined", "h 3.1/1 1 joined"}
	if !slices.Equal(got, want) {
		t.Errorf("views %q, want %q", got, want)
	}
	if j := c.Joined(a); !slices.Equal(j, []string{"g"}) {
		t.Errorf("Joined %v", j)
	}
	if q := c.Queued(a); q != 2 {
		t.Errorf("Queued %d, want 2 (two views unread)", q)
	}
	c.Consumed(a, 2)
	if q := c.Queued(a); q != 0 {
		t.Errorf("Queued %d after consuming 2", q)
	}
	mustDeliver(t, c, 2, Msg{Kind: MsgLeave, ID: MsgID{Node: 2, Inc: 1, Seq: 3}, Sender: remote, Group: "h"})
	rd = c.Ready()
	if len(rd.Views) != 1 || rd.Views[0].Group != "h" || len(rd.Views[0].Members) != 0 || rd.Views[0].Changes[0].Kind != Left {
		t.Errorf("the last member leaves h: %+v", rd.Views)
	}
}
