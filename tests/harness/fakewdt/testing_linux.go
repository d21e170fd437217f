package fakewdt

import (
	"os"
	"testing"
)

// MountTest mounts a stand-in on a temp dir for t, unmounted at cleanup.
// It skips, naming what is missing, without root or /dev/fuse.
func MountTest(t testing.TB) *FS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root to mount FUSE without fusermount")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("SKIP: no /dev/fuse (FUSE not available): %v", err)
	}
	f, err := Mount(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return f
}
