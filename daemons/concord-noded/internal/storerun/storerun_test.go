package storerun

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/store/confstore"
)

func oneNode(t *testing.T) (*Runner, *confstore.Store) {
	t.Helper()
	c, err := config.Parse([]byte("[cluster]\nname = solo\n\n[node n1]\nnumber = 1\nlink = hb0 02:00:00:00:00:01\n"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := confstore.Open(t.TempDir(), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(st, c, slog.New(slog.DiscardHandler)), st
}

// run starts r and ticks it until the test ends.
func run(t *testing.T, r *Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	go func() {
		for ctx.Err() == nil {
			r.Tick()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// next reads events until one has an outcome for tag.
func next(t *testing.T, r *Runner, tag uint64) (proposed, done *Outcome) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-r.Events():
			for _, o := range ev.Proposed {
				if o.Tag == tag {
					return &o, nil
				}
			}
			for _, o := range ev.Done {
				if o.Tag == tag {
					return nil, &o
				}
			}
		case <-timeout:
			t.Fatalf("no outcome for proposal %d", tag)
		}
	}
}

// A proposal's outcome comes in two steps: taken (or refused), then
// applied here; a store without state refuses at once.
func TestProposalOutcomes(t *testing.T) {
	r, _ := oneNode(t)
	r.waitTicks = 1 << 30 // no bootstrap yet
	run(t, r)
	if !r.Propose(Proposal{Tag: 1, Op: confstore.Op{Kind: confstore.SetOption, Key: "k", Value: "v"}}) {
		t.Fatal("an idle runner refused a proposal")
	}
	if p, _ := next(t, r, 1); p == nil || !errors.Is(p.Err, ErrNotRunning) {
		t.Fatalf("before bootstrap: %+v, want ErrNotRunning", p)
	}
}

func TestProposalApplied(t *testing.T) {
	r, _ := oneNode(t)
	r.waitTicks = 1
	run(t, r)
	deadline := time.Now().Add(20 * time.Second)
	for tag := uint64(1); ; tag++ {
		r.Propose(Proposal{Tag: tag, Op: confstore.Op{Kind: confstore.SetOption, Key: "k", Value: "v"}})
		p, _ := next(t, r, tag)
		if p.Err == nil {
			if _, d := next(t, r, tag); d == nil || d.Err != nil {
				t.Fatalf("taken proposal %d: %+v, want applied", tag, d)
			}
			break
		}
		if !errors.Is(p.Err, ErrNotRunning) && !errors.Is(p.Err, confstore.ErrNoLeader) || time.Now().After(deadline) {
			t.Fatalf("proposal %d: %v", tag, p.Err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.Leader() != 1 || !r.Initialized() {
		t.Errorf("leader %d, initialized %v; want 1, true", r.Leader(), r.Initialized())
	}
}

// A taken proposal that is never applied is given up after applyTicks.
func TestProposalTimeout(t *testing.T) {
	r, st := oneNode(t)
	if err := st.Bootstrap(r.initial); err != nil {
		t.Fatal(err)
	}
	r.init.Store(true)
	r.applyTicks = 3
	r.pending[99] = pending{tag: 7, at: 0} // taken, never to be applied
	run(t, r)
	if _, d := next(t, r, 7); d == nil || !errors.Is(d.Err, ErrTimeout) {
		t.Fatalf("%+v, want ErrTimeout", d)
	}
}

// Propose never blocks the loop: a full queue says so.
func TestProposeDoesNotBlock(t *testing.T) {
	r, _ := oneNode(t)
	n := 0
	for r.Propose(Proposal{Tag: uint64(n)}) {
		n++
		if n > 1000 {
			t.Fatal("Propose took 1000 proposals without a running store")
		}
	}
	if n != cap(r.props) {
		t.Errorf("took %d proposals, want %d", n, cap(r.props))
	}
}

// tickSynced hands the runner one tick and returns once it was handled:
// the tick is taken before the proposal sent after it, and a proposal is
// answered only after everything the runner took before it.
func tickSynced(t *testing.T, r *Runner, tag uint64) *Outcome {
	t.Helper()
	r.Tick()
	for len(r.ticks) > 0 {
		time.Sleep(time.Millisecond)
	}
	if !r.Propose(Proposal{Tag: tag, Op: confstore.Op{Kind: confstore.SetOption, Key: "k", Value: "v"}}) {
		t.Fatal("the runner refused a proposal")
	}
	p, _ := next(t, r, tag)
	return p
}

// A node that hears nothing (no heartbeat link works) does not bootstrap
// however long it waits; once a link works it listens the whole wait
// again, then bootstraps, as a lone first node must.
func TestDeafNodeDoesNotBootstrap(t *testing.T) {
	r, _ := oneNode(t)
	r.waitTicks = 3
	r.SetDeaf(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	tag := uint64(0)
	for range 3 * r.waitTicks {
		tag++
		if p := tickSynced(t, r, tag); !errors.Is(p.Err, ErrNotRunning) || r.Initialized() {
			t.Fatalf("deaf, tick %d: bootstrapped (%v)", tag, p.Err)
		}
	}
	r.SetDeaf(false)
	for range r.waitTicks - 1 {
		tag++
		if tickSynced(t, r, tag); r.Initialized() {
			t.Fatalf("bootstrapped %d ticks after a link came to work, want %d", tag-uint64(3*r.waitTicks), r.waitTicks)
		}
	}
	tickSynced(t, r, tag+1)
	if !r.Initialized() {
		t.Fatalf("not bootstrapped %d ticks after a link came to work", r.waitTicks)
	}
}
