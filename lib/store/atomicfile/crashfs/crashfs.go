// Package crashfs is an in-memory atomicfile.FS for crash tests. It keeps
// apart what a program wrote and what it made durable: a file's content as
// of its last fsync, and the names in a folder as of the folder's last
// fsync. Crashes lists the states a disk may be found in if the power
// failed at that moment, from "only what was synced" to "everything",
// including a change to a file or to the names that reached the disk only
// in part.
//
// Simplifications: folders are durable once made, as is a file's mode.
package crashfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/concord-ha/concord/lib/store/atomicfile"
)

// FS is the file system. The zero value is not usable; call New.
type FS struct {
	// AfterOp, if set, is called after every operation that changes
	// something (a write, a sync, a rename, ...), e.g. to take Crashes.
	AfterOp func(op string)

	mu      sync.Mutex
	dirs    map[string]bool
	names   map[string]*inode // what a program sees now
	durable map[string]*inode // what a crash keeps for sure
	dirLog  []dirOp           // name changes not yet synced, oldest first
	temps   int
}

type inode struct {
	data   []byte   // as read now
	synced []byte   // as on disk after the last fsync
	log    []fileOp // changes since the last fsync, oldest first
	mode   os.FileMode
}

// fileOp is a write of data at off, or (data nil) a truncation to off.
type fileOp struct {
	off  int64
	data []byte
}

// dirOp sets names to inodes (nil removes the name) all at once, as a
// rename does.
type dirOp struct {
	names []string
	inos  []*inode
}

// New returns an empty file system with the root folder.
func New() *FS {
	return &FS{dirs: map[string]bool{"/": true}, names: map[string]*inode{}, durable: map[string]*inode{}}
}

var _ atomicfile.FS = (*FS)(nil)

func (f *FS) done(op string) {
	if f.AfterOp != nil {
		f.AfterOp(op)
	}
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

func (f *FS) dirExists(name string) bool { return f.dirs[filepath.Dir(name)] }

// setNames makes a change of names now, durable at the next SyncDir.
func (f *FS) setNames(op dirOp) {
	for i, n := range op.names {
		if op.inos[i] == nil {
			delete(f.names, n)
		} else {
			f.names[n] = op.inos[i]
		}
	}
	f.dirLog = append(f.dirLog, op)
}

// OpenFile opens name with os.OpenFile's flags (O_CREATE, O_EXCL, O_TRUNC,
// O_APPEND are honoured).
func (f *FS) OpenFile(name string, flag int, perm os.FileMode) (atomicfile.File, error) {
	name = filepath.Clean(name)
	f.mu.Lock()
	ino := f.names[name]
	var op string
	switch {
	case f.dirs[name]:
		f.mu.Unlock()
		return nil, pathErr("open", name, errors.New("is a directory"))
	case ino == nil && flag&os.O_CREATE == 0, ino == nil && !f.dirExists(name):
		f.mu.Unlock()
		return nil, pathErr("open", name, fs.ErrNotExist)
	case ino != nil && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		f.mu.Unlock()
		return nil, pathErr("open", name, fs.ErrExist)
	case ino == nil:
		ino = &inode{mode: perm.Perm()}
		f.setNames(dirOp{[]string{name}, []*inode{ino}})
		op = "create " + name
	}
	if flag&os.O_TRUNC != 0 && flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		ino.apply(fileOp{off: 0})
		op = strings.TrimPrefix(op+", truncate "+name, ", ")
	}
	f.mu.Unlock()
	if op != "" {
		f.done(op)
	}
	return &file{fs: f, ino: ino, name: name, append: flag&os.O_APPEND != 0}, nil
}

// CreateTemp creates dir/pattern with the last "*" replaced by a number.
func (f *FS) CreateTemp(dir, pattern string) (atomicfile.File, error) {
	f.mu.Lock()
	f.temps++
	n := fmt.Sprint(f.temps)
	f.mu.Unlock()
	name := pattern + n
	if i := strings.LastIndex(pattern, "*"); i >= 0 {
		name = pattern[:i] + n + pattern[i+1:]
	}
	return f.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
}

// ReadFile returns name's content as a program sees it now.
func (f *FS) ReadFile(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ino := f.names[filepath.Clean(name)]
	if ino == nil {
		return nil, pathErr("open", name, fs.ErrNotExist)
	}
	return bytes.Clone(ino.data), nil
}

