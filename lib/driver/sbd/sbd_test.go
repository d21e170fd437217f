package sbd

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concord-ha/concord/lib/driver/watchdog"
)

// The first 64 bytes of a header written by Debian's sbd 1.5.2,
// `sbd -d /dev/loopN -1 1 -4 2 create`.
func realHeader(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/sbd-1.5.2-create-1-4-2.hex")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.ReplaceAll(string(b), "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestParseRealHeader(t *testing.T) {
	h, err := ParseHeader(realHeader(t))
	if err != nil {
		t.Fatal(err)
	}
	want := Header{Version: 2, MinorVersion: 1, Slots: 255, SectorSize: 512, Watchdog: time.Second,
		Allocate: 2 * time.Second, Loop: time.Second, MsgWait: 2 * time.Second}
	copy(want.UUID[:], realHeader(t)[33:49])
	if h != want {
		t.Errorf("got %+v\nwant %+v", h, want)
	}
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if real := realHeader(t); !bytes.Equal(b[:len(real)], real) {
		t.Errorf("re-encoded header differs:\n% x\n% x", b[:len(real)], real)
	}
}

func TestParseHeaderErrors(t *testing.T) {
	good := realHeader(t)
	mod := func(off int, v ...byte) []byte {
		b := append([]byte(nil), good...)
		copy(b[off:], v)
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"short", good[:40], "need 49"},
		{"magic", mod(0, 'X'), "bad magic"},
		{"version", mod(8, 3), "version 3"},
		{"sector size", mod(12, 0, 0, 3, 0), "bad sector size 768"},
		{"no slots", mod(9, 0), "no slots"},
		{"msgwait", mod(28, 0xff, 0, 0, 0), "msgwait timeout"},
	}
	for _, tt := range tests {
		_, err := ParseHeader(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestMessages(t *testing.T) {
	for i, n := range []string{"clear", "test", "reset", "off", "exit", "crashdump"} {
		m, err := ParseMessage(n)
		if err != nil || m != Message(i) || m.String() != n {
			t.Errorf("%s: %v %v", n, m, err)
		}
	}
	if _, err := ParseMessage("poweroff"); err == nil {
		t.Error("unknown message accepted")
	}
	if Message(9).String() != "unknown(0x09)" {
		t.Error(Message(9).String())
	}
}

func newImage(t *testing.T, h Header) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sbd.img")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Create(p, h); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCreateAllocateMessage(t *testing.T) {
	h := DefaultHeader()
	h.Watchdog, h.MsgWait = time.Second, 2*time.Second
	p := newImage(t, h)
	d, err := OpenDisk(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := d.Header(); got.Slots != 255 || got.MsgWait != 2*time.Second || got.UUID == ([16]byte{}) || got.MinorVersion != 1 {
		t.Errorf("header %+v", got)
	}
	for i, n := range []string{"node1", "node2", "node1"} {
		s, err := d.Allocate(n)
		if err != nil || s != []int{0, 1, 0}[i] {
			t.Errorf("allocate %s: %d, %v", n, s, err)
		}
	}
	slots, err := d.Slots()
	if err != nil || len(slots) != 2 || slots[1] != (Slot{1, true, "node2"}) {
		t.Errorf("slots %+v, %v", slots, err)
	}
	if err := d.Message("node2", MsgReset, "node1"); err != nil {
		t.Fatal(err)
	}
	if m, err := d.Mailbox(1); err != nil || m != (Mailbox{MsgReset, "node1"}) {
		t.Errorf("mailbox %+v, %v", m, err)
	}
	if err := d.Message("node9", MsgReset, "node1"); !errors.Is(err, ErrNoSlot) {
		t.Errorf("message to a node without slot: %v", err)
	}
	if _, err := d.Allocate(strings.Repeat("x", 64)); err == nil {
		t.Error("64-byte name accepted")
	}
	raw, _ := os.ReadFile(p)
	if string(raw[0:8]) != Magic || raw[512] != 1 || string(raw[513:518]) != "node1" || raw[1536+512] != 2 || string(raw[2049:2054]) != "node1" {
		t.Errorf("layout: slot 0 at 512 = %q, mailbox 1 at 2048 = % x", raw[512:520], raw[2048:2056])
	}
}

func TestOpenNotSBD(t *testing.T) {
	p := filepath.Join(t.TempDir(), "blank")
	os.WriteFile(p, make([]byte, 4096), 0o600)
	if _, err := OpenDisk(p); err == nil || !strings.Contains(err.Error(), "not an SBD device") {
		t.Errorf("got %v", err)
	}
	if _, err := OpenDisk("/nonexistent/sbd"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v", err)
	}
	if _, err := OpenDisk("/dev/null"); err == nil || !strings.Contains(err.Error(), "not a block device") {
		t.Errorf("got %v", err)
	}
}

// flaky is a Store that can be made to fail, like a lost path to the disk.
type flaky struct {
	Store
	mu        sync.Mutex
	down      bool // reads and writes fail
	writeDown bool // only writes fail
}

var errIO = errors.New("input/output error")

func (f *flaky) setDown(v bool) { f.mu.Lock(); f.down = v; f.mu.Unlock() }

func (f *flaky) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down || f.writeDown {
		return 0, errIO
	}
	return f.Store.WriteAt(p, off)
}

func (f *flaky) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errIO
	}
	return f.Store.ReadAt(p, off)
}

