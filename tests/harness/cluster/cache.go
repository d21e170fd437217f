package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Rootfs describes the Debian tree every node boots from.
type Rootfs struct {
	CacheDir string   // default $CONCORD_CACHE or /var/cache/concord-test
	Suite    string   // default bookworm
	Mirror   string   // default $CONCORD_MIRROR or the host's own apt mirror (HostMirror)
	Packages []string // default DefaultPackages
	// Name keeps trees of different purposes apart: building one prunes
	// only unused trees of the same name. Default "concord".
	Name string
}

// DefaultPackages is what a node needs: systemd as PID 1, a system bus for
// Concord's D-Bus API, ip(8) for the heartbeat links, ps(1) for tests and
// udevadm to check Concord's udev rules (udevd itself does not run in a
// container).
var DefaultPackages = []string{"systemd", "systemd-sysv", "dbus", "iproute2", "procps", "udev"}

func (r Rootfs) withDefaults() Rootfs {
	if r.CacheDir == "" {
		r.CacheDir = os.Getenv("CONCORD_CACHE")
	}
	if r.CacheDir == "" {
		r.CacheDir = "/var/cache/concord-test"
	}
	if r.Suite == "" {
		r.Suite = "bookworm"
	}
	if r.Mirror == "" {
		r.Mirror = os.Getenv("CONCORD_MIRROR")
	}
	if r.Mirror == "" {
		r.Mirror, _ = HostMirror(r.Suite) // Ensure reports the error
	}
	if len(r.Packages) == 0 {
		r.Packages = DefaultPackages
	}
	if r.Name == "" {
		r.Name = "concord"
	}
	return r
}

// cacheVersion changes when the post-processing in finishRootfs changes, so
// old trees are not reused with new expectations.
const cacheVersion = "2"

// Dir is the cache directory for this package list; it changes whenever
// the list, suite, mirror or post-processing changes.
func (r Rootfs) Dir() string {
	r = r.withDefaults()
	h := sha256.Sum256([]byte(strings.Join([]string{cacheVersion, r.Suite, r.Mirror, strings.Join(r.Packages, ",")}, "\n")))
	return filepath.Join(r.CacheDir, "rootfs-"+r.Name+"-"+hex.EncodeToString(h[:])[:12])
}

// Ensure returns the cached rootfs, building it with debootstrap first if
// it is missing. Builders in other processes are serialized by a lock file;
// a tree is built under a temporary name and renamed when complete, so a
// half-built tree is never used.
func (r Rootfs) Ensure(ctx context.Context, log Logger) (string, error) {
	r = r.withDefaults()
	if r.Mirror == "" {
		if _, err := HostMirror(r.Suite); err != nil {
			return "", err
		}
	}
	dir := r.Dir()
	if complete(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(r.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(r.CacheDir, "rootfs.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	defer lock.Close()
	log.Logf("cluster: waiting for rootfs cache lock %s", lock.Name())
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("rootfs cache: lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if complete(dir) { // another process built it while we waited
		return dir, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("rootfs cache: %s is missing and debootstrap is not installed", dir)
	}
	// Leftovers of builders that died: we hold the lock, so nobody uses them.
	old, _ := filepath.Glob(filepath.Join(r.CacheDir, ".build-*"))
	for _, o := range old {
		os.RemoveAll(o)
	}
	tmp, err := os.MkdirTemp(r.CacheDir, ".build-"+filepath.Base(dir)+"-")
	if err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after the rename
	debs := filepath.Join(r.CacheDir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	start := time.Now()
	log.Logf("cluster: building rootfs %s with debootstrap (%s)", dir, strings.Join(r.Packages, ","))
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--cache-dir="+debs,
		"--include="+strings.Join(r.Packages, ","), r.Suite, tmp, r.Mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("rootfs cache: debootstrap %s: %v\n%s", r.Suite, err, tail(out, 2000))
	}
	if err := finishRootfs(tmp); err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".concord-complete"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	log.Logf("cluster: built rootfs %s in %v", dir, time.Since(start).Round(time.Millisecond))
	pruneRootfs(r.CacheDir, r.Name, dir, log)
	return dir, nil
}

// pruneRootfs removes cached trees of the same name but other package
// lists (or older naming) that no node uses now (no overlay names them).
// Called with the lock held.
func pruneRootfs(cacheDir, name, keep string, log Logger) {
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	old, _ := filepath.Glob(filepath.Join(cacheDir, "rootfs-"+name+"-*"))
	unnamed, _ := filepath.Glob(filepath.Join(cacheDir, "rootfs-"+strings.Repeat("[0-9a-f]", 12)))
	old = append(old, unnamed...)
	for _, d := range old {
		if d == keep || strings.Contains(string(mounts), d) {
			continue
		}
		log.Logf("cluster: removing unused rootfs %s", d)
		os.RemoveAll(d)
	}
}

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".concord-complete"))
	return err == nil
}

// finishRootfs makes the tree a neutral template: each node gets its own
// machine-id and hostname in its overlay, keeps its journal across power
// loss, and does not run timers that would add noise to the tests.
func finishRootfs(root string) error {
	// MkdirTemp made the tree's top 0700; it is every node's "/".
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "etc/machine-id"), nil, 0o444); err != nil {
		return err
	}
	os.Remove(filepath.Join(root, "var/lib/dbus/machine-id"))
	if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("localhost\n"), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, "var/log/journal"), 0o2755); err != nil {
		return err
	}
	for _, u := range []string{"apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer"} {
		p := filepath.Join(root, "etc/systemd/system", u)
		os.Remove(p)
		if err := os.Symlink("/dev/null", p); err != nil {
			return err
		}
	}
	os.RemoveAll(filepath.Join(root, "var/cache/apt/archives"))
	return os.MkdirAll(filepath.Join(root, "var/cache/apt/archives/partial"), 0o755)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
