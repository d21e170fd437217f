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

// start arms a one-shot timerfd for each boundary in turn. The timer is
// CLOCK_MONOTONIC and relative: only the phase comes from the wall clock,
// so a clock stepped back an hour delays no tick (an absolute
// CLOCK_REALTIME timer would wait the hour). The fd is non-blocking, so
// os.NewFile registers it with the runtime's poller, and reads and re-arms
// are raw system calls, which do not wake the runtime's monitor thread
// either.
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
	arm := func(now time.Time) error {
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(Until(now, t.period)))}
		var errno syscall.Errno
		err := rc.Control(func(fd uintptr) {
			_, _, errno = unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0,
				uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
		})
		if err == nil && errno != 0 {
			err = os.NewSyscallError("timerfd_settime", errno)
		}
		return err
	}
	if err := arm(t.now()); err != nil {
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
	wg.Add(1)
	go func() {
		defer wg.Done()
		var buf [8]byte // the number of expirations
		for {
			var errno syscall.Errno
			err := rc.Read(func(fd uintptr) bool {
				_, _, errno = unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
				return errno != unix.EAGAIN
			})
			select {
			case <-done:
				return
			default:
			}
			now := t.now()
			if err != nil || errno != 0 {
				// Not expected from a timerfd; fall back on a plain sleep
				// rather than stop ticking.
				time.Sleep(Until(now, t.period))
				now = t.now()
			}
			if err := arm(now); err != nil {
				time.Sleep(t.period)
			}
			t.send(now)
		}
	}()
	return nil
}
