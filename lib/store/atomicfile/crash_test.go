package atomicfile_test

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/concord-ha/concord/lib/store/atomicfile"
	"github.com/concord-ha/concord/lib/store/atomicfile/crashfs"
)

// TestCrashLeavesOldOrNew cuts the power after every file operation of a
// Write or Create: the file then holds its old content or the new one,
// nothing else, and once the call returned, the new one.
func TestCrashLeavesOldOrNew(t *testing.T) {
	const path = "/etc/concord/f"
	tests := []struct {
		name  string
		old   string // "" = no file yet
		write func(fsys atomicfile.FS, path string, data []byte, perm os.FileMode) error
	}{
		{"write replaces", "old content", atomicfile.WriteFS},
		{"write new", "", atomicfile.WriteFS},
		{"create new", "", atomicfile.CreateFS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := crashfs.New()
			if err := fsys.MkdirAll("/etc/concord", 0o755); err != nil {
				t.Fatal(err)
			}
			if tt.old != "" {
				if err := atomicfile.WriteFS(fsys, path, []byte(tt.old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			check := func(when string, after bool) {
				for _, img := range fsys.Crashes() {
					b, err := img.ReadFile(path)
					got := string(b)
					switch {
					case errors.Is(err, fs.ErrNotExist):
						got = "no file"
					case err != nil:
						t.Fatal(err)
					}
					old := tt.old
					if old == "" {
						old = "no file"
					}
					if got != "new content" && (after || got != old) {
						t.Errorf("power cut after %s: the file holds %q", when, got)
					}
				}
			}
			fsys.AfterOp = func(op string) { check(op, false) }
			if err := tt.write(fsys, path, []byte("new content"), 0o600); err != nil {
				t.Fatal(err)
			}
			fsys.AfterOp = nil
			check("the call returned", true)
		})
	}
}