func openFlaky(t *testing.T, p string) (*Disk, *flaky) {
	t.Helper()
	st, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{Store: st}
	d, err := NewDisk(p, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, f
}

func TestWatch(t *testing.T) {
	h := DefaultHeader()
	h.Watchdog, h.Loop, h.MsgWait = 5*time.Second, time.Second, 10*time.Second
	tests := []struct {
		name    string
		act     func(t *testing.T, sender *Disk, f *flaky)
		want    Outcome
		wantMsg Message
	}{
		{"reset pill", func(t *testing.T, s *Disk, _ *flaky) {
			if err := s.Message("node2", MsgReset, "node1"); err != nil {
				t.Error(err)
			}
		}, Fenced, MsgReset},
		{"off pill", func(t *testing.T, s *Disk, _ *flaky) { s.Message("node2", MsgOff, "node1") }, Fenced, MsgOff},
		{"disk lost", func(t *testing.T, _ *Disk, f *flaky) { f.setDown(true) }, DiskLost, MsgClear},
		{"exit", func(t *testing.T, s *Disk, _ *flaky) { s.Message("node2", MsgExit, "node1") }, Exited, MsgExit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newImage(t, h)
			sender, err := OpenDisk(p)
			if err != nil {
				t.Fatal(err)
			}
			defer sender.Close()
			sender.Allocate("node1")
			sender.Allocate("node2")
			d, f := openFlaky(t, p)
			synctest.Test(t, func(t *testing.T) {
				wd := watchdog.NewCounter(h.Watchdog)
				res := make(chan Result, 1)
				go func() {
					res <- Watch(context.Background(), WatchConfig{Disks: []*Disk{d}, Node: "node2", Watchdog: wd})
				}()
				// Healthy for 10 loops: fed every loop, never expired.
				time.Sleep(10*time.Second + time.Millisecond)
				if n := wd.KeepAlives(); n != 11 || wd.Expired() {
					t.Fatalf("healthy: %d keep-alives (want 11), expired %v", n, wd.Expired())
				}
				// A test message is cleared and does not fence.
				sender.Message("node2", MsgTest, "node1")
				time.Sleep(time.Second)
				if m, _ := sender.Mailbox(1); m.Msg != MsgClear {
					t.Errorf("test message not cleared: %v", m)
				}
				tt.act(t, sender, f)
				var r Result
				select {
				case r = <-res:
				case <-time.After(time.Minute):
					t.Fatal("watcher did not react within a minute")
				}
				if r.Outcome != tt.want || r.Msg != tt.wantMsg {
					t.Fatalf("got %+v, want %v/%v", r, tt.want, tt.wantMsg)
				}
				fed := wd.KeepAlives()
				time.Sleep(h.Watchdog + time.Second)
				if wd.KeepAlives() != fed || wd.Closed() {
					t.Errorf("watchdog touched after %v", r.Outcome)
				}
				if !wd.Expired() && tt.want != Exited {
					t.Errorf("%v: the watchdog would not have reset the machine", r.Outcome)
				}
			})
		})
	}
}

func TestWatchShortDiskOutage(t *testing.T) {
	h := DefaultHeader()
	p := newImage(t, h)
	d, f := openFlaky(t, p)
	synctest.Test(t, func(t *testing.T) {
		wd := watchdog.NewCounter(h.Watchdog)
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan Result, 1)
		go func() { res <- Watch(ctx, WatchConfig{Disks: []*Disk{d}, Node: "node1", Watchdog: wd}) }()
		time.Sleep(2 * time.Second)
		f.setDown(true)
		time.Sleep(h.Watchdog - time.Second) // shorter than the disk timeout
		f.setDown(false)
		time.Sleep(3 * time.Second)
		cancel()
		if r := <-res; r.Outcome != Stopped || wd.Expired() {
			t.Errorf("got %+v, expired %v", r, wd.Expired())
		}
	})
}

func TestSend(t *testing.T) {
	h := DefaultHeader()
	h.MsgWait = 3 * time.Second
	p := newImage(t, h)
	d, err := OpenDisk(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.Allocate("node2")
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Send(context.Background(), []*Disk{d}, "node2", MsgOff, "node1"); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 3*time.Second {
			t.Errorf("waited %v, want msgwait 3s", waited)
		}
		if err := Send(context.Background(), []*Disk{d}, "nodeX", MsgOff, "node1"); !errors.Is(err, ErrNoSlot) {
			t.Errorf("unknown node: %v", err)
		}
	})
}

