//go:build !linux

package watchdog

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

var errClosed = errors.New("watchdog: closed")

// Dev is the kernel watchdog; it exists only on Linux.
type Dev struct{}

// Open fails outside Linux.
func Open(path string) (*Dev, error) {
	return nil, fmt.Errorf("watchdog %s: not implemented on %s", path, runtime.GOOS)
}

// KeepAlive fails outside Linux.
func (d *Dev) KeepAlive() error { return errClosed }

// SetTimeout fails outside Linux.
func (d *Dev) SetTimeout(time.Duration) (time.Duration, error) { return 0, errClosed }

// Timeout fails outside Linux.
func (d *Dev) Timeout() (time.Duration, error) { return 0, errClosed }

// Close does nothing.
func (d *Dev) Close() error { return nil }
