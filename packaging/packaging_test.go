package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	deb, b, err := tryBuildDeb(t, version)
	if err != nil {
		t.Fatalf("build-deb.sh with VERSION=%s: %v\n%s", version, err, b)
	}
	return deb
}

func tryBuildDeb(t *testing.T, version string) (string, []byte, error) {
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
	// The library is real: build-deb.sh strips it and reads its symbols.
	lib := exec.Command("make", "-C", "../lib/libconcord", "--no-print-directory", "OUT="+filepath.Join(out, "libconcord"))
	lib.Env = append(os.Environ(), "MAKEFLAGS=")
	if b, err := lib.CombinedOutput(); err != nil {
		t.Fatalf("make libconcord: %v\n%s", err, b)
	}
	cmd := exec.Command("sh", "build-deb.sh")
	cmd.Env = append(os.Environ(), "VERSION="+version, "OUT="+out, "ARCH=amd64")
	b, err := cmd.CombinedOutput()
	return filepath.Join(out, "concord.deb"), b, err
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
	for _, tool := range []string{"dpkg-deb", "dpkg", "gzip", "gcc", "make", "objdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: needs %s", tool)
		}
	}
}

// version.sh makes the one version of a build from git describe.
func TestVersionScript(t *testing.T) {
	needDpkg(t)
	for _, tc := range []struct{ git, want string }{
		{"e3d17dd", "0.1.0~gite3d17dd"},
		{"e3d17dd-dirty", "0.1.0~gite3d17dd.dirty"},
		{"v1.2.0", "1.2.0"},
		{"v1.2.0-5-gabc1234", "1.2.0+git5.gabc1234"},
		{"v1.2.0-5-gabc1234-dirty", "1.2.0+git5.gabc1234.dirty"},
		{"0.1.0", "0.1.0"},
		{"1.2.0+git5.gabc1234", "1.2.0+git5.gabc1234"}, // made once, stays
		{"release_x", "0.1.0~release.x"},
	} {
		out, err := exec.Command("sh", "version.sh", tc.git).Output()
		if err != nil {
			t.Fatalf("version.sh %s: %v", tc.git, err)
		}
		got := strings.TrimSpace(string(out))
		if got != tc.want {
			t.Errorf("version.sh %s = %q, want %q", tc.git, got, tc.want)
		}
		if err := exec.Command("dpkg", "--validate-version", got).Run(); err != nil {
			t.Errorf("version.sh %s = %q: not a Debian version", tc.git, got)
		}
	}
	// Without an argument: this tree's git describe, or 0.1.0.
	out, err := exec.Command("sh", "version.sh").Output()
	if err != nil || len(strings.TrimSpace(string(out))) == 0 {
		t.Errorf("version.sh without an argument: %q, %v", out, err)
	}
}

// build-deb.sh takes the version as it is, and refuses one dpkg does not.
func TestDebVersion(t *testing.T) {
	needDpkg(t)
	if got := field(t, buildDeb(t, "1.2.0+git5.gabc1234"), "Version"); got != "1.2.0+git5.gabc1234" {
		t.Errorf("Version %q, want the VERSION given", got)
	}
	if _, out, err := tryBuildDeb(t, "v1.2.0"); err == nil || !strings.Contains(string(out), "not a Debian version") {
		t.Errorf("build-deb.sh with VERSION=v1.2.0, not a Debian version: %v\n%s", err, out)
	}
}

