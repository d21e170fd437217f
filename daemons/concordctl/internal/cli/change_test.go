package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/api/nodebus/nodebustest"
)

// What dbus-daemon says when its policy refuses a non-root caller.
const rejected = `Rejected send message, 2 matched rules; type="method_call", sender=":1.9" (uid=1000 pid=77 comm="concordctl node delete n3") interface="org.concordha.node1.Manager" member="DeleteNode" error name="(unset)" requested_reply="0" destination="org.concordha.node1" (uid=0 pid=1 comm="/usr/sbin/concord-noded")`

const needRoot = "concordctl: changing the cluster needs root: run concordctl as root (for example with sudo)\n"

func TestChangeOutcomes(t *testing.T) {
	lostHint := "the change may or may not have been applied; check with `concordctl config show` and `concordctl node list`"
	for _, tc := range []struct {
		name    string
		args    []string
		err     error // from the change method
		jobErr  error // from Wait
		code    int
		stdout  string
		stderr  []string // each must be in stderr
		waits   int
		notWant string // must not be in stderr
	}{
		{name: "done", args: []string{"node", "delete", "node3"}, stdout: "deleted node node3\n", waits: 1},
		{name: "no-block", args: []string{"--no-block", "node", "delete", "node3"}, stdout: "/org/concordha/node1/job/1\n"},
		{name: "no-block config set", args: []string{"config", "set", "--no-block", "a", "b"}, stdout: "/org/concordha/node1/job/1\n"},
		{name: "failed", args: []string{"node", "add", "n4", "--link", "hb0 02:00:00:00:00:04"}, code: 1, waits: 1,
			jobErr: nodebus.Errorf(nodebus.ErrConfigConflict, "confstore: add node 4 (n4): name n4 is taken"),
			stderr: []string{"concordctl: confstore: add node 4 (n4): name n4 is taken (org.concordha.node1.ConfigConflict)\n"}},
		{name: "timeout", args: []string{"quorum", "set", "two_node", "no"}, code: 1, waits: 1,
			jobErr: nodebus.Errorf(nodebus.ErrTimeout, "the change was not applied within 10s; it may still be applied later"),
			stderr: []string{"the change was not applied within 10s; it may still be applied later (org.concordha.node1.Timeout)"}},
		{name: "not root, bus policy", args: []string{"node", "delete", "node3"}, code: 1,
			err: &nodebus.Error{Name: nodebus.ErrAccessDenied, Message: rejected}, stderr: []string{needRoot}, notWant: "Rejected"},
		{name: "not root, daemon", args: []string{"config", "set", "a", "b"}, code: 1,
			err:    nodebus.Errorf(nodebus.ErrAccessDenied, "uid 1000 may not change the cluster configuration; only root may"),
			stderr: []string{needRoot}, notWant: "uid 1000"},
		{name: "lost while waiting", args: []string{"node", "edit", "node2", "--votes", "2"}, code: 1, waits: 1,
			jobErr: fmt.Errorf("%w: it left the bus while job /org/concordha/node1/job/1 was under way", nodebus.ErrLost),
			stderr: []string{"lost concord-noded during the change", lostHint}},
		{name: "no reply", args: []string{"node", "delete", "node3"}, code: 1,
			err:    fmt.Errorf("%w: %v", nodebus.ErrLost, &nodebus.Error{Name: "org.freedesktop.DBus.Error.NoReply", Message: "Remote peer disconnected"}),
			stderr: []string{"lost concord-noded during the change", "NoReply", lostHint}},
		{name: "no answer", args: []string{"node", "delete", "node3"}, code: 1, waits: 1,
			jobErr: fmt.Errorf("waiting for job x: %w", context.DeadlineExceeded),
			stderr: []string{"concord-noded did not finish job /org/concordha/node1/job/1 within 1m0s", lostHint}},
		{name: "not running", args: []string{"node", "delete", "node3"}, code: 1,
			err:    &nodebus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown", Message: "The name is not activatable"},
			stderr: []string{"concord-noded is not running (org.freedesktop.DBus.Error.ServiceUnknown); start it with: systemctl start concord-noded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			s := &stub{status: threeNodes(), err: tc.err, jobErr: tc.jobErr}
			code := Main(tc.args, Env{Stdout: &out, Stderr: &errb, Dial: func(string) (API, error) { return s, nil }})
			if code != tc.code || out.String() != tc.stdout {
				t.Errorf("exit %d, stdout %q; want %d, %q (stderr %q)", code, out.String(), tc.code, tc.stdout, errb.String())
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr %q lacks %q", errb.String(), w)
				}
			}
			if tc.notWant != "" && strings.Contains(errb.String(), tc.notWant) {
				t.Errorf("stderr %q shows %q", errb.String(), tc.notWant)
			}
			if len(s.waited) != tc.waits {
				t.Errorf("waited for %d jobs, want %d", len(s.waited), tc.waits)
			}
		})
	}
}

