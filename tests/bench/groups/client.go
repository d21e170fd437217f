package main

import (
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The client's sources travel inside the bench, so it builds them wherever
// `go run` starts.
//
//go:embed client/*.c client/*.h
var clientSrc embed.FS

// backend is one group service the client can measure.
type backend struct {
	name    string
	sources []string // in client/, beside groupbench.c
	libs    []string // linker flags
	header  string   // a header the host needs to build it, to name in errors
	daemon  string   // the unit that serves the groups in every node
}

var cpgBackend = backend{
	name:    "cpg",
	sources: []string{"backend_cpg.c"},
	libs:    []string{"-lcpg"},
	header:  "/usr/include/corosync/cpg.h",
	daemon:  "corosync",
}

// buildClient compiles groupbench against b on the host (Debian 12 like
// the nodes) into dir and returns the binary's path.
func buildClient(b backend, dir string) (string, error) {
	if _, err := exec.LookPath("gcc"); err != nil {
		return "", fmt.Errorf("building the %s client: gcc is not installed (tests/setup.sh installs it)", b.name)
	}
	if _, err := os.Stat(b.header); err != nil {
		return "", fmt.Errorf("building the %s client: %s is missing (tests/setup.sh installs libcpg-dev)", b.name, b.header)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	files, err := clientSrc.ReadDir("client")
	if err != nil {
		return "", err
	}
	for _, f := range files {
		data, err := clientSrc.ReadFile("client/" + f.Name())
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(src, f.Name()), data, 0o644); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(dir, "groupbench-"+b.name)
	args := []string{"-Wall", "-Werror", "-O2", "-o", bin, filepath.Join(src, "groupbench.c")}
	for _, s := range b.sources {
		args = append(args, filepath.Join(src, s))
	}
	args = append(args, b.libs...)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}
