package fakewdt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Name is the watchdog file's name in the mount.
const Name = "watchdog"

// FS is a mounted stand-in.
type FS struct {
	*Watchdog
	Dir  string
	srv  *fuse.Server
	done bool
}

// Path is the watchdog file to open.
func (f *FS) Path() string { return filepath.Join(f.Dir, Name) }

// Mount serves a fresh Watchdog as dir/watchdog. It needs root (it calls
// mount(2) itself, no fusermount) and /dev/fuse.
func Mount(dir string) (*FS, error) {
	w := NewWatchdog()
	opts := &fs.Options{MountOptions: fuse.MountOptions{
		DirectMountStrict: true,
		FsName:            "fakewdt",
		Name:              "fakewdt",
	}}
	srv, err := fs.Mount(dir, &root{w: w}, opts)
	if err != nil {
		return nil, fmt.Errorf("fakewdt: mounting on %s: %w", dir, err)
	}
	return &FS{Watchdog: w, Dir: dir, srv: srv}, nil
}

// Unmount stops the countdown and unmounts. If the file is still open
// (a test failed before closing it) it detaches lazily and says so.
func (f *FS) Unmount() error {
	if f.done {
		return nil
	}
	f.done = true
	f.stop()
	err := f.srv.Unmount()
	if err == nil {
		return nil
	}
	if derr := unix.Unmount(f.Dir, unix.MNT_DETACH); derr != nil {
		return fmt.Errorf("fakewdt: unmounting %s: %w", f.Dir, errors.Join(err, derr))
	}
	return fmt.Errorf("fakewdt: %s still in use, detached lazily: %w", f.Dir, err)
}

type root struct {
	fs.Inode
	w *Watchdog
}

var _ fs.NodeOnAdder = (*root)(nil)

func (r *root) OnAdd(ctx context.Context) {
	n := r.NewPersistentInode(ctx, &node{w: r.w}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: 2})
	r.AddChild(Name, n, false)
}

type node struct {
	fs.Inode
	w *Watchdog
}

var (
	_ fs.NodeGetattrer = (*node)(nil)
	_ fs.NodeOpener    = (*node)(nil)
)

func (n *node) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o600
	return 0
}

// Open bypasses the page cache so every write reaches Write at once.
func (n *node) Open(_ context.Context, _ uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if e := n.w.Open(); e != 0 {
		return nil, 0, e
	}
	return &handle{w: n.w}, fuse.FOPEN_DIRECT_IO, 0
}

type handle struct{ w *Watchdog }

var (
	_ fs.FileWriter   = (*handle)(nil)
	_ fs.FileIoctler  = (*handle)(nil)
	_ fs.FileFlusher  = (*handle)(nil)
	_ fs.FileReleaser = (*handle)(nil)
)

func (h *handle) Write(_ context.Context, p []byte, _ int64) (uint32, syscall.Errno) {
	if e := h.w.Write(p); e != 0 {
		return 0, e
	}
	return uint32(len(p)), 0
}

func (h *handle) Ioctl(_ context.Context, cmd uint32, _ uint64, in, out []byte) (int32, syscall.Errno) {
	return 0, h.w.Ioctl(cmd, in, out)
}

func (h *handle) Flush(context.Context) syscall.Errno { return 0 }

// Release comes asynchronously after close(2); callers wait on Releases.
func (h *handle) Release(context.Context) syscall.Errno {
	h.w.Release()
	return 0
}
