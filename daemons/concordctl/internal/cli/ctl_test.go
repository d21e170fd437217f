package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output files in testdata/")

// stub is a fake concord-noded for the CLI tests; the real one is proven on
// the nspawn cluster, and the client with the daemon's D-Bus adapter in
// daemons/concord-noded/internal/busapi.
type stub struct {
	status  nodebus.Status
	added   []string
	deleted []string
	edits   map[string]map[string]any
	err     error // returned by every call
	jobErr  error // returned by Wait
	jobs    int   // jobs started
	waited  []dbus.ObjectPath
	// unblocked counts UnblockQuorum calls
	unblocked int
	links     []nodebus.LinkStat
}

func (s *stub) job() (dbus.ObjectPath, error) {
	if s.err != nil {
		return "", s.err
	}
	s.jobs++
	return nodebus.JobPath(uint32(s.jobs)), nil
}

func (s *stub) Status() (nodebus.Status, error) { return s.status, s.err }
func (s *stub) Config() (string, error)         { return "[cluster]\nname = test\n", s.err }
func (s *stub) AddNode(name string, number uint16, votes uint32, links []string, attrs map[string]string) (dbus.ObjectPath, uint16, error) {
	if s.err != nil {
		return "", 0, s.err
	}
	s.added = append(s.added, name+" "+strings.Join(links, ","))
	if number == 0 {
		number = 4
	}
	j, err := s.job()
	return j, number, err
}
func (s *stub) DeleteNode(name string) (dbus.ObjectPath, error) {
	s.deleted = append(s.deleted, name)
	return s.job()
}
func (s *stub) SetOption(key, value string) (dbus.ObjectPath, error) {
	if key == "bad key" {
		return "", errors.New("option key \"bad key\": want letters, digits, _ . -")
	}
	return s.job()
}
func (s *stub) SetQuorum(key, value string) (dbus.ObjectPath, error) {
	if key == "two_node" && value == "yes" {
		return "", errors.New("config: [quorum]: two_node: needs exactly 2 nodes, found 3")
	}
	return s.job()
}
func (s *stub) EditNode(name string, changes map[string]any) (dbus.ObjectPath, error) {
	if s.edits == nil {
		s.edits = map[string]map[string]any{}
	}
	s.edits[name] = changes
	return s.job()
}
func (s *stub) UnblockQuorum() error {
	if s.err != nil {
		return s.err
	}
	s.unblocked++
	s.status.Quorum = nodebus.QuorumInfo{Quorate: true, TotalVotes: s.status.Quorum.TotalVotes, ExpectedVotes: s.status.Quorum.TotalVotes,
		Quorum: s.status.Quorum.TotalVotes/2 + 1, Reason: "forced by quorum unblock"}
	return nil
}
func (s *stub) Wait(ctx context.Context, job dbus.ObjectPath) (nodebus.JobEnded, error) {
	s.waited = append(s.waited, job)
	if s.jobErr != nil {
		return nodebus.JobEnded{Path: job, Result: nodebus.ResultFailed}, s.jobErr
	}
	return nodebus.JobEnded{Path: job, Result: nodebus.ResultDone}, nil
}

func threeNodes() nodebus.Status {
	node := func(n uint16, name, state string) nodebus.NodeInfo {
		return nodebus.NodeInfo{Number: n, Name: name, UUID: "00000000-0000-0000-0000-00000000000" + string(rune('0'+n)),
			State: state, Votes: 1, InView: state == "joined",
			Links: []nodebus.LinkInfo{{Index: 0, Interface: "hb0", MAC: "02:00:00:00:00:0" + string(rune('0'+n)), State: "up"},
				{Index: 1, Interface: "hb1", MAC: "02:00:00:00:01:0" + string(rune('0'+n)), State: "down"}}}
	}
	return nodebus.Status{Version: "test", Cluster: nodebus.ClusterInfo{Name: "demo", ID: 7}, LocalNode: 1, LocalName: "node1",
		State: "joined", View: nodebus.ViewInfo{Seq: 5, Coordinator: 1, Members: []uint16{1, 2}, ID: "5.1"},
		Quorum: nodebus.QuorumInfo{Quorate: true, TotalVotes: 2, ExpectedVotes: 3, Quorum: 2, Reason: "2 of 3 votes"},
		Nodes:  []nodebus.NodeInfo{node(1, "node1", "joined"), node(2, "node2", "joined"), node(3, "node3", "down")},
		Config: nodebus.ConfigInfo{Leader: 2, Index: 42}, Heartbeats: "on every link (a node is missing on a link here)"}
}