func TestDebContents(t *testing.T) {
	needDpkg(t)
	deb := buildDeb(t, "1.0.0")
	for name, want := range map[string]string{"Package": "concord", "Architecture": "amd64"} {
		if got := field(t, deb, name); got != want {
			t.Errorf("control %s = %q, want %q", name, got, want)
		}
	}
	// libconcord needs the C library, from the version of its newest symbol.
	if got := field(t, deb, "Depends"); !regexp.MustCompile(`^systemd, dbus, libc6 \(>= 2\.[0-9]+\)$`).MatchString(got) {
		t.Errorf("control Depends = %q, want systemd, dbus and libc6 (>= 2.N)", got)
	}
	modes := contents(t, deb)
	for path, want := range map[string]string{
		"/usr/lib/x86_64-linux-gnu/libconcord.so.1.0.0":        "-rw-r--r-- root/root",
		"/usr/lib/x86_64-linux-gnu/libconcord.so.1":            "lrwxrwxrwx root/root",
		"/usr/sbin/concord-noded":                              "-rwxr-xr-x root/root",
		"/usr/bin/concordctl":                                  "-rwxr-xr-x root/root",
		"/usr/sbin/fence_concord_test":                         "-rwxr-xr-x root/root",
		"/lib/systemd/system/concord-noded.service":            "-rw-r--r-- root/root",
		"/lib/systemd/system/concord-noded@.service":           "-rw-r--r-- root/root",
		"/usr/share/dbus-1/system.d/org.concordha.node1.conf":  "-rw-r--r-- root/root",
		"/usr/share/dbus-1/interfaces/org.concordha.node1.xml": "-rw-r--r-- root/root",
		"/lib/udev/rules.d/70-concord-heartbeat.rules":         "-rw-r--r-- root/root",
		"/usr/share/man/man8/concord-noded.8.gz":               "-rw-r--r-- root/root",
		"/usr/share/doc/concord/cluster.conf.example":          "-rw-r--r-- root/root",
		"/usr/share/doc/concord/copyright":                     "-rw-r--r-- root/root",
		"/usr/share/lintian/overrides/concord":                 "-rw-r--r-- root/root",
		"/etc/concord":                                         "drwx------ root/root",
		"/var/lib/concord":                                     "drwx------ root/root",
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
	ctrl := control(t, deb)
	for file, want := range map[string][]string{
		"md5sums": {"  usr/sbin/concord-noded\n", "  usr/share/doc/concord/copyright\n", "  usr/lib/x86_64-linux-gnu/libconcord.so.1.0.0\n", "  lib/systemd/system/concord-noded@.service\n"},
		// ldconfig after installation; what links libconcord depends on
		// this package from this version on.
		"triggers": {"activate-noawait ldconfig\n"},
		"shlibs":   {"libconcord 1 concord (>= 1.0.0)\n"},
		"symbols":  {"libconcord.so.1 concord #MINVER#\n* Build-Depends-Package: concord-dev\n", " concord_group_open@CONCORD_1 1.0.0\n", " concord_group_send@CONCORD_1 1.0.0\n"},
	} {
		for _, w := range want {
			if !strings.Contains(ctrl[file], w) {
				t.Errorf("DEBIAN/%s lacks %q:\n%s", file, w, ctrl[file])
			}
		}
	}
}

// contents lists a package's paths with their "mode owner".
func contents(t *testing.T, deb string) map[string]string {
	t.Helper()
	b, err := exec.Command("dpkg-deb", "-c", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 {
			modes[strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")] = f[0] + " " + f[1]
		}
	}
	return modes
}

// control returns a package's control files by name.
func control(t *testing.T, deb string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	if b, err := exec.Command("dpkg-deb", "-e", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v\n%s", err, b)
	}
	files, _ := os.ReadDir(dir)
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name()] = string(b)
	}
	return out
}

