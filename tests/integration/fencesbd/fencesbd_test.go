package fencesbd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/driver/sbd"
	"github.com/concord-ha/concord/lib/driver/watchdog"
	"github.com/concord-ha/concord/tests/harness/fencepeer"
)

// loopDevice attaches a fresh 8 MiB image to a loop device, detached at
// cleanup. sbd refuses plain files (it needs BLKSSZGET).
func loopDevice(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root for losetup")
	}
	for _, b := range []string{"losetup", "sbd"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("SKIP: %s not installed (Debian packages mount, sbd)", b)
		}
	}
	img := filepath.Join(t.TempDir(), "sbd.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Skipf("SKIP: losetup -f --show failed (no free loop device?): %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

func sbdCmd(t *testing.T, dev string, args ...string) string {
	t.Helper()
	out, err := exec.Command("sbd", append([]string{"-d", dev}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("sbd -d %s %s: %v: %s", dev, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func testHeader() sbd.Header {
	h := sbd.DefaultHeader()
	h.Watchdog, h.MsgWait = time.Second, 2*time.Second
	return h
}

// What we write, Debian's sbd reads.
func TestSBDReadsOurs(t *testing.T) {
	dev := loopDevice(t)
	if err := sbd.Create(dev, testHeader()); err != nil {
		t.Fatal(err)
	}
	d, err := sbd.OpenDisk(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, n := range []string{"node1", "node2"} {
		if _, err := d.Allocate(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Message("node2", sbd.MsgReset, "concord-test"); err != nil {
		t.Fatal(err)
	}
	dump := sbdCmd(t, dev, "dump")
	u := d.Header().UUID
	for _, want := range []string{"Header version     : 2.1", "Number of slots    : 255", "Sector size        : 512",
		"Timeout (watchdog) : 1", "Timeout (allocate) : 2", "Timeout (loop)     : 1", "Timeout (msgwait)  : 2",
		fmt.Sprintf("UUID               : %x-%x-%x-%x-%x", u[:4], u[4:6], u[6:8], u[8:10], u[10:])} {
		if !strings.Contains(dump, want) {
			t.Errorf("sbd dump lacks %q:\n%s", want, dump)
		}
	}
	if got, want := sbdCmd(t, dev, "list"), "0\tnode1\tclear\t\n1\tnode2\treset\tconcord-test\n"; got != want {
		t.Errorf("sbd list = %q, want %q", got, want)
	}
	// sbd can message a node we allocated; we read its message.
	sbdCmd(t, dev, "message", "node1", "test")
	host, _ := os.Hostname()
	if m, err := d.Mailbox(0); err != nil || m != (sbd.Mailbox{Msg: sbd.MsgTest, From: host}) {
		t.Errorf("mailbox after sbd message: %+v, %v (want test from %q)", m, err, host)
	}
}

// What Debian's sbd writes, we read.
func TestWeReadSBDs(t *testing.T) {
	dev := loopDevice(t)
	sbdCmd(t, dev, "-1", "1", "-4", "2", "create")
	sbdCmd(t, dev, "allocate", "node1")
	sbdCmd(t, dev, "allocate", "node2")
	sbdCmd(t, dev, "message", "node2", "reset")
	d, err := sbd.OpenDisk(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	h := d.Header()
	if h.Version != 2 || h.MinorVersion != 1 || h.Slots != 255 || h.SectorSize != 512 ||
		h.Watchdog != time.Second || h.Allocate != 2*time.Second || h.Loop != time.Second || h.MsgWait != 2*time.Second {
		t.Errorf("header %+v", h)
	}
	dump := sbdCmd(t, dev, "dump")
	if !strings.Contains(dump, fmt.Sprintf("%x-%x", h.UUID[:4], h.UUID[4:6])) {
		t.Errorf("UUID %x not in sbd dump:\n%s", h.UUID, dump)
	}
	slots, err := d.Slots()
	if err != nil || len(slots) != 2 || slots[0].Name != "node1" || slots[1].Name != "node2" {
		t.Fatalf("slots %+v, %v", slots, err)
	}
	host, _ := os.Hostname()
	if m, err := d.Mailbox(1); err != nil || m != (sbd.Mailbox{Msg: sbd.MsgReset, From: host}) {
		t.Errorf("node2 mailbox %+v, %v", m, err)
	}
	if m, err := d.Mailbox(0); err != nil || m.Msg != sbd.MsgClear {
		t.Errorf("node1 mailbox %+v, %v", m, err)
	}
}

// The watcher on a real block device reacts to a pill sent by Debian's sbd.
func TestWatcherFiresOnSBDPill(t *testing.T) {
	dev := loopDevice(t)
	sbdCmd(t, dev, "-1", "1", "-4", "2", "create")
	d, err := sbd.OpenDisk(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	wd := watchdog.NewCounter(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := make(chan sbd.Result, 1)
	go func() {
		res <- sbd.Watch(ctx, sbd.WatchConfig{Disks: []*sbd.Disk{d}, Node: "node2", Watchdog: wd, Loop: 100 * time.Millisecond, Logf: t.Logf})
	}()
	// The watcher allocates its own slot; wait until sbd sees it.
	for !strings.Contains(sbdCmd(t, dev, "list"), "node2") {
		select {
		case r := <-res:
			t.Fatalf("watcher ended early: %+v", r)
		case <-time.After(50 * time.Millisecond):
		}
	}
	sbdCmd(t, dev, "message", "node2", "test") // returns after msgwait (2 s)
	sbdCmd(t, dev, "message", "node2", "reset")
	r := <-res
	if r.Outcome != sbd.Fenced || r.Msg != sbd.MsgReset || wd.Closed() {
		t.Errorf("got %+v, closed %v", r, wd.Closed())
	}
	if wd.KeepAlives() < 2 {
		t.Errorf("only %d keep-alives before the pill", wd.KeepAlives())
	}
}

var agent = fencepeer.Agent{Name: "fence_concord_sbd"}

func TestMain(m *testing.M) { agent.Main(m) }

func runAgent(t *testing.T, params ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(agent.Path(t))
	cmd.Stdin = strings.NewReader(strings.Join(params, "\n") + "\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("agent %q -> exit %d, stdout %q, stderr %q", params, code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

func TestAgent(t *testing.T) {
	dev := loopDevice(t)
	sbdCmd(t, dev, "-1", "1", "-4", "2", "create")
	sbdCmd(t, dev, "allocate", "node1")
	sbdCmd(t, dev, "allocate", "node2")
	host, _ := os.Hostname()
	steps := []struct {
		action, plug string
		code         int
		stdout       string
		list         string // sbd list afterwards, "" = not checked
	}{
		{"status", "node2", 0, "Status: ON\n", ""},
		{"list", "", 0, "node1,\nnode2,\n", ""},
		{"off", "node2", 0, "Success: Powered OFF\n", "0\tnode1\tclear\t\n1\tnode2\toff\t" + host + "\n"},
		{"status", "node2", 2, "Status: OFF\n", ""},
		{"list-status", "", 0, "node1,,ON\nnode2,,OFF\n", ""},
		{"on", "node2", 0, "Success: Powered ON\n", "0\tnode1\tclear\t\n1\tnode2\tclear\t" + host + "\n"},
		{"reboot", "node1", 0, "Success: Rebooted\n", "0\tnode1\treset\t" + host + "\n1\tnode2\tclear\t" + host + "\n"},
		{"status", "node1", 2, "Status: OFF\n", ""},
		{"off", "nodeX", 1, "", ""},
		{"status", "nodeX", 8, "", ""},
	}
	for _, s := range steps {
		params := []string{"action=" + s.action, "devices=" + dev}
		if s.plug != "" {
			params = append(params, "plug="+s.plug)
		}
		code, out, _ := runAgent(t, params...)
		if code != s.code || out != s.stdout {
			t.Errorf("%s %s: exit %d stdout %q; want %d %q", s.action, s.plug, code, out, s.code, s.stdout)
		}
		if s.list != "" {
			if got := sbdCmd(t, dev, "list"); got != s.list {
				t.Errorf("after %s %s: sbd list %q, want %q", s.action, s.plug, got, s.list)
			}
		}
	}
	code, _, errOut := runAgent(t, "action=status", "plug=node1", "devices=/dev/null")
	if code == 0 || !strings.Contains(errOut, "not a block device") {
		t.Errorf("/dev/null: exit %d, %q", code, errOut)
	}
}
