package membership

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScripts runs the scenario scripts in testdata/scripts on the
// simulated network, in the manner of etcd raft's interaction tests. Each
// command's expected output is the events the nodes emitted meanwhile
// (views and deliveries, in order) plus what the command prints. After a
// change that alters them on purpose, run
//
//	go test ./lib/core/membership -run TestScripts -rewrite
//
// and review the diff of testdata/scripts. Every invariant of sim.event is
// checked on each step, as in the randomized test.
//
// Commands (node ids are bare arguments):
//
//	cluster n=3             start nodes 1..n (each in its boot view)
//	tick [n=1]              run n ticks
//	stabilize [limit=300]   run until every side of the partition agrees on one view and is idle
//	broadcast from=2 [group=g]  node 2 broadcasts the next numbered message m<k>
//	join from=2 group=g     node 2 joins group g
//	block from=1 to=(2,3)   links 1->2 and 1->3 lose every message; unblock likewise, or all with no arguments
//	partition 1 2           nodes 1 and 2 on one side, the others on the other; heal ends it
//	crash 3, restart 3, freeze 3, thaw 3, leave 3
//	status                  per node: view, received, known stable and delivered seqs, queue
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/scripts", func(t *testing.T, path string) {
		var s *sim
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if s == nil && d.Cmd != "cluster" {
				d.Fatalf(t, "the first command must be cluster")
			}
			var out strings.Builder
			if s != nil {
				s.t, s.trace = t, &out
			}
			switch d.Cmd {
			case "cluster":
				var n int
				d.ScanArgs(t, "n", &n)
				s = newScriptSim(t, n, &out)
			case "tick":
				n := 1
				if d.HasArg("n") {
					d.ScanArgs(t, "n", &n)
				}
				s.run(n)
			case "stabilize":
				limit := 300
				if d.HasArg("limit") {
					d.ScanArgs(t, "limit", &limit)
				}
				if !s.runUntil(limit, s.sidesConverged) {
					fmt.Fprintf(&out, "not stable after %d ticks:\n%s", limit, s.describe())
				}
			case "broadcast":
				var from int
				var group string
				d.ScanArgs(t, "from", &from)
				if d.HasArg("group") {
					d.ScanArgs(t, "group", &group)
				}
				fmt.Fprintf(&out, "n%d: broadcast m%d%s\n", from, s.nextMsg+1, groupSuffix(group))
				if err := s.broadcast(NodeID(from), group, 8); err != nil {
					fmt.Fprintf(&out, "error: %v\n", err)
				}
			case "join":
				var from int
				var group string
				d.ScanArgs(t, "from", &from)
				d.ScanArgs(t, "group", &group)
				if err := s.nodes[NodeID(from)].n.JoinGroup(group); err != nil {
					fmt.Fprintf(&out, "error: %v\n", err)
				}
				s.collect(s.nodes[NodeID(from)])
			case "block", "unblock":
				if len(d.CmdArgs) == 0 && d.Cmd == "unblock" {
					clear(s.blocked)
					break
				}
				var from int
				d.ScanArgs(t, "from", &from)
				for _, to := range argIDs(t, d, "to") {
					if d.Cmd == "block" {
						s.blocked[[2]NodeID{NodeID(from), to}] = true
					} else {
						delete(s.blocked, [2]NodeID{NodeID(from), to})
					}
				}
			case "partition":
				s.partition(bareIDs(t, d))
			case "heal":
				s.heal()
			case "crash", "restart", "freeze", "thaw", "leave":
				for _, id := range bareIDs(t, d) {
					switch d.Cmd {
					case "crash":
						s.crash(id)
					case "restart":
						s.restart(id)
					case "freeze":
						s.freeze(id)
					case "thaw":
						s.thaw(id)
					case "leave":
						sn := s.nodes[id]
						sn.n.Leave()
						sn.left = true
						s.collect(sn)
					}
				}
			case "status":
				for _, id := range s.ids {
					out.WriteString(s.statusLine(id))
				}
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
			}
			s.checkOrder()
			return out.String()
		})
	})
}

