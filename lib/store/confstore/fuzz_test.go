package confstore

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/concord-ha/concord/lib/api/config"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// FuzzRecords feeds arbitrary bytes to the log decoder as replay reads a
// file: it must never panic, and what it accepts must re-encode to a
// batch that decodes the same.
func FuzzRecords(f *testing.F) {
	body, _ := encodeBatch(batch{
		hs:      &raftpb.HardState{Term: proto.Uint64(2), Commit: proto.Uint64(4)},
		entries: []*raftpb.Entry{{Index: proto.Uint64(4), Term: proto.Uint64(2), Data: encodeOp(Op{Kind: SetOption, Key: "a", Value: "b"})}},
	})
	good := appendRecord(nil, body)
	f.Add(good)
	f.Add(append(bytes.Clone(good), good[:7]...))
	f.Add(appendRecord(nil, []byte{kindBatch, 0, 0, 0}))
	f.Add([]byte{})
	snap, _ := encodeSnapRecord(raftpb.EnsureSnapshot(&raftpb.Snapshot{Data: []byte(`{"version":1}`)}))
	f.Add(snap)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeSnapFile(b)
		var r replayed
		for off := 0; off < len(b); {
			body, n, err := readRecord(b[off:], int64(off))
			if err != nil {
				return
			}
			if n <= 0 || off+n > len(b) {
				t.Fatalf("record size %d at offset %d of %d", n, off, len(b))
			}
			off += n
			bt, err := decodeBatch(body)
			if err != nil {
				continue
			}
			again, err := encodeBatch(bt)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			bt2, err := decodeBatch(again)
			if err != nil {
				t.Fatalf("re-decode: %v", err)
			}
			if !proto.Equal(bt.hs, bt2.hs) || !proto.Equal(bt.snap, bt2.snap) || len(bt.entries) != len(bt2.entries) {
				t.Fatal("batch changed in a round trip")
			}
			_ = r.apply(bt)
		}
	})
}

// FuzzEntryData feeds arbitrary entry payloads to the apply path decoders
// and to apply itself: no panics, a rejected op leaves the state alone, and
// an accepted one leaves a configuration that validates and survives
// Format and Parse.
func FuzzEntryData(f *testing.F) {
	f.Add(encodeOp(Op{Kind: AddNode, Node: testNode(4)}))
	f.Add(encodeOp(Op{Kind: DeleteNode, Number: 2}))
	f.Add(encodeOp(Op{Kind: EditNode, Number: 2, Node: testNode(2)}))
	f.Add(encodeOp(Op{Kind: SetOption, Key: "k", Value: "v"}))
	f.Add(encodeOp(Op{Kind: SetQuorum, Key: "expected_votes", Value: "5"}))
	f.Add(encodeOp(Op{Kind: SetQuorum, Key: "two_node", Value: "yes"}))
	f.Add(encodeOp(Op{Kind: ReplicaOut, Number: 2}))
	f.Add(encodeOp(Op{Kind: ReplicaIn, Number: 9}))
	st := &state{Sealed: true, Cluster: *testCluster(3)}
	f.Add(append([]byte{tagInit}, st.encode()...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 0 && b[0] == tagInit {
			_, _ = decodeState(b[1:])
			return
		}
		op, err := decodeOp(b)
		if err != nil {
			return
		}
		s := &state{Sealed: true, Cluster: *testCluster(3)}
		s.index()
		before := string(s.encode())
		err = s.apply(op)
		if err != nil && string(s.encode()) != before {
			t.Fatalf("rejected %s changed the state", op)
		}
		if err == nil {
			// What the store accepts, cluster.conf accepts and reads back.
			if verr := s.Cluster.Validate(); verr != nil {
				t.Fatalf("accepted %s leaves a configuration that does not validate: %v", op, verr)
			}
			txt := config.Format(&s.Cluster)
			back, perr := config.Parse(txt)
			if perr != nil {
				t.Fatalf("accepted %s leaves a configuration the parser refuses: %v\n%s", op, perr, txt)
			}
			if !reflect.DeepEqual(back, &s.Cluster) {
				t.Fatalf("accepted %s: Parse(Format(c)) differs:\n got %+v\nwant %+v", op, back, s.Cluster)
			}
		}
		if _, err := decodeState(s.encode()); err != nil {
			t.Fatalf("state after %s does not decode: %v", op, err)
		}
	})
}
