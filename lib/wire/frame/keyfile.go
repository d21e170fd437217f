package frame

import (
	"crypto/rand"
	"fmt"
	"io"
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
		return fmt.Errorf("frame: key %s: %w", path, err)
	}
	write := atomicfile.Create
	if overwrite {
		write = atomicfile.Write
	}
	if err := write(path, key, 0o600); err != nil {
		return fmt.Errorf("frame: key: %w", err)
	}
	return nil
}

// LoadKey reads a cluster key written by GenerateKey or by hand. The file
// must be a regular file owned by root, not readable or writable by group
// or others, and MinKeyLen..MaxKeyLen bytes long.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("frame: key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("frame: key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("frame: key %s: not a regular file (mode %v)", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("frame: key %s: mode %#o, want 0600 or stricter", path, perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != 0 {
		uid := -1
		if ok {
			uid = int(st.Uid)
		}
		return nil, fmt.Errorf("frame: key %s: owned by uid %d, want root", path, uid)
	}
	key, err := io.ReadAll(io.LimitReader(f, MaxKeyLen+1))
	if err != nil {
		return nil, fmt.Errorf("frame: key: %w", err)
	}
	if len(key) < MinKeyLen || len(key) > MaxKeyLen {
		return nil, fmt.Errorf("frame: key %s: %d bytes, want %d..%d", path, len(key), MinKeyLen, MaxKeyLen)
	}
	return key, nil
}