// concord-dev holds what a C program needs to build against libconcord,
// depends on this very version of concord, and works: the example it
// ships compiles and links against the two packages unpacked, with the
// flags its pkg-config file gives.
func TestDevPackage(t *testing.T) {
	needDpkg(t)
	deb := buildDeb(t, "1.0.0")
	dev := filepath.Join(filepath.Dir(deb), "concord-dev.deb")
	for name, want := range map[string]string{"Package": "concord-dev", "Architecture": "amd64", "Depends": "concord (= 1.0.0)", "Section": "libdevel"} {
		if got := field(t, dev, name); got != want {
			t.Errorf("concord-dev control %s = %q, want %q", name, got, want)
		}
	}
	modes := contents(t, dev)
	want := map[string]string{
		"/usr/include/concord/group.h":                           "-rw-r--r-- root/root",
		"/usr/lib/x86_64-linux-gnu/libconcord.so":                "lrwxrwxrwx root/root",
		"/usr/lib/x86_64-linux-gnu/pkgconfig/concord.pc":         "-rw-r--r-- root/root",
		"/usr/share/doc/concord-dev/examples/concord-chat.c":     "-rw-r--r-- root/root",
		"/usr/share/doc/concord-dev/copyright":                   "-rw-r--r-- root/root",
		"/usr/share/doc/concord-dev/changelog.gz":                "-rw-r--r-- root/root",
		"/usr/share/man/man3/concord_group.3.gz":                 "-rw-r--r-- root/root",
		"/usr/share/man/man3/concord_group_open.3.gz":            "-rw-r--r-- root/root",
		"/usr/share/man/man3/concord_group_dispatch.3.gz":        "lrwxrwxrwx root/root",
		"/usr/share/man/man3/concord_group_tx_commit.3.gz":       "lrwxrwxrwx root/root",
		"/usr/share/man/man3/concord_group_members.3.gz":         "lrwxrwxrwx root/root",
		"/usr/share/man/man3/concord_group_send_to.3.gz":         "lrwxrwxrwx root/root",
		"/usr/lib/x86_64-linux-gnu/libconcord.so.1.0.0 (absent)": "",
	}
	for path, w := range want {
		if p, ok := strings.CutSuffix(path, " (absent)"); ok {
			if modes[p] != "" {
				t.Errorf("concord-dev ships %s, concord's", p)
			}
			continue
		}
		if got := modes[path]; got != w {
			t.Errorf("concord-dev %s: %q, want %q", path, got, w)
		}
	}
	for path := range modes {
		if strings.HasPrefix(path, "/usr/sbin") || strings.HasPrefix(path, "/usr/bin") {
			t.Errorf("concord-dev ships %s", path)
		}
	}
	if _, err := exec.LookPath("pkg-config"); err != nil {
		t.Skip("SKIP: no pkg-config (tests/setup.sh installs it)")
	}
	root := t.TempDir()
	for _, d := range []string{deb, dev} {
		if b, err := exec.Command("dpkg-deb", "-x", d, root).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x: %v\n%s", err, b)
		}
	}
	pc := exec.Command("pkg-config", "--cflags", "--libs", "concord")
	pc.Env = append(os.Environ(), "PKG_CONFIG_LIBDIR="+filepath.Join(root, "usr/lib/x86_64-linux-gnu/pkgconfig"), "PKG_CONFIG_SYSROOT_DIR="+root)
	flags, err := pc.Output()
	if err != nil {
		t.Fatalf("pkg-config --cflags --libs concord: %v", err)
	}
	if got := strings.Fields(string(flags)); len(got) != 3 || got[0] != "-I"+root+"/usr/include" || got[2] != "-lconcord" {
		t.Errorf("pkg-config --cflags --libs concord: %q", flags)
	}
	args := append([]string{"-std=c11", "-Wall", "-Wextra", "-Werror", "-o", filepath.Join(root, "chat"),
		filepath.Join(root, "usr/share/doc/concord-dev/examples/concord-chat.c")}, strings.Fields(string(flags))...)
	if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Errorf("the example does not build against the packages: %v\n%s", err, b)
	}
}

// paragraphs splits a Debian control-style file into its paragraphs,
// each a map from field to value (continuation lines joined by \n).
func paragraphs(text string) []map[string]string {
	var ps []map[string]string
	p := map[string]string{}
	last := ""
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			if len(p) > 0 {
				ps = append(ps, p)
				p = map[string]string{}
			}
		case line[0] == ' ' || line[0] == '\t':
			p[last] += "\n" + strings.TrimSpace(line)
		default:
			k, v, _ := strings.Cut(line, ":")
			last = k
			p[k] = strings.TrimSpace(v)
		}
	}
	if len(p) > 0 {
		ps = append(ps, p)
	}
	return ps
}

