//go:build !linux

package sbd

import (
	"fmt"
	"os"
)

// openStore opens path without O_DIRECT, assuming 512-byte sectors.
func openStore(path string) (Store, int, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("sbd: %w", err)
	}
	return f, minSector, nil
}
