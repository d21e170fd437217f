package core

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// forbidden are packages a protocol core may not reach, even through a
// dependency: sockets, clocks, processes, system calls, timers that start
// goroutines, D-Bus and the raw-Ethernet driver.
var forbidden = []string{
	"net", "os", "os/exec", "os/signal", "time", "syscall", "golang.org/x/sys/unix",
	"github.com/godbus/dbus/v5", "github.com/coreos/go-systemd/v22", "github.com/mdlayher/packet",
	"github.com/concord-ha/concord/lib/driver", "github.com/concord-ha/concord/lib/store",
	"github.com/concord-ha/concord/lib/sys",
}

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Standard   bool
	Imports    []string
}

// list returns the packages go list -json prints for args.
func list(t *testing.T, args ...string) []pkg {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var ps []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func listCores(t *testing.T) []pkg {
	var ps []pkg
	for _, p := range list(t, "github.com/concord-ha/concord/lib/core/...") {
		if p.ImportPath != "github.com/concord-ha/concord/lib/core" {
			ps = append(ps, p)
		}
	}
	if len(ps) < 2 {
		t.Fatalf("found %d protocol cores under lib/core; expected membership and quorum at least", len(ps))
	}
	return ps
}

// bad reports which forbidden package imp is, or "".
func bad(imp string) string {
	for _, f := range forbidden {
		if imp == f || strings.HasPrefix(imp, f+"/") && f != "os" {
			return f
		}
	}
	return ""
}

// TestCoresImportNoIO follows imports through every non-standard package a
// core reaches (the standard library's own internals, such as fmt using os,
// are not the core's doing).
func TestCoresImportNoIO(t *testing.T) {
	all := map[string]pkg{}
	for _, p := range list(t, "-deps", "github.com/concord-ha/concord/lib/core/...") {
		all[p.ImportPath] = p
	}
	for _, c := range listCores(t) {
		seen := map[string]bool{}
		var walk func(path string, via []string)
		walk = func(path string, via []string) {
			for _, imp := range all[path].Imports {
				if f := bad(imp); f != "" {
					t.Errorf("%s imports %s (via %s): protocol cores must stay free of I/O, clocks and goroutines",
						c.ImportPath, imp, strings.Join(append(via, path), " -> "))
				}
				if seen[imp] || all[imp].Standard {
					continue
				}
				seen[imp] = true
				walk(imp, append(via, path))
			}
		}
		walk(c.ImportPath, nil)
	}
}

// TestCoresStartNoGoroutines looks for go statements in the cores' own code.
func TestCoresStartNoGoroutines(t *testing.T) {
	for _, p := range listCores(t) {
		fs := token.NewFileSet()
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fs, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if g, ok := n.(*ast.GoStmt); ok {
					t.Errorf("%s: a protocol core starts a goroutine", fs.Position(g.Pos()))
				}
				return true
			})
		}
	}
}

func TestForbiddenMatching(t *testing.T) {
	for imp, want := range map[string]string{
		"net": "net", "net/netip": "net", "os": "os", "os/user": "", "time": "time",
		"github.com/concord-ha/concord/lib/driver/link": "github.com/concord-ha/concord/lib/driver",
		"sort": "", "github.com/concord-ha/concord/lib/core/quorum": "",
	} {
		if got := bad(imp); got != want {
			t.Errorf("bad(%q) = %q, want %q", imp, got, want)
		}
	}
}