// TestCopyright checks packaging/copyright the way the package needs it:
// machine-readable, a License paragraph for every licence a Files
// paragraph names and no other, and one Files paragraph for each Go module
// linked into the programs (go list -deps), none for a module that is not.
func TestCopyright(t *testing.T) {
	b, err := os.ReadFile("copyright")
	if err != nil {
		t.Fatal(err)
	}
	ps := paragraphs(string(b))
	if len(ps) == 0 || !strings.HasPrefix(ps[0]["Format"], "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/") {
		t.Fatal("copyright: the first paragraph must name the copyright-format 1.0")
	}
	used, defined := map[string]bool{}, map[string]bool{}
	stanzas := map[string]bool{}
	for _, p := range ps[1:] {
		lic, _, _ := strings.Cut(p["License"], "\n")
		switch {
		case p["Files"] != "":
			if p["Copyright"] == "" || lic == "" {
				t.Errorf("copyright: Files %s needs Copyright and License", p["Files"])
			}
			used[lic] = true
			if f := p["Files"]; f != "*" {
				mod, ok := strings.CutPrefix(f, "vendor/")
				mod, ok2 := strings.CutSuffix(mod, "/*")
				if !ok || !ok2 {
					t.Errorf("copyright: Files %s: want vendor/MODULE/*", f)
				}
				stanzas[mod] = true
			}
		case lic != "":
			if !strings.Contains(p["License"], "\n") {
				t.Errorf("copyright: License %s has no text", lic)
			}
			if defined[lic] {
				t.Errorf("copyright: License %s defined twice", lic)
			}
			defined[lic] = true
		default:
			t.Errorf("copyright: a paragraph with neither Files nor License: %v", p)
		}
	}
	for l := range used {
		if !defined[l] {
			t.Errorf("copyright: License %s is used but has no License paragraph", l)
		}
	}
	for l := range defined {
		if !used[l] {
			t.Errorf("copyright: License %s is defined but no Files paragraph uses it", l)
		}
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("SKIP: no go command to list the linked modules with")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", "../daemons/...", "../fence-agents/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	linked := map[string]bool{"std": true}
	for _, m := range strings.Fields(string(out)) {
		if m != "github.com/concord-ha/concord" {
			linked[m] = true
		}
	}
	for m := range linked {
		if !stanzas[m] {
			t.Errorf("copyright: module %s is linked into the programs but has no Files: vendor/%s/* paragraph (its licence and copyright)", m, m)
		}
	}
	for m := range stanzas {
		if !linked[m] {
			t.Errorf("copyright: Files vendor/%s/*: the programs no longer link that module", m)
		}
	}
}

// TestBuiltPackage builds the programs and the .deb as `make deb` does,
// with a VERSION given the way a release would (a tag), then checks that
// every program prints the package's version and that lintian finds
// nothing but what lintianAccepted explains.
func TestBuiltPackage(t *testing.T) {
	needDpkg(t)
	for _, tool := range []string{"make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: needs %s", tool)
		}
	}
	if testing.Short() {
		t.Skip("SKIP: -short (builds every program)")
	}
	out := t.TempDir()
	cmd := exec.Command("make", "-C", "..", "--no-print-directory", "deb", "OUT="+out, "VERSION=v7.7.7-3-gabcdef1")
	cmd.Env = append(os.Environ(), "MAKEFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, b)
	}
	deb := filepath.Join(out, "concord.deb")
	t.Run("versions", func(t *testing.T) { versionsAgree(t, deb, "7.7.7+git3.gabcdef1") })
	t.Run("lintian", func(t *testing.T) { lintian(t, deb, filepath.Join(out, "concord-dev.deb")) })
}

func versionsAgree(t *testing.T, deb, want string) {
	if got := field(t, deb, "Version"); got != want {
		t.Errorf("package Version %q, want %q", got, want)
	}
	root := t.TempDir()
	if b, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, b)
	}
	progs := map[string][]string{
		"usr/sbin/concord-noded": {"-version"},
		"usr/bin/concordctl":     {"version"},
	}
	agents, _ := filepath.Glob(filepath.Join(root, "usr/sbin/fence_concord_*"))
	if len(agents) == 0 {
		t.Error("no fence agents in the package")
	}
	for _, a := range agents {
		rel, _ := filepath.Rel(root, a)
		progs[rel] = []string{"--version"}
	}
	for prog, args := range progs {
		b, err := exec.Command(filepath.Join(root, prog), args...).Output()
		if err != nil {
			t.Errorf("%s %v: %v", prog, args, err)
			continue
		}
		if got := strings.TrimSpace(string(b)); got != want {
			t.Errorf("%s %v prints %q, the package is %q", prog, args, got, want)
		}
	}
}

// lintianAccepted are the lintian tags a build may show, and why.
var lintianAccepted = map[string]string{
	// The project has no mail address: set DEBEMAIL (and DEBFULLNAME)
	// when building a package for others.
	"bogus-mail-host":                     "no project mail address",
	"bogus-mail-host-in-debian-changelog": "no project mail address",
	// Byte sequences inside compiled Go code that look like typos.
	"spelling-error-in-binary": "false positive",
}

func lintian(t *testing.T, debs ...string) {
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Skip("SKIP: lintian is not installed (tests/setup.sh installs it)")
	}
	out, _ := exec.Command("lintian", append([]string{"--info", "--pedantic", "--display-experimental"}, debs...)...).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		// "E: concord: tag details", "W: ...", "I: ...", "P: ..., "X: ...".
		f := strings.Fields(line)
		if len(f) < 3 || len(f[0]) != 2 || f[0][1] != ':' || (f[1] != "concord:" && f[1] != "concord-dev:") {
			continue
		}
		if _, ok := lintianAccepted[f[2]]; !ok {
			t.Errorf("lintian: %s", line)
		}
	}
}
