package fakewdt

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultTimeout is the countdown at open, as softdog's default.
const DefaultTimeout = 60 * time.Second

// maxTimeout bounds WDIOC_SETTIMEOUT, as drivers do.
const maxTimeout = 3600

// Identity is what WDIOC_GETSUPPORT reports.
const Identity = "concord fakewdt"

// Stats is a snapshot of the device.
type Stats struct {
	Opens, Releases  int
	KeepAlives       int // WDIOC_KEEPALIVE ioctls plus non-empty writes
	Writes           int // non-empty writes (each also a keep-alive)
	Timeout          time.Duration
	Armed            bool // open, or closed without the magic 'V'
	Fired            bool // armed and no keep-alive for Timeout: the machine would reset
	MagicCloses      int
	UnexpectedCloses int // closed without 'V': stays armed
}

// Watchdog is the device state behind the FUSE file. Its countdown runs
// on time.AfterFunc; firing only sets Fired.
type Watchdog struct {
	mu          sync.Mutex
	s           Stats
	open        bool
	expectClose bool
	gen         uint64 // bumps on every restart, so stale timers do nothing
	timer       *time.Timer
	changed     chan struct{}
	fired       chan struct{}
}

// NewWatchdog returns a closed, unarmed device.
func NewWatchdog() *Watchdog {
	return &Watchdog{s: Stats{Timeout: DefaultTimeout}, changed: make(chan struct{}), fired: make(chan struct{})}
}

// Stats returns a snapshot.
func (w *Watchdog) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.s
}

// FiredC is closed when the device fires.
func (w *Watchdog) FiredC() <-chan struct{} { return w.fired }

// Wait blocks until cond holds for a snapshot or ctx ends; it returns the
// last snapshot either way.
func (w *Watchdog) Wait(ctx context.Context, cond func(Stats) bool) (Stats, error) {
	for {
		w.mu.Lock()
		s, ch := w.s, w.changed
		w.mu.Unlock()
		if cond(s) {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s, fmt.Errorf("fakewdt: waiting, last state %+v: %w", s, ctx.Err())
		}
	}
}

// stop ends the countdown for good (unmount).
func (w *Watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gen++
	if w.timer != nil {
		w.timer.Stop()
	}
}

// notify wakes waiters; mu held.
func (w *Watchdog) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// restart starts the countdown again; mu held.
func (w *Watchdog) restart() {
	w.gen++
	if w.timer != nil {
		w.timer.Stop()
	}
	gen := w.gen
	w.timer = time.AfterFunc(w.s.Timeout, func() { w.expire(gen) })
}

func (w *Watchdog) expire(gen uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if gen != w.gen || !w.s.Armed || w.s.Fired {
		return
	}
	w.s.Fired = true
	close(w.fired)
	w.notify()
}

// keepAlive pings; mu held. After firing the machine is gone: count the
// ping but do not unfire.
func (w *Watchdog) keepAlive() {
	w.s.KeepAlives++
	if w.s.Armed {
		w.restart()
	}
}

// Open arms the device; like the kernel, only one opener at a time.
func (w *Watchdog) Open() syscall.Errno {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open {
		return syscall.EBUSY
	}
	w.open, w.expectClose = true, false
	w.s.Opens++
	w.s.Armed = true
	w.restart()
	w.notify()
	return 0
}

// Write is a keep-alive if p is not empty; a 'V' anywhere in the last
// write allows the next release to disarm.
func (w *Watchdog) Write(p []byte) syscall.Errno {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(p) == 0 {
		return 0
	}
	w.expectClose = false
	for _, c := range p {
		if c == 'V' {
			w.expectClose = true
		}
	}
	w.s.Writes++
	w.keepAlive()
	w.notify()
	return 0
}

// Release disarms after a magic 'V', else leaves the countdown running.
func (w *Watchdog) Release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.open = false
	w.s.Releases++
	if w.expectClose {
		w.s.MagicCloses++
		w.s.Armed = false
		w.gen++
		if w.timer != nil {
			w.timer.Stop()
		}
	} else {
		w.s.UnexpectedCloses++
	}
	w.expectClose = false
	w.notify()
}

// Ioctl answers a WDIOC request: in is the argument the caller wrote
// (_IOW), out what it reads back (_IOR), each sized by the command.
func (w *Watchdog) Ioctl(cmd uint32, in, out []byte) syscall.Errno {
	w.mu.Lock()
	defer w.mu.Unlock()
	ne := binary.NativeEndian
	switch cmd {
	case uint32(unix.WDIOC_GETSUPPORT):
		if len(out) < 40 {
			return syscall.EINVAL
		}
		clear(out)
		ne.PutUint32(out, unix.WDIOF_SETTIMEOUT|unix.WDIOF_KEEPALIVEPING|unix.WDIOF_MAGICCLOSE)
		copy(out[8:40], Identity)
	case uint32(unix.WDIOC_KEEPALIVE):
		w.keepAlive()
		w.notify()
	case uint32(unix.WDIOC_SETTIMEOUT):
		if len(in) < 4 || len(out) < 4 {
			return syscall.EINVAL
		}
		v := int32(ne.Uint32(in))
		if v < 1 || v > maxTimeout {
			return syscall.EINVAL
		}
		// The kernel's watchdog core pings after setting the timeout.
		w.s.Timeout = time.Duration(v) * time.Second
		if w.s.Armed {
			w.restart()
		}
		ne.PutUint32(out, uint32(v))
		w.notify()
	case uint32(unix.WDIOC_GETTIMEOUT):
		if len(out) < 4 {
			return syscall.EINVAL
		}
		ne.PutUint32(out, uint32(w.s.Timeout/time.Second))
	default:
		return syscall.ENOTTY
	}
	return 0
}
