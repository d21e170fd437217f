package daemon

import (
	"errors"
	"time"

	"github.com/concord-ha/concord/daemons/concord-noded/internal/storerun"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/store/confstore"
)

// A job is a change to the replicated configuration, driven by the loop:
// it is proposed to the store runner at once, proposed again on the
// store's ticks while there is no leader (just after a restart an
// election takes a second or two), and ends when the store says it was
// applied here, rejected, or not applied in time. Nothing waits for it:
// the events tell its end.
type job struct {
	info     nodebus.Job
	ops      []confstore.Op // still to apply, in order; ops[0] is current
	since    uint64         // tick at which ops[0] began waiting for a leader
	asking   bool           // ops[0] is with the store runner, its outcome due
	waitErr  error          // why the store did not take ops[0] last time
	internal bool           // the daemon's own (see replicaLost): no events
	// onEnd, if set, hears the job's end: nil when done.
	onEnd func(err *nodebus.Error)
}

type jobTable struct {
	next uint32
	byID map[uint32]*job
}

// defaultLeaderWait is how long a job waits for a configuration leader
// before it fails.
const defaultLeaderWait = 6 * time.Second

// applyWait is how long the store runner waits for a change to be applied
// (storerun's 100 ticks of 100 ms), for the message.
const applyWait = 10 * time.Second

// startJob makes a job of ops and proposes its first op.
func (d *Daemon) startJob(kind, target string, ops ...confstore.Op) *job {
	d.jobs.next++
	j := &job{info: nodebus.Job{ID: d.jobs.next, Kind: kind, Target: target, State: nodebus.JobWaiting},
		ops: ops, since: d.tick}
	d.jobs.byID[j.info.ID] = j
	return j
}

// announce tells the events of a new job and sets it going.
func (d *Daemon) announce(j *job) {
	if !j.internal {
		d.events.JobNew(j.info)
	}
	d.proposeJob(j)
}

// proposeJob hands the job's current op to the store runner, unless it is
// there already; if the runner is behind, a later tick tries again.
func (d *Daemon) proposeJob(j *job) {
	if j.asking {
		return
	}
	j.asking = d.store.Propose(storerun.Proposal{Tag: uint64(j.info.ID), Op: j.ops[0]})
}

// retryJobs, on every store tick, proposes again the jobs that wait for a
// leader, and fails those that waited too long.
func (d *Daemon) retryJobs() {
	for _, j := range d.jobs.byID {
		if j.info.State != nodebus.JobWaiting || j.asking {
			continue
		}
		if d.tick-j.since >= d.ticks(d.leaderWait) {
			if errors.Is(j.waitErr, storerun.ErrNotRunning) {
				d.endJob(j, nodebus.Errorf(nodebus.ErrNoLeader, "%v", j.waitErr))
			} else {
				d.endJob(j, nodebus.Errorf(nodebus.ErrNoLeader, "no configuration leader: %v (is the cluster quorate?)", j.waitErr))
			}
			continue
		}
		d.proposeJob(j)
	}
}

// jobProposed takes the store's word on a proposal.
func (d *Daemon) jobProposed(o storerun.Outcome) {
	j := d.jobs.byID[uint32(o.Tag)]
	if j == nil {
		return
	}
	j.asking = false
	switch {
	case o.Err == nil:
		d.setJobState(j, nodebus.JobRunning)
	case errors.Is(o.Err, storerun.ErrNotRunning), errors.Is(o.Err, confstore.ErrNoLeader):
		j.waitErr = o.Err // wait for a leader: retryJobs proposes again
	default:
		d.endJob(j, nodebus.Errorf(nodebus.ErrConfigConflict, "%v", o.Err))
	}
}

// jobDone takes the store's word on an applied (or abandoned) op.
func (d *Daemon) jobDone(o storerun.Outcome) {
	j := d.jobs.byID[uint32(o.Tag)]
	if j == nil {
		return
	}
	switch {
	case errors.Is(o.Err, storerun.ErrTimeout):
		d.endJob(j, nodebus.Errorf(nodebus.ErrTimeout, "the change was not applied within %v; it may still be applied later", applyWait))
	case o.Err != nil:
		d.endJob(j, nodebus.Errorf(nodebus.ErrConfigConflict, "%v", o.Err))
	case len(j.ops) > 1:
		j.ops = j.ops[1:]
		j.since = d.tick
		d.setJobState(j, nodebus.JobWaiting)
		d.proposeJob(j)
	default:
		d.endJob(j, nil)
	}
}

func (d *Daemon) setJobState(j *job, state string) {
	if j.info.State == state {
		return
	}
	j.info.State = state
	if !j.internal {
		d.events.JobChanged(j.info)
	}
}

// endJob removes j; err nil means done.
func (d *Daemon) endJob(j *job, err *nodebus.Error) {
	delete(d.jobs.byID, j.info.ID)
	if j.onEnd != nil {
		j.onEnd(err)
	}
	if j.internal {
		return
	}
	switch {
	case err == nil:
		d.events.JobRemoved(j.info, nodebus.ResultDone, j.ops[len(j.ops)-1].String())
	case err.Name == nodebus.ErrTimeout:
		d.events.JobRemoved(j.info, nodebus.ResultTimeout, nodebus.FailureMessage(err))
	default:
		d.events.JobRemoved(j.info, nodebus.ResultFailed, nodebus.FailureMessage(err))
	}
}
