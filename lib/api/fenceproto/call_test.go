package fenceproto

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMetadataRelaxNG(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("SKIP: xmllint missing (Debian package libxml2-utils)")
	}
	rng := "/usr/share/cluster/relaxng/metadata.rng"
	if _, err := os.Stat(rng); err != nil {
		t.Skipf("SKIP: %s missing (Debian package fence-agents)", rng)
	}
	for _, fabric := range []bool{false, true} {
		a := testAgent(&fakeDevice{}, false)
		a.Fabric, a.Unfence = fabric, fabric
		_, out, _ := run(t, a, []string{"-o", "metadata"}, "")
		f := filepath.Join(t.TempDir(), "md.xml")
		os.WriteFile(f, []byte(out), 0o644)
		if b, err := exec.Command(xmllint, "--noout", "--relaxng", rng, f).CombinedOutput(); err != nil {
			t.Errorf("fabric=%v: metadata does not validate: %v\n%s", fabric, err, b)
		}
		m, err := ParseMetadata([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		ip := m.Param("ip")
		if ip == nil || ip.Obsoletes != "ipaddr" || ip.Getopt.Mixed != "-a, --ip=[ip]" {
			t.Errorf("ip parameter: %+v", ip)
		}
		if p := m.Param("ipaddr"); p == nil || !bool(p.Deprecated) {
			t.Errorf("ipaddr alias: %+v", p)
		}
		if p := m.Param("ipport"); p == nil || p.Content.Default != "443" || p.Content.Type != TypeInteger {
			t.Errorf("ipport override: %+v", p)
		}
		if p := m.Param("method"); p == nil || len(p.Content.Options) != 2 {
			t.Errorf("method: %+v", p)
		}
		if m.HostArgument() != "plug" {
			t.Errorf("HostArgument = %q", m.HostArgument())
		}
	}
}

func TestMetadataDebianIpmilan(t *testing.T) {
	const agent = "/usr/sbin/fence_ipmilan"
	if _, err := os.Stat(agent); err != nil {
		t.Skipf("SKIP: %s missing (Debian package fence-agents)", agent)
	}
	m, err := Metadata(context.Background(), agent)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "fence_ipmilan" || len(m.Symlinks) == 0 {
		t.Errorf("name %q symlinks %d", m.Name, len(m.Symlinks))
	}
	checks := []struct {
		name, typ, def, getopt string
	}{
		{"ip", "string", "", "-a, --ip=[ip]"},
		{"ipport", "integer", "623", "-u, --ipport=[port]"},
		{"lanplus", "boolean", "0", "-P, --lanplus"},
		{"method", "select", "onoff", "-m, --method=[method]"},
		{"power_wait", "second", "2", "--power-wait=[seconds]"},
	}
	for _, c := range checks {
		p := m.Param(c.name)
		if p == nil {
			t.Errorf("parameter %s missing", c.name)
			continue
		}
		if string(p.Content.Type) != c.typ || p.Content.Default != c.def || p.Getopt.Mixed != c.getopt {
			t.Errorf("%s: type %q default %q getopt %q", c.name, p.Content.Type, p.Content.Default, p.Getopt.Mixed)
		}
	}
	if p := m.Param("ipaddr"); p == nil || !bool(p.Deprecated) {
		t.Errorf("ipaddr: %+v", p)
	}
	if m.Unfence() || m.Action("reboot") == nil || m.Action("diag") == nil || m.HostArgument() != "plug" {
		t.Errorf("actions %+v", m.Actions)
	}
}

func TestMetadataFencingScsiUnfence(t *testing.T) {
	const agent = "/usr/sbin/fence_scsi"
	if _, err := os.Stat(agent); err != nil {
		t.Skipf("SKIP: %s missing (Debian package fence-agents)", agent)
	}
	m, err := Metadata(context.Background(), agent)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Unfence() || !m.UnfenceOnTarget() {
		t.Errorf("fence_scsi on action: %+v", m.Action("on"))
	}
}

// writeScript writes an executable shell script into dir.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fence_script")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCallScript(t *testing.T) {
	// The script echoes its stdin to stderr and answers per action.
	agent := writeScript(t, `in=$(cat); echo "$in" >&2
case "$in" in
*action=status*) echo "Status: OFF"; exit 2;;
*action=list-status*) echo "1,web,ON"; echo "2,db,OFF";;
*action=list*) echo "1,web"; echo "2,db";;
*action=off*) echo "Success: Powered OFF";;
*action=reboot*) echo "ERROR: Unable to connect/login to fencing device" >&2; exit 3;;
*action=hang*) sleep 30 & sleep 30; exit 0;;
esac
`)
	params := map[string]string{"ip": "h", "password": "hunter2-secret", "plug": "n1"}
	tests := []struct {
		action string
		code   int
		state  PowerState
		plugs  []Plug
	}{
		{"status", 2, StateOff, nil},
		{"off", 0, StateUnknown, nil},
		{"list", 0, StateUnknown, []Plug{{"1", "web", 0}, {"2", "db", 0}}},
		{"list-status", 0, StateUnknown, []Plug{{"1", "web", StateOn}, {"2", "db", StateOff}}},
		{"reboot", 3, StateUnknown, nil},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			res, err := Call(context.Background(), agent, tt.action, params, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tt.code || res.State != tt.state || len(res.Plugs) != len(tt.plugs) {
				t.Fatalf("result %+v", res)
			}
			for i := range tt.plugs {
				if res.Plugs[i] != tt.plugs[i] {
					t.Errorf("plug %d = %+v, want %+v", i, res.Plugs[i], tt.plugs[i])
				}
			}
			if !strings.HasPrefix(res.Stderr, "action="+tt.action+"\n") || !strings.Contains(res.Stderr, "plug=n1") {
				t.Errorf("agent stdin was %q", res.Stderr)
			}
			if strings.Contains(res.Stderr, "hunter2-secret") || !strings.Contains(res.Stderr, "password=[set]") {
				t.Errorf("password not redacted: %q", res.Stderr)
			}
		})
	}
	t.Run("timeout kills the process group", func(t *testing.T) {
		res, err := Call(context.Background(), agent, "hang", nil, 200*time.Millisecond)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err %v, want ErrTimeout", err)
		}
		if res.Duration > 5*time.Second {
			t.Errorf("Call returned after %v; the group was not killed", res.Duration)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Call(ctx, agent, "hang", nil, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	})
	t.Run("missing agent", func(t *testing.T) {
		if _, err := Call(context.Background(), "/nonexistent/fence_x", "status", nil, time.Second); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("newline in value", func(t *testing.T) {
		if _, err := Call(context.Background(), agent, "status", map[string]string{"ip": "a\nb"}, time.Second); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestCallDebianIpmilanMetadata(t *testing.T) {
	const agent = "/usr/sbin/fence_ipmilan"
	if _, err := os.Stat(agent); err != nil {
		t.Skipf("SKIP: %s missing (Debian package fence-agents)", agent)
	}
	res, err := Call(context.Background(), agent, "metadata", nil, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, `<resource-agent name="fence_ipmilan"`) {
		t.Fatalf("exit %d stdout %.200q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	// A bad action: the reference agent fails (exit 1), as Call reports.
	res, err = Call(context.Background(), agent, "status", map[string]string{"ip": "127.0.0.1", "ipport": "1", "username": "x", "password": "pw-to-hide", "lanplus": "1", "cipher": "3", "login_timeout": "1", "power_timeout": "1"}, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode == 0 || strings.Contains(res.Stdout+res.Stderr, "pw-to-hide") {
		t.Errorf("status of a closed port: %+v", res)
	}
}
