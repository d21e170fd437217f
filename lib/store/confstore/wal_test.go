package confstore

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func TestRecordGolden(t *testing.T) {
	got := hex.EncodeToString(appendRecord(nil, []byte{kindBatch, 0, 0, 0}))
	// length 4, CRC-32C of the length, CRC-32C of the body, body;
	// the checksums were computed independently with a bitwise CRC-32C.
	const want = "04000000" + "347a4533" + "7fe12295" + "01000000"
	if got != want {
		t.Fatalf("record = %s, want %s", got, want)
	}
}

func TestReadRecordErrors(t *testing.T) {
	good := appendRecord(nil, []byte{kindBatch, 0, 0, 0})
	badHeader := bytes.Clone(good)
	badHeader[0] = 5
	zeroLen := appendRecord(nil, nil)
	badBodyLast := bytes.Clone(good)
	badBodyLast[len(badBodyLast)-1] ^= 1
	badBodyMiddle := append(bytes.Clone(badBodyLast), good...)
	big := appendRecord(nil, append([]byte{kindBatch}, bytes.Repeat([]byte{7}, 1500)...))
	unwritten := bytes.Clone(big)
	clear(unwritten[1024:])
	for _, tc := range []struct {
		name string
		in   []byte
		torn bool
		want string // error substring; "" for success
	}{
		{"good", good, false, ""},
		{"short header", good[:7], true, "7 header bytes of 12"},
		{"zeroed header", make([]byte, 40), true, "zeroed header"},
		{"header checksum", badHeader, false, "header checksum mismatch"},
		{"zero length", zeroLen, false, "bad record length 0"},
		{"body past the end", good[:len(good)-1], true, "record of 4 bytes, 3 present"},
		{"bad body, last record", badBodyLast, false, "body checksum mismatch"},
		{"last record, unwritten sector", unwritten, true, "body checksum mismatch in last record, unwritten sector"},
		{"bad body, more follows", badBodyMiddle, false, "body checksum mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, n, err := readRecord(tc.in, 0)
			if tc.want == "" {
				if err != nil || n != len(tc.in) {
					t.Fatalf("n=%d err=%v", n, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errTorn) != tc.torn {
				t.Fatalf("err = %v (torn %v), want %q (torn %v)", err, errors.Is(err, errTorn), tc.want, tc.torn)
			}
		})
	}
}

func TestBatchRoundTrip(t *testing.T) {
	bt := batch{
		hs:   &raftpb.HardState{Term: proto.Uint64(3), Vote: proto.Uint64(2), Commit: proto.Uint64(7)},
		snap: raftpb.EnsureSnapshot(&raftpb.Snapshot{Data: []byte(`{"version":1}`)}),
		entries: []*raftpb.Entry{
			{Index: proto.Uint64(8), Term: proto.Uint64(3), Type: raftpb.EntryNormal.Enum(), Data: []byte("x")},
			{Index: proto.Uint64(9), Term: proto.Uint64(3), Type: raftpb.EntryConfChange.Enum()},
		},
	}
	body, err := encodeBatch(bt)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBatch(body)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.hs, bt.hs) || !proto.Equal(got.snap, bt.snap) || len(got.entries) != 2 ||
		!proto.Equal(got.entries[0], bt.entries[0]) || !proto.Equal(got.entries[1], bt.entries[1]) {
		t.Fatalf("round trip: %+v", got)
	}
	bt.entries[1].Index = proto.Uint64(11)
	body, _ = encodeBatch(bt)
	if _, err := decodeBatch(body); err == nil || !strings.Contains(err.Error(), "index 11 does not follow 8") {
		t.Fatalf("gap in a batch: %v", err)
	}
}

