package frame

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestGenerateLoadKey(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: LoadKey wants root-owned files and the test is not running as root")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "authkey")
	if err := GenerateKey(path, false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != GeneratedKeyLen {
		t.Fatalf("generated key: mode %v size %d", fi.Mode(), fi.Size())
	}
	key, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != GeneratedKeyLen || bytes.Equal(key, make([]byte, GeneratedKeyLen)) {
		t.Fatalf("loaded key %x", key)
	}

	if err := GenerateKey(path, false); err == nil || !errors.Is(err, fs.ErrExist) ||
		!strings.Contains(err.Error(), "cluster key "+path+" already exists; replacing it needs --force") {
		t.Fatalf("GenerateKey over an existing key: %v, want a refusal naming the file and --force", err)
	}
	if again, _ := LoadKey(path); !bytes.Equal(again, key) {
		t.Fatal("refused GenerateKey changed the key")
	}
	if err := GenerateKey(path, true); err != nil {
		t.Fatal(err)
	}
	if again, _ := LoadKey(path); bytes.Equal(again, key) {
		t.Fatal("GenerateKey with overwrite kept the old key")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temp files left behind: %v", ents)
	}
}

func TestLoadKeyRejects(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create root- and nobody-owned key files")
	}
	tests := []struct {
		name    string
		size    int
		mode    os.FileMode
		uid     int
		wantErr string // "" means success
	}{
		{"ok 32 bytes", 32, 0o600, 0, ""},
		{"ok 4096 bytes", 4096, 0o400, 0, ""},
		{"empty", 0, 0o600, 0, "has 0 bytes, want 32..4096: make a new one with `concordctl keygen --file PATH --force` and copy it to every node"},
		{"too short", 31, 0o600, 0, "has 31 bytes, want 32..4096: make a new one with `concordctl keygen --file PATH --force`"},
		{"too long", 4097, 0o600, 0, "has more than 4096 bytes, want 32..4096: make a new one"},
		{"group readable", 64, 0o640, 0, `has mode 0640, which lets other users read or change it: run "chmod 600 PATH"`},
		{"world readable", 64, 0o604, 0, "has mode 0604"},
		{"not root", 64, 0o600, 65534, `is owned by uid 65534, not root: run "chown root:root PATH"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "authkey")
			if err := os.WriteFile(path, bytes.Repeat([]byte{1}, tt.size), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(path, tt.uid, 0); err != nil {
				t.Fatal(err)
			}
			key, err := LoadKey(path)
			if tt.wantErr == "" {
				if err != nil || len(key) != tt.size {
					t.Fatalf("LoadKey = %d bytes, %v", len(key), err)
				}
				return
			}
			want := "cluster key " + path + " " + strings.ReplaceAll(tt.wantErr, "PATH", path)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("LoadKey error\n  %v\nwant it to contain\n  %s", err, want)
			}
		})
	}
}

// TestLoadKeyTellsWhatToDo: the errors an admin meets first name the file
// and the fix; these need no root.
func TestLoadKeyTellsWhatToDo(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "authkey")
	_, err := LoadKey(missing)
	want := "cluster key " + missing + " does not exist: make one with `concordctl keygen --file " + missing + "` and copy it to every node"
	if err == nil || err.Error() != want || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing key: %v\nwant %s (and fs.ErrNotExist)", err, want)
	}
	if got, want := keygenHint(DefaultKeyPath, false), "make one with `concordctl keygen` and copy it to every node"; got != want {
		t.Errorf("hint for the default path: %q, want %q", got, want)
	}

	_, err = LoadKey(dir)
	if want := "cluster key " + dir + " is not a regular file (it is a directory)"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("directory: %v, want %q", err, want)
	}

	loose := filepath.Join(dir, "loose")
	if err := os.WriteFile(loose, bytes.Repeat([]byte{1}, 64), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadKey(loose)
	want = "cluster key " + loose + ` has mode 0644, which lets other users read or change it: run "chmod 600 ` + loose + `"`
	if err == nil || err.Error() != want {
		t.Errorf("mode 0644: %v\nwant %s", err, want)
	}

	// Root reads any file, so a refused open is made up here.
	err = keyOpenErr("/etc/concord/authkey", &fs.PathError{Op: "open", Path: "/etc/concord/authkey", Err: syscall.EACCES})
	want = "cluster key /etc/concord/authkey: permission denied (only root may read it)"
	if err.Error() != want || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("permission: %v\nwant %s (and fs.ErrPermission)", err, want)
	}
}
