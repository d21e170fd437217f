package link

import (
	"net"
	"time"
)

// EtherType is IEEE 802 Local Experimental EtherType 1, which Concord
// frames are sent with.
const EtherType = 0x88B5

// MulticastGroup returns the Ethernet multicast group of a cluster:
// 03:43:43 ("CC" behind the multicast and locally administered bits)
// followed by the low 24 bits of the cluster id. Clusters sharing a group
// only cost each other receive work; frames carry the full cluster id.
func MulticastGroup(cluster uint32) net.HardwareAddr {
	return net.HardwareAddr{0x03, 'C', 'C', byte(cluster >> 16), byte(cluster >> 8), byte(cluster)}
}

// Stats are the kernel's counters for a Conn since the previous call.
type Stats struct {
	Packets uint32 // frames received by the socket
	Drops   uint32 // frames dropped because the receive queue was full
}

// Conn is a packet socket on one network interface that sends and
// receives Ethernet payloads of type EtherType.
type Conn struct {
	conn
	name   string
	hwaddr net.HardwareAddr
}

// Name returns the interface name the Conn was opened on.
func (c *Conn) Name() string { return c.name }

// HardwareAddr returns the MAC address of the Conn's interface, the
// source address of the frames it sends.
func (c *Conn) HardwareAddr() net.HardwareAddr { return c.hwaddr }

// WriteTo sends payload in one Ethernet frame to dst, a unicast MAC or a
// multicast group. The kernel adds the Ethernet header.
func (c *Conn) WriteTo(payload []byte, dst net.HardwareAddr) error {
	return c.writeTo(payload, dst)
}

// ReadFrom reads the payload of the next frame into buf and returns its
// length and source MAC. buf should hold the interface MTU (1500 bytes);
// longer frames are cut silently. Payloads shorter than 46 bytes may come
// with the sender's Ethernet padding appended.
func (c *Conn) ReadFrom(buf []byte) (n int, src net.HardwareAddr, err error) {
	return c.readFrom(buf)
}

// Defer keeps the frames whose payload byte at offset off is val away from
// ReadFrom: they wait in the kernel, on a second socket that nothing
// watches, until ReadDeferred takes them. A frame that the caller only
// needs at its next periodic wake-up (a heartbeat) then wakes neither the
// caller nor, through the sender's send, anything else. Call it once,
// before the frames matter; the kernel's receive buffer (net.core.rmem_default)
// holds what arrives in between.
func (c *Conn) Defer(off uint32, val byte) error { return c.deferKind(off, val) }

// ReadDeferred reads the next deferred frame into buf, as ReadFrom does,
// without waiting: ok is false when none is waiting.
func (c *Conn) ReadDeferred(buf []byte) (n int, src net.HardwareAddr, ok bool, err error) {
	return c.readDeferred(buf)
}

// SetReadDeadline sets the deadline for pending and future ReadFrom calls.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.setReadDeadline(t) }

// Close closes the socket, which also leaves its multicast group.
func (c *Conn) Close() error { return c.close() }

// Stats returns the kernel's receive counters and resets them.
func (c *Conn) Stats() (Stats, error) { return c.stats() }
