package fakewdt

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/concord-ha/concord/lib/driver/watchdog"
	"golang.org/x/sys/unix"
)

func mount(t *testing.T) *FS { t.Helper(); return MountTest(t) }

func waitFor(t *testing.T, f *FS, what string, cond func(Stats) bool) Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := f.Wait(ctx, cond)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return s
}

func released(n int) func(Stats) bool { return func(s Stats) bool { return s.Releases >= n } }

// lib/watchdog's kernel implementation, ioctls and all, on the FUSE file.
func TestLibWatchdogOnFUSE(t *testing.T) {
	f := mount(t)
	d, err := watchdog.Open(f.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Close() }() // a failing test still unmounts
	if s := f.Stats(); s.Opens != 1 || !s.Armed || s.Timeout != DefaultTimeout {
		t.Errorf("after open: %+v", s)
	}
	if _, err := watchdog.Open(f.Path()); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("second open: %v, want EBUSY", err)
	}
	for _, tt := range []struct {
		set, want time.Duration
	}{
		{2 * time.Second, 2 * time.Second},
		{1400 * time.Millisecond, time.Second},
		{30 * time.Second, 30 * time.Second},
	} {
		got, err := d.SetTimeout(tt.set)
		if err != nil || got != tt.want {
			t.Errorf("SetTimeout(%v) = %v, %v; want %v", tt.set, got, err, tt.want)
		}
		if cur, err := d.Timeout(); err != nil || cur != tt.want {
			t.Errorf("Timeout after SetTimeout(%v) = %v, %v", tt.set, cur, err)
		}
		if s := f.Stats(); s.Timeout != tt.want {
			t.Errorf("stand-in timeout %v, want %v", s.Timeout, tt.want)
		}
	}
	if _, err := d.SetTimeout(time.Duration(maxTimeout+1) * time.Second); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("SetTimeout beyond the maximum: %v, want EINVAL", err)
	}
	for i := 0; i < 5; i++ {
		if err := d.KeepAlive(); err != nil {
			t.Fatal(err)
		}
	}
	if s := f.Stats(); s.KeepAlives != 5 || s.Writes != 0 || s.Fired {
		t.Errorf("after 5 keep-alives: %+v", s)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	s := waitFor(t, f, "release after magic close", released(1))
	// The 'V' write is itself a keep-alive, as in the kernel.
	if s.MagicCloses != 1 || s.UnexpectedCloses != 0 || s.Armed || s.KeepAlives != 6 || s.Writes != 1 {
		t.Errorf("after magic close: %+v", s)
	}
	// Reopening arms again.
	d, err = watchdog.Open(f.Path())
	if err != nil {
		t.Fatal(err)
	}
	if s := f.Stats(); s.Opens != 2 || !s.Armed {
		t.Errorf("after reopen: %+v", s)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if s := waitFor(t, f, "second release", released(2)); s.MagicCloses != 2 || s.Armed || s.Fired {
		t.Errorf("after second magic close: %+v", s)
	}
}

// closeAfter arms the device with a 1 s timeout by a raw ioctl, writes
// each of writes, and closes it.
func closeAfter(writes ...string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		wf, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { wf.Close() })
		var s int32 = 1
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, wf.Fd(), unix.WDIOC_SETTIMEOUT, uintptr(unsafe.Pointer(&s))); e != 0 {
			t.Fatal(e)
		}
		for _, w := range writes {
			if _, err := wf.Write([]byte(w)); err != nil {
				t.Fatal(err)
			}
		}
		if err := wf.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// An armed device that is not fed fires, whether the file stays open or
// was closed without the magic 'V'.
func TestExpiry(t *testing.T) {
	tests := []struct {
		name       string
		run        func(t *testing.T, path string)
		unexpected int
	}{
		{"open, not fed", func(t *testing.T, path string) {
			d, err := watchdog.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			if _, err := d.SetTimeout(time.Second); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"closed without V", closeAfter("x"), 1},
		{"V not in the last write", closeAfter("V", "x"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mount(t)
			tt.run(t, f.Path())
			s := waitFor(t, f, "fired", func(s Stats) bool { return s.Fired && s.Releases >= tt.unexpected })
			if !s.Armed || s.MagicCloses != 0 || s.UnexpectedCloses != tt.unexpected || s.Timeout != time.Second {
				t.Errorf("fired: %+v", s)
			}
			select {
			case <-f.FiredC():
			default:
				t.Error("FiredC not closed")
			}
		})
	}
}

func TestGetSupportAndUnknown(t *testing.T) {
	f := mount(t)
	wf, err := os.OpenFile(f.Path(), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var info [40]byte
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, wf.Fd(), unix.WDIOC_GETSUPPORT, uintptr(unsafe.Pointer(&info[0]))); e != 0 {
		t.Fatalf("WDIOC_GETSUPPORT: %v", e)
	}
	opts := binary.NativeEndian.Uint32(info[:])
	if want := uint32(unix.WDIOF_SETTIMEOUT | unix.WDIOF_KEEPALIVEPING | unix.WDIOF_MAGICCLOSE); opts != want {
		t.Errorf("options %#x, want %#x", opts, want)
	}
	if id := strings.TrimRight(string(info[8:]), "\x00"); id != Identity {
		t.Errorf("identity %q", id)
	}
	var v int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, wf.Fd(), unix.WDIOC_GETTEMP, uintptr(unsafe.Pointer(&v))); e != syscall.ENOTTY {
		t.Errorf("WDIOC_GETTEMP: %v, want ENOTTY", e)
	}
	if _, err := wf.Write([]byte("V")); err != nil {
		t.Fatal(err)
	}
	if err := wf.Close(); err != nil {
		t.Fatal(err)
	}
	if s := waitFor(t, f, "release", released(1)); s.MagicCloses != 1 || s.Fired {
		t.Errorf("%+v", s)
	}
}

// A file left open (a failed test) does not leave the mount behind.
func TestUnmountBusy(t *testing.T) {
	MountTest(t) // skips without root or FUSE
	dir := t.TempDir()
	f, err := Mount(dir)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := os.OpenFile(f.Path(), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Unmount(); err == nil || !strings.Contains(err.Error(), "detached lazily") {
		t.Errorf("Unmount with the file open: %v", err)
	}
	if err := f.Unmount(); err != nil {
		t.Errorf("second Unmount: %v", err)
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), dir) {
		t.Errorf("%s still mounted", dir)
	}
	wf.Close()
}
