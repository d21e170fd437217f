package confstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A record in raft.wal and raft.snap is framed as
//
//	offset 0   uint32 LE  n = body length (1..maxRecord)
//	offset 4   uint32 LE  CRC-32C of bytes 0..3 (header check)
//	offset 8   uint32 LE  CRC-32C of the body
//	offset 12  body[n]    kind byte, then the kind's payload
//
// A batch body (kindBatch) is what one Advance made durable:
//
//	uvarint len, HardState protobuf (len 0: none)
//	uvarint len, Snapshot protobuf  (len 0: none)
//	uvarint count, then count times: uvarint len, Entry protobuf
//
// A snapshot body (kindSnap) is one Snapshot protobuf.
const (
	headerSize = 12
	maxRecord  = 64 << 20

	kindBatch = 1
	kindSnap  = 2
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errTorn marks a damaged record that can only be an unfinished last write.
var errTorn = errors.New("torn record")

// batch is the content of one kindBatch record.
type batch struct {
	hs      *raftpb.HardState
	snap    *raftpb.Snapshot
	entries []*raftpb.Entry
}

// appendRecord frames body and appends it to dst.
func appendRecord(dst, body []byte) []byte {
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(body)))
	binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(h[0:4], crcTable))
	binary.LittleEndian.PutUint32(h[8:], crc32.Checksum(body, crcTable))
	dst = append(dst, h[:]...)
	return append(dst, body...)
}

// sectorSize is the unit a crash can leave unwritten.
const sectorSize = 512

// readRecord decodes the record at the start of b, which sits at offset off
// of its file, and returns its body and total size. Damage that only an
// unfinished append can cause wraps errTorn: an incomplete or zeroed header,
// a body running past the end of the file, or a bad body checksum in the
// last record together with an all-zero sector in it (appended space that
// was never written). Anything else is corruption.
func readRecord(b []byte, off int64) (body []byte, size int, err error) {
	if len(b) < headerSize {
		return nil, 0, fmt.Errorf("%w: %d header bytes of %d", errTorn, len(b), headerSize)
	}
	if allZero(b[:headerSize]) {
		return nil, 0, fmt.Errorf("%w: zeroed header", errTorn)
	}
	n := binary.LittleEndian.Uint32(b[0:])
	if crc32.Checksum(b[0:4], crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, errors.New("header checksum mismatch")
	}
	if n == 0 || n > maxRecord {
		return nil, 0, fmt.Errorf("bad record length %d", n)
	}
	end := headerSize + int(n)
	if end > len(b) {
		return nil, 0, fmt.Errorf("%w: record of %d bytes, %d present", errTorn, n, len(b)-headerSize)
	}
	body = b[headerSize:end]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[8:]) {
		if end == len(b) && hasZeroSector(b[:end], off) {
			return nil, 0, fmt.Errorf("%w: body checksum mismatch in last record, unwritten sector", errTorn)
		}
		return nil, 0, errors.New("body checksum mismatch")
	}
	return body, end, nil
}

// hasZeroSector reports whether rec, at file offset off, holds a
// sector-aligned stretch (clipped to rec) that is all zeros.
func hasZeroSector(rec []byte, off int64) bool {
	for start := 0; start < len(rec); {
		end := start + sectorSize - int((off+int64(start))%sectorSize)
		end = min(end, len(rec))
		if allZero(rec[start:end]) {
			return true
		}
		start = end
	}
	return false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func encodeBatch(bt batch) ([]byte, error) {
	out := []byte{kindBatch}
	put := func(m proto.Message) error {
		if m == nil {
			out = binary.AppendUvarint(out, 0)
			return nil
		}
		p, err := proto.Marshal(m)
		if err != nil {
			return err
		}
		out = binary.AppendUvarint(out, uint64(len(p)))
		out = append(out, p...)
		return nil
	}
	var hs, snap proto.Message
	if bt.hs != nil {
		hs = bt.hs
	}
	if bt.snap != nil {
		snap = bt.snap
	}
	if err := put(hs); err != nil {
		return nil, err
	}
	if err := put(snap); err != nil {
		return nil, err
	}
	out = binary.AppendUvarint(out, uint64(len(bt.entries)))
	for _, e := range bt.entries {
		if err := put(e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeBatch parses a kindBatch body.
func decodeBatch(body []byte) (batch, error) {
	var bt batch
	if len(body) == 0 || body[0] != kindBatch {
		return bt, fmt.Errorf("not a batch record (kind %v)", firstByte(body))
	}
	r := body[1:]
	next := func(what string) ([]byte, error) {
		n, k := binary.Uvarint(r)
		if k <= 0 {
			return nil, fmt.Errorf("%s: bad length", what)
		}
		r = r[k:]
		if n > uint64(len(r)) {
			return nil, fmt.Errorf("%s: length %d exceeds the %d bytes left", what, n, len(r))
		}
		p := r[:n]
		r = r[n:]
		return p, nil
	}
	p, err := next("hard state")
	if err != nil {
		return bt, err
	}
	if len(p) > 0 {
		bt.hs = &raftpb.HardState{}
		if err := proto.Unmarshal(p, bt.hs); err != nil {
			return bt, fmt.Errorf("hard state: %v", err)
		}
	}
	if p, err = next("snapshot"); err != nil {
		return bt, err
	}
	if len(p) > 0 {
		bt.snap = &raftpb.Snapshot{}
		if err := proto.Unmarshal(p, bt.snap); err != nil {
			return bt, fmt.Errorf("snapshot: %v", err)
		}
		bt.snap = raftpb.EnsureSnapshot(bt.snap)
	}
	count, k := binary.Uvarint(r)
	if k <= 0 {
		return bt, errors.New("entry count: bad varint")
	}
	r = r[k:]
	if count > uint64(len(r)) { // every entry takes at least one byte
		return bt, fmt.Errorf("entry count %d exceeds the %d bytes left", count, len(r))
	}
	bt.entries = make([]*raftpb.Entry, 0, count)
	for i := uint64(0); i < count; i++ {
		p, err := next(fmt.Sprintf("entry %d", i))
		if err != nil {
			return bt, err
		}
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(p, e); err != nil {
			return bt, fmt.Errorf("entry %d: %v", i, err)
		}
		if i > 0 && e.GetIndex() != bt.entries[i-1].GetIndex()+1 {
			return bt, fmt.Errorf("entry %d: index %d does not follow %d", i, e.GetIndex(), bt.entries[i-1].GetIndex())
		}
		bt.entries = append(bt.entries, e)
	}
	if len(r) != 0 {
		return bt, fmt.Errorf("%d trailing bytes", len(r))
	}
	return bt, nil
}

func encodeSnapRecord(s *raftpb.Snapshot) ([]byte, error) {
	p, err := proto.Marshal(s)
	if err != nil {
		return nil, err
	}
	return appendRecord(nil, append([]byte{kindSnap}, p...)), nil
}

// decodeSnapFile parses the whole content of raft.snap: exactly one kindSnap record.
func decodeSnapFile(b []byte) (*raftpb.Snapshot, error) {
	body, n, err := readRecord(b, 0)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, fmt.Errorf("%d bytes after the snapshot record", len(b)-n)
	}
	if body[0] != kindSnap {
		return nil, fmt.Errorf("not a snapshot record (kind %d)", body[0])
	}
	s := &raftpb.Snapshot{}
	if err := proto.Unmarshal(body[1:], s); err != nil {
		return nil, err
	}
	return raftpb.EnsureSnapshot(s), nil
}

func firstByte(b []byte) any {
	if len(b) == 0 {
		return "none"
	}
	return b[0]
}
