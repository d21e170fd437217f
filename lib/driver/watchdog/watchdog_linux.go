package watchdog

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl requests from <linux/watchdog.h>: _IOR('W', 5, int),
// _IOWR('W', 6, int), _IOR('W', 7, int); x/sys has each architecture's
// encoding.
const (
	ioctlKeepAlive  = unix.WDIOC_KEEPALIVE
	ioctlSetTimeout = unix.WDIOC_SETTIMEOUT
	ioctlGetTimeout = unix.WDIOC_GETTIMEOUT
)

var errClosed = errors.New("watchdog: closed")

// Dev is a kernel watchdog device.
type Dev struct {
	f    *os.File
	path string
}

// Open opens and thereby arms the watchdog at path (/dev/watchdog).
func Open(path string) (*Dev, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("watchdog %s: %w", path, err)
	}
	return &Dev{f: f, path: path}, nil
}

func (d *Dev) ioctl(req uintptr, v *int32) error {
	if d.f == nil {
		return errClosed
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), req, uintptr(unsafe.Pointer(v))); e != 0 {
		return fmt.Errorf("watchdog %s: %w", d.path, e)
	}
	return nil
}

// KeepAlive implements Device.
func (d *Dev) KeepAlive() error {
	var dummy int32
	return d.ioctl(ioctlKeepAlive, &dummy)
}

// SetTimeout implements Device; drivers take whole seconds.
func (d *Dev) SetTimeout(t time.Duration) (time.Duration, error) {
	s := int32(t.Round(time.Second) / time.Second)
	if s < 1 {
		return 0, fmt.Errorf("watchdog %s: timeout %v below 1 s", d.path, t)
	}
	if err := d.ioctl(ioctlSetTimeout, &s); err != nil {
		return 0, err
	}
	return time.Duration(s) * time.Second, nil
}

// Timeout implements Device.
func (d *Dev) Timeout() (time.Duration, error) {
	var s int32
	if err := d.ioctl(ioctlGetTimeout, &s); err != nil {
		return 0, err
	}
	return time.Duration(s) * time.Second, nil
}

// Close writes the magic 'V' so the driver disarms, then closes.
func (d *Dev) Close() error {
	if d.f == nil {
		return nil
	}
	_, werr := d.f.Write([]byte("V"))
	cerr := d.f.Close()
	d.f = nil
	if werr != nil {
		return fmt.Errorf("watchdog %s: magic close: %w", d.path, werr)
	}
	return cerr
}
