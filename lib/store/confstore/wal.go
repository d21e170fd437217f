package confstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/concord-ha/concord/lib/store/atomicfile"
	"go.etcd.io/raft/v3/raftpb"
)

// wal is the append-only log file of batches.
type wal struct {
	fs   atomicfile.FS
	path string
	f    atomicfile.File
	size int64
}

// replayed is the raft state rebuilt from raft.snap and raft.wal.
type replayed struct {
	hs   *raftpb.HardState
	snap *raftpb.Snapshot // the newest snapshot; nil if none
	ents []*raftpb.Entry  // contiguous, starting right after snap
	torn int64            // offset where a torn tail was cut off, -1 if none
}

func (r *replayed) baseIndex() uint64 { return r.snap.GetMetadata().GetIndex() }

// apply folds one batch into the replay, the way raft changed its log.
func (r *replayed) apply(bt batch) error {
	if bt.snap != nil {
		// Restoring a snapshot discards the whole log.
		if bt.snap.GetMetadata().GetIndex() > r.baseIndex() {
			r.snap = bt.snap
		}
		r.ents = nil
	}
	for _, e := range bt.entries {
		base := r.baseIndex()
		i := e.GetIndex()
		if i <= base {
			continue
		}
		last := base + uint64(len(r.ents))
		if i > last+1 {
			return fmt.Errorf("entry %d leaves a gap after %d", i, last)
		}
		r.ents = append(r.ents[:i-base-1], e)
	}
	if bt.hs != nil {
		r.hs = bt.hs
	}
	return nil
}

// replayWAL reads path into r, cutting off a torn tail.
func replayWAL(fsys atomicfile.FS, path string, r *replayed) error {
	data, err := fsys.ReadFile(path)
	if err != nil {
		return err
	}
	r.torn = -1
	off := 0
	for off < len(data) {
		body, n, err := readRecord(data[off:], int64(off))
		if errors.Is(err, errTorn) {
			r.torn = int64(off)
			break
		}
		if err != nil {
			return fmt.Errorf("%s: corrupt record at offset %d: %v", path, off, err)
		}
		bt, err := decodeBatch(body)
		if err != nil {
			return fmt.Errorf("%s: corrupt record at offset %d: %v", path, off, err)
		}
		if err := r.apply(bt); err != nil {
			return fmt.Errorf("%s: record at offset %d: %v", path, off, err)
		}
		off += n
	}
	if r.torn >= 0 {
		return truncate(fsys, path, r.torn)
	}
	return nil
}

// truncate cuts path to size, durably.
func truncate(fsys atomicfile.FS, path string, size int64) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// openWAL opens path for appending.
func openWAL(fsys atomicfile.FS, path string) (*wal, error) {
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := fsys.Stat(path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &wal{fs: fsys, path: path, f: f, size: st.Size()}, nil
}

// append writes bt as one record and, if sync, fsyncs it.
func (w *wal) append(bt batch, sync bool) error {
	body, err := encodeBatch(bt)
	if err != nil {
		return fmt.Errorf("%s: encode: %v", w.path, err)
	}
	rec := appendRecord(nil, body)
	if _, err := w.f.Write(rec); err != nil {
		// Leave no half record behind for the next append to follow.
		_ = w.f.Truncate(w.size)
		return fmt.Errorf("%s: %v", w.path, err)
	}
	if sync {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("%s: fsync: %v", w.path, err)
		}
	}
	w.size += int64(len(rec))
	return nil
}

// rewrite atomically replaces the log with the single batch bt.
func (w *wal) rewrite(bt batch) error {
	body, err := encodeBatch(bt)
	if err != nil {
		return fmt.Errorf("%s: encode: %v", w.path, err)
	}
	if err := atomicfile.WriteFS(w.fs, w.path, appendRecord(nil, body), 0o600); err != nil {
		return err
	}
	nw, err := openWAL(w.fs, w.path)
	if err != nil {
		return err
	}
	w.f.Close()
	*w = *nw
	return nil
}

func (w *wal) close() error {
	if w == nil || w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// readSnapFile loads raft.snap; a missing file is no snapshot.
func readSnapFile(fsys atomicfile.FS, path string) (*raftpb.Snapshot, error) {
	b, err := fsys.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := decodeSnapFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: corrupt snapshot: %v", path, err)
	}
	return s, nil
}

func writeSnapFile(fsys atomicfile.FS, path string, s *raftpb.Snapshot) error {
	rec, err := encodeSnapRecord(s)
	if err != nil {
		return fmt.Errorf("%s: encode: %v", path, err)
	}
	return atomicfile.WriteFS(fsys, path, rec, 0o600)
}
