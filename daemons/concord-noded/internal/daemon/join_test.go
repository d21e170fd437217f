package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/store/confstore"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// joinerOn is a joiner for name on h, listening on hb0 and hb1 with the
// MACs the test configuration gives node number n.
func joinerOn(h *hub, name string, n int, key []byte) *joiner {
	var ports []joinPort
	for l := range 2 {
		mac := net.HardwareAddr{2, 0, 0, 0, byte(l), byte(n)}
		ports = append(ports, joinPort{name: fmt.Sprintf("hb%d", l), mac: mac, Port: h.port(l, mac)})
	}
	return &joiner{name: name, key: key, keyPath: "/etc/concord/authkey", ports: ports, log: slog.New(slog.DiscardHandler),
		wait: 20 * time.Second, retry: 100 * time.Millisecond, settle: 500 * time.Millisecond}
}

// withIndex waits until every node has a replicated configuration.
func withIndex(t *testing.T, ns []*testNode) {
	t.Helper()
	for _, n := range ns {
		eventually(t, "a replicated configuration", func() (bool, string) {
			var idx uint64
			n.d.call(func() { idx = n.d.cfgIndex })
			return idx > 0, "index 0"
		})
	}
}

func (n *testNode) hasNode(name string) bool { return n.cfg().NodeByName(name) != nil }

func answered(ns []*testNode) uint64 {
	var a uint64
	for _, n := range ns {
		a += n.counter("join_answered")
	}
	return a
}

