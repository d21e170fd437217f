package fencepeer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Build compiles the module's fence-agents/name into dir and returns the
// binary's path.
func Build(dir, name string) (string, error) {
	bin := filepath.Join(dir, name)
	out, err := exec.Command(goTool(), "build", "-o", bin, "github.com/concord-ha/concord/fence-agents/"+name).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building %s: %v: %s", name, err, out)
	}
	return bin, nil
}

// goTool is the go command of the GOROOT that `go env` names, which
// `go test` puts first in PATH.
func goTool() string {
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		return filepath.Join(strings.TrimSpace(string(out)), "bin", "go")
	}
	return "/usr/local/go/bin/go"
}

// Agent is one fence agent built at most once per test binary.
type Agent struct {
	Name string // e.g. "fence_concord_scsi"

	once sync.Once
	dir  string
	bin  string
	err  error
}

// Build builds the agent on first use and returns its binary's path.
func (a *Agent) Build() (string, error) {
	a.once.Do(func() {
		a.dir, a.err = os.MkdirTemp("", a.Name+"-")
		if a.err == nil {
			a.bin, a.err = Build(a.dir, a.Name)
		}
	})
	return a.bin, a.err
}

// Path is Build for a test, which fails if the build does.
func (a *Agent) Path(t testing.TB) string {
	t.Helper()
	bin, err := a.Build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// MustBuild is Build for TestMain: it exits 1 if the build fails.
func (a *Agent) MustBuild() string {
	bin, err := a.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		a.remove()
		os.Exit(1)
	}
	return bin
}

// Main is TestMain's body: it runs the tests, deletes the build and exits.
func (a *Agent) Main(m *testing.M) {
	code := m.Run()
	a.remove()
	os.Exit(code)
}

func (a *Agent) remove() {
	if a.dir != "" {
		os.RemoveAll(a.dir)
	}
}