func newScriptSim(t *testing.T, n int, trace *strings.Builder) *sim {
	s := newSim(t, 0, 0)
	s.scripted, s.trace = true, trace
	for i := 1; i <= n; i++ {
		s.ids = append(s.ids, NodeID(i))
	}
	for _, id := range s.ids {
		s.start(id, 1)
	}
	return s
}

// bareIDs are the command's value-less numeric arguments: "crash 2 3".
func bareIDs(t *testing.T, d *datadriven.TestData) []NodeID {
	var ids []NodeID
	for _, a := range d.CmdArgs {
		if len(a.Vals) > 0 {
			continue
		}
		id, err := strconv.Atoi(a.Key)
		if err != nil || id < 1 {
			d.Fatalf(t, "argument %q is not a node id", a.Key)
		}
		ids = append(ids, NodeID(id))
	}
	return ids
}

// argIDs are the node ids of key=3 or key=(2,3).
func argIDs(t *testing.T, d *datadriven.TestData, key string) []NodeID {
	var ids []NodeID
	for _, a := range d.CmdArgs {
		if a.Key != key {
			continue
		}
		for _, v := range a.Vals {
			id, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || id < 1 {
				d.Fatalf(t, "%s: %q is not a node id", key, v)
			}
			ids = append(ids, NodeID(id))
		}
	}
	if len(ids) == 0 {
		d.Fatalf(t, "missing argument %s", key)
	}
	return ids
}

func groupSuffix(g string) string {
	if g == "" {
		return ""
	}
	return " to group " + g
}

// traceEvent writes one event: "n2: view 3.1 [1 2] (suspected 3) g=[2]" or
// "n2: deliver m4 from n3 (seq 2)".
func (s *sim) traceEvent(sn *simNode, ev Event) {
	if v := ev.View; v != nil {
		fmt.Fprintf(s.trace, "n%d: view %s %v (%s)", sn.id, v.ID, v.Members, ev.Reason)
		for _, g := range sortedKeys(v.Groups) {
			fmt.Fprintf(s.trace, " %s=%v", g, v.Groups[g])
		}
		fmt.Fprintln(s.trace)
		return
	}
	d := ev.Delivery
	if len(d.Payload) < 8 {
		return // sim.event reports it
	}
	num := binary.BigEndian.Uint64(d.Payload)
	if d.Unicast {
		fmt.Fprintf(s.trace, "n%d: unicast u%d from n%d\n", sn.id, num, d.From)
		return
	}
	fmt.Fprintf(s.trace, "n%d: deliver m%d from n%d%s (seq %d)\n", sn.id, num, d.From, groupSuffix(d.Group), d.Seq)
}

// sidesConverged reports whether the running nodes of each side of the
// partition share one view with exactly that side and have nothing to do.
func (s *sim) sidesConverged() bool {
	sides := map[int][]NodeID{}
	for _, id := range s.running() {
		sides[s.side[id]] = append(sides[s.side[id]], id)
	}
	for _, ids := range sides {
		if !s.converged(ids) {
			return false
		}
	}
	return true
}

// statusLine is one node's state in a script's status output.
func (s *sim) statusLine(id NodeID) string {
	sn := s.nodes[id]
	n := sn.n
	var state []string
	for _, c := range []struct {
		on   bool
		word string
	}{{sn.crashed, "crashed"}, {sn.frozen, "frozen"}, {sn.left, "left"}, {n.following, "in transition"}} {
		if c.on {
			state = append(state, c.word)
		}
	}
	st := ""
	if len(state) > 0 {
		st = " (" + strings.Join(state, ", ") + ")"
	}
	return fmt.Sprintf("n%d: view %s %v received %d stable %d delivered %d queued %d%s\n",
		id, n.view.ID, n.view.Members, n.recv, n.knownStable, n.delivered, len(n.queue), st)
}