// Stat describes a file or folder.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	name = filepath.Clean(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dirs[name] {
		return info{name: filepath.Base(name), mode: fs.ModeDir | 0o755}, nil
	}
	ino := f.names[name]
	if ino == nil {
		return nil, pathErr("stat", name, fs.ErrNotExist)
	}
	return info{name: filepath.Base(name), size: int64(len(ino.data)), mode: ino.mode}, nil
}

// Rename moves oldpath to newpath, replacing it, as one change of names.
func (f *FS) Rename(oldpath, newpath string) error {
	oldpath, newpath = filepath.Clean(oldpath), filepath.Clean(newpath)
	f.mu.Lock()
	ino := f.names[oldpath]
	switch {
	case ino == nil:
		f.mu.Unlock()
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	case f.dirs[newpath] || !f.dirExists(newpath):
		f.mu.Unlock()
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: errors.New("not a file in an existing folder")}
	}
	f.setNames(dirOp{[]string{newpath, oldpath}, []*inode{ino, nil}})
	f.mu.Unlock()
	f.done("rename " + oldpath + " " + newpath)
	return nil
}

// Link gives oldpath's file the new name newpath, which must not exist.
func (f *FS) Link(oldpath, newpath string) error {
	oldpath, newpath = filepath.Clean(oldpath), filepath.Clean(newpath)
	f.mu.Lock()
	ino := f.names[oldpath]
	switch {
	case ino == nil:
		f.mu.Unlock()
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	case f.names[newpath] != nil || f.dirs[newpath]:
		f.mu.Unlock()
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: fs.ErrExist}
	case !f.dirExists(newpath):
		f.mu.Unlock()
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	}
	f.setNames(dirOp{[]string{newpath}, []*inode{ino}})
	f.mu.Unlock()
	f.done("link " + oldpath + " " + newpath)
	return nil
}

// Remove removes a file's name.
func (f *FS) Remove(name string) error {
	name = filepath.Clean(name)
	f.mu.Lock()
	if f.names[name] == nil {
		f.mu.Unlock()
		return pathErr("remove", name, fs.ErrNotExist)
	}
	f.setNames(dirOp{[]string{name}, []*inode{nil}})
	f.mu.Unlock()
	f.done("remove " + name)
	return nil
}

// MkdirAll makes a folder and its parents, durable at once.
func (f *FS) MkdirAll(path string, perm os.FileMode) error {
	path = filepath.Clean(path)
	f.mu.Lock()
	defer f.mu.Unlock()
	for p := path; !f.dirs[p]; p = filepath.Dir(p) {
		if f.names[p] != nil {
			return pathErr("mkdir", p, errors.New("not a directory"))
		}
		f.dirs[p] = true
	}
	return nil
}

// SyncDir makes the name changes in dir durable, with every change made
// before them (a simplification: a real folder fsync orders only its own).
func (f *FS) SyncDir(dir string) error {
	dir = filepath.Clean(dir)
	f.mu.Lock()
	if !f.dirs[dir] {
		f.mu.Unlock()
		return pathErr("sync", dir, fs.ErrNotExist)
	}
	last := -1
	for i, op := range f.dirLog {
		for _, n := range op.names {
			if filepath.Dir(n) == dir {
				last = i
			}
		}
	}
	for _, op := range f.dirLog[:last+1] {
		applyNames(f.durable, op)
	}
	f.dirLog = slices.Clone(f.dirLog[last+1:])
	f.mu.Unlock()
	f.done("syncdir " + dir)
	return nil
}

func applyNames(m map[string]*inode, op dirOp) {
	for i, n := range op.names {
		if op.inos[i] == nil {
			delete(m, n)
		} else {
			m[n] = op.inos[i]
		}
	}
}

// apply makes a change to the file's content, to be durable at Sync.
func (ino *inode) apply(op fileOp) {
	ino.data = op.applyTo(ino.data)
	ino.log = append(ino.log, op)
}

func (op fileOp) applyTo(b []byte) []byte {
	if op.data == nil {
		if int(op.off) <= len(b) {
			return b[:op.off:op.off]
		}
		return append(b, make([]byte, int(op.off)-len(b))...)
	}
	end := int(op.off) + len(op.data)
	if end > len(b) {
		b = append(b, make([]byte, end-len(b))...)
	}
	copy(b[op.off:], op.data)
	return b
}

// file is an open file.
type file struct {
	fs     *FS
	ino    *inode
	name   string
	append bool
	off    int64
	closed bool
}

func (h *file) Name() string { return h.name }

