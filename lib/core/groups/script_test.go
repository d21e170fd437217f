package groups

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScripts runs the scenarios in testdata/scripts over the simulated
// total order; each command's output is the events local clients got
// meanwhile ("n<node> c<client>: <event>"). Every check of TestSim runs on
// each step. After an intended change, rerun with -rewrite and review the
// diff.
//
// Commands:
//
//	cluster n=3 [maxqueue=40]    nodes 1..n in one settled view
//	open node=1 [pid=100]        open a session (prints its client id)
//	join|leave node=1 client=1 group=g
//	send node=1 client=1 group=g text=hi [safe] [count=n]  (n messages hi1..hin)
//	sendto node=1 client=1 group=g to=2/1 text=hi
//	barrier node=1 client=1 group=g name=x
//	tx node=1 client=1 parts=(g=a,h=b) [safe]
//	close node=1 client=1 [died]
//	consume node=1 client=1 off|on   a client that stops or resumes reading
//	sequence                     the sequencer orders every queued message
//	receive node=1               node 1 receives everything ordered so far
//	run                          run until every node is idle
//	crash 3 | restart 3 | partition 1 2 | heal
//	lag node=3                   node 3 misses the next install of its side's view
//	members group=g              each node's view of group g
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/scripts", func(t *testing.T, path string) {
		var s *sim
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var out strings.Builder
			if s != nil {
				s.t, s.trace = t, &out
			}
			arg := func(k string) int {
				var v int
				d.ScanArgs(t, k, &v)
				return v
			}
			str := func(k string) string {
				var v string
				d.ScanArgs(t, k, &v)
				return v
			}
			order := Agreed
			if d.HasArg("safe") {
				order = Safe
			}
			var err error
			switch d.Cmd {
			case "cluster":
				mq := 40
				if d.HasArg("maxqueue") {
					mq = arg("maxqueue")
				}
				s = newSim(t, 1, arg("n"), mq)
				s.trace = &out
				s.settle()
				out.Reset()
				return "ok\n"
			case "open":
				pid := 100
				if d.HasArg("pid") {
					pid = arg("pid")
				}
				n := s.node(NodeID(arg("node")))
				id := n.core.Open(uint32(pid), 0)
				n.clients = append(n.clients, id)
				fmt.Fprintf(&out, "n%d: client %d\n", n.id, id)
			case "join", "leave":
				n := s.node(NodeID(arg("node")))
				if d.Cmd == "join" {
					err = n.core.Join(uint32(arg("client")), str("group"))
				} else {
					err = n.core.Leave(uint32(arg("client")), str("group"))
				}
			case "send":
				n := s.node(NodeID(arg("node")))
				count := 1
				if d.HasArg("count") {
					count = arg("count")
				}
				for i := 1; i <= count && err == nil; i++ {
					text := str("text")
					if count > 1 {
						text += strconv.Itoa(i)
					}
					_, err = n.core.Send(uint32(arg("client")), str("group"), order, []byte(text))
				}
			case "sendto":
				n := s.node(NodeID(arg("node")))
				var node, client int
				if _, e := fmt.Sscanf(str("to"), "%d/%d", &node, &client); e != nil {
					d.Fatalf(t, "to: %v", e)
				}
				tn := s.node(NodeID(node))
				_, err = n.core.SendTo(uint32(arg("client")), str("group"), Member{Node: tn.id, Inc: tn.inc, Client: uint32(client)}, []byte(str("text")))
			case "barrier":
				n := s.node(NodeID(arg("node")))
				cl := uint32(arg("client"))
				if err = n.core.EnterBarrier(cl, str("group"), str("name")); err == nil {
					k := mkey{n.id, n.inc, cl}
					if s.entered[k] == nil {
						s.entered[k] = map[string]bool{}
					}
					s.entered[k][str("group")+"/"+str("name")] = true
					s.client(n, cl).pending[str("group")+"/"+str("name")] = true
				}
			case "tx":
				n := s.node(NodeID(arg("node")))
				cl := uint32(arg("client"))
				var parts []string
				for _, a := range d.CmdArgs {
					if a.Key == "parts" {
						parts = a.Vals
					}
				}
				err = n.core.TxBegin(cl)
				for _, p := range parts {
					g, v, _ := strings.Cut(p, "=")
					if err == nil {
						err = n.core.TxAdd(cl, g, []byte(v))
					}
				}
				if err == nil {
					_, err = n.core.TxCommit(cl, order)
				}
			case "close":
				n := s.node(NodeID(arg("node")))
				err = n.core.Close(uint32(arg("client")), d.HasArg("died"))
			case "consume":
				n := s.node(NodeID(arg("node")))
				n.slow[uint32(arg("client"))] = d.HasArg("off")
			case "sequence":
				for _, n := range s.alive() {
					n.view.log = append(n.view.log, n.queue[n.sent:]...)
					n.sent = len(n.queue)
				}
			case "receive":
				n := s.node(NodeID(arg("node")))
				for n.recv < len(n.view.log) {
					s.receive(n)
				}
			case "run":
				for s.step(false) {
				}
			case "lag":
				s.forceLag = NodeID(arg("node"))
			case "crash", "restart", "partition":
				for _, a := range d.CmdArgs {
					id, e := strconv.Atoi(a.Key)
					if e != nil {
						d.Fatalf(t, "%s: %v", d.Cmd, e)
					}
					n := s.node(NodeID(id))
					switch d.Cmd {
					case "crash":
						n.up = false
					case "restart":
						s.start(n)
					case "partition":
						n.part = 1
					}
				}
				s.reconfigure()
			case "heal":
				for _, n := range s.nodes {
					n.part = 0
				}
				s.reconfigure()
			case "members":
				for _, n := range s.alive() {
					id, ms := n.core.Members(str("group"))
					fmt.Fprintf(&out, "n%d: %s %s [%s]\n", n.id, str("group"), id, memberList(ms))
				}
			default:
				d.Fatalf(t, "unknown command %s", d.Cmd)
			}
			if err != nil {
				fmt.Fprintf(&out, "error: %v\n", err)
			}
			for _, n := range s.alive() {
				s.drain(n)
			}
			if out.Len() == 0 {
				return "ok\n"
			}
			return out.String()
		})
	})
}
