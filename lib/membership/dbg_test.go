package membership

import "testing"

func TestDbg(t *testing.T) {
	s := newSim(t, 3, 3)
	s.record = true
	settle(t, s, s.ids, 100)
	s.drop, s.dup, s.delay = 0.2, 0.1, 0.3
	for i := 0; i < 300; i++ {
		s.unicast(1, 2)
		if i%5 == 0 {
			s.step()
		}
	}
	s.run(500)
	p := s.nodes[1].n.peers[2]
	t.Logf("uQueue %d next %d; recv side: %d/%d last %d", len(p.uQueue), p.uNext, s.nodes[2].n.peers[1].uInc, s.nodes[2].n.peers[1].uExpect, s.nodes[2].uniLast[nodeKey{1, 1}])
	for _, v := range viewsOf(s.nodes[1]) {
		t.Logf("view %s %v", v.ID, v.Members)
	}
	t.Logf("%+v", s.nodes[1].n.Status().Counters)
}
