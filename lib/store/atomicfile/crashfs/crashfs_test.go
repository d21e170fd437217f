package crashfs

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"testing"
)

// contents lists what path holds in each crash state ("-" for no file).
func contents(t *testing.T, f *FS, path string) []string {
	t.Helper()
	var out []string
	for _, img := range f.Crashes() {
		b, err := img.ReadFile(path)
		s := string(b)
		if errors.Is(err, fs.ErrNotExist) {
			s = "-"
		} else if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCrashes checks the model: what a crash may keep, step by step.
func TestCrashes(t *testing.T) {
	f := New()
	must(t, f.MkdirAll("/d", 0o755))
	if got := contents(t, f, "/d/a"); !slices.Equal(got, []string{"-"}) {
		t.Fatalf("empty: %q", got)
	}
	h, err := f.OpenFile("/d/a", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	must(t, err)
	_, err = h.Write([]byte("abcd"))
	must(t, err)
	// Neither the name nor the data is durable: any of these.
	if got, want := contents(t, f, "/d/a"), []string{"", "-", "ab", "abcd"}; !slices.Equal(got, want) {
		t.Fatalf("after create and write: %q, want %q", got, want)
	}
	must(t, h.Sync())
	if got, want := contents(t, f, "/d/a"), []string{"-", "abcd"}; !slices.Equal(got, want) {
		t.Fatalf("after fsync: %q, want %q (the name is not synced)", got, want)
	}
	must(t, f.SyncDir("/d"))
	if got, want := contents(t, f, "/d/a"), []string{"abcd"}; !slices.Equal(got, want) {
		t.Fatalf("after the folder's fsync: %q, want %q", got, want)
	}
	_, err = h.Write([]byte("ef"))
	must(t, err)
	must(t, h.Truncate(1))
	if got, want := contents(t, f, "/d/a"), []string{"a", "abcd", "abcde", "abcdef"}; !slices.Equal(got, want) {
		t.Fatalf("after an unsynced append and truncate: %q, want %q", got, want)
	}
	must(t, h.Sync())
	must(t, h.Close())

	// A rename not followed by the folder's fsync may be lost.
	g, err := f.CreateTemp("/d", ".a.tmp*")
	must(t, err)
	_, err = g.Write([]byte("new"))
	must(t, err)
	must(t, g.Sync())
	must(t, f.Rename(g.Name(), "/d/a"))
	if got, want := contents(t, f, "/d/a"), []string{"a", "new"}; !slices.Equal(got, want) {
		t.Fatalf("after rename: %q, want %q", got, want)
	}
	if got, want := contents(t, f, g.Name()), []string{"-", "new"}; !slices.Equal(got, want) {
		t.Fatalf("the temp name after rename: %q, want %q", got, want)
	}
	must(t, f.SyncDir("/d"))
	if got, want := contents(t, f, "/d/a"), []string{"new"}; !slices.Equal(got, want) {
		t.Fatalf("after rename and the folder's fsync: %q, want %q", got, want)
	}

	// Opening with O_TRUNC changes the file at once, durably only at fsync.
	h, err = f.OpenFile("/d/a", os.O_WRONLY|os.O_TRUNC, 0)
	must(t, err)
	_, err = h.Write([]byte("xyz"))
	must(t, err)
	if got, want := contents(t, f, "/d/a"), []string{"", "new", "x", "xyz"}; !slices.Equal(got, want) {
		t.Fatalf("rewritten in place: %q, want %q", got, want)
	}
	if b, _ := f.ReadFile("/d/a"); string(b) != "xyz" {
		t.Fatalf("a program reads %q", b)
	}
}

func TestErrors(t *testing.T) {
	f := New()
	if _, err := f.OpenFile("/x/a", os.O_WRONLY|os.O_CREATE, 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("create in a missing folder: %v", err)
	}
	if _, err := f.ReadFile("/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read a missing file: %v", err)
	}
	h, err := f.OpenFile("/a", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, err)
	must(t, h.Close())
	if _, err := f.OpenFile("/a", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("exclusive create of an existing file: %v", err)
	}
	if err := f.Link("/a", "/a"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("link onto an existing name: %v", err)
	}
	if _, err := h.Write(nil); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	if err := f.Remove("/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("remove a missing file: %v", err)
	}
	fi, err := f.Stat("/a")
	if err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 || fi.IsDir() {
		t.Errorf("stat: %v %v", fi, err)
	}
}
