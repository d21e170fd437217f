package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// restart builds node name's daemon again on its state directory, as a
// restart by systemd would; it returns NewWith's error.
func restart(t *testing.T, h *hub, n *testNode, name string) error {
	t.Helper()
	c := n.d.fileCfg
	var ports []Port
	for i, l := range c.NodeByName(name).Links {
		ports = append(ports, h.port(i, l.MAC))
	}
	_, err := NewWith(Options{NodeName: name, StateDir: n.dir, Version: "test"}, c, testKey, ports)
	for _, p := range ports {
		p.Close()
	}
	return err
}

// stopped waits for n's loop to return by itself.
func stopped(t *testing.T, n *testNode, what string) {
	t.Helper()
	select {
	case err := <-n.done:
		if err != nil {
			t.Fatalf("%s: stopped with %v", what, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still runs 20 s later", what)
	}
}

// wantRefusal checks the message of a start refused after a deletion.
func wantRefusal(t *testing.T, err error, n *testNode, name string, number int) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s started again after it was deleted", name)
	}
	for _, want := range []string{
		fmt.Sprintf("this node, %s (number %d), was deleted from cluster memtest's configuration: ", name, number),
		fmt.Sprintf("run `concordctl node add %s --link \"hb0 02:00:00:00:00:%02x\" --link \"hb1 02:00:00:00:01:%02x\"` on a member", name, number, number),
		fmt.Sprintf("then here `rm -r %s`", n.dir),
		"(" + filepath.Join(n.dir, deletedFile) + ")",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q:\n%v", want, err)
		}
	}
}

// A node that applied its own deletion stops and never starts again until
// its state is cleared; one whose mark was lost still finds out from its
// replicated configuration.
func TestDeletedNodeStaysOut(t *testing.T) {
	h, _, ns := startCluster(t, 3)
	withIndex(t, ns)
	if err := ns[0].change(t, func(d *Daemon) (nodebus.Job, error) { return d.DeleteNode("n3") }); err != nil {
		t.Fatal(err)
	}
	stopped(t, ns[2], "n3 after its deletion")
	err := restart(t, h, ns[2], "n3")
	wantRefusal(t, err, ns[2], "n3", 3)
	if !strings.Contains(err.Error(), "it applied its own deletion (configuration index ") && !strings.Contains(err.Error(), " said so (its configuration index ") {
		t.Errorf("the refusal does not say how the node learnt it: %v", err)
	}
	// Without the mark (a crash before it was written, an older
	// version), the replicated configuration at start says the same.
	if err := os.Remove(filepath.Join(ns[2].dir, deletedFile)); err != nil {
		t.Fatal(err)
	}
	err = restart(t, h, ns[2], "n3")
	wantRefusal(t, err, ns[2], "n3", 3)
	if !strings.Contains(err.Error(), "its replicated configuration (index ") {
		t.Errorf("the refusal does not say how the node learnt it: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ns[2].dir, deletedFile)); err != nil {
		t.Errorf("the mark was not written again: %v", err)
	}
	// loadConfig, New's first step, refuses too, before any network.
	if _, err := loadConfig(&Options{ConfigPath: "/nonexistent", StateDir: ns[2].dir}, nil); err == nil || !strings.Contains(err.Error(), "was deleted") {
		t.Errorf("loadConfig after the deletion: %v", err)
	}
	// Clearing the state is the way back.
	if err := os.RemoveAll(ns[2].dir); err != nil {
		t.Fatal(err)
	}
	if err := restart(t, h, ns[2], "n3"); err != nil {
		t.Fatalf("after its state was cleared: %v", err)
	}
}

// A node deleted while cut off is told by its peers once heard again, and
// stays out as well.
func TestToldNodeStaysOut(t *testing.T) {
	h, c, ns := startCluster(t, 3)
	withIndex(t, ns)
	for l := range 2 {
		h.setCut(l, c.Node(3).Links[l].MAC, true)
	}
	agreeOn(t, ns[:2], "[1 2]")
	if err := ns[0].change(t, func(d *Daemon) (nodebus.Job, error) { return d.DeleteNode("n3") }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n3 gone from n2's configuration", func() (bool, string) { return !ns[1].hasNode("n3"), "not yet" })
	for l := range 2 {
		h.setCut(l, c.Node(3).Links[l].MAC, false)
	}
	stopped(t, ns[2], "n3 once heard again")
	err := restart(t, h, ns[2], "n3")
	wantRefusal(t, err, ns[2], "n3", 3)
	if !strings.Contains(err.Error(), " said so (its configuration index ") {
		t.Errorf("the refusal does not say that a peer told it: %v", err)
	}
}

// A node that is not in the configuration but keeps sending is told less
// and less often, and logged about at most every tellLogEvery, with a
// count.
func TestTellingIsRateLimited(t *testing.T) {
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	c := testConfig(t, 2)
	var log logBuf
	var ns []*testNode
	for i := 1; i <= 2; i++ {
		ns = append(ns, startNodeWith(t, h, c, fmt.Sprintf("n%d", i), t.TempDir(), func(d *Daemon) {
			if i == 1 {
				d.log = log.logger()
			}
		}))
	}
	agreeOn(t, ns, "[1 2]")
	withIndex(t, ns)
	d := ns[0].d
	s, err := frame.NewSealer(testKey, c.ID, 7, uint64(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	from := h.port(0, []byte{2, 0, 0, 0, 0, 7})
	frames := func(n int) {
		for range n {
			f, _, _ := s.Seal(nil, frame.KindProbe, frame.Probe{}.Encode())
			d.receive(rxFrame{link: 0, src: from.mac, data: f})
		}
	}
	var got []string
	d.call(func() {
		step := func(ticks uint64) {
			d.tick += ticks
			frames(5)
			got = append(got, fmt.Sprint(d.counters["told_not_member"], strings.Count(log.String(), "told it so")))
		}
		second := d.ticks(time.Second)
		step(0)                     // told at once, and logged
		step(second - 1)            // not yet again
		step(1)                     // told after 1 s, not logged
		step(2*second - 1)          // not within 2 s
		step(1)                     // told after 2 s
		step(4 * second)            // 4 s
		step(8 * second)            // 8 s
		step(16 * second)           // 16 s
		step(32 * second)           // 32 s
		step(d.ticks(tellMax) - 1)  // then at most once a minute
		step(1)                     //
		step(d.ticks(tellLogEvery)) // new again after a long silence: told, and logged with a count
	})
	want := []string{"1 1", "1 1", "2 1", "2 1", "3 1", "4 1", "5 1", "6 1", "7 1", "7 1", "8 1", "9 2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("told and logged: %v, want %v\n%s", got, want, log.String())
	}
	// The steps add up to 7m3s; whole ticks of a second may make it a
	// little less.
	if !regexp.MustCompile(`node 7 is not in the cluster configuration but still sends frames; told it so 8 times in the last 7m[0-3]s`).MatchString(log.String()) {
		t.Errorf("the second line does not count the tellings:\n%s", log.String())
	}
}