// The same over a real bus, with the real client: a daemon that refuses,
// that dies during the call, that leaves while the job runs, and one
// whose job fails.
func TestChangeOutcomesOverABus(t *testing.T) {
	addr := nodebustest.Bus(t)
	conn := nodebustest.Conn(t, addr)
	var mu sync.Mutex
	own := func() {
		mu.Lock()
		defer mu.Unlock()
		if r, err := conn.RequestName(nodebus.BusName, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
			t.Errorf("own %s: %v %v", nodebus.BusName, r, err)
		}
	}
	table := map[string]any{
		"DeleteNode": func(name string) (dbus.ObjectPath, *dbus.Error) {
			return "", dbus.NewError(nodebus.ErrAccessDenied, []any{"uid 1000 may not change the cluster configuration; only root may"})
		},
		"SetQuorum": func(k, v string) (dbus.ObjectPath, *dbus.Error) {
			conn.Emit(nodebus.ManagerPath, nodebus.ManagerIface+".JobRemoved", uint32(1), nodebus.JobPath(1), nodebus.JobSetQuorum,
				nodebus.ResultFailed, nodebus.ErrConfigConflict+": two_node: needs exactly 2 nodes, found 3")
			return nodebus.JobPath(1), nil
		},
		"SetOption": func(k, v string) (dbus.ObjectPath, *dbus.Error) {
			// Answer, then leave the bus as a stopping daemon does.
			go func() {
				mu.Lock()
				defer mu.Unlock()
				conn.ReleaseName(nodebus.BusName)
			}()
			return nodebus.JobPath(2), nil
		},
	}
	if err := conn.ExportMethodTable(table, nodebus.ManagerPath, nodebus.ManagerIface); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Main(args, Env{Stdout: &out, Stderr: &errb, Dial: func(string) (API, error) {
			c, err := nodebus.DialAddress(addr)
			if err != nil {
				return nil, err
			}
			t.Cleanup(func() { c.Close() })
			return c, nil
		}})
		return code, errb.String()
	}
	if code, e := run("node", "delete", "n3"); code != 1 || !strings.Contains(e, "concord-noded is not running") {
		t.Fatalf("without a daemon: %d %q", code, e)
	}
	own()
	if code, e := run("node", "delete", "n3"); code != 1 || e != needRoot {
		t.Errorf("refused: %d %q", code, e)
	}
	if code, e := run("quorum", "set", "two_node", "yes"); code != 1 || e != "concordctl: two_node: needs exactly 2 nodes, found 3 (org.concordha.node1.ConfigConflict)\n" {
		t.Errorf("failed job: %d %q", code, e)
	}
	if code, e := run("config", "set", "a", "b"); code != 1 || !strings.Contains(e, "may or may not have been applied") {
		t.Errorf("daemon gone during the job: %d %q", code, e)
	}
	// A daemon that dies during the call: no reply at all.
	dying := nodebustest.Conn(t, addr)
	if err := dying.ExportMethodTable(map[string]any{
		"EditNode": func(name string, changes map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
			dying.Close()
			return nodebus.JobPath(3), nil
		},
	}, nodebus.ManagerPath, nodebus.ManagerIface); err != nil {
		t.Fatal(err)
	}
	if r, err := dying.RequestName(nodebus.BusName, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v %v", nodebus.BusName, r, err)
	}
	if code, e := run("node", "edit", "n2", "--votes", "2"); code != 1 || !strings.Contains(e, "lost concord-noded during the change") ||
		!strings.Contains(e, "may or may not have been applied") {
		t.Errorf("daemon died during the call: %d %q", code, e)
	}
}
