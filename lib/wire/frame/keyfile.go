package frame

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/concord-ha/concord/lib/store/atomicfile"
)

// GeneratedKeyLen is the length of keys written by GenerateKey.
const GeneratedKeyLen = 64

// GenerateKey writes a new random cluster key to path with mode 0600. The
// file appears complete or not at all. An existing file is replaced only
// if overwrite is set.
func GenerateKey(path string, overwrite bool) error {
	key := make([]byte, GeneratedKeyLen)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("cluster key %s: %w", path, err)
	}
	write := atomicfile.Create
	if overwrite {
		write = atomicfile.Write
	}
	err := write(path, key, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cluster key %s already exists; replacing it needs --force, and then the new key on every node: %w", path, err)
	}
	if err != nil {
		return fmt.Errorf("cluster key: %w", err)
	}
	return nil
}

// LoadKey reads a cluster key written by GenerateKey or by hand. The file
// must be a regular file owned by root, not readable or writable by group
// or others, and MinKeyLen..MaxKeyLen bytes long. Errors name the file and
// say what to do: an admin meets them first when setting up a node.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, keyOpenErr(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cluster key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		what := "mode " + fi.Mode().String()
		if fi.IsDir() {
			what = "a directory"
		}
		return nil, fmt.Errorf("cluster key %s is not a regular file (it is %s): %s", path, what, keygenHint(path, false))
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("cluster key %s has mode %#o, which lets other users read or change it: run \"chmod 600 %s\"", path, perm, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != 0 {
		uid := -1
		if ok {
			uid = int(st.Uid)
		}
		return nil, fmt.Errorf("cluster key %s is owned by uid %d, not root: run \"chown root:root %s\"", path, uid, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, MaxKeyLen+1))
	if err != nil {
		return nil, fmt.Errorf("cluster key %s: %w", path, err)
	}
	if len(key) < MinKeyLen || len(key) > MaxKeyLen {
		size := fmt.Sprintf("%d bytes", len(key))
		if len(key) > MaxKeyLen {
			size = fmt.Sprintf("more than %d bytes", MaxKeyLen)
		}
		return nil, fmt.Errorf("cluster key %s has %s, want %d..%d: %s", path, size, MinKeyLen, MaxKeyLen, keygenHint(path, true))
	}
	return key, nil
}

// keyOpenErr explains why the key file could not be opened.
func keyOpenErr(path string, err error) error {
	reason := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		reason = pe.Err // the path is said already
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &keyError{fmt.Sprintf("cluster key %s does not exist: %s", path, keygenHint(path, false)), err}
	case errors.Is(err, fs.ErrPermission):
		return &keyError{fmt.Sprintf("cluster key %s: %v (only root may read it)", path, reason), err}
	}
	return &keyError{fmt.Sprintf("cluster key %s: %v", path, reason), err}
}

// keyError is a message for the admin that still matches errors.Is
// (fs.ErrNotExist, fs.ErrPermission) as the os error did.
type keyError struct {
	msg string
	err error
}

func (e *keyError) Error() string { return e.msg }
func (e *keyError) Unwrap() error { return e.err }

// keygenHint says how to make a key, as concordctl(8) spells it.
func keygenHint(path string, replace bool) string {
	cmd := "concordctl keygen"
	if path != DefaultKeyPath {
		cmd += " --file " + path
	}
	if replace {
		return "make a new one with `" + cmd + " --force` and copy it to every node"
	}
	return "make one with `" + cmd + "` and copy it to every node"
}

// DefaultKeyPath is where every node keeps the cluster key: what
// concord-noded reads and concordctl keygen writes unless told otherwise.
const DefaultKeyPath = "/etc/concord/authkey"
