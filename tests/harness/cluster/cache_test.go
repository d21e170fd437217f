package cluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRootfsCache(t *testing.T) {
	requireHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	dir, err := Rootfs{}.Ensure(ctx, t)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rootfs %s ready in %v", dir, time.Since(start).Round(time.Millisecond))
	for _, p := range []string{"lib/systemd/systemd", "usr/bin/dbus-daemon", "usr/sbin/ip", ".concord-complete"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("rootfs lacks %s: %v", p, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "etc/machine-id")); err != nil || len(b) != 0 {
		t.Errorf("rootfs machine-id should be empty so each node gets its own: %q %v", b, err)
	}
}

func requireHost(t *testing.T) {
	t.Helper()
	if m := Missing(); m != "" {
		t.Skip("SKIP (host not suitable): " + m)
	}
}
