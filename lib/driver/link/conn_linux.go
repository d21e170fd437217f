//go:build linux

package link

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// conn uses a SOCK_DGRAM packet socket: the kernel writes and strips the
// Ethernet header, so sending needs no copy to prepend 14 bytes and the
// source MAC comes from sockaddr_ll instead of parsing. Raw mode would only
// add VLAN tags or foreign EtherTypes, which Concord does not use.
//
// packet.Conn sets the socket up (bind, multicast membership, statistics);
// frames go through rc with raw system calls. The socket is non-blocking,
// so a call never blocks, and a raw call keeps the Go runtime out of it: an
// ordinary syscall wakes the runtime's monitor thread and, when it lasts
// more than 20 µs (a send through a bridge can), hands the scheduler to
// another thread. At dozens of frames a second those wake-ups cost more
// CPU than the frames themselves.
type conn struct {
	pc      *packet.Conn
	rc      syscall.RawConn
	ifindex int32
	closed  atomic.Bool
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
	rc, err := pc.SyscallConn()
	if err != nil {
		pc.Close()
		return nil, err
	}
	return &Conn{
		conn:   conn{pc: pc, rc: rc, ifindex: int32(ifi.Index)},
		name:   ifi.Name,
		hwaddr: ifi.HardwareAddr,
	}, nil
}

func (c *Conn) writeTo(payload []byte, dst net.HardwareAddr) error {
	if len(dst) != 6 {
		return fmt.Errorf("link: %s: bad destination \"%s\"", c.name, dst)
	}
	if len(payload) == 0 {
		return fmt.Errorf("link: %s: empty payload", c.name)
	}
	sa := unix.RawSockaddrLinklayer{
		Family:   unix.AF_PACKET,
		Protocol: htons(EtherType),
		Ifindex:  c.ifindex,
		Halen:    6,
	}
	copy(sa.Addr[:], dst)
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		_, _, errno = unix.RawSyscall6(unix.SYS_SENDTO, fd,
			uintptr(unsafe.Pointer(&payload[0])), uintptr(len(payload)), unix.MSG_DONTWAIT,
			uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
		return errno != unix.EAGAIN
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("sendto", errno)
	}
	if err != nil {
		return fmt.Errorf("link: %s: %w", c.name, c.closedErr(err))
	}
	return nil
}

func (c *Conn) readFrom(buf []byte) (int, net.HardwareAddr, error) {
	// A socket bound to one EtherType never sees frames sent on its
	// interface: the kernel copies outgoing frames to ETH_P_ALL sockets only.
	if len(buf) == 0 {
		return 0, nil, fmt.Errorf("link: %s: empty buffer", c.name)
	}
	var (
		sa    unix.RawSockaddrLinklayer
		salen = uint32(unsafe.Sizeof(sa))
		n     uintptr
		errno syscall.Errno
	)
	err := c.rc.Read(func(fd uintptr) bool {
		salen = uint32(unsafe.Sizeof(sa))
		n, _, errno = unix.RawSyscall6(unix.SYS_RECVFROM, fd,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), unix.MSG_DONTWAIT,
			uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&salen)))
		return errno != unix.EAGAIN
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("recvfrom", errno)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("link: %s: %w", c.name, c.closedErr(err))
	}
	src := make(net.HardwareAddr, 6)
	if sa.Halen == 6 {
		copy(src, sa.Addr[:6])
	}
	return int(n), src, nil
}

// closedErr makes any failure after Close net.ErrClosed, as callers expect
// of a network connection; the raw connection reports it as a plain
// "use of closed file".
func (c *Conn) closedErr(err error) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	return err
}

// htons puts v in network byte order, as sockaddr_ll wants its protocol.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

func (c *Conn) setReadDeadline(t time.Time) error {
	if err := c.pc.SetReadDeadline(t); err != nil {
		return fmt.Errorf("link: %s: %w", c.name, err)
	}
	return nil
}

func (c *Conn) close() error {
	c.closed.Store(true)
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
