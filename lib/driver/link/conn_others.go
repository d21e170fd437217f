//go:build !linux

package link

import (
	"fmt"
	"net"
	"runtime"
	"time"
)

var errUnsupported = fmt.Errorf("link: not implemented on %s", runtime.GOOS)

type conn struct{}

// Open opens a packet socket; it is implemented on Linux only.
func Open(ifname string, group net.HardwareAddr) (*Conn, error) {
	return nil, errUnsupported
}

func (c *Conn) writeTo([]byte, net.HardwareAddr) error         { return errUnsupported }
func (c *Conn) readFrom([]byte) (int, net.HardwareAddr, error) { return 0, nil, errUnsupported }
func (c *Conn) deferKinds(uint32, []byte) error                { return errUnsupported }
func (c *Conn) readDeferred([]Frame) (int, error)              { return 0, errUnsupported }
func (c *Conn) setReadDeadline(time.Time) error                { return errUnsupported }
func (c *Conn) close() error                                   { return errUnsupported }
func (c *Conn) stats() (Stats, error)                          { return Stats{}, errUnsupported }
