//go:build linux

package watchdog

import (
	"errors"
	"os"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
)

// ioc encodes an ioctl request as <asm-generic/ioctl.h> does.
func ioc(dir, typ, nr, size uintptr) uintptr { return dir<<30 | size<<16 | typ<<8 | nr }

func TestIoctlNumbers(t *testing.T) {
	switch runtime.GOARCH {
	case "amd64", "arm64", "386", "arm", "riscv64", "s390x", "loong64":
	default:
		t.Skipf("SKIP: %s does not use the asm-generic ioctl encoding", runtime.GOARCH)
	}
	const read, write = 2, 1
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"WDIOC_KEEPALIVE", ioctlKeepAlive, ioc(read, 'W', 5, 4)},
		{"WDIOC_KEEPALIVE literal", ioctlKeepAlive, 0x80045705},
		{"WDIOC_SETTIMEOUT literal", ioctlSetTimeout, 0xc0045706},
		{"WDIOC_SETTIMEOUT", ioctlSetTimeout, ioc(read|write, 'W', 6, 4)},
		{"WDIOC_GETTIMEOUT", ioctlGetTimeout, ioc(read, 'W', 7, 4)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

var _ Device = (*Dev)(nil)
var _ Device = (*Counter)(nil)

func TestCounter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewCounter(3 * time.Second)
		for i := 0; i < 5; i++ {
			time.Sleep(time.Second)
			if err := c.KeepAlive(); err != nil {
				t.Fatal(err)
			}
		}
		if c.KeepAlives() != 5 || c.Expired() {
			t.Fatalf("after feeding: %d keep-alives, expired %v", c.KeepAlives(), c.Expired())
		}
		time.Sleep(3*time.Second + time.Millisecond)
		if !c.Expired() {
			t.Error("not expired 3 s after the last keep-alive")
		}
		c.Close()
		if c.Expired() || !c.Closed() || c.KeepAlive() == nil {
			t.Error("magic close did not disarm")
		}
		c2 := NewCounter(time.Second)
		c2.Fail = errors.New("driver gone")
		if c2.KeepAlive() == nil {
			t.Error("Fail ignored")
		}
		if d, _ := c2.SetTimeout(1400 * time.Millisecond); d != time.Second {
			t.Errorf("SetTimeout rounded to %v", d)
		}
	})
}

func TestKernelWatchdog(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SKIP: Linux only")
	}
	const path = "/dev/watchdog"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("SKIP: no %s on this machine (no watchdog driver, softdog not loaded): ioctls not exercised against a kernel", path)
	}
	if os.Getenv("CONCORD_TEST_WATCHDOG") != "1" {
		t.Skip("SKIP: set CONCORD_TEST_WATCHDOG=1 to arm the real watchdog (a failed test resets the machine)")
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := d.SetTimeout(30 * time.Second)
	if err != nil || got <= 0 {
		t.Fatalf("SetTimeout: %v, %v", got, err)
	}
	if cur, err := d.Timeout(); err != nil || cur != got {
		t.Errorf("Timeout = %v, %v; want %v", cur, err, got)
	}
	if err := d.KeepAlive(); err != nil {
		t.Error(err)
	}
}

func TestOpenMissing(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SKIP: Linux only")
	}
	_, err := Open("/dev/watchdog-missing")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v", err)
	}
	// ioctl on a non-watchdog: the request path runs and the error names it.
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := &Dev{f: f, path: os.DevNull}
	if err := d.KeepAlive(); err == nil {
		t.Error("KeepAlive on /dev/null succeeded")
	}
	if _, err := d.Timeout(); err == nil {
		t.Error("GETTIMEOUT on /dev/null succeeded")
	}
	if err := d.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}
