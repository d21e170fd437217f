package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/groupclient"
	"github.com/concord-ha/concord/lib/api/groupwire"
)

func dialClient(t *testing.T, sock string) *groupclient.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := groupclient.Dial(ctx, groupclient.Options{Socket: sock, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// nextOf returns the next event of kind, skipping others.
func nextOf(t *testing.T, s *groupclient.Session, kind groupclient.Kind, skip func(groupclient.Event) bool) groupclient.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %v: %v", kind, err)
		}
		if ev.Kind == kind && (skip == nil || !skip(ev)) {
			return ev
		}
	}
}

// A barrier across three nodes releases everyone once, with the same
// members; a member leaving fails the next one for those that entered.
// A transaction to two groups is delivered whole to each member of either.
func TestGroupBarrierAndTransaction(t *testing.T) {
	_, socks := startGroupCluster(t, 3)
	ctx := context.Background()
	var cs []*groupclient.Session
	for _, sock := range socks {
		c := dialClient(t, sock)
		if err := c.Join(ctx, "g"); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for _, c := range cs {
		nextOf(t, c, groupclient.ViewChange, func(e groupclient.Event) bool { return len(e.Members) < 3 })
	}
	for _, c := range cs {
		if err := c.Barrier(ctx, "g", "ready"); err != nil {
			t.Fatal(err)
		}
	}
	var sets []string
	for _, c := range cs {
		ev := nextOf(t, c, groupclient.BarrierDone, nil)
		if ev.Failed || ev.Barrier != "ready" || len(ev.Members) != 3 {
			t.Fatalf("barrier: %+v", ev)
		}
		sets = append(sets, fmt.Sprint(ev.Members))
	}
	if sets[0] != sets[1] || sets[1] != sets[2] {
		t.Fatalf("released with different sets: %v", sets)
	}
	// Two enter, the third leaves: the barrier fails for the two, with why.
	for _, c := range cs[:2] {
		if err := c.Barrier(ctx, "g", "second"); err != nil {
			t.Fatal(err)
		}
	}
	if err := cs[2].Leave(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs[:2] {
		ev := nextOf(t, c, groupclient.BarrierDone, nil)
		if !ev.Failed || ev.Reason == "" {
			t.Fatalf("barrier after a leave: %+v", ev)
		}
		t.Logf("failed barrier: %s", ev.Reason)
	}
	// Transaction: node 1 is in g and h, node 2 in g, node 3 in h.
	if err := cs[0].Join(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	if err := cs[2].Join(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	nextOf(t, cs[2], groupclient.ViewChange, func(e groupclient.Event) bool { return e.Group != "h" || len(e.Members) < 2 })
	if err := cs[0].Begin(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []groupwire.Part{{Group: "g", Payload: []byte("to g")}, {Group: "h", Payload: []byte("to h")}} {
		if err := cs[0].Add(ctx, p.Group, p.Payload); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs[0].Commit(ctx, groupwire.Agreed); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"[g:to g h:to h]", "[g:to g]", "[h:to h]"} {
		ev := nextOf(t, cs[i], groupclient.Transaction, nil)
		var got []string
		for _, p := range ev.Parts {
			got = append(got, p.Group+":"+string(p.Payload))
		}
		if fmt.Sprint(got) != want || ev.From != cs[0].Self() {
			t.Errorf("client %d: transaction %v from %v, want %s from %v", i, got, ev.From, want, cs[0].Self())
		}
	}
}
