//go:build linux

package link

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
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
	group   net.HardwareAddr
	closed  atomic.Bool

	// The deferred socket (see Defer): a plain fd, never registered with
	// the runtime's poller, so nothing waits on it.
	dmu  sync.Mutex
	dfd  int
	dset bool // dfd is open
	// recvmmsg's arrays, kept between calls
	dmsgs []mmsghdr
	diov  []unix.Iovec
	dsa   []unix.RawSockaddrLinklayer
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
	// A large message comes as a burst of fragments from each sender: with
	// the default queue (about 150 frames) a burst from three senders
	// overflows it, and one lost fragment costs the whole message again.
	// (SO_RCVBUFFORCE needs CAP_NET_ADMIN; SO_RCVBUF stops at rmem_max.)
	rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, linkRcvbuf) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, linkRcvbuf)
		}
	})
	return &Conn{
		conn:   conn{pc: pc, rc: rc, ifindex: int32(ifi.Index), group: group},
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

func (c *Conn) deferKinds(off uint32, vals []byte) error {
	if len(vals) == 0 || len(vals) > maxDeferVals {
		return fmt.Errorf("link: %s: %d values to defer, want 1..%d", c.name, len(vals), maxDeferVals)
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.closed.Load() {
		return fmt.Errorf("link: %s: %w", c.name, net.ErrClosed)
	}
	if c.dset {
		return fmt.Errorf("link: %s: frames are already deferred", c.name)
	}
	// The deferred socket gets its filter before bind, so it never holds
	// a frame that ReadFrom should have had; the main socket gets its own
	// after, so between the two a deferred frame may arrive on both, which
	// a receiver that drops replays does not notice.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("link: %s: deferred socket: %w", c.name, err)
	}
	fail := func(what string, err error) error {
		unix.Close(fd)
		return fmt.Errorf("link: %s: deferred socket: %s: %w", c.name, what, err)
	}
	// Frames wait here for the caller's next wake-up, possibly in bursts:
	// a larger queue than the default where the capabilities allow
	// (SO_RCVBUFFORCE needs CAP_NET_ADMIN; SO_RCVBUF stops at rmem_max).
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, deferredRcvbuf) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, deferredRcvbuf)
	}
	if err := attachFilter(uintptr(fd), deferredFilter(off, vals)); err != nil {
		return fail("filter", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(EtherType), Ifindex: int(c.ifindex)}); err != nil {
		return fail("bind", err)
	}
	if c.group != nil {
		mreq := unix.PacketMreq{Ifindex: c.ifindex, Type: unix.PACKET_MR_MULTICAST, Alen: 6}
		copy(mreq.Address[:], c.group)
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fail("joining "+c.group.String(), err)
		}
	}
	var ferr error
	if err := c.rc.Control(func(mfd uintptr) { ferr = attachFilter(mfd, eagerFilter(off, vals)) }); err != nil {
		ferr = err
	}
	if ferr != nil {
		return fail("filter on the main socket", ferr)
	}
	c.dfd, c.dset = fd, true
	return nil
}

// deferredRcvbuf is the receive buffer asked for the deferred socket.
const deferredRcvbuf = 1 << 20

// linkRcvbuf is the receive queue of a link's socket, in bytes.
const linkRcvbuf = 4 << 20

// maxDeferVals bounds Defer's values: a BPF jump reaches 255 instructions.
const maxDeferVals = 16

// attachFilter attaches a classic BPF program to socket fd. For a
// SOCK_DGRAM packet socket it sees the frame's payload from offset 0.
func attachFilter(fd uintptr, prog []unix.SockFilter) error {
	return unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
}

func bpfRet(k uint32) unix.SockFilter { return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k} }

const bpfAccept = 0xffffffff // the whole frame

// deferredFilter accepts exactly the frames whose byte at off is one of
// vals (a load past the end rejects the frame).
func deferredFilter(off uint32, vals []byte) []unix.SockFilter {
	k := len(vals)
	prog := []unix.SockFilter{{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: off}}
	for i, v := range vals { // instruction 1+i; accept is at k+2
		prog = append(prog, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: uint8(k - i), K: uint32(v)})
	}
	return append(prog, bpfRet(0), bpfRet(bpfAccept))
}

// eagerFilter accepts every other frame, including those too short to
// have a byte at off: the receiver counts them as truncated.
func eagerFilter(off uint32, vals []byte) []unix.SockFilter {
	k := len(vals)
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_LEN},
		{Code: unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, Jf: uint8(k + 1), K: off}, // too short: accept, at k+3
		{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: off},
	}
	for i, v := range vals { // instruction 3+i; drop is at k+4
		prog = append(prog, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: uint8(k - i), K: uint32(v)})
	}
	return append(prog, bpfRet(bpfAccept), bpfRet(0))
}

// mmsghdr is struct mmsghdr for recvmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

func (c *Conn) readDeferred(frames []Frame) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if !c.dset {
		if c.closed.Load() {
			return 0, fmt.Errorf("link: %s: %w", c.name, net.ErrClosed)
		}
		return 0, fmt.Errorf("link: %s: no frames are deferred (Defer was not called)", c.name)
	}
	if len(c.dmsgs) < len(frames) {
		c.dmsgs = make([]mmsghdr, len(frames))
		c.diov = make([]unix.Iovec, len(frames))
		c.dsa = make([]unix.RawSockaddrLinklayer, len(frames))
	}
	for i := range frames {
		if len(frames[i].Buf) == 0 {
			return 0, fmt.Errorf("link: %s: frame %d has an empty buffer", c.name, i)
		}
		c.diov[i] = unix.Iovec{Base: &frames[i].Buf[0]}
		c.diov[i].SetLen(len(frames[i].Buf))
		h := &c.dmsgs[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&c.dsa[i])), Namelen: uint32(unsafe.Sizeof(c.dsa[i])), Iov: &c.diov[i]}
		h.SetIovlen(1)
	}
	// One raw call for every frame waiting (up to len(frames)): the socket
	// is non-blocking and MSG_DONTWAIT, so it returns at once, and the
	// runtime's monitor thread stays asleep.
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(c.dfd),
		uintptr(unsafe.Pointer(&c.dmsgs[0])), uintptr(len(frames)), unix.MSG_DONTWAIT, 0, 0)
	switch errno {
	case 0:
	case unix.EAGAIN:
		return 0, nil
	default:
		return 0, fmt.Errorf("link: %s: %w", c.name, os.NewSyscallError("recvmmsg", errno))
	}
	for i := range int(n) {
		f := &frames[i]
		f.N = int(c.dmsgs[i].len)
		f.Src = f.Src[:0]
		if sa := &c.dsa[i]; sa.Halen == 6 {
			f.Src = append(f.Src, sa.Addr[:6]...)
		}
	}
	return int(n), nil
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
	c.dmu.Lock()
	if c.dset {
		unix.Close(c.dfd)
		c.dset = false
	}
	c.dmu.Unlock()
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
	s := Stats{Packets: st.Packets, Drops: st.Drops}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.dset {
		ds, err := unix.GetsockoptTpacketStats(c.dfd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err != nil {
			return Stats{}, fmt.Errorf("link: %s: deferred socket: %w", c.name, err)
		}
		s.Packets += ds.Packets
		s.Drops += ds.Drops
	}
	return s, nil
}
