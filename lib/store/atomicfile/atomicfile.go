package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data and mode perm.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteFS(OS, path, data, perm)
}

// WriteFS is Write on fsys.
func WriteFS(fsys FS, path string, data []byte, perm os.FileMode) error {
	return write(fsys, path, data, perm, fsys.Rename)
}

// Create is Write for a path that must not exist yet: if it does, Create
// leaves it alone and returns an error wrapping fs.ErrExist. link(2) fails
// on an existing name, so of two racing Creates only one wins.
func Create(path string, data []byte, perm os.FileMode) error {
	return CreateFS(OS, path, data, perm)
}

// CreateFS is Create on fsys.
func CreateFS(fsys FS, path string, data []byte, perm os.FileMode) error {
	return write(fsys, path, data, perm, func(tmp, path string) error {
		err := fsys.Link(tmp, path)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("not overwriting it: %w", fs.ErrExist)
		}
		return err
	})
}

// write puts data in a temp file beside path and then moves it into place
// with place(tmp, path). Each step matters after a crash: without the
// file's fsync the new name can point at an empty file, and without the
// folder's the old name can come back.
func write(fsys FS, path string, data []byte, perm os.FileMode, place func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	f, err := fsys.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tmp := f.Name()
	defer fsys.Remove(tmp) // after a rename there is nothing left to remove
	// Chmod, not the umask, decides the mode.
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = place(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("%s: fsync directory: %w", path, err)
	}
	return nil
}