// changedNet returns a closed 3-node network with a few changes applied.
func changedNet(t *testing.T) *testNet {
	tn := newNet(t, 3)
	tn.elect(1)
	for _, v := range []string{"1", "2", "3"} {
		if err := tn.do(1, Op{Kind: SetOption, Key: "k" + v, Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	tn.tick(2)
	for _, id := range tn.ids() {
		tn.crash(id)
	}
	return tn
}

func TestTornTailRecovery(t *testing.T) {
	rec := appendRecord(nil, append([]byte{kindBatch}, bytes.Repeat([]byte{9}, 2000)...))
	torn := bytes.Clone(rec)
	clear(torn[1500:])
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		{"half a header", rec[:5]},
		{"header, half a body", rec[:headerSize+3]},
		{"zero-filled extension", make([]byte, 100)},
		{"whole record, a sector unwritten", torn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := changedNet(t)
			path := filepath.Join(tn.dirs[2], WALFile)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tc.tail)
			f.Close()
			s := tn.open(2)
			if st2, _ := os.Stat(path); st2.Size() != st.Size() {
				t.Fatalf("log is %d bytes after recovery, want the %d before the torn write", st2.Size(), st.Size())
			}
			if v := s.Cluster().Options["k3"]; v != "3" {
				t.Fatalf("state after recovery: %v", s.Cluster().Options)
			}
			tn.open(1)
			tn.tickUntilLeader()
			if err := tn.do(2, Op{Kind: SetOption, Key: "after", Value: "torn"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCorruptFilesAreErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		file   string
		damage func(b []byte) []byte
		want   string
	}{
		{"first record body", WALFile, func(b []byte) []byte { b[headerSize+2] ^= 1; return b },
			"raft.wal: corrupt record at offset 0: body checksum mismatch"},
		{"first record header", WALFile, func(b []byte) []byte { b[1] ^= 1; return b },
			"raft.wal: corrupt record at offset 0: header checksum mismatch"},
		{"undecodable batch", WALFile, func(b []byte) []byte {
			bad := appendRecord(nil, []byte{kindBatch, 0xff})
			return append(bad, b...)
		}, "raft.wal: corrupt record at offset 0: hard state: bad length"},
		{"last record bit flip", WALFile, func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
			"raft.wal: corrupt record at offset"},
		{"snapshot", SnapFile, func(b []byte) []byte { b[len(b)-3] ^= 1; return b },
			"raft.snap: corrupt snapshot"},
		{"snapshot cut short", SnapFile, func(b []byte) []byte { return b[:len(b)-3] },
			"raft.snap: corrupt snapshot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := changedNet(t)
			path := filepath.Join(tn.dirs[3], tc.file)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = Open(tn.dirs[3], 3, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("open: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestCrashDuringCompaction: the new snapshot is written but the log
// was not yet rewritten; replay reads the new snapshot with the old log.
func TestCrashDuringCompaction(t *testing.T) {
	tn := newNet(t, 3)
	tn.elect(1)
	for _, v := range []string{"a", "b"} {
		if err := tn.do(1, Op{Kind: SetOption, Key: v, Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	tn.tick(2)
	oldWAL, err := os.ReadFile(filepath.Join(tn.dirs[2], WALFile))
	if err != nil {
		t.Fatal(err)
	}
	// Adding a node snapshots and compacts on every member.
	if err := tn.open(4).Join(); err != nil {
		t.Fatal(err)
	}
	if err := tn.do(1, Op{Kind: AddNode, Node: testNode(4)}); err != nil {
		t.Fatal(err)
	}
	if err := tn.do(1, Op{Kind: SetOption, Key: "c", Value: "c"}); err != nil {
		t.Fatal(err)
	}
	tn.tick(2)
	want := agree(t, tn)
	tn.crash(2)
	// The old log plus what came after it, as an uncompacted log would be.
	newWAL, _ := os.ReadFile(filepath.Join(tn.dirs[2], WALFile))
	if err := os.WriteFile(filepath.Join(tn.dirs[2], WALFile), append(oldWAL, newWAL...), 0o600); err != nil {
		t.Fatal(err)
	}
	s := tn.open(2)
	if c := s.Cluster(); !reflect.DeepEqual(c, want) {
		t.Fatalf("after replaying the old log over the new snapshot:\n%+v\nwant\n%+v", c, want)
	}
	tn.tick(3)
	agree(t, tn)
}

func TestStepBadBytes(t *testing.T) {
	msg := func(m *raftpb.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	u := proto.Uint64
	for _, tc := range []struct {
		name string
		from uint16
		data []byte
		want string
	}{
		{"garbage", 2, []byte{0xff, 0xff, 0xff}, "message from node 2"},
		{"empty", 2, nil, "message type MsgHup is not a network message"},
		{"local type", 2, msg(&raftpb.Message{Type: raftpb.MsgHup.Enum(), From: u(2), To: u(1)}), "MsgHup is not a network message"},
		{"storage type", 2, msg(&raftpb.Message{Type: raftpb.MsgStorageAppend.Enum(), From: u(2), To: u(1)}), "not a network message"},
		{"unknown type", 2, msg(&raftpb.Message{Type: raftpb.MessageType(99).Enum(), From: u(2), To: u(1)}), "not a network message"},
		{"forged sender", 2, msg(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: u(3), To: u(1)}), "claims to be from node 3"},
		{"wrong recipient", 2, msg(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: u(2), To: u(5)}), "addressed to node 5"},
		{"bad conf change proposal", 2, msg(&raftpb.Message{Type: raftpb.MsgProp.Enum(), From: u(2), To: u(1),
			Entries: []*raftpb.Entry{{Type: raftpb.EntryConfChange.Enum(), Data: []byte{0xff}}}}), "bad conf change"},
		{"conf change v2", 2, msg(&raftpb.Message{Type: raftpb.MsgProp.Enum(), From: u(2), To: u(1),
			Entries: []*raftpb.Entry{{Type: raftpb.EntryConfChangeV2.Enum()}}}), "unsupported type"},
		{"snapshot with bad state", 2, msg(&raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: u(2), To: u(1), Term: u(1),
			Snapshot: &raftpb.Snapshot{Data: []byte("{"), Metadata: &raftpb.SnapshotMetadata{Index: u(50), Term: u(1)}}}), "bad state"},
		{"appends out of order", 2, msg(&raftpb.Message{Type: raftpb.MsgApp.Enum(), From: u(2), To: u(1), Index: u(3),
			Entries: []*raftpb.Entry{{Index: u(9)}}}), "entry 0 has index 9 after index 3"},
		{"heartbeat committing beyond the log", 2, msg(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: u(2), To: u(1),
			Term: u(50), Commit: u(1000)}), "heartbeat commits index 1000 beyond our last entry"},
		{"local responses", 2, msg(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: u(2), To: u(1),
			Responses: []*raftpb.Message{{}}}), "local responses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := newNet(t, 3)
			tn.elect(3)
			err := tn.stores[1].Step(tc.from, tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Step: %v, want an error containing %q", err, tc.want)
			}
			// The store keeps working.
			if err := tn.do(1, Op{Kind: SetOption, Key: "still", Value: "fine"}); err != nil {
				t.Fatal(err)
			}
			agree(t, tn)
		})
	}
}
