//go:build linux

package ticker

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// start arms a periodic timerfd whose first expiry is the next boundary.
// The timer is CLOCK_MONOTONIC and relative: only the phase comes from the
// wall clock, so a clock stepped back an hour delays no tick (an absolute
// CLOCK_REALTIME timer would wait the hour). A tick that finds itself off
// its boundary (the wall clock stepped or slewed, or the tick came late)
// re-arms the timer on the wall clock's boundaries again; others cost one
// read, with no system call to re-arm and none to find the timer empty.
// The fd is non-blocking, so os.NewFile registers it with the runtime's
// poller, and reads and re-arms are raw system calls, which do not wake
// the runtime's monitor thread either.
func (t *Ticker) start() error {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("ticker: timerfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return fmt.Errorf("ticker: %w", err)
	}
	var errno syscall.Errno
	err = rc.Control(func(fd uintptr) { errno = t.arm(fd, t.now()) })
	if err == nil && errno != 0 {
		err = os.NewSyscallError("timerfd_settime", errno)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("ticker: %w", err)
	}
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	t.stop = func() {
		once.Do(func() {
			close(done)
			f.Close() // wakes the reader
			wg.Wait()
		})
	}
	stopped := func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var buf [8]byte // the number of expirations
		for {
			// One Read serves every tick: f handles an expiry and goes
			// back to waiting, without a second read to find the timer
			// empty.
			rc.Read(func(fd uintptr) bool {
				_, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
				switch {
				case errno == unix.EAGAIN:
					return false
				case errno != 0 || stopped():
					return true
				}
				now := t.now()
				if offBoundary(now, t.period) {
					if t.arm(fd, now) != 0 {
						return true
					}
				}
				t.send(now)
				return false
			})
			if stopped() {
				return
			}
			// The timerfd failed, which is not expected: fall back on
			// a plain sleep rather than stop ticking.
			time.Sleep(Until(t.now(), t.period))
			now := t.now()
			rc.Control(func(fd uintptr) { t.arm(fd, now) })
			t.send(now)
		}
	}()
	return nil
}

// arm sets timerfd fd to expire at the next boundary after now and every
// period after that.
func (t *Ticker) arm(fd uintptr, now time.Time) syscall.Errno {
	spec := unix.ItimerSpec{
		Value:    unix.NsecToTimespec(int64(Until(now, t.period))),
		Interval: unix.NsecToTimespec(int64(t.period)),
	}
	_, _, errno := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
	return errno
}
