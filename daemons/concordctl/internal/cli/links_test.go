package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

// This node's NICs that do not work are named with their reason, and so
// is what the node waits for.
func TestStatusLocalLinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(s *nodebus.Status)
	}{
		{"status-local-link-down", func(s *nodebus.Status) {
			s.Heartbeats = "on every link that works (hb1 admin-down here)"
			s.LocalLinks[1].State = "admin-down"
			s.LocalLinks[1].Reason = "administratively down; set down while concord-noded runs; left down (ip link set hb1 up)"
			s.Nodes[0].Links[1].State, s.Nodes[0].Links[1].Reason = s.LocalLinks[1].State, s.LocalLinks[1].Reason
		}},
		{"status-waiting", func(s *nodebus.Status) {
			s.State, s.View, s.Config = "joining", nodebus.ViewInfo{Seq: 1, Coordinator: 1, Members: []uint16{1}}, nodebus.ConfigInfo{}
			s.Quorum = nodebus.QuorumInfo{TotalVotes: 1, ExpectedVotes: 3, Quorum: 2, Reason: "1 of 3 votes"}
			s.LocalLinks[0].State, s.LocalLinks[0].Reason = "no-carrier", "no carrier"
			s.LocalLinks[1] = nodebus.LocalLink{Index: 1, Interface: "hb1", State: "missing", Reason: "no interface hb1"}
			s.Waiting = "a working heartbeat link: hb0 no-carrier, hb1 missing"
			s.Heartbeats = "on every link that works (hb0 no-carrier, hb1 missing here)"
			for i, l := range s.LocalLinks {
				s.Nodes[0].Links[i].State, s.Nodes[0].Links[i].Reason = l.State, l.Reason
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := threeNodes()
			s.Nodes[0].Links[1].State = "up"
			s.LocalLinks = []nodebus.LocalLink{{Index: 0, Interface: "hb0", MAC: "02:00:00:00:00:01", State: "up"},
				{Index: 1, Interface: "hb1", MAC: "02:00:00:00:01:01", State: "up"}}
			tc.edit(&s)
			var out, errb bytes.Buffer
			code := Main([]string{"status"}, Env{Stdout: &out, Stderr: &errb, Version: "test", Dial: func(string) (API, error) { return &stub{status: s}, nil }})
			if code != 0 {
				t.Fatalf("exit code %d; stderr: %s", code, errb.String())
			}
			golden := filepath.Join("testdata", tc.name+".txt")
			if *rewrite {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -rewrite and review the diff)", err)
			}
			if out.String() != string(want) {
				t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", golden, out.String(), want)
			}
		})
	}
}
