package membership

import (
	"slices"
	"testing"
)

func TestStartupFormsOneView(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 7} {
		s := newSim(t, int64(n), n)
		if !s.runUntil(200, func() bool { return s.converged(s.running()) }) {
			t.Fatalf("%d nodes did not converge:\n%s", n, s.describe())
		}
		v := s.nodes[1].n.view
		if !slices.Equal(v.Members, s.ids) {
			t.Fatalf("view %s members %v, want %v", v.ID, v.Members, s.ids)
		}
		t.Logf("%d nodes: view %s after %d ticks", n, v.ID, s.tick)
	}
}
