package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/api/config"
)

func TestExampleConfigParses(t *testing.T) {
	c, err := config.Load("cluster.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("cluster.conf.example: %v", err)
	}
	if len(c.Nodes) != 3 {
		t.Errorf("cluster.conf.example has %d nodes, want 3", len(c.Nodes))
	}
}

// buildDeb runs build-deb.sh on stand-in binaries and returns the .deb.
func buildDeb(t *testing.T, version string) string {
	t.Helper()
	out := t.TempDir()
	bin := filepath.Join(out, "bin")
	for _, b := range []string{"concord-noded", "concordctl", "fence_concord_test"} {
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("sh", "build-deb.sh")
	cmd.Env = append(os.Environ(), "VERSION="+version, "OUT="+out, "ARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build-deb.sh with VERSION=%s: %v\n%s", version, err, b)
	}
	return filepath.Join(out, "concord.deb")
}

func field(t *testing.T, deb, name string) string {
	t.Helper()
	b, err := exec.Command("dpkg-deb", "-f", deb, name).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -f %s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

func needDpkg(t *testing.T) {
	for _, tool := range []string{"dpkg-deb", "dpkg", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: needs %s", tool)
		}
	}
}

func TestDebVersion(t *testing.T) {
	needDpkg(t)
	for _, tc := range []struct{ git, deb string }{
		{"e3d17dd", "0.1.0~gite3d17dd"},
		{"e3d17dd-dirty", "0.1.0~gite3d17dd.dirty"},
		{"v1.2.0", "1.2.0"},
		{"v1.2.0-5-gabc1234", "1.2.0+git5.gabc1234"},
		{"v1.2.0-5-gabc1234-dirty", "1.2.0+git5.gabc1234.dirty"},
		{"0.1.0", "0.1.0"},
	} {
		t.Run(tc.git, func(t *testing.T) {
			if got := field(t, buildDeb(t, tc.git), "Version"); got != tc.deb {
				t.Errorf("VERSION=%s: Debian version %q, want %q", tc.git, got, tc.deb)
			}
		})
	}
}

func TestDebContents(t *testing.T) {
	needDpkg(t)
	deb := buildDeb(t, "v1.0.0")
	for name, want := range map[string]string{"Package": "concord", "Architecture": "amd64", "Depends": "systemd, dbus"} {
		if got := field(t, deb, name); got != want {
			t.Errorf("control %s = %q, want %q", name, got, want)
		}
	}
	b, err := exec.Command("dpkg-deb", "-c", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]string{} // path -> "mode owner"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 {
			modes[strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")] = f[0] + " " + f[1]
		}
	}
	for path, want := range map[string]string{
		"/usr/sbin/concord-noded":                              "-rwxr-xr-x root/root",
		"/usr/bin/concordctl":                                  "-rwxr-xr-x root/root",
		"/usr/sbin/fence_concord_test":                         "-rwxr-xr-x root/root",
		"/lib/systemd/system/concord-noded.service":            "-rw-r--r-- root/root",
		"/usr/share/dbus-1/system.d/org.concordha.node1.conf":  "-rw-r--r-- root/root",
		"/usr/share/dbus-1/interfaces/org.concordha.node1.xml": "-rw-r--r-- root/root",
		"/lib/udev/rules.d/70-concord-heartbeat.rules":         "-rw-r--r-- root/root",
		"/usr/share/man/man8/concord-noded.8.gz":               "-rw-r--r-- root/root",
		"/usr/share/doc/concord/cluster.conf.example":          "-rw-r--r-- root/root",
		"/etc/concord":     "drwx------ root/root",
		"/var/lib/concord": "drwx------ root/root",
	} {
		if got := modes[path]; got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	for path := range modes {
		if strings.HasPrefix(path, "/etc/concord/") {
			t.Errorf("%s shipped: /etc/concord is the admin's", path)
		}
	}
}
