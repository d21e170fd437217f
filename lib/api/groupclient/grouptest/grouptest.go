// Package grouptest fakes concord-noded's group socket for unit tests: a
// Server on a temporary SOCK_SEQPACKET socket whose connections a test
// scripts record by record (Conn), and Daemon, a small in-process group
// service for tests of programs built on groupclient. Neither is the
// daemon: ordering across nodes is proven on the nspawn cluster.
package grouptest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/groupwire"
)

// Timeout bounds every wait of the fake, so a broken test fails instead of
// hanging.
const Timeout = 10 * time.Second

// Server listens on a temporary socket.
type Server struct {
	Path string
	l    *net.UnixListener
}

// Listen opens a Server, closed when the test ends.
func Listen(t testing.TB) *Server {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewServer opens a Server; Close removes it.
func NewServer() (*Server, error) {
	dir, err := os.MkdirTemp("", "grouptest")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "groups.sock")
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Server{Path: path, l: l}, nil
}

// Close stops listening and removes the socket.
func (s *Server) Close() {
	s.l.Close()
	os.RemoveAll(filepath.Dir(s.Path))
}

// Accept waits for the next connection.
func (s *Server) Accept() (*Conn, error) {
	if err := s.l.SetDeadline(time.Now().Add(Timeout)); err != nil {
		return nil, err
	}
	c, err := s.l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return &Conn{c: c}, nil
}

// Conn is the daemon's side of one session.
type Conn struct {
	c    *net.UnixConn
	buf  []byte
	recs []groupwire.Record // decoded from the last packet, not yet returned
}

// Packet reads the next packet as it came.
func (c *Conn) Packet() ([]byte, error) {
	if err := c.c.SetReadDeadline(time.Now().Add(Timeout)); err != nil {
		return nil, err
	}
	return c.read()
}

// read returns the next packet, in a slice of its own.
func (c *Conn) read() ([]byte, error) {
	if c.buf == nil {
		c.buf = make([]byte, groupwire.MaxPacket)
	}
	n, err := c.c.Read(c.buf)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errors.New("grouptest: the client closed the session")
	}
	return append([]byte(nil), c.buf[:n]...), nil
}

// Recv returns the next record from the client.
func (c *Conn) Recv() (groupwire.Record, error) {
	if len(c.recs) == 0 {
		p, err := c.Packet()
		if err != nil {
			return groupwire.Record{}, err
		}
		if c.recs, err = groupwire.Records(p); err != nil {
			return groupwire.Record{}, err
		}
	}
	r := c.recs[0]
	c.recs = c.recs[1:]
	return r, nil
}

// Send sends records in one packet.
func (c *Conn) Send(rs ...groupwire.Record) error {
	var p []byte
	for i := range rs {
		var err error
		if p, err = groupwire.Append(p, &rs[i]); err != nil {
			return err
		}
	}
	return c.SendRaw(p)
}

// SendRaw sends p as one packet.
func (c *Conn) SendRaw(p []byte) error {
	if err := c.c.SetWriteDeadline(time.Now().Add(Timeout)); err != nil {
		return err
	}
	_, err := c.c.Write(p)
	return err
}

// Close closes the daemon's side.
func (c *Conn) Close() error { return c.c.Close() }

// Welcome reads the client's hello and welcomes it with w (Type and Tag
// are set here). It returns the hello.
func (c *Conn) Welcome(w groupwire.Record) (groupwire.Record, error) {
	h, err := c.Recv()
	if err != nil {
		return h, err
	}
	if h.Type != groupwire.THello {
		return h, fmt.Errorf("grouptest: first record is %s, want hello", h.Type)
	}
	w.Type, w.Tag = groupwire.TWelcome, h.Tag
	if w.Version == 0 {
		w.Version = groupwire.Version
	}
	return h, c.Send(w)
}
