package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/store/confstore"
)

// storeRunner owns the replicated configuration store on its own goroutine:
// its fsyncs can take a long time on a busy disk, and they must never delay
// heartbeats on the daemon's main loop.
type storeRunner struct {
	st       *confstore.Store
	log      *slog.Logger
	initial  *config.Cluster // cluster.conf, for a bootstrap
	ticks    chan struct{}   // from the main loop's ticker: one timer wakes the process, not two
	stop     <-chan struct{} // closed when run must return
	waitMax  int             // ticks to listen for a running cluster before bootstrapping
	in       chan storeMsg
	props    chan propReq
	out      chan storeEvent // to the main loop
	peerInit atomic.Bool     // a peer said it has replicated state
	init     atomic.Bool
	leader   atomic.Uint32 // the configuration leader as of the last Ready, 0: none known
	pending  map[uint64]chan error

	ticksRun  int       // ticks since start, once initialized
	lostSaid  time.Time // when the daemon was last told of ErrStateLost
	healEvery int       // ticks between checks for configured nodes that are not voters
}

type storeMsg struct {
	from uint16
	data []byte
}

type propReq struct {
	op    confstore.Op
	reply chan error // the final result, once applied here
	taken chan error // nil once proposed, or why not
}

// storeEvent is what the main loop must act on.
type storeEvent struct {
	outgoing []confstore.Outgoing
	applied  []confstore.Result
	index    uint64
	cluster  *config.Cluster // non-nil when the configuration changed
	lostTo   uint16          // this node's state was lost: ask this node (the leader) to start over
}

func newStoreRunner(st *confstore.Store, initial *config.Cluster, log *slog.Logger) *storeRunner {
	r := &storeRunner{st: st, log: log, initial: initial, ticks: make(chan struct{}, 1), waitMax: 15, healEvery: 30,
		in: make(chan storeMsg, 1024), props: make(chan propReq), out: make(chan storeEvent, 256),
		pending: map[uint64]chan error{}}
	r.init.Store(st.Initialized())
	return r
}

// step hands a peer's message over; when the store is behind, it is dropped
// (Raft resends).
func (r *storeRunner) step(from uint16, data []byte) bool {
	select {
	case r.in <- storeMsg{from, data}:
		return true
	default:
		return false
	}
}

// tick advances the store's clock; a tick the store has not taken yet
// absorbs this one, as a ticker drops ticks for a slow receiver.
func (r *storeRunner) tick() {
	select {
	case r.ticks <- struct{}{}:
	default:
	}
}

// send hands ev to the main loop; false once the runner is stopping, when
// the loop may be gone.
func (r *storeRunner) send(ev storeEvent) bool {
	select {
	case r.out <- ev:
		return true
	case <-r.stop:
		return false
	}
}

func (r *storeRunner) run(ctx context.Context) {
	r.stop = ctx.Done()
	waited := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.ticks:
			if r.st.Initialized() {
				r.st.Tick()
				r.ticksRun++
				if r.ticksRun%r.healEvery == 0 {
					r.heal()
				}
				break
			}
			waited++
			switch {
			case r.peerInit.Load():
				r.log.Info("joining the replicated configuration of a running cluster")
				if err := r.st.Join(); err != nil {
					r.log.Error("config store: join failed", "err", err)
				}
			case waited >= r.waitMax:
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
					r.send(storeEvent{lostTo: m.from})
				}
			}
		case p := <-r.props:
			if !r.st.Initialized() {
				p.taken <- errorf(nodebus.ErrNoLeader, "the replicated configuration is not running yet")
				break
			}
			id, err := r.st.Propose(p.op)
			if err != nil {
				if errors.Is(err, confstore.ErrNoLeader) {
					err = errorf(nodebus.ErrNoLeader, "no configuration leader: %v (is the cluster quorate?)", err)
				}
				p.taken <- err
				break
			}
			r.pending[id] = p.reply
			p.taken <- nil
		}
		r.drain()
	}
}

// heal, on the leader, brings back in every configured node that is not a
// voter: a ReplicaOut whose ReplicaIn was lost with a leader.
func (r *storeRunner) heal() {
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

func (r *storeRunner) drain() {
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
		r.leader.Store(uint32(st.Leader))
		ev := storeEvent{outgoing: rd.Outgoing, applied: rd.Applied, index: st.Applied}
		if rd.Changed {
			if c := r.st.Cluster(); len(c.Nodes) > 0 {
				ev.cluster = c
			}
		}
		for _, res := range rd.Applied {
			if ch, ok := r.pending[res.ReqID]; ok {
				ch <- res.Err
				delete(r.pending, res.ReqID)
			}
		}
		if !r.send(ev) {
			return
		}
	}
}

// propose hands op to the store and waits until it is applied on this node.
func (r *storeRunner) propose(op confstore.Op, timeout time.Duration) error {
	p := propReq{op: op, reply: make(chan error, 1), taken: make(chan error, 1)}
	r.props <- p
	if err := <-p.taken; err != nil {
		return err
	}
	select {
	case err := <-p.reply:
		return err
	case <-time.After(timeout):
		return errorf(nodebus.ErrTimeout, "the change was not applied within %v; it may still be applied later", timeout)
	}
}
