package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

func (s *stub) LinkStats() ([]nodebus.LinkStat, error) { return s.links, s.err }

// troubled is threeNodes with node3's key differing from this node's,
// another cluster on hb1, node2 in one more cluster, and link statistics.
func troubled() (nodebus.Status, []nodebus.LinkStat) {
	s := threeNodes()
	s.Nodes[2].AuthFailures, s.Nodes[2].LastAuthFailure, s.Nodes[2].AuthFailing = 4521, "2026-12-02T10:11:12Z", true
	// node2's key was wrong and was fixed.
	s.Nodes[1].AuthFailures, s.Nodes[1].LastAuthFailure = 12, "2026-12-01T09:00:00Z"
	s.OtherClusters = []nodebus.OtherCluster{{ClusterID: 9, MAC: "02:aa:00:00:00:01", Link: 1, Interface: "hb1", Frames: 17, Last: "2026-12-02T10:11:13Z"},
		// node2's host is in cluster 12 too: another cluster context.
		{ClusterID: 12, MAC: "02:00:00:00:00:02", Link: 0, Interface: "hb0", Frames: 9000, Last: "2026-12-02T10:11:14Z", AlsoMember: "node2"}}
	ls := []nodebus.LinkStat{
		{Node: 2, Name: "node2", Link: 0, Interface: "hb0", State: "up", FramesIn: 81234, FramesOut: 81301, LastHeardMs: 30, RTTMicros: 212},
		{Node: 2, Name: "node2", Link: 1, Interface: "hb1", State: "up", FramesIn: 80012, FramesOut: 81290, LastHeardMs: 0, RTTMicros: 1234567,
			Drops: map[string]uint64{"short": 1}},
		{Node: 3, Name: "node3", Link: 0, Interface: "hb0", State: "down", FramesOut: 81301, Drops: map[string]uint64{"auth": 4000}, LastHeardMs: -1, RTTMicros: -1},
		{Node: 3, Name: "node3", Link: 1, Interface: "hb1", State: "down", FramesIn: 5, FramesOut: 81290, Drops: map[string]uint64{"auth": 521, "stale": 2},
			LastHeardMs: 123456, RTTMicros: -1},
		{Link: 1, Interface: "hb1", Drops: map[string]uint64{"cluster": 17}, LastHeardMs: -1, RTTMicros: -1},
	}
	return s, ls
}

// concordctl status says which nodes' frames fail authentication and
// which other clusters are heard; --links adds the table of peers and
// links, and its JSON the link_stats.
func TestStatusWarningsAndLinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"status-troubled", []string{"status"}, 0},
		{"status-troubled-json", []string{"status", "--json"}, 0},
		{"status-links", []string{"status", "--links"}, 0},
		{"status-links-json", []string{"--json", "status", "--links"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, ls := troubled()
			s := &stub{status: st, links: ls}
			var out, errb bytes.Buffer
			code := Main(tc.args, Env{Stdout: &out, Stderr: &errb, Version: "test", Dial: func(string) (API, error) { return s, nil }})
			if code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tc.code, errb.String())
			}
			checkGolden(t, tc.name, "stdout:\n"+out.String()+"stderr:\n"+errb.String())
		})
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name+".txt")
	if *rewrite {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -rewrite and review the diff)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}
