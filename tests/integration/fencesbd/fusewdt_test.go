package fencesbd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/driver/sbd"
	"github.com/concord-ha/concord/lib/driver/watchdog"
	"github.com/concord-ha/concord/tests/harness/fakewdt"
)

// shrinkAway makes the loop device's medium vanish under the open watcher:
// the backing file is emptied and the device's capacity reread, so every
// read returns nothing, as after a LUN is removed. (losetup -d would only
// be deferred while the watcher holds the device open.)
func shrinkAway(t *testing.T, dev string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop/backing_file"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(strings.TrimSpace(string(b)), 0); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("losetup", "-c", dev).CombinedOutput(); err != nil {
		t.Fatalf("losetup -c %s: %v: %s", dev, err, out)
	}
}

// The watcher feeds lib/watchdog's kernel implementation, opened on the
// FUSE stand-in, until a pill or the loss of its disk; then the stand-in
// expires.
func TestWatcherOnFUSEWatchdog(t *testing.T) {
	tests := []struct {
		name string
		cut  func(t *testing.T, dev string)
		want sbd.Outcome
	}{
		{"reset pill from sbd", func(t *testing.T, dev string) {
			sbdCmd(t, dev, "message", "node2", "reset") // returns after msgwait (2 s)
		}, sbd.Fenced},
		{"disk gone", shrinkAway, sbd.DiskLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fw := fakewdt.MountTest(t)
			dev := loopDevice(t)
			sbdCmd(t, dev, "-1", "1", "-4", "2", "create")
			d, err := sbd.OpenDisk(dev)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			wd, err := watchdog.Open(fw.Path())
			if err != nil {
				t.Fatal(err)
			}
			// Runs before the unmount; after firing the magic close is moot.
			t.Cleanup(func() { wd.Close() })
			if got, err := wd.SetTimeout(2 * time.Second); err != nil || got != 2*time.Second {
				t.Fatalf("SetTimeout: %v, %v", got, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res := make(chan sbd.Result, 1)
			go func() {
				res <- sbd.Watch(ctx, sbd.WatchConfig{Disks: []*sbd.Disk{d}, Node: "node2", Watchdog: wd,
					Loop: 100 * time.Millisecond, DiskTimeout: time.Second, Logf: t.Logf})
			}()
			// Keep-alives arrive through the ioctl while the mailbox is clear.
			before, err := fw.Wait(ctx, func(s fakewdt.Stats) bool { return s.KeepAlives >= 5 })
			if err != nil {
				t.Fatalf("watcher did not feed the stand-in: %v", err)
			}
			if before.Fired || !before.Armed || before.Writes != 0 {
				t.Fatalf("while feeding: %+v", before)
			}
			if !strings.Contains(sbdCmd(t, dev, "list"), "node2\tclear") {
				t.Errorf("watcher's slot not allocated and clear")
			}
			tt.cut(t, dev)
			var r sbd.Result
			select {
			case r = <-res:
			case <-ctx.Done():
				t.Fatalf("watcher still running after the cut; stand-in %+v", fw.Stats())
			}
			if r.Outcome != tt.want {
				t.Errorf("watcher: %+v, want %v", r, tt.want)
			}
			if tt.want == sbd.Fenced && r.Msg != sbd.MsgReset {
				t.Errorf("pill %v, want reset", r.Msg)
			}
			fed := fw.Stats().KeepAlives
			after, err := fw.Wait(ctx, func(s fakewdt.Stats) bool { return s.Fired })
			if err != nil {
				t.Fatalf("stand-in never fired: %v", err)
			}
			if after.KeepAlives != fed || after.MagicCloses != 0 || after.Releases != 0 || !after.Armed || after.Timeout != 2*time.Second {
				t.Errorf("fired: %+v; want %d keep-alives, no close", after, fed)
			}
			t.Logf("%s: %d keep-alives before the cut, %d in all, then fired", tt.name, before.KeepAlives, fed)
		})
	}
}
