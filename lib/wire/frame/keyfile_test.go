package frame

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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

	if err := GenerateKey(path, false); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("GenerateKey over an existing key: %v, want refusal", err)
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
		{"too short", 31, 0o600, 0, "31 bytes"},
		{"too long", 4097, 0o600, 0, "4097 bytes"},
		{"group readable", 64, 0o640, 0, "mode 0640"},
		{"world readable", 64, 0o604, 0, "mode 0604"},
		{"not root", 64, 0o600, 65534, "uid 65534"},
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
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadKey error %v, want one naming %s and %q", err, path, tt.wantErr)
			}
		})
	}
	if _, err := LoadKey(t.TempDir()); err == nil {
		t.Fatal("LoadKey accepted a directory")
	}
	if _, err := LoadKey(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("LoadKey accepted a missing file")
	}
}
