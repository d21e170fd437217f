package daemon

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/daemons/concord-noded/internal/storerun"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/store/confstore"
)

// A change is a job: announced before the request returns, running once
// the store took it, removed as done once applied here, and by then the
// change is in the status that D-Bus readers see.
func TestChangeIsAJob(t *testing.T) {
	_, _, ns := startCluster(t, 3)
	n := ns[1]
	j, num, err := n.d.AddNode("n4", 0, 1, []string{"hb0 02:00:00:00:00:04"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if num != 4 || j.Kind != nodebus.JobAddNode || j.Target != "n4" || j.State != nodebus.JobWaiting {
		t.Fatalf("AddNode: job %+v, number %d", j, num)
	}
	if log := n.rec.jobLog(); !slices.Contains(log, fmt.Sprintf("new %d add-node n4 waiting", j.ID)) {
		t.Fatalf("AddNode returned before the job was announced: %v", log)
	}
	end, err := n.wait(t, j)
	if err != nil {
		t.Fatal(err)
	}
	if end.message != "add node 4 (n4)" {
		t.Errorf("done message %q", end.message)
	}
	if len(end.status.Nodes) != 4 || end.status.Nodes[3].Name != "n4" {
		t.Errorf("when the job ended, the status had %d nodes: the change was not in force yet", len(end.status.Nodes))
	}
	want := []string{fmt.Sprintf("new %d add-node n4 waiting", j.ID), fmt.Sprintf("changed %d running", j.ID), fmt.Sprintf("removed %d done", j.ID)}
	if log := n.rec.jobLog(); !slices.Equal(log, want) {
		t.Errorf("job events %v, want %v", log, want)
	}
	// Bad arguments are refused at once, with no job.
	before := len(n.rec.jobLog())
	for _, start := range []func() (nodebus.Job, error){
		func() (nodebus.Job, error) { return n.d.DeleteNode("nope") },
		func() (nodebus.Job, error) { return n.d.SetOption("bad key", "x") },
		func() (nodebus.Job, error) { return n.d.SetQuorum("two_node", "maybe") },
		func() (nodebus.Job, error) { return n.d.EditNode("n1", map[string]any{"colour": "blue"}) },
		func() (nodebus.Job, error) { return n.d.EditNode("n1", map[string]any{"votes": "2"}) },
	} {
		if _, err := start(); err == nil {
			t.Error("a bad change was taken")
		} else if name := errorName(err); name != nodebus.ErrInvalidArgs && name != nodebus.ErrNoSuchNode {
			t.Errorf("%v: error %s, want InvalidArgs or NoSuchNode", err, name)
		}
	}
	if log := n.rec.jobLog(); len(log) != before {
		t.Errorf("refused changes made jobs: %v", log[before:])
	}
}

// Without a configuration leader a job waits, proposed again on the
// store's ticks, and fails with NoLeader after leaderWait; nothing blocks
// meanwhile.
func TestJobWithoutLeaderFails(t *testing.T) {
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	c := testConfig(t, 3) // the two others never start: no leader, ever
	n := startNodeWith(t, h, c, "n1", t.TempDir(), func(d *Daemon) { d.leaderWait = 2 * time.Second })
	j, err := n.d.SetOption("site", "paris")
	if err != nil {
		t.Fatal(err)
	}
	// The loop answers while the job waits.
	if _, err := n.d.Config(); err != nil {
		t.Fatal(err)
	}
	_, err = n.wait(t, j)
	if errorName(err) != nodebus.ErrNoLeader {
		t.Fatalf("job without a leader: %v, want %s", err, nodebus.ErrNoLeader)
	}
	want := []string{fmt.Sprintf("new %d set-option site waiting", j.ID), fmt.Sprintf("removed %d failed", j.ID)}
	if log := n.rec.jobLog(); !slices.Equal(log, want) {
		t.Errorf("job events %v, want %v", log, want)
	}
}

// The store's outcomes end a job as the D-Bus contract says.
func TestJobOutcomes(t *testing.T) {
	_, _, ns := startCluster(t, 2)
	n := ns[0]
	rejected := fmt.Errorf("%w: confstore: set option k=v: nope", confstore.ErrRejected)
	for _, tc := range []struct {
		name     string
		ev       func(tag uint64) storerun.Event
		result   string
		errName  string
		contains string
	}{
		{"timeout", func(tag uint64) storerun.Event {
			return storerun.Event{Done: []storerun.Outcome{{Tag: tag, Err: storerun.ErrTimeout}}}
		}, nodebus.ResultTimeout, nodebus.ErrTimeout, "may still be applied later"},
		{"rejected when applied", func(tag uint64) storerun.Event {
			return storerun.Event{Done: []storerun.Outcome{{Tag: tag, Err: rejected}}}
		}, nodebus.ResultFailed, nodebus.ErrConfigConflict, "nope"},
		{"refused when proposed", func(tag uint64) storerun.Event {
			return storerun.Event{Proposed: []storerun.Outcome{{Tag: tag, Err: rejected}}}
		}, nodebus.ResultFailed, nodebus.ErrConfigConflict, "nope"},
		{"applied", func(tag uint64) storerun.Event {
			return storerun.Event{Done: []storerun.Outcome{{Tag: tag}}}
		}, nodebus.ResultDone, "", "set option k=v"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var j *job
			// Started and ended in one turn of the loop, so the real
			// store has no say.
			n.d.call(func() {
				j = n.d.startJob(nodebus.JobSetOption, "k", confstore.Op{Kind: confstore.SetOption, Key: "k", Value: "v"})
				n.d.storeEvent(tc.ev(uint64(j.info.ID)))
			})
			end, err := n.wait(t, j.info)
			if end.result != tc.result || !strings.Contains(end.message, tc.contains) {
				t.Fatalf("result %q message %q, want %q with %q", end.result, end.message, tc.result, tc.contains)
			}
			if tc.errName != "" && errorName(err) != tc.errName {
				t.Fatalf("error %v, want %s", err, tc.errName)
			}
			if tc.errName != "" && !strings.HasPrefix(end.message, tc.errName+": ") {
				t.Fatalf("message %q does not start with the error name", end.message)
			}
		})
	}
}