func (h *file) Write(p []byte) (int, error) {
	h.fs.mu.Lock()
	if h.closed {
		h.fs.mu.Unlock()
		return 0, os.ErrClosed
	}
	if h.append {
		h.off = int64(len(h.ino.data))
	}
	h.ino.apply(fileOp{off: h.off, data: bytes.Clone(p)})
	h.off += int64(len(p))
	h.fs.mu.Unlock()
	h.fs.done(fmt.Sprintf("write %s %d bytes", h.name, len(p)))
	return len(p), nil
}

func (h *file) Truncate(size int64) error {
	h.fs.mu.Lock()
	if h.closed {
		h.fs.mu.Unlock()
		return os.ErrClosed
	}
	h.ino.apply(fileOp{off: size})
	h.fs.mu.Unlock()
	h.fs.done(fmt.Sprintf("truncate %s %d", h.name, size))
	return nil
}

func (h *file) Chmod(mode os.FileMode) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return os.ErrClosed
	}
	h.ino.mode = mode.Perm()
	return nil
}

func (h *file) Sync() error {
	h.fs.mu.Lock()
	if h.closed {
		h.fs.mu.Unlock()
		return os.ErrClosed
	}
	h.ino.synced = bytes.Clone(h.ino.data)
	h.ino.log = nil
	h.fs.mu.Unlock()
	h.fs.done("fsync " + h.name)
	return nil
}

func (h *file) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return os.ErrClosed
	}
	h.closed = true
	return nil
}

type info struct {
	name string
	size int64
	mode fs.FileMode
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return i.mode }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.mode.IsDir() }
func (i info) Sys() any           { return nil }

// Crashes returns the states the disk may be in after a power cut now,
// each as a new FS with everything synced: for each prefix of the unsynced
// name changes (none of them: "only what was synced"; all of them), the
// files at their synced content and at their current one; and, with none
// or all of the name changes, each file part way through its unsynced
// changes (each prefix, and its next write cut in half), the others at
// either end.
func (f *FS) Crashes() []*FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*FS
	for k := 0; k <= len(f.dirLog); k++ {
		names := make(map[string]*inode, len(f.durable))
		for n, ino := range f.durable {
			names[n] = ino
		}
		for _, op := range f.dirLog[:k] {
			applyNames(names, op)
		}
		out = append(out, f.image(names, false, nil, nil), f.image(names, true, nil, nil))
		if k != 0 && k != len(f.dirLog) {
			continue
		}
		for _, target := range sortedInodes(names) {
			for j := 1; j <= len(target.log); j++ {
				if j < len(target.log) {
					part := target.replay(j)
					out = append(out, f.image(names, false, target, part), f.image(names, true, target, part))
				}
				if op := target.log[j-1]; len(op.data) > 1 {
					half := fileOp{off: op.off, data: op.data[:len(op.data)/2]}
					torn := half.applyTo(target.replay(j - 1))
					out = append(out, f.image(names, false, target, torn), f.image(names, true, target, torn))
				}
			}
		}
	}
	return out
}

// replay is the file's content with its first j unsynced changes.
func (ino *inode) replay(j int) []byte {
	b := bytes.Clone(ino.synced)
	for _, op := range ino.log[:j] {
		b = op.applyTo(b)
	}
	return b
}

// image builds a synced FS with the given names, each file at its synced
// content or (all) its current one, except target, which holds content.
func (f *FS) image(names map[string]*inode, all bool, target *inode, content []byte) *FS {
	g := New()
	for d := range f.dirs {
		g.dirs[d] = true
	}
	g.temps = f.temps
	copies := map[*inode]*inode{}
	for n, ino := range names {
		c := copies[ino]
		if c == nil {
			data := ino.synced
			switch {
			case ino == target:
				data = content
			case all:
				data = ino.data
			}
			c = &inode{data: bytes.Clone(data), synced: bytes.Clone(data), mode: ino.mode}
			copies[ino] = c
		}
		g.names[n] = c
		g.durable[n] = c
	}
	return g
}

func sortedInodes(names map[string]*inode) []*inode {
	ns := make([]string, 0, len(names))
	for n := range names {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	var out []*inode
	seen := map[*inode]bool{}
	for _, n := range ns {
		if ino := names[n]; !seen[ino] {
			seen[ino] = true
			out = append(out, ino)
		}
	}
	return out
}

// Files returns every file's name and content as a program sees it now:
// a key to tell crash states apart.
func (f *FS) Files() map[string][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string][]byte, len(f.names))
	for n, ino := range f.names {
		m[n] = bytes.Clone(ino.data)
	}
	return m
}
