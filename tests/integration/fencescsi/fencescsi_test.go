package fencescsi

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/concord-ha/concord/lib/driver/iscsi"
	"github.com/concord-ha/concord/lib/driver/scsipr"
	"github.com/concord-ha/concord/tests/harness/fencepeer"
)

const iqnBase = "iqn.2026-11.test.concord:"

// node is one cluster node's I/O path to the LUN: a long-lived session,
// as a kernel initiator keeps, and the fence logic over it.
type node struct {
	name   string
	key    uint64
	sess   *iscsi.Session
	dev    *scsipr.Device
	fencer *scsipr.Fencer
	mu     sync.Mutex
	log    []string
}

func dialNode(t *testing.T, ctx context.Context, tg *target, name string) *node {
	t.Helper()
	u, err := iscsi.ParseURL(tg.url)
	if err != nil {
		t.Fatal(err)
	}
	s, err := iscsi.Dial(ctx, iscsi.Config{Addr: u.Addr, Target: u.Target, LUN: u.LUN, InitiatorName: iqnBase + name})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { s.Logout(context.Background()) })
	key, err := scsipr.KeyFromHash("concord", name)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, key: key, sess: s}
	logf := func(format string, args ...any) {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.log = append(n.log, fmt.Sprintf(format, args...))
	}
	n.dev = &scsipr.Device{Name: tg.name, T: s, Logf: logf}
	n.fencer = &scsipr.Fencer{Devices: []*scsipr.Device{n.dev}, Logf: logf}
	return n
}

