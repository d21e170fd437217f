package sbd

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openStore opens a block device with O_DIRECT|O_SYNC and returns its
// logical sector size. Regular files (tests) are opened with O_SYNC only,
// since tmpfs refuses O_DIRECT, and get 512-byte sectors.
func openStore(path string) (Store, int, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, fmt.Errorf("sbd: %w", err)
	}
	if fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_SYNC, 0)
		if err != nil {
			return nil, 0, fmt.Errorf("sbd: %w", err)
		}
		return f, minSector, nil
	}
	if fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		return nil, 0, fmt.Errorf("sbd: %s: not a block device", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT|os.O_SYNC, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("sbd: %w", err)
	}
	ss, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("sbd: %s: BLKSSZGET: %w", path, err)
	}
	if ss < minSector || ss > align {
		f.Close()
		return nil, 0, fmt.Errorf("sbd: %s: %w: logical sector size %d", path, errors.ErrUnsupported, ss)
	}
	return f, ss, nil
}
