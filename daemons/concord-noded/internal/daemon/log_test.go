package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for the loop and the store runner.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Issue 8, item 6: raft's internals (elections, pre-votes) are debug
// lines; at info level the journal says who leads in Concord's words.
func TestRaftInternalsAreDebugLines(t *testing.T) {
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	c := testConfig(t, 3)
	logs := make([]*syncBuffer, 3)
	var nodes []*testNode
	for i, name := range []string{"n1", "n2", "n3"} {
		logs[i] = &syncBuffer{}
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
