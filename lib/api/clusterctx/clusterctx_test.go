package clusterctx

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestDefaultKeepsTodaysPaths(t *testing.T) {
	for _, c := range []Context{Default, {}, mustParse(t, "")} {
		got := []string{c.ConfigPath(), c.KeyPath(), c.StateDir(), c.RuntimeDir(), c.GroupSocket(), c.BusName(), c.Unit(), c.Ctl(), c.String(), c.Name()}
		want := []string{"/etc/concord/cluster.conf", "/etc/concord/authkey", "/var/lib/concord", "/run/concord", "/run/concord/groups.sock",
			"org.concordha.node1", "concord-noded", "concordctl", "default", ""}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("default context:\n got  %q\n want %q", got, want)
		}
		if !c.IsDefault() {
			t.Errorf("%+v is not the default", c)
		}
	}
}

func TestNamed(t *testing.T) {
	c := mustParse(t, "b-2_x")
	got := []string{c.ConfigPath(), c.KeyPath(), c.StateDir(), c.RuntimeDir(), c.GroupSocket(), c.BusName(), c.Unit(), c.Ctl(), c.String(), c.Name()}
	want := []string{"/etc/concord/b-2_x/cluster.conf", "/etc/concord/b-2_x/authkey", "/var/lib/concord/b-2_x", "/run/concord/b-2_x",
		"/run/concord/b-2_x/groups.sock", "org.concordha.node1.b-2_x", "concord-noded@b-2_x", "concordctl --cluster b-2_x", "b-2_x", "b-2_x"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("context b-2_x:\n got  %q\n want %q", got, want)
	}
	if c.IsDefault() {
		t.Error("a named context is the default")
	}
}

func mustParse(t *testing.T, name string) Context {
	t.Helper()
	c, err := Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  string // "" for valid
	}{
		{"", ""},
		{"b", ""},
		{"prod", ""},
		{"a1", ""},
		{"a-b_c9", ""},
		{strings.Repeat("x", 32), ""},
		{strings.Repeat("x", 33), "is 33 bytes long, at most 32"},
		{"B", `must start with a lowercase letter a-z, not 'B'`},
		{"1abc", `must start with a lowercase letter a-z, not '1'`},
		{"-x", `must start with a lowercase letter`},
		{"_x", `must start with a lowercase letter`},
		{"aB", `character 2 is 'B'`},
		{"a.b", `character 2 is '.'`},
		{"a/b", `character 2 is '/'`},
		{"a b", `character 2 is ' '`},
		{"ab\x00", `character 3 is '\x00'`},
		{"é", `must start with a lowercase letter a-z, not 'Ã'`},
		{"..", "must start with a lowercase letter"},
		{"default", "reserved: the default context has no name"},
		{"authkey", "reserved: it is the default context's key file"},
		{"deleted", "reserved"},
		{"view-seq", "reserved"},
	} {
		c, err := Parse(tc.name)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("Parse(%q): %v", tc.name, err)
		case tc.err == "" && c.Name() != tc.name:
			t.Errorf("Parse(%q).Name() = %q", tc.name, c.Name())
		case tc.err != "" && err == nil:
			t.Errorf("Parse(%q) = %+v, want an error with %q", tc.name, c, tc.err)
		case tc.err != "" && !strings.Contains(err.Error(), tc.err):
			t.Errorf("Parse(%q): %v; want %q in it", tc.name, err, tc.err)
		case tc.err != "" && !strings.HasPrefix(err.Error(), "cluster context \""):
			t.Errorf("Parse(%q): %v; the error must name the context", tc.name, err)
		}
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if c, err := FromEnv(getenv); err != nil || !c.IsDefault() {
		t.Errorf("unset: %+v %v", c, err)
	}
	env[EnvVar] = "b"
	if c, err := FromEnv(getenv); err != nil || c.Name() != "b" {
		t.Errorf("b: %+v %v", c, err)
	}
	env[EnvVar] = "B"
	if _, err := FromEnv(getenv); err == nil || !strings.HasPrefix(err.Error(), `CONCORD_CLUSTER: cluster context "B": must start`) {
		t.Errorf("B: %v", err)
	}
}

// validName is a second statement of the rule, as a regular expression.
var validName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// busNameOK checks a well-known bus name by the D-Bus specification:
// at most 255 bytes, two or more elements of [A-Za-z0-9_-], none empty
// and none starting with a digit.
func busNameOK(s string) bool {
	if len(s) > 255 {
		return false
	}
	els := strings.Split(s, ".")
	if len(els) < 2 {
		return false
	}
	for _, e := range els {
		if e == "" || (e[0] >= '0' && e[0] <= '9') {
			return false
		}
		for _, r := range e {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				return false
			}
		}
	}
	return true
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "b", "prod-2", "default", "1a", "a.b", "../x", strings.Repeat("q", 33)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c, err := Parse(name)
		_, isReserved := reserved[name]
		want := name == "" || validName.MatchString(name) && !isReserved
		if (err == nil) != want {
			t.Fatalf("Parse(%q): err %v, want valid=%v", name, err, want)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cluster context ") {
				t.Fatalf("Parse(%q): %v does not name the context", name, err)
			}
			return
		}
		if !busNameOK(c.BusName()) {
			t.Fatalf("Parse(%q): bus name %q is not valid", name, c.BusName())
		}
		// Every path stays inside its root, one level down at most.
		for _, p := range []struct{ path, root string }{{c.ConfigPath(), ConfigDir}, {c.KeyPath(), ConfigDir},
			{c.StateDir(), StateRoot}, {c.RuntimeDir(), RuntimeDir}, {c.GroupSocket(), RuntimeDir}} {
			rel, err := filepath.Rel(p.root, p.path)
			if err != nil || strings.HasPrefix(rel, "..") || strings.Count(rel, "/") > 1 || filepath.Clean(p.path) != p.path {
				t.Fatalf("Parse(%q): %s is not in %s", name, p.path, p.root)
			}
		}
		if name != "" && (c.StateDir() == StateRoot || c.BusName() == Default.BusName() || c.ConfigPath() == Default.ConfigPath()) {
			t.Fatalf("Parse(%q) shares the default context's paths", name)
		}
	})
}
