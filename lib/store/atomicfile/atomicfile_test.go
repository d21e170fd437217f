package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteAndCreate(t *testing.T) {
	tests := []struct {
		name    string
		old     string // "" = no file yet
		write   func(path string, data []byte, perm os.FileMode) error
		perm    os.FileMode
		want    string
		wantErr error
	}{
		{"write new", "", Write, 0o600, "new", nil},
		{"write replaces", "old", Write, 0o644, "new", nil},
		{"create new", "", Create, 0o600, "new", nil},
		{"create keeps existing", "old", Create, 0o600, "old", fs.ErrExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tt.old != "" {
				if err := os.WriteFile(path, []byte(tt.old), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			err := tt.write(path, []byte("new"), tt.perm)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			b, rerr := os.ReadFile(path)
			if rerr != nil || string(b) != tt.want {
				t.Fatalf("content %q, %v; want %q", b, rerr, tt.want)
			}
			if fi, _ := os.Stat(path); err == nil && fi.Mode().Perm() != tt.perm {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), tt.perm)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("files left in the folder: %v", ents)
			}
		})
	}
}

// A failed write, injected at the last step or real, leaves what was at
// path as it was and no temp file behind.
func TestFailureKeepsOldContent(t *testing.T) {
	injected := errors.New("injected")
	tests := []struct {
		name  string
		dir   bool // path is a non-empty folder: rename(2) over it fails
		place func(tmp, path string) error
	}{
		{"rename fails", false, func(string, string) error { return injected }},
		{"path is a folder", true, OS.Rename},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			old := path
			if tt.dir {
				old = filepath.Join(path, "keep")
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(old, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := write(OS, path, []byte("new"), 0o600, tt.place)
			if err == nil {
				t.Fatal("write succeeded, want an error")
			}
			if !tt.dir && !errors.Is(err, injected) {
				t.Errorf("error %v, want the injected one", err)
			}
			if b, err := os.ReadFile(old); err != nil || string(b) != "old" {
				t.Errorf("after a failed write: %q, %v; want the old content", b, err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("files left in the folder: %v", ents)
			}
		})
	}
}

func TestErrorNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "f")
	for _, f := range []func(string, []byte, os.FileMode) error{Write, Create} {
		err := f(path, nil, 0o600)
		if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), path) {
			t.Errorf("error %v, want one starting with %s and wrapping fs.ErrNotExist", err, path)
		}
	}
}

// Of several Creates racing for one path exactly one wins, and the file
// holds the winner's data whole.
func TestCreateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Create(path, []byte(fmt.Sprintf("writer %d", i)), 0o600)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("writer %d: %v, want fs.ErrExist", i, err)
		}
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != fmt.Sprintf("writer %d", winner) {
		t.Errorf("content %q, %v; winner %d", b, err, winner)
	}
}