// TestSlotNamesExact: a node's slot is found by its whole name. With
// node1, node10 and node1x allocated in either order, a pill for one must
// land in its own mailbox and no other.
func TestSlotNamesExact(t *testing.T) {
	for _, order := range [][]string{
		{"node10", "node1", "node1x", "node"},
		{"node1", "node10", "node", "node1x"},
	} {
		d, err := OpenDisk(newImage(t, DefaultHeader()))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		slot := map[string]int{}
		for _, n := range order {
			s, err := d.Allocate(n)
			if err != nil {
				t.Fatal(err)
			}
			slot[n] = s
		}
		if len(slot) != 4 || slot["node1"] == slot["node10"] || slot["node"] == slot["node1"] {
			t.Fatalf("order %v: slots %v, want four distinct", order, slot)
		}
		for _, n := range order {
			if s, err := d.FindSlot(n); err != nil || s != slot[n] {
				t.Errorf("order %v: FindSlot(%s) = %d, %v; want %d", order, n, s, err, slot[n])
			}
			if err := d.Message(n, MsgReset, "peer"); err != nil {
				t.Fatal(err)
			}
			for _, o := range order {
				m, err := d.Mailbox(slot[o])
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]Message{true: MsgReset, false: MsgClear}[o == n]; m.Msg != want {
					t.Errorf("order %v: after reset of %s, mailbox of %s holds %v", order, n, o, m.Msg)
				}
				d.WriteMailbox(slot[o], Mailbox{})
			}
		}
		for _, n := range []string{"node2", "nod", "node100", "ode1", ""} {
			if _, err := d.FindSlot(n); !errors.Is(err, ErrNoSlot) {
				t.Errorf("order %v: FindSlot(%q) = %v, want ErrNoSlot", order, n, err)
			}
		}
	}
}

// disks makes n SBD disks, each its own image, with node2 allocated, and
// returns them with their failure switches.
func disks(t *testing.T, n int, h Header) ([]*Disk, []*flaky) {
	t.Helper()
	var ds []*Disk
	var fs []*flaky
	for range n {
		p := newImage(t, h)
		d, f := openFlaky(t, p)
		if _, err := d.Allocate("node2"); err != nil {
			t.Fatal(err)
		}
		ds, fs = append(ds, d), append(fs, f)
	}
	return ds, fs
}

// TestSendMajority: a message is delivered only when more than half of
// the disks took it; a node that reads only the other disks never sees it.
func TestSendMajority(t *testing.T) {
	h := DefaultHeader()
	h.MsgWait = 3 * time.Second
	tests := []struct {
		disks int
		fail  []int // disks whose writes fail
		ok    bool
	}{
		{1, nil, true},
		{1, []int{0}, false},
		{2, nil, true},
		{2, []int{0}, false},
		{2, []int{1}, false},
		{3, nil, true},
		{3, []int{2}, true},
		{3, []int{0, 2}, false},
		{4, []int{3}, true},
		{4, []int{0, 3}, false},
	}
	for _, tt := range tests {
		ds, fs := disks(t, tt.disks, h)
		for _, i := range tt.fail {
			fs[i].writeDown = true
		}
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			err := Send(context.Background(), ds, "node2", MsgReset, "node1")
			if (err == nil) != tt.ok {
				t.Errorf("%d disks, writes failing on %v: Send = %v, want ok %v", tt.disks, tt.fail, err, tt.ok)
			}
			if err != nil && !errors.Is(err, errIO) {
				t.Errorf("error %v does not carry the disk's error", err)
			}
			if waited := time.Since(start); tt.ok && waited != h.MsgWait || !tt.ok && waited != 0 {
				t.Errorf("%d disks, failing %v: waited %v", tt.disks, tt.fail, waited)
			}
		})
	}
}

// TestWatchMajority: the watcher keeps feeding the watchdog only while a
// majority of disks is readable, and any one disk's pill fences.
func TestWatchMajority(t *testing.T) {
	h := DefaultHeader()
	h.Watchdog, h.Loop = 5*time.Second, time.Second
	tests := []struct {
		name  string
		disks int
		down  []int
		pill  int // disk carrying a reset pill, -1 for none
		want  Outcome
	}{
		{"one of two unreadable", 2, []int{1}, -1, DiskLost},
		{"two of four unreadable", 4, []int{0, 1}, -1, DiskLost},
		{"one of three unreadable", 3, []int{0}, -1, Stopped},
		{"pill on one of three", 3, nil, 2, Fenced},
		{"pill on the readable one of two", 2, []int{0}, 1, Fenced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, fs := disks(t, tt.disks, h)
			synctest.Test(t, func(t *testing.T) {
				wd := watchdog.NewCounter(h.Watchdog)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				res := make(chan Result, 1)
				go func() { res <- Watch(ctx, WatchConfig{Disks: ds, Node: "node2", Watchdog: wd}) }()
				time.Sleep(2 * time.Second)
				for _, i := range tt.down {
					fs[i].setDown(true)
				}
				if tt.pill >= 0 {
					if err := ds[tt.pill].Message("node2", MsgReset, "node1"); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(3 * h.Watchdog)
				cancel()
				r := <-res
				if r.Outcome != tt.want {
					t.Errorf("got %+v, want %v", r, tt.want)
				}
				if wd.Expired() != (tt.want != Stopped) {
					t.Errorf("%v: watchdog expired %v", r.Outcome, wd.Expired())
				}
			})
		})
	}
}
