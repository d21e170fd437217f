package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

// --cluster, else $CONCORD_CLUSTER, chooses the bus name every command
// dials; a bad name is a usage error that says what is wrong.
func TestClusterChoosesTheBusName(t *testing.T) {
	const def = "org.concordha.node1"
	for _, tc := range []struct {
		name string
		env  string
		args []string
		code int
		bus  string // dialled; "" for none
		msg  string // in stderr
	}{
		{"default", "", []string{"status"}, 0, def, ""},
		{"from the environment", "b", []string{"status"}, 0, def + ".b", ""},
		{"flag over environment", "b", []string{"--cluster", "c", "status"}, 0, def + ".c", ""},
		{"flag with =", "", []string{"--cluster=prod-2", "node", "list"}, 0, def + ".prod-2", ""},
		{"empty flag is the default", "b", []string{"--cluster=", "status"}, 0, def, ""},
		{"among the other options", "", []string{"--json", "--cluster", "b", "--no-block", "config", "set", "k", "v"}, 0, def + ".b", ""},
		{"bad flag", "", []string{"--cluster", "Prod", "status"}, 2, "", `--cluster: cluster context "Prod": must start with a lowercase letter a-z, not 'P'`},
		{"bad character", "", []string{"--cluster", "a.b", "status"}, 2, "", `character 2 is '.'`},
		{"reserved", "", []string{"--cluster", "default", "status"}, 2, "", `cluster context "default": is reserved`},
		{"no name", "", []string{"--cluster"}, 2, "", "--cluster needs a cluster context name"},
		{"bad environment", "B", []string{"status"}, 2, "", `CONCORD_CLUSTER: cluster context "B": must start`},
		{"flag hides a bad environment", "B", []string{"--cluster", "b", "status"}, 0, def + ".b", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			var dialled []string
			s := &stub{status: threeNodes()}
			code := Main(tc.args, Env{Stdout: &out, Stderr: &errb, Version: "test",
				Getenv: func(k string) string {
					if k == "CONCORD_CLUSTER" {
						return tc.env
					}
					return ""
				},
				Dial: func(bus string) (API, error) { dialled = append(dialled, bus); return s, nil }})
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errb.String())
			}
			ok := (tc.bus == "") == (len(dialled) == 0)
			for _, b := range dialled {
				ok = ok && b == tc.bus
			}
			if !ok {
				t.Errorf("dialled %q, want %q", dialled, tc.bus)
			}
			if !strings.Contains(errb.String(), tc.msg) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.msg)
			}
		})
	}
}

// A context whose daemon is not running is named, with its unit.
func TestClusterNotRunning(t *testing.T) {
	var out, errb bytes.Buffer
	s := &stub{err: &nodebus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown", Message: "The name is not activatable"}}
	code := Main([]string{"--cluster", "b", "status"}, Env{Stdout: &out, Stderr: &errb, Dial: func(string) (API, error) { return s, nil }})
	want := "concordctl: concord-noded of cluster context b is not running (org.concordha.node1.b has no owner: org.freedesktop.DBus.Error.ServiceUnknown); start it with: systemctl start concord-noded@b\n"
	if code != 1 || !strings.HasPrefix(errb.String(), want) {
		t.Errorf("exit %d, stderr %q; want %q", code, errb.String(), want)
	}
}

// node add tells the new node's admin the context's paths and unit.
func TestClusterJoinSteps(t *testing.T) {
	var out, errb bytes.Buffer
	s := &stub{status: threeNodes()}
	code := Main([]string{"--cluster", "b", "node", "add", "node4", "--link", "hb0 02:00:00:00:00:04"},
		Env{Stdout: &out, Stderr: &errb, Version: "test", Dial: func(string) (API, error) { return s, nil }})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"copy /etc/concord/b/authkey from this node to /etc/concord/b/authkey there",
		"no /etc/concord/b/cluster.conf if its host name is node4", "systemctl enable --now concord-noded@b\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("node add output lacks %q:\n%s", want, out.String())
		}
	}
}

// keygen --file writes where it is told, whatever the context.
func TestClusterKeygenFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	var out, errb bytes.Buffer
	if code := Main([]string{"--cluster", "b", "keygen", "--file", p}, Env{Stdout: &out, Stderr: &errb}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key %s: %v %v", p, fi, err)
	}
}
