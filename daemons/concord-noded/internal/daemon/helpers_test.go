package daemon

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/nodebus"
)

// recorder hears a test daemon's events, as the D-Bus adapter would.
type recorder struct {
	nopEvents
	d *Daemon

	mu    sync.Mutex
	jobs  []string          // "new 1 waiting", "changed 1 running", "removed 1 done": in order
	ended map[uint32]jobEnd // removed jobs
}

type jobEnd struct {
	result, message string
	status          nodebus.Status // the daemon's status when the job ended
}

func (r *recorder) JobNew(j nodebus.Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, fmt.Sprintf("new %d %s %s %s", j.ID, j.Kind, j.Target, j.State))
}

func (r *recorder) JobChanged(j nodebus.Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, fmt.Sprintf("changed %d %s", j.ID, j.State))
}

func (r *recorder) JobRemoved(j nodebus.Job, result, message string) {
	s := r.d.Status() // the loop calls this: Status must not wait for it
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, fmt.Sprintf("removed %d %s", j.ID, result))
	r.ended[j.ID] = jobEnd{result: result, message: message, status: s}
}

func (r *recorder) end(id uint32) (jobEnd, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.ended[id]
	return e, ok
}

func (r *recorder) jobLog() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.jobs...)
}

// change starts a job and waits for its end: nil when done, else the
// error the start returned or the job's failure.
func (n *testNode) change(t *testing.T, start func(d *Daemon) (nodebus.Job, error)) error {
	t.Helper()
	j, err := start(n.d)
	if err != nil {
		return err
	}
	_, err = n.wait(t, j)
	return err
}

// wait waits for job j to end and returns how.
func (n *testNode) wait(t *testing.T, j nodebus.Job) (jobEnd, error) {
	t.Helper()
	var e jobEnd
	eventually(t, fmt.Sprintf("job %d (%s %s) ends", j.ID, j.Kind, j.Target), func() (bool, string) {
		var ok bool
		e, ok = n.rec.end(j.ID)
		return ok, fmt.Sprint(n.rec.jobLog())
	})
	if e.result == nodebus.ResultDone {
		return e, nil
	}
	return e, nodebus.ParseFailure(e.message)
}

func (n *testNode) addNode(t *testing.T, name string, number uint16, votes uint32, links []string, attrs map[string]string) error {
	t.Helper()
	return n.change(t, func(d *Daemon) (nodebus.Job, error) {
		j, _, err := d.AddNode(name, number, votes, links, attrs)
		return j, err
	})
}

// cfg is the configuration in force on n.
func (n *testNode) cfg() *config.Cluster {
	var c *config.Cluster
	n.d.call(func() { c = n.d.cfg })
	return c
}

func errorName(err error) string {
	var e *nodebus.Error
	if errors.As(err, &e) {
		return e.Name
	}
	return fmt.Sprintf("%v (no name)", err)
}