func TestCommandsOutput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"status", []string{"status"}, 0},
		{"status-json", []string{"--json", "status"}, 0},
		{"node-list", []string{"node", "list"}, 0},
		{"node-show", []string{"node", "show", "node2"}, 0},
		{"node-show-json", []string{"node", "show", "node3", "--json"}, 0},
		{"node-show-missing", []string{"node", "show", "nope"}, 1},
		{"node-add", []string{"node", "add", "node4", "--link", "hb0 02:00:00:00:00:04", "--votes", "2"}, 0},
		{"node-add-eth", []string{"node", "add", "node4", "--link", "eth1 02:00:00:00:00:04", "--link", "hb1 02:00:00:00:01:04"}, 0},
		{"node-add-nolink", []string{"node", "add", "node4"}, 2},
		{"node-add-badattr", []string{"node", "add", "node4", "--link", "hb0 02:00:00:00:00:04", "--attr", "novalue"}, 2},
		{"node-add-twonames", []string{"node", "add", "a", "b", "--link", "x y"}, 2},
		{"node-delete", []string{"node", "delete", "node3"}, 0},
		{"node-edit-nothing", []string{"node", "edit", "node3"}, 2},
		{"node-edit-votes", []string{"node", "edit", "node3", "--votes", "3"}, 0},
		{"unknown", []string{"frobnicate"}, 2},
		{"none", nil, 2},
		{"status-extra", []string{"status", "now"}, 2},
		{"config-show", []string{"config", "show"}, 0},
		{"config-set", []string{"config", "set", "site", "paris"}, 0},
		{"config-set-badkey", []string{"config", "set", "bad key", "x"}, 1},
		{"config-set-noval", []string{"config", "set", "site"}, 2},
		{"quorum-set", []string{"quorum", "set", "two_node", "no"}, 0},
		{"quorum-set-invalid", []string{"quorum", "set", "two_node", "yes"}, 1},
		{"quorum-set-noval", []string{"quorum", "set", "two_node"}, 2},
		{"group-noargs", []string{"group"}, 2},
		{"group-badverb", []string{"group", "join", "g"}, 2},
		{"group-members-noname", []string{"group", "members"}, 2},
		{"group-send-nothing", []string{"group", "send", "g"}, 2},
		{"group-send-size", []string{"group", "send", "g", "--size", "70000"}, 2},
		{"group-watch-count", []string{"group", "watch", "g", "--count", "-1"}, 2},
		{"message-retired", []string{"message", "send", "node2", "hi"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			s := &stub{status: threeNodes()}
			code := Main(tc.args, Env{Stdout: &out, Stderr: &errb, Version: "test", Dial: func(string) (API, error) { return s, nil }})
			if code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tc.code, errb.String())
			}
			got := "stdout:\n" + out.String() + "stderr:\n" + errb.String()
			golden := filepath.Join("testdata", tc.name+".txt")
			if *rewrite {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./lib/ctl -rewrite and review the diff)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestDaemonDownIsClear(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main([]string{"status"}, Env{Stdout: &out, Stderr: &errb,
		Dial: func(string) (API, error) { return nil, errors.New("concord-noded is not running") }})
	if code != 1 || !strings.Contains(errb.String(), "not running") {
		t.Fatalf("code %d stderr %q", code, errb.String())
	}
}

func TestEditPassesTypedChanges(t *testing.T) {
	s := &stub{status: threeNodes()}
	var out, errb bytes.Buffer
	code := Main([]string{"node", "edit", "node2", "--votes", "2", "--attr", "rack=r1", "--link", "hb0 02:00:00:00:00:09"},
		Env{Stdout: &out, Stderr: &errb, Dial: func(string) (API, error) { return s, nil }})
	if code != 0 {
		t.Fatalf("code %d: %s", code, errb.String())
	}
	c := s.edits["node2"]
	if c["votes"] != uint32(2) || c["attributes"].(map[string]string)["rack"] != "r1" || c["links"].([]string)[0] != "hb0 02:00:00:00:00:09" {
		t.Fatalf("changes = %#v", c)
	}
}

func TestLatencyStats(t *testing.T) {
	var l latency
	base := time.Unix(100, 0)
	for i, sd := range [][2]time.Duration{{0, 3000}, {1000, 3500}, {2000, 6000}} {
		p := fmt.Sprintf("m-%d@%d#", i, base.Add(sd[0]*time.Microsecond).UnixNano())
		l.add([]byte(p), base.Add(sd[1]*time.Microsecond))
	}
	l.add([]byte("unstamped"), base.Add(7*time.Millisecond))
	var out bytes.Buffer
	l.print(&out)
	want := "messages 4 bytes 60 rate_per_s 750 latency_median_us 3000 latency_min_us 2500 latency_max_us 4000\n"
	if out.String() != want {
		t.Fatalf("got %q want %q", out.String(), want)
	}
}
