package daemon

import (
	"log/slog"
	"strings"
	"testing"
)

// Issue 8, item 6: raft's internals (elections, pre-votes) are debug
// lines; at info level the journal says who leads in Concord's words.
func TestRaftInternalsAreDebugLines(t *testing.T) {
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	c := testConfig(t, 3)
	logs := make([]*logBuf, 3)
	var nodes []*testNode
	for i, name := range []string{"n1", "n2", "n3"} {
		logs[i] = &logBuf{}
		log := slog.New(slog.NewTextHandler(logs[i], &slog.HandlerOptions{Level: slog.LevelInfo}))
		nodes = append(nodes, startNodeOpts(t, h, c, Options{NodeName: name, StateDir: t.TempDir(), Version: "test", Logger: log}, nil))
	}
	eventually(t, "a configuration leader known everywhere", func() (bool, string) {
		for _, n := range nodes {
			if s := n.d.Status(); s.Config.Leader == 0 {
				return false, s.LocalName + " knows no leader"
			}
		}
		for i, l := range logs {
			if !strings.Contains(l.String(), "configuration leader is node") {
				return false, nodes[i].d.self.Name + " has not logged the leader"
			}
		}
		return true, ""
	})
	for i, l := range logs {
		for _, line := range strings.Split(l.String(), "\n") {
			if strings.Contains(line, "raft:") {
				t.Errorf("%s logs raft internals at info level or above: %s", nodes[i].d.self.Name, line)
			}
		}
	}
}
