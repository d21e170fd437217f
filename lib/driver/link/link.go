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

// Defer keeps the frames whose payload byte at offset off is one of vals
// (1 to 16 of them) away from ReadFrom: they wait in the kernel, on a
// second socket that nothing watches, until ReadDeferred takes them. A
// frame that the caller only needs at its next periodic wake-up (a
// heartbeat) then wakes neither the caller nor, through the sender's send,
// anything else. Call it once, before the frames matter. The second
// socket's receive buffer, which holds what arrives in between, is 1 MiB
// where the capabilities allow (CAP_NET_ADMIN), else up to
// net.core.rmem_max.
func (c *Conn) Defer(off uint32, vals ...byte) error { return c.deferKinds(off, vals) }

// Frame is one frame read by ReadDeferred.
type Frame struct {
	Buf []byte           // read into; a longer frame is cut silently
	N   int              // bytes read
	Src net.HardwareAddr // sender (reuses its array when it can)
}

// ReadDeferred reads the deferred frames waiting, in order, up to
// len(frames), with one system call and without waiting; n is 0 when none
// is waiting. Fewer than len(frames) means none was left.
func (c *Conn) ReadDeferred(frames []Frame) (n int, err error) { return c.readDeferred(frames) }

// SetReadDeadline sets the deadline for pending and future ReadFrom calls.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.setReadDeadline(t) }

// Close closes the socket, which also leaves its multicast group.
func (c *Conn) Close() error { return c.close() }

// Stats returns the kernel's receive counters and resets them.
func (c *Conn) Stats() (Stats, error) { return c.stats() }
