package groupclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/concord-ha/concord/lib/api/groupwire"
)

var (
	errCanceled = errors.New("canceled") // the caller's ctx ended the read
	errNoPacket = errors.New("no packet waiting")
)

// cancelDeadline makes ctx's end a deadline in the past on the socket, so
// a blocked read or write returns at once; a SEQPACKET read or write that
// returns that way has moved no packet. stop undoes it.
func cancelDeadline(ctx context.Context, set func(time.Time) error) (stop func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	fired := make(chan struct{})
	after := context.AfterFunc(ctx, func() {
		_ = set(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !after() {
			<-fired
			_ = set(time.Time{})
		}
	}
}

// readPacket reads one packet into a buffer of its own, or, with nowait,
// returns errNoPacket if none is waiting. Only one goroutine reads at a
// time (await and poll see to it), as s.rbuf is shared.
func (s *Session) readPacket(ctx context.Context, nowait bool) ([]byte, error) {
	stop := cancelDeadline(ctx, s.conn.SetReadDeadline)
	var n, flags int
	var rerr error
	err := s.raw.Read(func(fd uintptr) bool {
		for {
			n, _, flags, _, rerr = unix.Recvmsg(int(fd), s.rbuf, nil, unix.MSG_DONTWAIT)
			if rerr != unix.EINTR {
				return nowait || rerr != unix.EAGAIN
			}
		}
	})
	stop()
	switch {
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil:
		return nil, errCanceled
	case err != nil:
		return nil, s.ioError("read", err)
	case rerr == unix.EAGAIN:
		return nil, errNoPacket
	case rerr != nil:
		return nil, s.ioError("read", rerr)
	case n == 0:
		return nil, ErrDisconnected
	case flags&unix.MSG_TRUNC != 0:
		return nil, protocolError("a packet of more than %d bytes from %s", groupwire.MaxPacket, s.path)
	}
	return append([]byte(nil), s.rbuf[:n]...), nil
}

// ioError words a failed read or write: the daemon gone, or this session
// closed.
func (s *Session) ioError(op string, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE) {
		return ErrDisconnected
	}
	return fmt.Errorf("groupclient: %s %s: %w", op, s.path, err)
}

// writePacket sends one packet, whole or not at all.
func (s *Session) writePacket(ctx context.Context, p []byte) error {
	select {
	case s.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.wsem }()
	stop := cancelDeadline(ctx, s.conn.SetWriteDeadline)
	_, err := s.conn.Write(p)
	stop()
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
		return ctx.Err()
	}
	err = s.ioError("write", err)
	s.mu.Lock()
	s.fail(err)
	err = s.err
	s.mu.Unlock()
	return err
}
