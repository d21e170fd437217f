//go:build !linux

package scsipr

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// SGIO is the SG_IO transport; it exists only on Linux.
type SGIO struct{ Timeout time.Duration }

// OpenSGIO fails outside Linux.
func OpenSGIO(dev string) (*SGIO, error) {
	return nil, fmt.Errorf("device %s: SG_IO not implemented on %s", dev, runtime.GOOS)
}

// Close does nothing.
func (s *SGIO) Close() error { return nil }

// Do fails outside Linux.
func (s *SGIO) Do(context.Context, []byte, []byte, int) ([]byte, byte, []byte, error) {
	return nil, 0, nil, fmt.Errorf("SG_IO not implemented on %s", runtime.GOOS)
}

// MultipathPaths returns dev.
func MultipathPaths(dev string) ([]string, error) { return []string{dev}, nil }
