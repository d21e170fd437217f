//go:build !linux

package nic

import (
	"context"
	"fmt"
	"runtime"
)

var errUnsupported = fmt.Errorf("nic: not implemented on %s", runtime.GOOS)

type subscription struct{}

// Up sets the configured NICs up; it is implemented on Linux only.
func (m *Manager) Up() ([]Status, error) { return nil, errUnsupported }

// NICs lists this node's interfaces; it is implemented on Linux only.
func (m *Manager) NICs() ([]NIC, error) { return nil, errUnsupported }

// Watch follows the configured NICs; it is implemented on Linux only.
func (m *Manager) Watch(ctx context.Context) (<-chan Event, error) { return nil, errUnsupported }
