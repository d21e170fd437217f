package confstore

import (
	"testing"
)

// BenchmarkCommit measures one SetOption from proposal to applied on all
// three members of an in-process network, fsyncs included, and reports the
// largest raft message seen.
func BenchmarkCommit(b *testing.B) {
	tn := newNet(b, 3)
	tn.elect(1)
	largest := 0
	tn.drop = func(m testMsg) bool {
		largest = max(largest, len(m.data))
		return false
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req, err := tn.stores[2].Propose(Op{Kind: SetOption, Key: "k", Value: string(rune('a' + i%26))})
		if err != nil {
			b.Fatal(err)
		}
		tn.stabilize()
		if _, ok := tn.results[3][req]; !ok {
			b.Fatal("not applied")
		}
	}
	b.ReportMetric(float64(largest), "max-msg-bytes")
}

// BenchmarkSnapshotSize reports the size of the raft message that carries a
// five-node configuration to a joining node.
func BenchmarkSnapshotSize(b *testing.B) {
	tn := newNet(b, 5)
	tn.elect(1)
	snapBytes := 0
	tn.drop = func(m testMsg) bool {
		if m.to == 6 {
			snapBytes = max(snapBytes, len(m.data))
		}
		return false
	}
	if err := tn.open(6).Join(); err != nil {
		b.Fatal(err)
	}
	if err := tn.do(1, Op{Kind: AddNode, Node: testNode(6)}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
	}
	b.ReportMetric(float64(snapBytes), "snapshot-msg-bytes")
}
