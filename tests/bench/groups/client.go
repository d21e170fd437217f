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

// concordBackend builds against the library and header of the packages
// under test, unpacked into a directory of the bench's own (sysroot), so
// the client and the nodes' libconcord.so.1 come from the same build.
func concordBackend(sysroot string) backend {
	inc := filepath.Join(sysroot, "usr/include")
	return backend{
		name:    "concord",
		sources: []string{"backend_concord.c"},
		libs:    []string{"-I" + inc, "-L" + filepath.Join(sysroot, "usr/lib/x86_64-linux-gnu"), "-lconcord"},
		header:  filepath.Join(inc, "concord/group.h"),
		daemon:  "concord-noded",
	}
}

// unpackConcord unpacks deb (CONCORD_DEB) and the concord-dev.deb beside
// it, as `make deb` leaves them, into dir.
func unpackConcord(deb, dir string) error {
	dev := filepath.Join(filepath.Dir(deb), "concord-dev.deb")
	for _, p := range []string{deb, dev} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("building the concord client: %v (make deb builds concord.deb and concord-dev.deb)", err)
		}
		if out, err := exec.Command("dpkg-deb", "-x", p, dir).CombinedOutput(); err != nil {
			return fmt.Errorf("dpkg-deb -x %s: %v: %s", p, err, out)
		}
	}
	return nil
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
		return "", fmt.Errorf("building the %s client: %s is missing (tests/setup.sh installs libcpg-dev; make deb builds concord-dev.deb)", b.name, b.header)
	}
	src := filepath.Join(dir, "src-"+b.name)
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
