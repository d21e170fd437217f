package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// logBuf collects a daemon's log lines, for tests that read its warnings.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// messages are the msg values of the lines that contain sub.
func (l *logBuf) messages(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if !strings.Contains(line, sub) {
			continue
		}
		if m := msgField.FindStringSubmatch(line); m != nil {
			out = append(out, strings.ReplaceAll(m[1], `\"`, `"`))
		}
	}
	return out
}

var msgField = regexp.MustCompile(`msg="((?:[^"\\]|\\.)*)"`)

func (l *logBuf) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

var otherKey = bytes.Repeat([]byte{8}, 32)

// withKey makes a daemon use key instead of the one it was made with.
func withKey(t *testing.T, d *Daemon, c *config.Cluster, key []byte) {
	t.Helper()
	var err error
	if d.sealer, err = frame.NewSealer(key, c.ID, d.self.Number, d.inc); err != nil {
		t.Fatal(err)
	}
	if d.opener, err = frame.NewOpener(key, c.ID); err != nil {
		t.Fatal(err)
	}
}

// idleDaemon is node name of c, not running: a test feeds it frames and
// moves its ticks by hand.
func idleDaemon(t *testing.T, c *config.Cluster, name string) (*Daemon, *logBuf) {
	t.Helper()
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	var ports []Port
	for i, l := range c.NodeByName(name).Links {
		ports = append(ports, h.port(i, l.MAC))
	}
	lb := &logBuf{}
	d, err := NewWith(Options{NodeName: name, StateDir: t.TempDir(), Logger: lb.logger()}, c, testKey, ports)
	if err != nil {
		t.Fatal(err)
	}
	return d, lb
}

