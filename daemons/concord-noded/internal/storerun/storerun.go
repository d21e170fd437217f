// Package storerun runs concord-noded's replicated configuration store on
// a goroutine of its own: its fsyncs can take a long time on a busy disk,
// and they must never delay heartbeats on the daemon's event loop. The
// loop and the runner talk only through channels, and neither ever waits
// for the other: the loop's calls here do not block, and the runner's
// events wait only for the loop to read them.
package storerun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/store/confstore"
)

// Errors in Outcome.Err besides the store's own (confstore.ErrNoLeader,
// errors wrapping confstore.ErrRejected, ...).
var (
	// ErrNotRunning: the store has no replicated state yet (it is
	// joining a running cluster or waiting to bootstrap one).
	ErrNotRunning = errors.New("the replicated configuration is not running yet")
	// ErrTimeout: a proposal taken by the store was not applied here in
	// time; it may still be applied later.
	ErrTimeout = errors.New("the change was not applied in time")
)

// Defaults, in store ticks (the daemon ticks the store every 100 ms).
const (
	defaultWaitTicks  = 15  // listen for a running cluster this long before bootstrapping
	defaultHealTicks  = 30  // between checks for configured nodes that are not voters
	defaultApplyTicks = 100 // a proposal not applied after this long is given up (ErrTimeout)
)

// Proposal is a change for the store; Tag names it in the Outcomes.
type Proposal struct {
	Tag uint64
	Op  confstore.Op
}

// Outcome is what became of a proposal.
type Outcome struct {
	Tag uint64
	Err error
}

// Event is what the loop must act on.
type Event struct {
	Outgoing []confstore.Outgoing // raft messages to carry
	Applied  []confstore.Result   // changes applied here, in order
	Index    uint64               // the applied index after this event
	Cluster  *config.Cluster      // non-nil when the configuration changed
	LostTo   uint16               // this node's state was lost: ask this node (the leader) to start over

	// Proposed: proposals the store took (Err nil, the outcome follows
	// in Done) or refused (Err says why, nothing follows).
	Proposed []Outcome
	// Done: taken proposals now applied here (Err nil, or the rejection
	// the store applied), or given up (ErrTimeout).
	Done []Outcome
}

// Runner owns a confstore.Store.
type Runner struct {
	st      *confstore.Store
	log     *slog.Logger
	initial *config.Cluster // cluster.conf, for a bootstrap

	ticks chan struct{} // from the loop's ticker: one timer wakes the process, not two
	in    chan storeMsg
	props chan Proposal
	out   chan Event
	stop  <-chan struct{} // closed when Run must return

	peerInit atomic.Bool // a peer said it has replicated state
	deaf     atomic.Bool // no heartbeat link works: nothing could be heard
	init     atomic.Bool
	leader   atomic.Uint32 // the configuration leader as of the last Ready, 0: none known

	waitTicks, healTicks, applyTicks int

	pending  map[uint64]pending // by the store's request id
	ticksRun int                // ticks since start, once initialized
	lostSaid time.Time          // when the loop was last told of ErrStateLost
}

type pending struct {
	tag uint64
	at  int // ticksRun when proposed
}

type storeMsg struct {
	from uint16
	data []byte
}

// New makes a runner for st; initial is the configuration to bootstrap
// with if no running cluster is heard.
func New(st *confstore.Store, initial *config.Cluster, log *slog.Logger) *Runner {
	r := &Runner{st: st, log: log, initial: initial,
		ticks: make(chan struct{}, 1), in: make(chan storeMsg, 1024), props: make(chan Proposal, 64),
		out: make(chan Event, 256), waitTicks: defaultWaitTicks, healTicks: defaultHealTicks,
		applyTicks: defaultApplyTicks, pending: map[uint64]pending{}}
	r.init.Store(st.Initialized())
	return r
}

// Events is where the runner's events come out, in order.
func (r *Runner) Events() <-chan Event { return r.out }

// Initialized reports whether the store has replicated state.
func (r *Runner) Initialized() bool { return r.init.Load() }

// PeerInitialized records that a peer has replicated state: the store
// joins its cluster instead of bootstrapping one.
func (r *Runner) PeerInitialized() { r.peerInit.Store(true) }

// SetDeaf says whether this node can hear nothing at all (no heartbeat
// link works). While it is deaf the store neither bootstraps nor counts
// the wait for a running cluster: silence on links that do not work says
// nothing. The wait starts again once a link works, so a lone first node
// still bootstraps after listening that long.
func (r *Runner) SetDeaf(deaf bool) { r.deaf.Store(deaf) }

// Leader is the configuration leader as last known, 0 if none.
func (r *Runner) Leader() uint16 { return uint16(r.leader.Load()) }

// Step hands a peer's message over; when the store is behind it is
// dropped (Raft resends) and Step returns false.
func (r *Runner) Step(from uint16, data []byte) bool {
	select {
	case r.in <- storeMsg{from, data}:
		return true
	default:
		return false
	}
}

// Tick advances the store's clock; a tick the store has not taken yet
// absorbs this one, as a ticker drops ticks for a slow receiver.
func (r *Runner) Tick() {
	select {
	case r.ticks <- struct{}{}:
	default:
	}
}

