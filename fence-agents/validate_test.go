// Package agents_test checks what every fence agent has in common, on the
// built binaries, called as Pacemaker calls them.
package agents_test

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/fenceproto"
)

// build compiles every fence agent into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./...")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// change is a variant of an agent's complete parameters and its outcome.
type change struct {
	set  map[string]string // changes to the complete set; "" deletes
	code int
	msg  string
}

// TestValidateAll: validate-all fails (exit 1, naming the parameter) when
// a parameter the agent needs is missing or wrong, as fencing.py's agents
// do, and succeeds for a complete set without contacting any device.
// Pacemaker validates with plug=node1 when the agent takes a node.
func TestValidateAll(t *testing.T) {
	dir := build(t)
	agents, _ := filepath.Glob(filepath.Join(dir, "fence_concord_*"))
	tests := []struct {
		agent    string
		complete map[string]string
		needed   map[string]string // parameter -> what the error must say when it is left out
		wrong    []change
	}{
		{agent: "fence_concord_ipmi",
			complete: map[string]string{"ip": "192.0.2.1"},
			needed:   map[string]string{"ip": "no ip"},
			wrong: []change{
				{map[string]string{"ip": "", "port_as_ip": "1", "plug": "192.0.2.1"}, 0, ""},
				{map[string]string{"ip": "", "port_as_ip": "1"}, 1, "no plug with port_as_ip"},
				{map[string]string{"lanplus": "1", "cipher": "0"}, 1, "cipher 0"},
				{map[string]string{"password": "seventeen-chars-x"}, 1, "password too long"},
				{map[string]string{"privlvl": "root"}, 1, "privlvl"},
				{map[string]string{"ipport": "70000"}, 1, "ipport"},
			}},
		{agent: "fence_concord_redfish",
			complete: map[string]string{"ip": "192.0.2.1", "username": "admin", "password": "pw"},
			needed:   map[string]string{"ip": "no ip", "username": "username", "password": "password"},
			wrong: []change{
				{map[string]string{"password": "", "password_script": "false"}, 0, ""},
				{map[string]string{"auth": "digest"}, 1, "auth"},
			}},
		{agent: "fence_concord_sbd",
			complete: map[string]string{"devices": "/dev/disk/by-id/none", "plug": "node1"},
			needed:   map[string]string{"devices": "devices", "plug": "plug"},
			wrong: []change{
				{map[string]string{"devices": "/dev/a,/dev/b,/dev/c,/dev/d"}, 1, "at most 3"},
				{map[string]string{"devices": " , "}, 1, "no SBD devices"},
			}},
		{agent: "fence_concord_scsi",
			complete: map[string]string{"devices": "/dev/disk/by-id/none,iscsi://192.0.2.1/iqn.2026-01.test:t/0", "plug": "node1", "cluster_name": "c"},
			needed:   map[string]string{"devices": "devices", "plug": "nodename, plug or key", "cluster_name": "cluster_name"},
			wrong: []change{
				{map[string]string{"plug": "", "cluster_name": "", "key": "b1"}, 0, ""},
				{map[string]string{"plug": "", "nodename": "node1"}, 0, ""},
				{map[string]string{"key": "xyz"}, 1, "key"},
				{map[string]string{"devices": "sdb"}, 1, "want a /dev path or an iscsi:// URL"},
				{map[string]string{"devices": "iscsi://192.0.2.1/iqn.2026-01.test:t/99999"}, 1, "bad LUN"},
				{map[string]string{"key_value": "id"}, 1, "node_ids"},
			}},
		{agent: "fence_concord_nspawn",
			complete: map[string]string{"plug": "web"},
			needed:   map[string]string{"plug": "plug"},
			wrong: []change{
				{map[string]string{"plug": "../web"}, 1, "bad machine name"},
				{map[string]string{"backend": "docker"}, 1, "backend"},
			}},
	}
	if len(agents) != len(tests) {
		t.Fatalf("built %d agents, the table has %d: add the new agent", len(agents), len(tests))
	}
	ctx := context.Background()
	call := func(t *testing.T, agent string, params map[string]string, code int, msg string) {
		t.Helper()
		res, err := fenceproto.Call(ctx, filepath.Join(dir, agent), "validate-all", params, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != code || !strings.Contains(res.Stderr, msg) {
			t.Errorf("%s %v: exit %d stderr %q; want exit %d and %q", agent, params, res.ExitCode, res.Stderr, code, msg)
		}
		if code != 0 && !strings.Contains(res.Stderr, "validate-all failed") {
			t.Errorf("%s %v: stderr %q lacks \"validate-all failed\"", agent, params, res.Stderr)
		}
	}
	for _, tt := range tests {
		t.Run(tt.agent, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, tt.agent)); err != nil {
				t.Fatal(err)
			}
			call(t, tt.agent, tt.complete, 0, "")
			for p, msg := range tt.needed {
				params := maps.Clone(tt.complete)
				delete(params, p)
				call(t, tt.agent, params, 1, msg)
			}
			for _, w := range tt.wrong {
				params := maps.Clone(tt.complete)
				for k, v := range w.set {
					params[k] = v
					if v == "" {
						delete(params, k)
					}
				}
				call(t, tt.agent, params, w.code, w.msg)
			}
			// The command line an admin types, with nothing else.
			cmd := exec.Command(filepath.Join(dir, tt.agent), "-o", "validate-all")
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "validate-all failed") {
				t.Errorf("%s -o validate-all: %v, output %q", tt.agent, err, out)
			}
		})
	}
}
