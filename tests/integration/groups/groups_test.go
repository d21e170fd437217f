// Package groups tests Concord's process groups on real systemd nodes,
// installed from the package: members are processes on three nodes
// (tests/cmd/grouptool, in Go, and C programs built in the nodes against
// the installed header), and the test compares what each delivered.
package groups

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/tests/harness/cluster"
	"github.com/concord-ha/concord/tests/harness/concordtest"
)

const (
	formTimeout = 90 * time.Second
	runTimeout  = 3 * time.Minute
)

func boot(t *testing.T, o concordtest.Options) (*concordtest.Cluster, context.Context) {
	t.Helper()
	return concordtest.BootTest(t, o, 20*time.Minute)
}

// installTool builds grouptool for the nodes and puts it in each one's
// /usr/local/bin.
func installTool(t *testing.T, c *concordtest.Cluster, nodes []int) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "grouptool")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/concord-ha/concord/tests/cmd/grouptool")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build grouptool: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range nodes {
		if err := c.WriteFile(i, "/usr/local/bin/grouptool", b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// cPackages are what building cmember in a node takes.
var cPackages = []string{"gcc", "libc6-dev", "pkg-config"}

// installC copies cmember.c into the nodes and builds it there against
// the header and pkg-config file that concord-dev.deb installed, as a
// user of the package would.
func installC(t *testing.T, ctx context.Context, c *concordtest.Cluster, nodes []int) {
	t.Helper()
	src, err := os.ReadFile("testdata/cmember.c")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range nodes {
		if err := c.WriteFile(i, "/usr/local/src/cmember.c", src, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := c.Exec(ctx, i, "sh", "-c",
			"cc -Wall -Werror -o /usr/local/bin/cmember /usr/local/src/cmember.c $(pkg-config --cflags --libs concord) -pthread 2>&1")
		if err != nil {
			t.Fatalf("node %d: build cmember against the installed header: %v\n%s", i, err, out)
		}
	}
}

// member is a grouptool run as a transient unit on a node.
type member struct {
	node int
	unit string
	log  string
}

func start(t *testing.T, ctx context.Context, c *concordtest.Cluster, node int, name string, args ...string) member {
	t.Helper()
	return startProgram(t, ctx, c, node, name, "/usr/local/bin/grouptool", args...)
}

// startC starts cmember, the C member built in the node (installC).
func startC(t *testing.T, ctx context.Context, c *concordtest.Cluster, node int, name string, args ...string) member {
	t.Helper()
	return startProgram(t, ctx, c, node, name, "/usr/local/bin/cmember", args...)
}

func startProgram(t *testing.T, ctx context.Context, c *concordtest.Cluster, node int, name, program string, args ...string) member {
	t.Helper()
	m := member{node: node, unit: "gt-" + name, log: "/tmp/gt-" + name + ".log"}
	c.Systemctl(ctx, node, "reset-failed", m.unit)
	argv := append([]string{"systemd-run", "--unit=" + m.unit, "--collect", "--property=KillMode=process", program}, args...)
	argv = append(argv, "-out", m.log)
	if _, err := c.Exec(ctx, node, argv...); err != nil {
		t.Fatalf("start %s on node %d: %v", name, node, err)
	}
	return m
}

func (m member) lines(ctx context.Context, c *concordtest.Cluster) []string {
	out, _ := c.Exec(ctx, m.node, "cat", m.log)
	return strings.Split(strings.TrimSpace(out), "\n")
}

// wait waits for the member's process to end and returns its log.
func (m member) wait(t *testing.T, ctx context.Context, c *concordtest.Cluster) []string {
	t.Helper()
	err := cluster.Eventually(withTimeout(ctx, runTimeout), func() (bool, string) {
		out, _ := c.Exec(ctx, m.node, "systemctl", "is-active", m.unit)
		return strings.TrimSpace(out) != "active", m.unit + " still " + strings.TrimSpace(out)
	})
	if err != nil {
		t.Fatalf("node %d: %v; log tail: %v", m.node, err, tail(m.lines(ctx, c)))
	}
	return m.lines(ctx, c)
}

// waitFor waits until the member's log has a line starting with prefix.
func (m member) waitFor(t *testing.T, ctx context.Context, c *concordtest.Cluster, prefix string) {
	t.Helper()
	err := cluster.Eventually(withTimeout(ctx, runTimeout), func() (bool, string) {
		ls := m.lines(ctx, c)
		return slices.ContainsFunc(ls, func(l string) bool { return strings.HasPrefix(l, prefix) }), "log: " + fmt.Sprint(tail(ls))
	})
	if err != nil {
		t.Fatalf("%s on node %d: no %q: %v", m.unit, m.node, prefix, err)
	}
}

func tail(ls []string) []string {
	if len(ls) > 5 {
		return ls[len(ls)-5:]
	}
	return ls
}

func withTimeout(ctx context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(ctx, d)
	_ = cancel // released when the parent ends
	return ctx
}

// ordered keeps the lines every member must agree on: views and
// messages of group g, from the first view with n members on.
func ordered(ls []string, g string, n int) []string {
	var out []string
	started := false
	for _, l := range ls {
		f := strings.Fields(l)
		if len(f) < 2 || f[1] != g || (f[0] != "view" && f[0] != "msg") {
			continue
		}
		if !started && f[0] == "view" && strings.Count(l[:strings.Index(l, "]")], "/") >= n+1 {
			started = true
		}
		if started {
			out = append(out, l)
		}
	}
	return out
}

func TestProcessGroups(t *testing.T) {
	dev := concordtest.DevDeb()
	if concordtest.Deb() != "" && dev == "" {
		t.Skip("skipping: no concord-dev.deb beside CONCORD_DEB (make deb builds both)")
	}
	c, ctx := boot(t, concordtest.Options{Nodes: 3, Packages: cPackages, Debs: []string{dev}})
	all := []int{1, 2, 3}
	if _, err := c.WaitView(ctx, all, []uint16{1, 2, 3}, formTimeout); err != nil {
		t.Fatal(err)
	}
	installTool(t, c, all)
	installC(t, ctx, c, all)

	t.Run("BarrierAcrossThreeNodes", func(t *testing.T) {
		var ms []member
		for _, i := range all {
			ms = append(ms, start(t, ctx, c, i, fmt.Sprintf("bar%d", i), "barrier", "-group", "b", "-members", "3", "-barrier", "x", "-idle", "2s"))
		}
		var got []string
		for _, m := range ms {
			ls := m.wait(t, ctx, c)
			var bs []string
			for _, l := range ls {
				if strings.HasPrefix(l, "barrier ") {
					bs = append(bs, l)
				}
			}
			if len(bs) != 1 {
				t.Fatalf("node %d: barrier lines %q", m.node, bs)
			}
			got = append(got, bs[0])
		}
		for _, g := range got {
			if g != "barrier b x ok 3" {
				t.Fatalf("barrier outcomes %q, want each released once with 3 members", got)
			}
		}
	})

	t.Run("TransactionAcrossTwoGroups", func(t *testing.T) {
		// Node 1 commits to t1 and t2; node 2 is in t1, node 3 in t2.
		m2 := start(t, ctx, c, 2, "tx2", "member", "-group", "t1", "-idle", "3s")
		m3 := start(t, ctx, c, 3, "tx3", "member", "-group", "t2", "-idle", "3s")
		m2.waitFor(t, ctx, c, "ready")
		m3.waitFor(t, ctx, c, "ready")
		m1 := start(t, ctx, c, 1, "tx1", "tx", "-group", "t1", "-group", "t2", "-idle", "3s")
		want := map[member]string{m1: "t1:1/", m2: "t1:1/", m3: "t2:1/"}
		for _, m := range []member{m1, m2, m3} {
			ls := m.wait(t, ctx, c)
			var txs []string
			for _, l := range ls {
				if strings.HasPrefix(l, "tx ") {
					txs = append(txs, l)
				}
			}
			if len(txs) != 1 || !strings.Contains(txs[0], want[m]) {
				t.Fatalf("node %d: transactions %q, want one with %s; log %q", m.node, txs, want[m], tail(ls))
			}
			if m == m1 && !strings.Contains(txs[0], "t2:1/") {
				t.Fatalf("node 1 (in both groups) got %q, want both parts", txs[0])
			}
		}
	})

	t.Run("SlowReaderIsRemoved", func(t *testing.T) {
		slow := start(t, ctx, c, 2, "slow", "stall", "-group", "s", "-members", "2", "-stall", "20s", "-idle", "3s")
		fast := start(t, ctx, c, 1, "fast", "member", "-group", "s", "-members", "2", "-send", "20000", "-size", "1024", "-idle", "3s")
		fl := fast.wait(t, ctx, c)
		if !slices.ContainsFunc(fl, func(l string) bool { return strings.Contains(l, ":removed:") }) {
			t.Fatalf("the sender never saw the slow reader removed; log tail %q", tail(fl))
		}
		if !slices.Contains(fl, "sent 20000") {
			t.Fatalf("the sender did not finish: %q", tail(fl))
		}
		sl := slow.wait(t, ctx, c)
		if !slices.ContainsFunc(sl, func(l string) bool { return strings.Contains(l, ":removed:") && strings.Contains(l, "2/") }) {
			t.Fatalf("the slow reader never learnt it was removed; log tail %q", tail(sl))
		}
		for _, l := range fl {
			if strings.Contains(l, ":removed:") {
				t.Logf("sender saw: %s", l)
			}
		}
	})

	t.Run("BadInputIsRefused", func(t *testing.T) {
		// A Go sender on node 1 streams to a C receiver on node 2 while
		// node 1's daemon gets bad packets and unwelcome users.
		const n = 6000
		recv := startC(t, ctx, c, 2, "badrecv", "member", "-group", "bad", "-members", "2", "-idle", "8s")
		send := start(t, ctx, c, 1, "badsend", "member", "-group", "bad", "-members", "2", "-send", fmt.Sprint(n), "-interval", "5ms", "-idle", "4s")
		recv.waitFor(t, ctx, c, "ready")
		send.waitFor(t, ctx, c, "ready")
		pid := func() string {
			out, err := c.Exec(ctx, 1, "systemctl", "show", "-p", "MainPID", "--value", "concord-noded")
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(out)
		}
		pid0 := pid()
		since := time.Now().Add(-time.Second)

		// raw runs grouptool's raw mode on node 1 (as user, unless "")
		// and returns its output.
		raw := func(user string, args ...string) string {
			t.Helper()
			argv := []string{"/usr/local/bin/grouptool", "raw"}
			if user != "" {
				argv = append(as(user), argv...)
			}
			out, err := c.Exec(ctx, 1, append(argv, args...)...)
			if err != nil {
				out += fmt.Sprintf("exit: %v\n", err)
			}
			return out
		}
		// refused checks that out has an answer with code and a sentence
		// saying what was wrong, and, if closed, that the daemon then
		// ended the session.
		refused := func(what, out, code string, closed bool) {
			t.Helper()
			t.Logf("%s: %s", what, strings.ReplaceAll(strings.TrimSpace(out), "\n", " | "))
			ok := false
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, " code "+code+" \"") && !strings.HasSuffix(l, `""`) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s: no answer with code %q and a reason in %q", what, code, out)
			}
			if end := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]); closed && end != "closed" || !closed && end != "open" {
				t.Errorf("%s: session ended %q, want closed=%v", what, end, closed)
			}
		}
		hello := "10000000" + "0100" + "0000" + "01000000" + "0100" + "0000" // hello, version 1, no name
		refused("garbage first", raw("", "deadbeef"), "invalid", true)
		refused("garbage after hello", raw("", "-hello", "10000000"+"3412"+"0000"+"09000000"+"aabbccdd"), "invalid", true)
		refused("length past the packet", raw("", "-hello", "20000000"+"0200"+"0000"+"07000000"+"0300"+"616263"), "invalid", true)
		refused("truncated string", raw("", "-hello", "11000000"+"0200"+"0000"+"07000000"+"0500"+"616263"), "invalid", true)
		refused("truncated header", raw("", "-hello", "0c0000000200"), "invalid", true)
		refused("second hello", raw("", "-hello", hello), "invalid", true)
		refused("version 0", raw("", "10000000"+"0100"+"0000"+"01000000"+"0000"+"0000"), "bad version", true)
		refused("oversized packet", raw("", "-hello", fmt.Sprintf("zeros:%d", 256<<10+1)), "invalid", true)
		out := raw("", "-hello", "-join", "raw", fmt.Sprintf("send:raw:%d", 64<<10+1))
		refused("oversized payload", out, "invalid", true)

		// Users: nobody may not connect until a rule lets it; then only
		// to the groups the rule names. daemon (uid 1) never may.
		refused("nobody without a rule", raw("nobody", "-hello"), "denied", true)
		// A rule that does not parse is refused, saying why.
		out, err := c.Exec(ctx, 1, "concordctl", "config", "set", "groups.allow.bad", "usr:nobody app-*")
		t.Logf("bad rule: %v %s", err, out)
		if err == nil {
			t.Errorf("concordctl took the rule \"usr:nobody app-*\": %s", out)
		}
		if out, err := c.Exec(ctx, 1, "concordctl", "config", "set", "groups.allow.x", "user:nobody app-*"); err != nil {
			t.Fatalf("concordctl config set: %v: %s", err, out)
		}
		err = cluster.Eventually(withTimeout(ctx, 30*time.Second), func() (bool, string) {
			out := raw("nobody", "-hello", "-join", "app-1", "-wait", "200ms")
			return strings.Contains(out, "reply tag 2 code ok"), out
		})
		if err != nil {
			t.Fatalf("nobody may not join app-1 after the rule: %v", err)
		}
		refused("nobody joins a forbidden group", raw("nobody", "-hello", "-join", "secret", "-wait", "500ms"), "denied", false)
		refused("uid daemon", raw("daemon", "-hello"), "denied", true)
		// Through the client libraries, as a program would see it.
		for _, prog := range []string{"/usr/local/bin/grouptool", "/usr/local/bin/cmember"} {
			for _, u := range []string{"nobody", "daemon"} {
				out, err := c.Exec(ctx, 1, append(as(u), prog, "member", "-group", "secret", "-idle", "1s")...)
				t.Logf("%s as %s joining secret: %v", filepath.Base(prog), u, err)
				if err == nil || !strings.Contains(err.Error(), "denied") && !strings.Contains(err.Error(), "may not") {
					t.Errorf("%s as %s joined a forbidden group: %v %s", prog, u, err, out)
				}
			}
		}

		if busy := send.lines(ctx, c); slices.ContainsFunc(busy, func(l string) bool { return strings.HasPrefix(l, "sent ") }) {
			t.Errorf("the sender finished before the bad input did: make it send longer")
		}
		if p, act := pid(), c.Systemctl; p != pid0 {
			t.Errorf("concord-noded's PID went from %s to %s", pid0, p)
		} else if out, _ := act(ctx, 1, "is-active", "concord-noded"); strings.TrimSpace(out) != "active" {
			t.Errorf("concord-noded is %q", out)
		}
		sl, rl := send.wait(t, ctx, c), recv.wait(t, ctx, c)
		if !slices.Contains(sl, fmt.Sprintf("sent %d", n)) {
			t.Fatalf("the sender did not finish: %q", tail(sl))
		}
		var got []int
		for j, l := range ordered(rl, "bad", 2) {
			f := strings.Fields(l)
			if f[0] == "view" && j > 0 { // the first is the view with both
				if !strings.Contains(l, ":closed:") {
					t.Errorf("the receiver saw the group change: %s", l)
				}
			}
			if f[0] == "view" {
				continue
			}
			var k int
			fmt.Sscan(strings.Split(f[3], "/")[2], &k)
			got = append(got, k)
		}
		for i, k := range got {
			if k != i {
				t.Fatalf("the receiver got message %d at place %d", k, i)
			}
		}
		if len(got) != n {
			t.Fatalf("the receiver got %d of %d messages; log tail %q", len(got), n, tail(rl))
		}
		j, err := c.Exec(ctx, 1, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat",
			"--since", "@"+fmt.Sprint(since.Unix()))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"group session: ", "group session refused: uid 65534", "group session refused: uid 1 ", "group join refused: uid 65534 may not join group \"secret\""} {
			if !strings.Contains(j, w) {
				t.Errorf("node 1's journal has no %q", w)
			}
		}
		for _, l := range strings.Split(j, "\n") {
			if strings.Contains(l, "refused") || strings.Contains(l, "closing it") {
				t.Logf("journal: %s", l)
			}
		}
		t.Logf("receiver got all %d messages in order; concord-noded PID %s throughout", n, pid0)
	})

	t.Run("TenThousandMessagesWithDeaths", func(t *testing.T) {
		// Mixed languages: Go senders on nodes 1 and 3, a C sender on
		// node 2, a C receiver on node 1 and a C victim on node 3. The
		// survivors (two C, one Go) must agree line for line.
		// The survivors end idle seconds apart: one that closes its
		// session while the view showing another's close is on its way
		// can be taken for dead (see the report on the daemon's bye).
		flags := []string{"-group", "t", "-members", "5", "-size", "256", "-interval", "1ms"}
		s1 := start(t, ctx, c, 1, "s1", append([]string{"member", "-send", "3334", "-idle", "6s"}, flags...)...)
		s2 := startC(t, ctx, c, 2, "s2", append([]string{"member", "-send", "3334", "-idle", "9s"}, flags...)...)
		s3 := start(t, ctx, c, 3, "s3", append([]string{"member", "-send", "3332"}, flags...)...)
		r1 := startC(t, ctx, c, 1, "r1", append([]string{"member", "-idle", "12s"}, flags...)...)
		victim := startC(t, ctx, c, 3, "victim", append([]string{"member"}, flags...)...)
		for _, m := range []member{s1, s2, s3, r1, victim} {
			m.waitFor(t, ctx, c, "ready")
		}
		time.Sleep(1500 * time.Millisecond)
		if _, err := c.Exec(ctx, 3, "systemctl", "kill", "--signal=KILL", victim.unit); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		if err := c.Kill(3); err != nil {
			t.Fatal(err)
		}
		survivors := []member{s1, s2, r1}
		var logs [][]string
		for _, m := range survivors {
			ls := m.wait(t, ctx, c)
			t.Logf("%s on node %d ended: %q", m.unit, m.node, tail(ls))
			logs = append(logs, ordered(ls, "t", 5))
		}
		// A survivor that finishes leaves; the others see that at their
		// end. Up to there, they must agree line for line.
		n := len(logs[0])
		for _, o := range logs {
			n = min(n, len(o))
		}
		for k, o := range logs {
			for _, l := range o[n:] {
				if !strings.HasPrefix(l, "view ") || !strings.Contains(l, ":closed:") {
					t.Fatalf("after the common part, survivor %s delivered %q", survivors[k].unit, l)
				}
			}
			logs[k] = o[:n]
		}
		oa := logs[0]
		for k, ob := range logs[1:] {
			if len(oa) == 0 || !slices.Equal(oa, ob) {
				j := 0
				for j < len(oa) && j < len(ob) && oa[j] == ob[j] {
					j++
				}
				t.Fatalf("survivors %s (Go) and %s (C) delivered different sequences (%d and %d lines), first difference at %d: %q vs %q",
					s1.unit, survivors[k+1].unit, len(oa), len(ob), j, at(oa, j), at(ob, j))
			}
		}
		seen := map[string]bool{}
		perSender := map[string][]int{}
		var died, lost string
		for _, l := range oa {
			f := strings.Fields(l)
			if f[0] == "view" {
				if strings.Contains(l, ":died:") {
					died = l
				}
				if strings.Contains(l, ":lost:") {
					lost = l
				}
				continue
			}
			if seen[f[3]] {
				t.Fatalf("message %s delivered twice", f[3])
			}
			seen[f[3]] = true
			p := strings.Split(f[3], "/")
			var k int
			fmt.Sscan(p[2], &k)
			perSender[p[0]+"/"+p[1]] = append(perSender[p[0]+"/"+p[1]], k)
		}
		if died == "" || lost == "" {
			t.Fatalf("the deaths are not in the order: died %q, lost %q", died, lost)
		}
		if !strings.Contains(lost, "node 3 left the cluster view") {
			t.Errorf("node 3's members left without the reason: %s", lost)
		}
		for who, ks := range perSender {
			for i, k := range ks {
				if k != i {
					t.Fatalf("sender %s: message %d at place %d (lost or reordered)", who, k, i)
				}
			}
			if !strings.HasPrefix(who, "3/") && len(ks) != 3334 {
				t.Fatalf("live sender %s: %d of 3334 delivered", who, len(ks))
			}
		}
		if len(perSender) != 3 {
			t.Fatalf("messages from %d senders, want 3: %v", len(perSender), slices.Collect(maps.Keys(perSender)))
		}
		t.Logf("survivors (Go and C) delivered the same %d lines (%d messages); %s; %s", len(oa), len(seen), died, lost)
	})
}

// as runs a command as user (nobody or daemon), with no other groups.
func as(user string) []string {
	group := user
	if user == "nobody" {
		group = "nogroup"
	}
	return []string{"setpriv", "--reuid=" + user, "--regid=" + group, "--clear-groups"}
}

func at(s []string, k int) string {
	if k < len(s) {
		return s[k]
	}
	return "(end)"
}
