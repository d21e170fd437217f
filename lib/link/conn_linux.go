//go:build linux

package link

import (
	"fmt"
	"net"
	"time"

	"github.com/mdlayher/packet"
)

// conn uses a SOCK_DGRAM packet socket: the kernel writes and strips the
// Ethernet header, so sending needs no copy to prepend 14 bytes and the
// source MAC comes from sockaddr_ll instead of parsing. Raw mode would only
// add VLAN tags or foreign EtherTypes, which Concord does not use.
type conn struct {
	pc *packet.Conn
}

// Open opens a packet socket for EtherType on interface ifname and, if
// group is not nil, joins that multicast group so NICs with hardware
// filters deliver it.
func Open(ifname string, group net.HardwareAddr) (*Conn, error) {
	c, err := open(ifname, group)
	if err != nil {
		return nil, fmt.Errorf("link: %s: %w", ifname, err)
	}
	return c, nil
}

func open(ifname string, group net.HardwareAddr) (*Conn, error) {
	if group != nil && (len(group) != 6 || group[0]&1 == 0) {
		return nil, fmt.Errorf("bad multicast group \"%s\"", group)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("not an Ethernet interface (hardware address \"%s\")", ifi.HardwareAddr)
	}
	pc, err := packet.Listen(ifi, packet.Datagram, EtherType, nil)
	if err != nil {
		return nil, err
	}
	// JoinGroup is PACKET_ADD_MEMBERSHIP with PACKET_MR_MULTICAST; the
	// membership lives as long as the socket.
	if group != nil {
		if err := pc.JoinGroup(group); err != nil {
			pc.Close()
			return nil, fmt.Errorf("joining %s: %w", group, err)
		}
	}
	return &Conn{
		conn:   conn{pc: pc},
		name:   ifi.Name,
		hwaddr: ifi.HardwareAddr,
	}, nil
}

func (c *Conn) writeTo(payload []byte, dst net.HardwareAddr) error {
	if _, err := c.pc.WriteTo(payload, &packet.Addr{HardwareAddr: dst}); err != nil {
		return fmt.Errorf("link: %s: %w", c.name, err)
	}
	return nil
}

func (c *Conn) readFrom(buf []byte) (int, net.HardwareAddr, error) {
	// A socket bound to one EtherType never sees frames sent on its
	// interface: the kernel copies outgoing frames to ETH_P_ALL sockets only.
	n, addr, err := c.pc.ReadFrom(buf)
	if err != nil {
		return n, nil, fmt.Errorf("link: %s: %w", c.name, err)
	}
	return n, addr.(*packet.Addr).HardwareAddr, nil
}

func (c *Conn) setReadDeadline(t time.Time) error {
	if err := c.pc.SetReadDeadline(t); err != nil {
		return fmt.Errorf("link: %s: %w", c.name, err)
	}
	return nil
}

func (c *Conn) close() error {
	if err := c.pc.Close(); err != nil {
		return fmt.Errorf("link: %s: %w", c.name, err)
	}
	return nil
}

func (c *Conn) stats() (Stats, error) {
	st, err := c.pc.Stats()
	if err != nil {
		return Stats{}, fmt.Errorf("link: %s: %w", c.name, err)
	}
	return Stats{Packets: st.Packets, Drops: st.Drops}, nil
}
