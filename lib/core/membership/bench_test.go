package membership

import (
	"testing"
)

// BenchmarkBroadcast3Nodes measures the protocol core alone: three nodes
// on the simulated network (no encoding), 1 KiB broadcasts from all of
// them, each delivered to all three.
func BenchmarkBroadcast3Nodes(b *testing.B) {
	s := newSim(b, 1, 3)
	s.encode = false
	if !s.runUntil(100, func() bool { return s.converged(s.ids) }) {
		b.Fatal("no view")
	}
	const perTick = 30
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := s.ids[i%3]
		if err := s.broadcast(id, "", 1024); err != nil {
			b.Fatal(err)
		}
		if i%perTick == perTick-1 {
			s.step()
		}
	}
	if !s.runUntil(10000, func() bool { return s.converged(s.ids) }) {
		b.Fatal("messages not delivered")
	}
	b.StopTimer()
	for _, id := range s.ids {
		if got := len(s.nodes[id].seen); got != b.N {
			b.Fatalf("node %d delivered %d of %d", id, got, b.N)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkEncodeOrdered measures the wire encoding of a 1 KiB ordered message.
func BenchmarkEncodeOrdered(b *testing.B) {
	m := Message{Type: MsgOrdered, From: 1, Incarnation: 1 << 60, View: ViewID{9, 1}, Seq: 12345, Origin: 2,
		OriginInc: 1 << 60, MsgID: 999, Group: "db", Payload: make([]byte, 1024)}
	buf := make([]byte, 0, 2048)
	var out Message
	b.SetBytes(1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = m.AppendBinary(buf[:0])
		if err := out.UnmarshalBinary(buf); err != nil {
			b.Fatal(err)
		}
	}
}