func seal(t *testing.T, key []byte, cluster uint32, sender uint16, kind uint8, payload []byte) []byte {
	t.Helper()
	s, err := frame.NewSealer(key, cluster, sender, uint64(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := s.Seal(nil, kind, payload)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A node whose key differs is warned about at once, naming it, its link
// and the key file, and then at most once a minute with a count however
// many of its frames fail; the status counts every one.
func TestWrongKeyWarningIsRateLimited(t *testing.T) {
	c := testConfig(t, 3)
	d, lb := idleDaemon(t, c, "n1")
	mac3 := c.Node(3).Links[0].MAC
	s, err := frame.NewSealer(otherKey, c.ID, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	perMinute := d.ticks(time.Minute)
	frames := 10*perMinute + 5 // a frame every tick for over ten minutes
	for range frames {
		f, _, _ := s.Seal(nil, frame.KindMembership, []byte("heartbeat"))
		d.receive(rxFrame{link: 0, src: mac3, data: f})
		d.tick++
	}
	warnings := lb.messages("fail authentication")
	if uint64(len(warnings)) != 11 {
		t.Fatalf("%d frames over %d ticks gave %d warnings, want 11 (the first, then one a minute): %q",
			frames, frames, len(warnings), warnings)
	}
	first := "frames from n3 (hb0 02:00:00:00:00:03) fail authentication: its /etc/concord/authkey differs from this node's"
	if warnings[0] != first {
		t.Errorf("first warning %q, want %q", warnings[0], first)
	}
	second := fmt.Sprintf("%s (%d since the last warning, %d in all)", first, perMinute, perMinute+1)
	if warnings[1] != second {
		t.Errorf("second warning %q, want %q", warnings[1], second)
	}
	st := d.buildStatus()
	if n := st.Nodes[2]; n.AuthFailures != frames || n.LastAuthFailure == "" {
		t.Errorf("status of node 3: %d auth failures, last %q; want %d and a time", n.AuthFailures, n.LastAuthFailure, frames)
	}
	if n := st.Nodes[1]; n.AuthFailures != 0 || n.LastAuthFailure != "" {
		t.Errorf("status of node 2, which sent nothing: %d auth failures, last %q", n.AuthFailures, n.LastAuthFailure)
	}
	stats := d.linkStats()
	for _, l := range stats {
		want := uint64(0)
		if l.Node == 3 && l.Link == 0 {
			want = frames
		}
		if l.Drops["auth"] != want {
			t.Errorf("link stats of node %d link %d: %d auth drops, want %d", l.Node, l.Link, l.Drops["auth"], want)
		}
	}

	if !st.Nodes[2].AuthFailing {
		t.Errorf("status: node 3 is not failing")
	}

	// The header's sender is not authenticated: a frame from node 3's
	// address that claims another sender is node 3's, and says so.
	d.tick += perMinute
	f := seal(t, otherKey, c.ID, 2, frame.KindMembership, []byte("x"))
	d.receive(rxFrame{link: 0, src: mac3, data: f})
	if w := lb.messages("fail authentication"); len(w) != 12 || !strings.Contains(w[11], "frames from n3 (hb0 02:00:00:00:00:03), which claim to be from node 2, fail authentication") {
		t.Errorf("a frame claiming node 2 from node 3's address: %q", w[len(w)-1])
	}

	// Node 3's key fixed: its frames authenticate, once said.
	good, err := frame.NewSealer(testKey, c.ID, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f, _, _ := good.Seal(nil, frame.KindMembership, []byte("heartbeat"))
		d.receive(rxFrame{link: 1, src: c.Node(3).Links[1].MAC, data: f})
		d.tick++
	}
	if m := lb.messages("authenticate again"); len(m) != 1 || !strings.HasPrefix(m[0], fmt.Sprintf("frames from n3 authenticate again (%d failed in all, the last at ", frames+1)) {
		t.Errorf("node 3's frames authentic again: %q", m)
	}
	if n := d.buildStatus().Nodes[2]; n.AuthFailing || n.AuthFailures != frames+1 {
		t.Errorf("status after node 3's frames authenticate again: failing %v, %d failures", n.AuthFailing, n.AuthFailures)
	}

	// A forger sending with node 3's address, between its authentic
	// frames, makes no more lines than the limit lets out.
	lines := len(lb.messages("n3"))
	for range 3 * perMinute {
		f := seal(t, otherKey, c.ID, 3, frame.KindMembership, []byte("forged"))
		d.receive(rxFrame{link: 0, src: mac3, data: f})
		f, _, _ = good.Seal(nil, frame.KindMembership, []byte("heartbeat"))
		d.receive(rxFrame{link: 0, src: mac3, data: f})
		d.tick++
	}
	if n := len(lb.messages("n3")) - lines; n > 6 {
		t.Errorf("forged frames between authentic ones for 3 minutes: %d lines, want at most 3 warnings and 3 lines saying they authenticate again", n)
	}
}

// Frames of another cluster id are warned about once per (cluster id,
// source address) and interval; a source that is a configured node's
// address is named.
func TestOtherClusterWarning(t *testing.T) {
	c := testConfig(t, 2)
	d, lb := idleDaemon(t, c, "n1")
	strangerA := net.HardwareAddr{2, 0xaa, 0, 0, 0, 1}
	strangerB := net.HardwareAddr{2, 0xaa, 0, 0, 0, 2}
	perMinute := d.ticks(time.Minute)
	ticks := 3*perMinute + 1
	for range ticks {
		d.receive(rxFrame{link: 1, src: strangerA, data: seal(t, testKey, 99, 1, frame.KindMembership, []byte("hb"))})
		d.receive(rxFrame{link: 1, src: strangerB, data: seal(t, otherKey, 99, 7, frame.KindMembership, []byte("hb"))})
		d.receive(rxFrame{link: 1, src: strangerB, data: seal(t, otherKey, 100, 7, frame.KindMembership, []byte("hb"))})
		d.tick++
	}
	count := func(sub string) int {
		n := 0
		for _, m := range lb.messages("another cluster") {
			if strings.Contains(m, sub) {
				n++
			}
		}
		return n
	}
	for _, src := range []string{"(id 99) from MAC 02:aa:00:00:00:01 on hb1", "(id 99) from MAC 02:aa:00:00:00:02 on hb1", "(id 100) from MAC 02:aa:00:00:00:02 on hb1"} {
		if n := count(src); n != 4 {
			t.Errorf("frames of another cluster %s every tick for %d ticks: %d warnings, want 4: %q", src, ticks, n, lb.messages("another cluster"))
		}
	}
	want := "frames of another cluster (id 99) from MAC 02:aa:00:00:00:01 on hb1: two clusters share this link"
	if m := lb.messages("another cluster"); len(m) == 0 || m[0] != want {
		t.Errorf("first warning %q, want %q", m, want)
	}
	st := d.buildStatus()
	if len(st.OtherClusters) != 3 {
		t.Fatalf("status: other clusters %+v, want 3 sources", st.OtherClusters)
	}
	if o := st.OtherClusters[0]; o.ClusterID != 99 || o.MAC != "02:aa:00:00:00:01" || o.Interface != "hb1" || o.Frames != ticks || o.Last == "" {
		t.Errorf("status: %+v", o)
	}
	if stats := d.linkStats(); len(stats) == 0 || stats[len(stats)-1].Node != 0 || stats[len(stats)-1].Drops["cluster"] != 3*ticks {
		t.Errorf("link stats: the drops of addresses of no node: %+v", stats)
	}

	// Node 2 with a cluster.conf of another cluster: named, after a
	// period in which it did not join this view.
	d.tick += perMinute
	for range perMinute + 1 {
		d.receive(rxFrame{link: 0, src: c.Node(2).Links[0].MAC, data: seal(t, testKey, 5, 2, frame.KindMembership, []byte("hb"))})
		d.tick++
	}
	want = fmt.Sprintf("frames of another cluster (id 5) from MAC 02:00:00:00:00:02 (n2's) on hb0: two clusters share this link, or n2's cluster.conf names another cluster (%d since the last warning, %d in all)", perMinute+1, perMinute+1)
	if m := lb.messages("(id 5)"); len(m) != 1 || m[0] != want {
		t.Errorf("node 2 in another cluster: %q, want %q", m, want)
	}
}

// A host in two clusters (two cluster contexts on the same NICs): frames
// of the other cluster from a node of this view are said once, at info
// level, shown in the status as that node's, and not warned about, also
// after the node leaves this view (its daemon of this cluster stopped,
// the other cluster's goes on).
func TestOtherClusterContext(t *testing.T) {
	c := testConfig(t, 2)
	d, lb := idleDaemon(t, c, "n1")
	n2 := c.Node(2).Links[0].MAC
	d.view.Members = append(d.view.Members, 1, 2)
	perMinute := d.ticks(time.Minute)
	for range 3 * perMinute {
		d.receive(rxFrame{link: 0, src: n2, data: seal(t, otherKey, 6, 2, frame.KindMembership, []byte("hb"))})
		d.tick++
	}
	if m := lb.messages("frames of another cluster"); len(m) != 0 {
		t.Errorf("warned about a host in both clusters: %q", m)
	}
	want := "n2 (hb0 02:00:00:00:00:02) is also a member of cluster id 6, another cluster context on that host; its frames of that cluster are ignored here"
	if m := lb.messages("also a member"); len(m) != 1 || m[0] != want {
		t.Errorf("said %q, want once %q", m, want)
	}
	st := d.buildStatus()
	if len(st.OtherClusters) != 1 || st.OtherClusters[0].AlsoMember != "n2" || st.OtherClusters[0].Frames != uint64(3*perMinute) {
		t.Errorf("status: other clusters %+v, want n2's", st.OtherClusters)
	}
	d.view.Members = d.view.Members[:1]
	for range 3 * perMinute {
		d.receive(rxFrame{link: 0, src: n2, data: seal(t, otherKey, 6, 2, frame.KindMembership, []byte("hb"))})
		d.tick++
	}
	if m := lb.messages("frames of another cluster"); len(m) != 0 {
		t.Errorf("warned about a host in both clusters after it left this view: %q", m)
	}
	if st := d.buildStatus(); len(st.OtherClusters) != 1 || st.OtherClusters[0].AlsoMember != "n2" {
		t.Errorf("status: other clusters %+v, want n2's", st.OtherClusters)
	}
	// Node 2's other link, never heard while n2 was in the view, is
	// warned about (after the first period).
	for range perMinute + 1 {
		d.receive(rxFrame{link: 1, src: c.Node(2).Links[1].MAC, data: seal(t, otherKey, 6, 2, frame.KindMembership, []byte("hb"))})
		d.tick++
	}
	if m := lb.messages("frames of another cluster (id 6)"); len(m) != 1 || !strings.Contains(m[0], "(n2's) on hb1") {
		t.Errorf("n2's hb1 out of the view: %q, want one warning", m)
	}
}

// Any number of forged source addresses cannot grow the loop's memory:
// at most maxStrangers are remembered (and warned about).
func TestStrangersAreBounded(t *testing.T) {
	c := testConfig(t, 2)
	d, lb := idleDaemon(t, c, "n1")
	for i := range 1000 {
		src := net.HardwareAddr{2, 0xbb, 0, 0, byte(i >> 8), byte(i)}
		d.receive(rxFrame{link: 0, src: src, data: seal(t, testKey, 77, 1, frame.KindMembership, []byte("hb"))})
	}
	if n := len(d.net.strangers); n != maxStrangers {
		t.Errorf("%d sources remembered, want %d", n, maxStrangers)
	}
	if n := len(lb.messages("another cluster")); n != maxStrangers {
		t.Errorf("%d warnings, want %d", n, maxStrangers)
	}
	if n := d.counters["dropped_cluster"]; n != 1000 {
		t.Errorf("%d frames of another cluster counted, want 1000", n)
	}
}

// Frames of this cluster that fail authentication from an address of no
// configured node: a node with another key and a MAC missing from the
// configuration.
func TestUnknownAddressAuthWarning(t *testing.T) {
	c := testConfig(t, 2)
	d, lb := idleDaemon(t, c, "n1")
	src := net.HardwareAddr{2, 0xcc, 0, 0, 0, 1}
	d.receive(rxFrame{link: 0, src: src, data: seal(t, otherKey, c.ID, 2, frame.KindMembership, []byte("hb"))})
	want := "frames of this cluster from MAC 02:cc:00:00:00:01 on hb0, claiming to be from node 2, fail authentication, and 02:cc:00:00:00:01 is no configured node's link: a node with another /etc/concord/authkey, or a NIC missing from the configuration"
	if m := lb.messages("fail authentication"); len(m) != 1 || m[0] != want {
		t.Errorf("warnings %q, want %q", m, want)
	}
	if n := d.buildStatus().Nodes[1].AuthFailures; n != 0 {
		t.Errorf("node 2 has %d auth failures: a frame claiming to be it from another address is not its", n)
	}
}

// On a running cluster where node 3 has another key: nodes 1 and 2 warn
// about node 3, node 3 about each of them, all name the key file, and
// each status counts the failures; the warnings stay rate-limited.
func TestWrongKeyWarnsOnBothSides(t *testing.T) {
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	c := testConfig(t, 3)
	logs := map[string]*logBuf{}
	every := 500 * time.Millisecond
	start := func(name string, key []byte) *testNode {
		lb := &logBuf{}
		logs[name] = lb
		return startNodeWith(t, h, c, name, t.TempDir(), func(d *Daemon) {
			d.log = lb.logger()
			d.net.warnEvery = every
			withKey(t, d, c, key)
		})
	}
	began := time.Now()
	n1, n2, n3 := start("n1", testKey), start("n2", testKey), start("n3", otherKey)
	agreeOn(t, []*testNode{n1, n2}, "[1 2]")
	// A warning names the node and the link its frame came on: either.
	names := func(m, from string) bool {
		for _, l := range c.NodeByName(from).Links {
			want := fmt.Sprintf("frames from %s (%s %s) fail authentication: its /etc/concord/authkey differs from this node's", from, l.Interface, l.MAC)
			if strings.HasPrefix(m, want) {
				return true
			}
		}
		return false
	}
	for _, w := range [][2]string{{"n1", "n3"}, {"n2", "n3"}, {"n3", "n1"}, {"n3", "n2"}} {
		on, from := w[0], w[1]
		eventually(t, on+" warns about "+from, func() (bool, string) {
			for _, m := range logs[on].messages("fail authentication") {
				if names(m, from) {
					return true, ""
				}
			}
			return false, fmt.Sprint(logs[on].messages("fail authentication"))
		})
	}
	if s := n3.d.Status(); members(s) != "[3]" || s.Quorum.Quorate {
		t.Errorf("node 3 with another key: view %s, quorate %v; want alone and not quorate", members(s), s.Quorum.Quorate)
	}
	eventually(t, "statuses count the failures", func() (bool, string) {
		s1, s3 := n1.d.Status(), n3.d.Status()
		ok := s1.Nodes[2].AuthFailures > 0 && s1.Nodes[2].LastAuthFailure != "" && s1.Nodes[1].AuthFailures == 0 &&
			s3.Nodes[0].AuthFailures > 0 && s3.Nodes[1].AuthFailures > 0
		return ok, fmt.Sprintf("n1 sees %d %d %d, n3 sees %d %d %d", s1.Nodes[0].AuthFailures, s1.Nodes[1].AuthFailures,
			s1.Nodes[2].AuthFailures, s3.Nodes[0].AuthFailures, s3.Nodes[1].AuthFailures, s3.Nodes[2].AuthFailures)
	})
	time.Sleep(2 * every)
	// Node 3's frames come every heartbeat on a link or two; the warnings,
	// one per interval. Wait for enough failed frames that one warning
	// per frame would show (a loaded machine runs fewer heartbeats).
	eventually(t, "node 3's frames fail at node 1", func() (bool, string) {
		f := n1.d.Status().Nodes[2].AuthFailures
		return f >= 40, fmt.Sprintf("%d frames failed", f)
	})
	elapsed := time.Since(began)
	most := int(elapsed/every) + 2
	fails := n1.d.Status().Nodes[2].AuthFailures
	// At least half a warning interval's heartbeats fail per warning.
	per := uint64(every / c.Totem.HeartbeatInterval / 2)
	if got := len(logs["n1"].messages("frames from n3")); got > most || got < 2 || fails < per*uint64(got) {
		t.Errorf("node 1 warned %d times about node 3 in %v (%d frames failed), want 2..%d", got, elapsed.Round(time.Millisecond), fails, most)
	}
}
