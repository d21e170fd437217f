package fakewdt

import (
	"encoding/binary"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"
)

func setTimeout(w *Watchdog, s int32) (int32, syscall.Errno) {
	in, out := make([]byte, 4), make([]byte, 4)
	binary.NativeEndian.PutUint32(in, uint32(s))
	e := w.Ioctl(uint32(unix.WDIOC_SETTIMEOUT), in, out)
	return int32(binary.NativeEndian.Uint32(out)), e
}

// The device state without FUSE, on the synctest clock: no root needed.
func TestStateMachine(t *testing.T) {
	ping := func(w *Watchdog) { w.Ioctl(uint32(unix.WDIOC_KEEPALIVE), nil, make([]byte, 4)) }
	tests := []struct {
		name  string
		run   func(w *Watchdog)
		fired bool
		want  Stats
	}{
		{"fed every second", func(w *Watchdog) {
			for i := 0; i < 10; i++ {
				time.Sleep(time.Second)
				ping(w)
			}
		}, false, Stats{Opens: 1, KeepAlives: 10, Timeout: 3 * time.Second, Armed: true}},
		{"fed then starved", func(w *Watchdog) {
			ping(w)
			time.Sleep(3*time.Second + time.Millisecond)
		}, true, Stats{Opens: 1, KeepAlives: 1, Timeout: 3 * time.Second, Armed: true, Fired: true}},
		{"magic close then quiet", func(w *Watchdog) {
			w.Write([]byte("xVx"))
			w.Write(nil) // an empty write changes nothing
			w.Release()
			time.Sleep(time.Minute)
		}, false, Stats{Opens: 1, Releases: 1, KeepAlives: 1, Writes: 1, Timeout: 3 * time.Second, MagicCloses: 1}},
		{"unexpected close", func(w *Watchdog) {
			w.Write([]byte("V"))
			w.Write([]byte("x")) // only the last write counts
			w.Release()
			time.Sleep(3*time.Second + time.Millisecond)
		}, true, Stats{Opens: 1, Releases: 1, KeepAlives: 2, Writes: 2, Timeout: 3 * time.Second, Armed: true, Fired: true, UnexpectedCloses: 1}},
		{"pings after firing do not unfire", func(w *Watchdog) {
			time.Sleep(4 * time.Second)
			ping(w)
			time.Sleep(4 * time.Second)
		}, true, Stats{Opens: 1, KeepAlives: 1, Timeout: 3 * time.Second, Armed: true, Fired: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := NewWatchdog()
				if e := w.Open(); e != 0 {
					t.Fatal(e)
				}
				if e := w.Open(); e != syscall.EBUSY {
					t.Errorf("second open: %v", e)
				}
				if got, e := setTimeout(w, 3); got != 3 || e != 0 {
					t.Fatalf("SETTIMEOUT 3: %d, %v", got, e)
				}
				tt.run(w)
				if got := w.Stats(); got != tt.want {
					t.Errorf("got  %+v\nwant %+v", got, tt.want)
				}
				select {
				case <-w.FiredC():
					if !tt.fired {
						t.Error("FiredC closed")
					}
				default:
					if tt.fired {
						t.Error("FiredC open")
					}
				}
			})
		})
	}
	w := NewWatchdog()
	for _, s := range []int32{0, -1, maxTimeout + 1} {
		if _, e := setTimeout(w, s); e != syscall.EINVAL {
			t.Errorf("SETTIMEOUT %d: %v, want EINVAL", s, e)
		}
	}
	if e := w.Ioctl(uint32(unix.WDIOC_GETSUPPORT), nil, make([]byte, 4)); e != syscall.EINVAL {
		t.Errorf("short GETSUPPORT buffer: %v", e)
	}
}
