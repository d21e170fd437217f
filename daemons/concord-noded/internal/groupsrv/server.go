// Package groupsrv serves process-group sessions on a Unix SOCK_SEQPACKET
// socket (protocol: lib/api/groupwire). It owns the sockets and their
// goroutines only: each session has a reader, which decodes what the
// client sends and hands it to the daemon's loop as Input, and a writer,
// which sends what the loop queued with Session.Send and reports how many
// events the client took. What the requests mean is the loop's business.
package groupsrv

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/concord-ha/concord/lib/api/groupwire"
)

// InputKind says what an Input carries.
type InputKind uint8

// Input kinds.
const (
	Opened   InputKind = iota + 1 // a client said hello: Name, and the session's credentials
	Requests                      // Records from the client, in order
	Consumed                      // the client took Count events
	Closed                        // the session ended (Died: the process is gone)
)

// Input is what a session tells the loop.
type Input struct {
	Kind    InputKind
	S       *Session
	Name    string
	Records []groupwire.Record
	Count   int
	Died    bool
}

// Server accepts sessions.
type Server struct {
	ln   *net.UnixListener
	path string
	in   chan Input
	log  *slog.Logger

	mu       sync.Mutex
	sessions map[*Session]bool
	closed   bool
	wg       sync.WaitGroup
	nextID   atomic.Uint64
}

// Listen opens the socket at path (a stale one is replaced), mode 0666:
// who may connect is decided per session from its peer credentials.
func Listen(path string, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("group socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("group socket: remove stale %s: %w", path, err)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("group socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("group socket: %w", err)
	}
	s := &Server{ln: ln, path: path, in: make(chan Input, 256), log: log, sessions: map[*Session]bool{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Inputs is read by the loop.
func (s *Server) Inputs() <-chan Input { return s.in }

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if !closed {
				s.log.Error("group socket: accept failed; no new sessions", "err", err)
			}
			return
		}
		ss, err := s.open(c)
		if err != nil {
			s.log.Warn("group socket: refused a connection", "err", err)
			c.Close()
			continue
		}
		s.wg.Add(2)
		go ss.read()
		go ss.write()
	}
}

// Close stops accepting, ends every session and waits for their
// goroutines. The loop must not read Inputs after it.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	ss := make([]*Session, 0, len(s.sessions))
	for x := range s.sessions {
		ss = append(ss, x)
	}
	s.mu.Unlock()
	s.ln.Close()
	for _, x := range ss {
		x.Close()
	}
	// Readers may be blocked handing Input to a loop that has stopped.
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return
		case <-s.in:
		}
	}
}

func (s *Server) open(c *net.UnixConn) (*Session, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, fmt.Errorf("peer credentials: %w", cerr)
	}
	ss := &Session{srv: s, conn: c, ID: s.nextID.Add(1), PID: uint32(cred.Pid), UID: cred.Uid, GID: cred.Gid}
	ss.cond = sync.NewCond(&ss.mu)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("server closed")
	}
	s.sessions[ss] = true
	return ss, nil
}

func (s *Server) forget(ss *Session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
}