// Propose hands p to the store. It returns false, and the store never
// sees p, when the store is behind: propose again later. Otherwise the
// outcome comes in a later Event's Proposed, and if taken, in Done.
func (r *Runner) Propose(p Proposal) bool {
	select {
	case r.props <- p:
		return true
	default:
		return false
	}
}

// send hands ev to the loop; false once the runner is stopping, when the
// loop may be gone.
func (r *Runner) send(ev Event) bool {
	select {
	case r.out <- ev:
		return true
	case <-r.stop:
		return false
	}
}

// Run serves the store until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	r.stop = ctx.Done()
	waited := 0
	saidDeaf := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.ticks:
			if r.st.Initialized() {
				r.st.Tick()
				r.ticksRun++
				if r.ticksRun%r.healTicks == 0 {
					r.heal()
				}
				r.expire()
				break
			}
			if r.deaf.Load() && !r.peerInit.Load() {
				if !saidDeaf {
					r.log.Warn("not bootstrapping the replicated configuration: no heartbeat link works, so a running cluster could not be heard; waiting for a link")
					saidDeaf = true
				}
				waited = 0
				break
			}
			if saidDeaf {
				r.log.Info("a heartbeat link works: listening for a running cluster before bootstrapping the replicated configuration")
				saidDeaf = false
			}
			waited++
			switch {
			case r.peerInit.Load():
				r.log.Info("joining the replicated configuration of a running cluster")
				if err := r.st.Join(); err != nil {
					r.log.Error("config store: join failed", "err", err)
				}
			case waited >= r.waitTicks:
				r.log.Info("no running cluster heard: bootstrapping the replicated configuration", "nodes", len(r.initial.Nodes))
				if err := r.st.Bootstrap(r.initial); err != nil {
					r.log.Error("config store: bootstrap failed", "err", err)
				}
			}
			r.init.Store(r.st.Initialized())
		case m := <-r.in:
			if !r.st.Initialized() {
				break
			}
			if err := r.st.Step(m.from, m.data); err != nil {
				r.log.Debug("config message rejected", "from", m.from, "err", err)
				if errors.Is(err, confstore.ErrStateLost) && time.Since(r.lostSaid) > 5*time.Second {
					r.lostSaid = time.Now()
					r.send(Event{LostTo: m.from})
				}
			}
		case p := <-r.props:
			if !r.send(Event{Proposed: []Outcome{{Tag: p.Tag, Err: r.propose(p)}}}) {
				return
			}
		}
		r.drain()
	}
}

// propose hands p to the store and remembers it until its outcome.
func (r *Runner) propose(p Proposal) error {
	if !r.st.Initialized() {
		return ErrNotRunning
	}
	id, err := r.st.Propose(p.Op)
	if err != nil {
		return err
	}
	r.pending[id] = pending{tag: p.Tag, at: r.ticksRun}
	return nil
}

// expire gives up proposals that were not applied in time: the store
// retries a proposal only a few times, and a result may never come.
func (r *Runner) expire() {
	var done []Outcome
	for id, p := range r.pending {
		if r.ticksRun-p.at >= r.applyTicks {
			done = append(done, Outcome{Tag: p.tag, Err: ErrTimeout})
			delete(r.pending, id)
		}
	}
	if len(done) > 0 {
		r.send(Event{Done: done})
	}
}

// heal, on the leader, brings back in every configured node that is not a
// voter: a ReplicaOut whose ReplicaIn was lost with a leader.
func (r *Runner) heal() {
	if st := r.st.Status(); st.Leader != st.Self {
		return
	}
	for _, n := range r.st.NonVoters() {
		r.log.Warn("configured node is not a voter of the replicated configuration; taking it back in", "node", n)
		if _, err := r.st.Propose(confstore.Op{Kind: confstore.ReplicaIn, Number: n}); err != nil {
			r.log.Warn("config store: replica in failed", "node", n, "err", err)
		}
	}
}

func (r *Runner) drain() {
	for r.st.Initialized() {
		rd, ok := r.st.Ready()
		if !ok {
			return
		}
		if err := r.st.Advance(rd); err != nil {
			// Without durable state this node must not go on acknowledging.
			r.log.Error("config store: cannot persist; stopping", "err", err)
			os.Exit(1)
		}
		st := r.st.Status()
		if old := r.leader.Swap(uint32(st.Leader)); old != uint32(st.Leader) {
			// Raft's own election chatter is at debug level; this is the
			// one line an admin needs.
			if st.Leader != 0 {
				r.log.Info(fmt.Sprintf("configuration leader is node %d (term %d)", st.Leader, st.Term),
					"leader", st.Leader, "term", st.Term)
			} else {
				r.log.Info("no configuration leader: electing one (changes wait meanwhile)", "previous", old)
			}
		}
		ev := Event{Outgoing: rd.Outgoing, Applied: rd.Applied, Index: st.Applied}
		if rd.Changed {
			if c := r.st.Cluster(); len(c.Nodes) > 0 {
				ev.Cluster = c
			}
		}
		for _, res := range rd.Applied {
			if p, ok := r.pending[res.ReqID]; ok {
				ev.Done = append(ev.Done, Outcome{Tag: p.tag, Err: res.Err})
				delete(r.pending, res.ReqID)
			}
		}
		if !r.send(ev) {
			return
		}
	}
}
