//go:build linux

package sdnotify

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

type conn struct {
	mu    sync.Mutex
	fd    int // -1 once closed
	sa    unix.RawSockaddrUnix
	salen uintptr
}

// open makes an unconnected datagram socket: each send names the address,
// so a notify socket that systemd re-creates (daemon-reexec) still gets
// the next one.
func (c *conn) open(socket string) error {
	if len(socket) >= len(c.sa.Path) {
		return errors.New("socket name too long")
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	c.sa.Family = unix.AF_UNIX
	for i := range len(socket) {
		c.sa.Path[i] = int8(socket[i])
	}
	c.salen = unsafe.Offsetof(c.sa.Path) + uintptr(len(socket))
	if socket[0] == '@' {
		c.sa.Path[0] = 0 // abstract: no trailing NUL counts
	} else {
		c.salen++ // the path's NUL
	}
	c.fd = fd
	return nil
}

func (c *conn) send(state string) error {
	if state == "" {
		return errors.New("empty state")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return os.ErrClosed
	}
	b := []byte(state)
	// A raw call: the socket is non-blocking, and an ordinary system call
	// would wake the runtime's monitor thread.
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, uintptr(unsafe.Pointer(&c.sa)), c.salen)
	if errno != 0 {
		return os.NewSyscallError("sendto", syscall.Errno(errno))
	}
	return nil
}

func (c *conn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	fd := c.fd
	c.fd = -1
	return unix.Close(fd)
}
