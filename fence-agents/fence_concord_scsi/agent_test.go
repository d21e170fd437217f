package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/api/fenceproto"
)

func run(t *testing.T, stdin string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := fenceproto.Run(context.Background(), agent(), nil, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestMetadata(t *testing.T) {
	code, out, _ := run(t, "action=metadata\n")
	for _, want := range []string{`<action name="on" on_target="1" automatic="1"/>`, `name="devices"`, `name="key"`,
		`name="aptpl"`, `name="nodename"`, `<content type="string" default="off" />`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("metadata lacks %q", want)
		}
	}
	if strings.Contains(out, `<action name="reboot"`) {
		t.Error("fabric agent advertises reboot")
	}
}

func TestNodeID(t *testing.T) {
	tests := []struct {
		list, node string
		want       int
		err        bool
	}{
		{"node1:1,node2:2", "node2", 2, false},
		{" node1:1 , node2:12", "node2", 12, false},
		{"node1:1", "node2", 0, true},
		{"node1:x", "node1", 0, true},
		{"node1:0", "node1", 0, true},
	}
	for _, tt := range tests {
		got, err := nodeID(tt.list, tt.node)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("nodeID(%q, %q) = %d, %v", tt.list, tt.node, got, err)
		}
	}
}

func TestBadArgs(t *testing.T) {
	tests := []struct{ stdin, want string }{
		{"action=off\ndevices=/dev/null\n", "nodename, plug or key is required"},
		{"action=off\ndevices=/dev/null\nkey=0\n", "key cannot be 0"},
		{"action=off\ndevices=/dev/null\nnodename=n2\ncluster_name=c\nkey_value=id\nnode_ids=n1:1\n", `no id for node "n2"`},
		{"action=off\ndevices=relative\nkey=b1\n", "want a /dev path or an iscsi:// URL"},
	}
	for _, tt := range tests {
		code, _, errOut := run(t, tt.stdin)
		if code != fenceproto.ExitBadArgs || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, %q; want %q", tt.stdin, code, errOut, tt.want)
		}
	}
}

// TestMonitorWithoutNode: Pacemaker runs monitor (and list) naming no
// node, so they must reach the devices without a key.
func TestMonitorWithoutNode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nobody listens: the device refuses the connection
	for _, action := range []string{"monitor", "list"} {
		code, _, errOut := run(t, "action="+action+"\ndevices=iscsi://"+addr+"/iqn.2026-01.test:t/0\n")
		if code == 0 || !strings.Contains(errOut, "connection refused") {
			t.Errorf("%s: exit %d stderr %q; want the device's connection error", action, code, errOut)
		}
	}
}