// A node with only the key and its name fetches the configuration from
// the members, keeps it in its state directory and, started with it,
// becomes a member whose configuration is the others'.
func TestJoinFetchesTheConfiguration(t *testing.T) {
	h, _, ns := startCluster(t, 3)
	withIndex(t, ns)
	if err := ns[1].addNode(t, "n4", 4, 1, []string{"hb0 02:00:00:00:00:04", "hb1 02:00:00:00:01:04"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		eventually(t, "n4 in the configuration", func() (bool, string) { return n.hasNode("n4"), "not yet" })
	}
	r, err := joinerOn(h, "n4", 4, testKey).run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := string(config.Format(ns[0].cfg()))
	if got := string(config.Format(r.cfg)); got != want {
		t.Fatalf("fetched configuration:\n%s\nwant the members':\n%s", got, want)
	}
	if r.index == 0 || r.from == 0 || r.from > 3 {
		t.Errorf("fetched index %d from node %d", r.index, r.from)
	}
	if answered(ns) == 0 {
		t.Error("the joiner has the configuration, but no member counted an answer")
	}

	dir := t.TempDir()
	if err := saveJoined(dir, "n4", r); err != nil {
		t.Fatal(err)
	}
	fc, err := loadJoined(dir, "n4")
	if err != nil || fc == nil {
		t.Fatalf("loading what was fetched: %v", err)
	}
	if got := string(config.Format(fc)); got != want {
		t.Fatalf("stored configuration:\n%s\nwant:\n%s", got, want)
	}
	n4 := startNodeWith(t, h, fc, "n4", dir, func(d *Daemon) { d.store.PeerInitialized() })
	agreeOn(t, append(ns, n4), "[1 2 3 4]")
	withIndex(t, []*testNode{n4})
	if got := string(config.Format(n4.cfg())); got != want {
		t.Errorf("the joined node's replicated configuration:\n%s\nwant:\n%s", got, want)
	}
	// A change made now reaches it too.
	if err := ns[0].change(t, func(d *Daemon) (nodebus.Job, error) { return d.SetOption("joined", "yes") }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n4 follows changes", func() (bool, string) { return n4.cfg().Options["joined"] == "yes", "not yet" })
}

// A node deleted right after it joined, before its store received the
// replicated configuration, still learns it from a peer: the index of
// the configuration it fetched is its own until then.
func TestJoinedNodeIsToldBeforeItsStoreCatchesUp(t *testing.T) {
	c := testConfig(t, 4)
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	var ports []Port
	for i, l := range c.Node(4).Links {
		ports = append(ports, h.port(i, l.MAC))
	}
	dir := t.TempDir()
	d, err := NewWith(Options{NodeName: "n4", StateDir: dir}, c, testKey, ports)
	if err != nil {
		t.Fatal(err)
	}
	d.joined(12)
	d.notMember(1, frame.NotMember{Node: 4, ConfigIndex: 12}.Encode())
	if d.deleted {
		t.Fatal("a notice at the fetched configuration's own index was taken as a deletion")
	}
	d.notMember(1, frame.NotMember{Node: 4, ConfigIndex: 13}.Encode())
	if !d.deleted {
		t.Fatal("a node that joined at index 12 ignored a peer's word at index 13 that it is not listed")
	}
	if err := checkDeleted(dir); err == nil || !strings.Contains(err.Error(), "node 1 said so (its configuration index 13, this node's 12)") {
		t.Fatalf("the mark: %v", err)
	}
}

// A node with another key learns nothing: it cannot open the members'
// frames, so it never asks, says its key is not the cluster's, and a
// request sealed with that key gets no answer.
func TestJoinWithAnotherKeyLearnsNothing(t *testing.T) {
	h, c, ns := startCluster(t, 3)
	withIndex(t, ns)
	other := bytes.Repeat([]byte{8}, 32)
	j := joinerOn(h, "n1", 9, other) // even a configured name
	j.wait = time.Second
	var log logBuf
	j.log = log.logger()
	r, err := j.run(context.Background())
	if r != nil || err == nil {
		t.Fatalf("joined with another key: %+v %v", r, err)
	}
	if errors.Is(err, ErrTryAgain) || !strings.Contains(err.Error(), "do not authenticate with the key in /etc/concord/authkey") ||
		!strings.Contains(err.Error(), fmt.Sprintf("cluster id %d on hb", c.ID)) || !strings.Contains(err.Error(), "copy /etc/concord/authkey from a member") {
		t.Fatalf("error: %v", err)
	}
	if strings.Count(log.String(), "do not authenticate") != 1 {
		t.Errorf("the key mismatch should be logged once:\n%s", log.String())
	}
	// A request sealed with the other key.
	mac := net.HardwareAddr{2, 0, 0, 0, 9, 9}
	p := h.port(0, mac)
	s, err := frame.NewSealer(other, c.ID, 0, uint64(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := frame.JoinRequest{RequestID: 1, Name: "n1"}.Encode()
	f, _, _ := s.Seal(nil, frame.KindJoinRequest, req)
	auth := ns[0].counter("dropped_auth")
	p.WriteTo(f, ns[0].d.group)
	eventually(t, "the forged request dropped", func() (bool, string) {
		n := ns[0].counter("dropped_auth")
		return n > auth, fmt.Sprintf("dropped_auth %d", n)
	})
	if a := answered(ns); a != 0 {
		t.Fatalf("members answered %d join requests", a)
	}
	for len(p.in) > 0 {
		f := <-p.in
		if h, err := frame.ParseHeader(f.b); err == nil && h.Kind == frame.KindJoinConfig {
			t.Fatalf("a join answer reached the forger: %+v", h)
		}
	}
}

// A node that the configuration does not list says so, with the command
// that adds it.
func TestJoinNotInConfiguration(t *testing.T) {
	h, _, ns := startCluster(t, 3)
	withIndex(t, ns)
	r, err := joinerOn(h, "n9", 9, testKey).run(context.Background())
	if r != nil || err == nil {
		t.Fatalf("n9 joined: %+v %v", r, err)
	}
	want := "node n9 is not in cluster memtest's configuration (index "
	add := "run `concordctl node add n9 --link \"hb0 02:00:00:00:00:09\" --link \"hb1 02:00:00:00:01:09\"` on a member first"
	if errors.Is(err, ErrTryAgain) || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), add) {
		t.Fatalf("error: %v\nwant %q ... %q", err, want, add)
	}
}

// The MACs the configuration gives this node's links must be its NICs'.
func TestJoinWithOtherMACs(t *testing.T) {
	h, _, ns := startCluster(t, 3)
	withIndex(t, ns)
	if err := ns[0].addNode(t, "n4", 4, 1, []string{"hb0 02:00:00:00:00:44", "hb1 02:00:00:00:01:04"}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n4 added", func() (bool, string) { return ns[1].hasNode("n4") && ns[2].hasNode("n4"), "not yet" })
	_, err := joinerOn(h, "n4", 4, testKey).run(context.Background())
	want := "cluster memtest's configuration gives node n4 other MACs than its NICs have (link 0 hb0 has 02:00:00:00:00:04 here, not 02:00:00:00:00:44): " +
		"correct it on a member with `concordctl node edit n4 --link \"hb0 02:00:00:00:00:04\" --link \"hb1 02:00:00:00:01:04\"`"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error: %v\nwant %s", err, want)
	}
}

// Nothing heard is worth another try later (exit 1, systemd restarts).
func TestJoinHearingNothingIsTryAgain(t *testing.T) {
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	j := joinerOn(h, "n4", 4, testKey)
	j.wait = 300 * time.Millisecond
	_, err := j.run(context.Background())
	if !errors.Is(err, ErrTryAgain) || !strings.Contains(err.Error(), "heard no Concord frames on hb0, hb1 within 300ms") {
		t.Fatalf("error: %v", err)
	}
}

// Members answer one request per name a second, and few in all.
func TestJoinAnswersAreRateLimited(t *testing.T) {
	h, c, ns := startCluster(t, 2)
	withIndex(t, ns)
	d := ns[0].d
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	p := h.port(0, mac)
	inc := uint64(time.Now().UnixNano())
	request := func(name string, key []byte) rxFrame {
		inc++
		s, err := frame.NewSealer(key, c.ID, 0, inc)
		if err != nil {
			t.Fatal(err)
		}
		b, err := frame.JoinRequest{RequestID: inc, Name: name}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		f, _, _ := s.Seal(nil, frame.KindJoinRequest, b)
		return rxFrame{link: 0, src: mac, data: f}
	}
	var before, middle, after map[string]uint64
	counts := func() map[string]uint64 {
		return map[string]uint64{"answered": d.counters["join_answered"], "limited": d.counters["join_rate_limited"],
			"auth": d.counters["dropped_auth"]}
	}
	d.call(func() {
		before = counts()
		for range 20 {
			d.receive(request("n9", testKey)) // the same name, again and again
		}
		middle = counts()
		for i := range 20 {
			d.receive(request(fmt.Sprintf("x%d", i), testKey)) // many names
		}
		d.receive(request("y", bytes.Repeat([]byte{8}, 32))) // another key
		after = counts()
	})
	if a, l := middle["answered"]-before["answered"], middle["limited"]-before["limited"]; a != 1 || l != 19 {
		t.Fatalf("20 requests of one name within one tick: %d answered, %d limited; want 1 and 19", a, l)
	}
	if a, l := after["answered"]-middle["answered"], after["limited"]-middle["limited"]; a != joinAnswersPerSecond-1 || l != 21-joinAnswersPerSecond {
		t.Fatalf("20 names within the same tick: %d answered, %d limited; want %d and %d", a, l, joinAnswersPerSecond-1, 21-joinAnswersPerSecond)
	}
	if after["auth"] != before["auth"]+1 {
		t.Fatalf("a request under another key: dropped_auth %d -> %d", before["auth"], after["auth"])
	}
	d.call(func() {
		d.tick += d.ticks(time.Second)
		before = counts()
		d.receive(request("n9", testKey))
		// Another joining node, whose clock is behind: its requests
		// are not stale because of the first one's.
		inc -= 1e12
		d.receive(request("z", testKey))
		after = counts()
	})
	if after["answered"] != before["answered"]+2 {
		t.Fatalf("a second later: %d answered, want n9 again and z", after["answered"]-before["answered"])
	}
	// Every answer reached the asker, as JoinConfig fragments of ns[0].
	n := 0
	for len(p.in) > 0 {
		f := <-p.in
		if h, err := frame.ParseHeader(f.b); err == nil && h.Kind == frame.KindJoinConfig && h.Sender == 1 {
			n++
		}
	}
	if n < joinAnswersPerSecond+1 {
		t.Errorf("%d JoinConfig fragments reached the asker, want at least %d", n, joinAnswersPerSecond+1)
	}
}

// loadConfig reads cluster.conf, or in the join form the configuration
// fetched before, without the network.
func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	c := testConfig(t, 3)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := write("full.conf", string(config.Format(c)))
	sc, err := loadConfig(&Options{ConfigPath: full, StateDir: state, NodeName: "n1"}, nil)
	if err != nil || sc.joining || sc.cfg.NodeByName("n3") == nil {
		t.Fatalf("a whole cluster.conf: %+v %v", sc, err)
	}
	if err := saveJoined(state, "n2", &joined{cfg: c, index: 7, from: 1, when: time.Now()}); err != nil {
		t.Fatal(err)
	}
	o := &Options{ConfigPath: write("join.conf", "[node n2]\n"), StateDir: state}
	sc, err = loadConfig(o, nil)
	if err != nil || !sc.joining || o.NodeName != "n2" || string(config.Format(sc.cfg)) != string(config.Format(c)) {
		t.Fatalf("the join form after a join: %v %v %q", sc.joining, err, o.NodeName)
	}
	// What the store applied last wins over what was fetched.
	c2 := testConfig(t, 3)
	c2.Options = map[string]string{"later": "yes"}
	js, _ := c2.MarshalJSON()
	if err := os.WriteFile(filepath.Join(state, confstore.ClusterFile), js, 0o644); err != nil {
		t.Fatal(err)
	}
	if sc, err = loadConfig(&Options{ConfigPath: filepath.Join(dir, "none.conf"), StateDir: state, NodeName: "n2"}, nil); err != nil || sc.cfg.Options["later"] != "yes" {
		t.Fatalf("no cluster.conf at all, after a join: %+v %v", sc, err)
	}
	for _, tc := range []struct {
		text, node, want string
	}{
		{"[node n2]\n", "n3", "--node n3, but " + filepath.Join(dir, "bad.conf") + " names [node n2]"},
		{"[node n2]\nnumber = 2\n", "", filepath.Join(dir, "bad.conf") + ":2: [node n2]: number: not set in a file without [cluster]"},
		{"[node n5]\n", "", filepath.Join(state, joinedFile) + " does not list this node, n5: remove it to fetch the configuration again"},
		{"[node n2]\n", "", ""}, // after a join: no key needed to read the configuration

	} {
		_, err := loadConfig(&Options{ConfigPath: write("bad.conf", tc.text), KeyPath: filepath.Join(dir, "nokey"), StateDir: state, NodeName: tc.node}, nil)
		if tc.want == "" && err == nil {
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: %v\nwant %s", tc.text, err, tc.want)
		}
	}
	// Never joined: the key is needed, and the message says where it comes from.
	_, err = loadConfig(&Options{ConfigPath: write("empty.conf", ""), KeyPath: filepath.Join(dir, "nokey"), StateDir: t.TempDir(), NodeName: "n7"}, nil)
	want := filepath.Join(dir, "empty.conf") + " has no [cluster] section, so this node joins a running cluster, which needs the cluster's key: copy " +
		filepath.Join(dir, "nokey") + " from a member (root, mode 0600)"
	if err == nil || err.Error() != want {
		t.Errorf("no key: %v\nwant %s", err, want)
	}
}

// An answer is taken only if it answers this node's request, parses,
// is valid, is of the cluster whose frames were heard, and lists this
// node.
func TestJoinAnswerChecks(t *testing.T) {
	c := testConfig(t, 3)
	good, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	bad := *c
	bad.Totem.DeadTime = bad.Totem.HeartbeatInterval // refused by Validate
	invalid, _ := bad.MarshalJSON()
	var log logBuf
	j := &joiner{name: "n2", log: log.logger()}
	reqs := map[uint64]bool{7: true}
	msg := func(req uint64, cfg []byte) []byte {
		return frame.JoinConfig{RequestID: req, Index: 5, Config: cfg}.Encode()
	}
	for _, tc := range []struct {
		name    string
		msg     []byte
		cluster uint32
		self    string
		want    string // "joined", "absent" or "" for neither
		log     string
	}{
		{"taken", msg(7, good), c.ID, "n2", "joined", ""},
		{"another node's request", msg(8, good), c.ID, "n2", "", ""},
		{"no JSON", msg(7, []byte("{")), c.ID, "n2", "", "node 1 sent a configuration that is not valid"},
		{"not valid", msg(7, invalid), c.ID, "n2", "", "dead_time"},
		{"another cluster", msg(7, good), c.ID + 1, "n2", "", fmt.Sprintf("sent the configuration of cluster id %d", c.ID)},
		{"not listed", msg(7, good), c.ID, "n9", "absent", ""},
		{"malformed", []byte{1, 2, 3}, c.ID, "n2", "", "a join answer that does not parse"},
	} {
		j.name = tc.self
		got, without := j.answer(1, tc.cluster, tc.msg, reqs)
		switch {
		case tc.want == "joined" && (got == nil || got.index != 5 || got.from != 1 || got.cfg.NodeByName("n2") == nil),
			tc.want == "absent" && (got != nil || without == nil || *without != absent{cluster: "memtest", index: 5, from: 1}),
			tc.want == "" && (got != nil || without != nil):
			t.Errorf("%s: %+v %+v, want %s", tc.name, got, without, tc.want)
		}
		if tc.log != "" && !strings.Contains(log.String(), tc.log) {
			t.Errorf("%s: the log does not say %q:\n%s", tc.name, tc.log, log.String())
		}
	}
}