func (n *node) logged(sub string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.log {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func block(text string) []byte {
	b := make([]byte, 512)
	copy(b, text)
	return b
}

// write returns nil, or the error of the last of two tries: a fenced
// node on tgtd first sees the unit attention RESERVATIONS PREEMPTED.
func (n *node) write(ctx context.Context, lba uint32, text string) error {
	err := n.dev.Write10(ctx, lba, block(text), 512)
	if scsipr.IsSenseKey(err, scsipr.SenseUnitAttention) {
		err = n.dev.Write10(ctx, lba, block(text), 512)
	}
	return err
}

func clearAll(t *testing.T, ctx context.Context, n *node) {
	t.Helper()
	// Start from an empty registration table, as a fresh LUN has.
	if err := n.dev.Out(ctx, scsipr.RegisterAndIgnoreKey, 0, 0, 0xfeed, false); err != nil {
		t.Fatal(err)
	}
	if err := n.dev.Out(ctx, scsipr.Clear, 0, 0xfeed, 0, false); err != nil {
		t.Fatal(err)
	}
}

func forTargets(t *testing.T, f func(t *testing.T, tg *target)) {
	for _, tt := range []struct {
		name  string
		start func(*testing.T) *target
	}{{"tgtd", startTgtd}, {"istgt", startIstgt}} {
		t.Run(tt.name, func(t *testing.T) { f(t, tt.start(t)) })
	}
}

func TestFenceTwoNodes(t *testing.T) {
	forTargets(t, func(t *testing.T, tg *target) {
		ctx := withTimeout(t)
		n1, n2 := dialNode(t, ctx, tg, "node1"), dialNode(t, ctx, tg, "node2")
		// node1 registers first: istgt 0.4 mixes up keys when an entry
		// other than the last one is removed.
		for _, n := range []*node{n1, n2} {
			if err := n.fencer.Unfence(ctx, n.key); err != nil {
				t.Fatalf("unfence %s: %v", n.name, err)
			}
		}
		for _, n := range []*node{n1, n2} {
			if err := n.write(ctx, 10, "from-"+n.name); err != nil {
				t.Fatalf("%s write before fencing: %v", n.name, err)
			}
		}
		if on, err := n1.fencer.Registered(ctx, n2.key); !on || err != nil {
			t.Fatalf("node2 status before fencing: %v, %v", on, err)
		}

		if err := n1.fencer.Fence(ctx, n1.key, n2.key); err != nil {
			t.Fatalf("fence node2: %v", err)
		}
		fellBack := n1.logged("falling back to PREEMPT")
		if fellBack == tg.preemptAbort {
			t.Errorf("PREEMPT fallback logged=%v, target supports PREEMPT AND ABORT=%v; log %q", fellBack, tg.preemptAbort, n1.log)
		}
		if fellBack {
			t.Logf("%s: PREEMPT AND ABORT refused, PREEMPT used: %q", tg.name, n1.log)
		}
		err := n2.write(ctx, 11, "node2-after-fence")
		if !scsipr.IsReservationConflict(err) {
			t.Errorf("node2 write after fencing: %v, want RESERVATION CONFLICT", err)
		}
		if err := n1.write(ctx, 12, "node1-after-fence"); err != nil {
			t.Errorf("node1 write after fencing: %v", err)
		}
		if data, err := n2.dev.Read10(ctx, 12, 1, 512); err != nil || !bytes.HasPrefix(data, []byte("node1-after-fence")) {
			t.Errorf("node2 read under WERO: %q, %v", data[:min(len(data), 20)], err)
		}
		if on, err := n1.fencer.Registered(ctx, n2.key); on || err != nil {
			t.Errorf("node2 status after fencing: on=%v, %v", on, err)
		}

		if err := n1.fencer.Fence(ctx, n1.key, n2.key); err != nil {
			t.Errorf("fencing twice: %v", err)
		}
		if err := n2.write(ctx, 11, "node2-after-second-fence"); !scsipr.IsReservationConflict(err) {
			t.Errorf("node2 write after second fencing: %v", err)
		}

		if err := n2.fencer.Unfence(ctx, n2.key); err != nil {
			t.Fatalf("unfence node2: %v", err)
		}
		if err := n2.fencer.Unfence(ctx, n2.key); err != nil {
			t.Errorf("unfence node2 twice: %v", err)
		}
		if err := n2.write(ctx, 13, "node2-unfenced"); err != nil {
			t.Errorf("node2 write after unfencing: %v", err)
		}
		if err := n1.write(ctx, 14, "node1-still"); err != nil {
			t.Errorf("node1 write after unfencing node2: %v", err)
		}
		keys, err := n1.dev.ReadKeys(ctx)
		if err != nil || len(keys.Keys) != 2 || !keys.Has(n1.key) || !keys.Has(n2.key) {
			t.Errorf("final keys %x, %v", keys.Keys, err)
		}
	})
}

var agent = fencepeer.Agent{Name: "fence_concord_scsi"}

func TestMain(m *testing.M) { agent.Main(m) }

type result struct {
	code           int
	stdout, stderr string
}

// runAgent runs the agent the way Pacemaker does: key=value lines on stdin.
func runAgent(t *testing.T, params ...string) result {
	t.Helper()
	cmd := exec.Command(agent.Path(t))
	cmd.Stdin = strings.NewReader(strings.Join(params, "\n") + "\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("agent %q -> exit %d, stdout %q, stderr %q", params[0], r.code, r.stdout, r.stderr)
	return r
}

func TestAgent(t *testing.T) {
	forTargets(t, func(t *testing.T, tg *target) {
		ctx := withTimeout(t)
		keyFile := filepath.Join(t.TempDir(), "key")
		common := []string{"devices=" + tg.url, "cluster_name=concord", "key_file=" + keyFile}
		n1, n2 := dialNode(t, ctx, tg, "node1"), dialNode(t, ctx, tg, "node2")
		clearAll(t, ctx, n1)
		if err := n1.fencer.Unfence(ctx, n1.key); err != nil {
			t.Fatalf("unfence node1: %v", err)
		}
		// The agent on node1 is its own I_T nexus (node1-agent). It
		// registers node1's key there when it must preempt. On istgt that
		// registration outlives the agent, and istgt 0.4 attaches keys to
		// the wrong initiators when an entry other than the last is removed,
		// so the agent's nexus registers before node2's, as node1's would
		// at boot.
		as1 := append([]string{"local_node=node1", "initiator_name=" + iqnBase + "node1-agent"}, common...)
		if tg.keepsRegistrationOnLogout {
			if r := runAgent(t, append([]string{"action=on", "nodename=node1"}, as1...)...); r.code != 0 {
				t.Fatalf("on node1: %+v", r)
			}
		}
		if err := n2.fencer.Unfence(ctx, n2.key); err != nil {
			t.Fatalf("unfence node2: %v", err)
		}
		r := runAgent(t, append([]string{"action=status", "nodename=node2"}, as1...)...)
		if r.code != 0 || r.stdout != "Status: ON\n" {
			t.Errorf("status before off: %+v", r)
		}
		r = runAgent(t, append([]string{"action=off", "nodename=node2"}, as1...)...)
		if r.code != 0 || r.stdout != "Success: Powered OFF\n" {
			t.Fatalf("off: %+v", r)
		}
		if got := strings.Contains(r.stderr, "falling back to PREEMPT"); got == tg.preemptAbort {
			t.Errorf("off: fallback warning printed=%v, PREEMPT AND ABORT supported=%v", got, tg.preemptAbort)
		}
		if err := n2.write(ctx, 20, "node2-after-agent-off"); !scsipr.IsReservationConflict(err) {
			t.Errorf("node2 write after agent off: %v", err)
		}
		if err := n1.write(ctx, 21, "node1-after-agent-off"); err != nil {
			t.Errorf("node1 write after agent off: %v", err)
		}
		r = runAgent(t, append([]string{"action=status", "nodename=node2"}, as1...)...)
		if r.code != 2 || r.stdout != "Status: OFF\n" {
			t.Errorf("status after off: %+v", r)
		}
		r = runAgent(t, append([]string{"action=off", "nodename=node2"}, as1...)...)
		if r.code != 0 {
			t.Errorf("second off: %+v", r)
		}
		r = runAgent(t, append([]string{"action=reboot", "nodename=node2"}, as1...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "Unrecognised action") {
			t.Errorf("reboot on a fabric agent: %+v", r)
		}

		// Unfencing through the agent: the agent's session is node2's nexus
		// (same initiator name and ISID) only while it runs. istgt keeps the
		// registration after logout, as SPC says; tgtd drops it with the
		// session, so there node2's own I/O session must register (above).
		if !tg.keepsRegistrationOnLogout {
			t.Logf("%s: agent on is not durable here (registration dies with the agent's session); node I/O sessions register themselves", tg.name)
			return
		}
		n2.sess.Logout(ctx)
		as2 := append([]string{"local_node=node2", "initiator_name=" + iqnBase + "node2"}, common...)
		r = runAgent(t, append([]string{"action=on", "nodename=node2"}, as2...)...)
		if r.code != 0 || r.stdout != "Success: Powered ON\n" {
			t.Fatalf("on: %+v", r)
		}
		if b, err := os.ReadFile(keyFile); err != nil || strings.TrimSpace(string(b)) != scsipr.FormatKey(n2.key) {
			t.Errorf("key file %q, %v", b, err)
		}
		n2 = dialNode(t, ctx, tg, "node2")
		if err := n2.write(ctx, 22, "node2-after-agent-on"); err != nil {
			t.Errorf("node2 write after agent on: %v", err)
		}
		r = runAgent(t, append([]string{"action=status", "nodename=node2"}, as1...)...)
		if r.code != 0 {
			t.Errorf("status after on: %+v", r)
		}
	})
}

func TestAgentErrors(t *testing.T) {
	needRoot(t)
	port := freePort(t)
	tests := []struct {
		name   string
		params []string
		want   string
	}{
		{"unreachable target", []string{fmt.Sprintf("devices=iscsi://127.0.0.1:%d/iqn.2026-11.test.concord:fence/1", port)},
			fmt.Sprintf("127.0.0.1:%d", port)},
		{"missing device", []string{"devices=/dev/sdzz"}, `device "/dev/sdzz" does not exist`},
		{"not SCSI", []string{"devices=/dev/null"}, "device /dev/null: not a SCSI device"},
		{"bad URL", []string{"devices=iscsi://127.0.0.1/nolun"}, "path must be /target/lun"},
		{"no key", []string{"devices=/dev/null", "cluster_name="}, "cluster_name is required"},
	}
	for _, tt := range tests {
		params := append([]string{"action=status", "nodename=node2", "cluster_name=concord", "local_node=node1"}, tt.params...)
		r := runAgent(t, params...)
		if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q, want %q", tt.name, r.code, r.stderr, tt.want)
		}
	}
}

func TestUnknownTarget(t *testing.T) {
	tg := startTgtd(t)
	u, _ := iscsi.ParseURL(tg.url)
	_, err := iscsi.Dial(withTimeout(t), iscsi.Config{Addr: u.Addr, Target: "iqn.2026-11.test.concord:nosuch", InitiatorName: iqnBase + "x"})
	if err == nil || !strings.Contains(err.Error(), "target not found") {
		t.Errorf("got %v", err)
	}
}
