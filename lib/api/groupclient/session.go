package groupclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/concord-ha/concord/lib/api/clusterctx"
	"github.com/concord-ha/concord/lib/api/groupwire"
)

// EnvSocket names the environment variable that, when set, is the path of
// the socket, whatever the context.
const EnvSocket = "CONCORD_GROUP_SOCKET"

// RunDir is where concord-noded puts its sockets.
const RunDir = "/run/concord"

// Options says which daemon to reach and how to introduce this client.
type Options struct {
	// Context is the cluster context: "" for the local node's only
	// cluster, or NAME for the concord-noded@NAME instance.
	Context string
	// Socket, when set, is the socket's path, over Context and the
	// environment.
	Socket string
	// Name is this client's name in the daemon's logs (at most 64 bytes);
	// "" takes the program's name.
	Name string
}

// SocketPath is the socket of a cluster context: $CONCORD_GROUP_SOCKET when
// set, otherwise the context's (lib/api/clusterctx): /run/concord/groups.sock
// for "" and /run/concord/NAME/groups.sock for NAME.
func SocketPath(clusterContext string) (string, error) {
	if p := os.Getenv(EnvSocket); p != "" {
		return p, nil
	}
	c, err := clusterctx.Parse(clusterContext)
	if err != nil {
		return "", fmt.Errorf("groupclient: %w", err)
	}
	return c.GroupSocket(), nil
}

// clientName makes the program's name fit hello's client name.
func clientName() string {
	n := filepath.Base(os.Args[0])
	n = strings.ToValidUTF8(strings.ReplaceAll(n, "\x00", ""), "")
	for len(n) > groupwire.MaxClientName {
		_, size := utf8.DecodeLastRuneInString(n)
		n = n[:len(n)-size]
	}
	return n
}

// Session is one session with concord-noded.
type Session struct {
	conn *net.UnixConn
	raw  syscall.RawConn
	path string

	self       groupwire.Member
	cluster    string
	window     uint32
	maxPayload int
	maxQueue   int

	wsem chan struct{} // held while writing a packet
	rbuf []byte        // the reader's, one at a time (see await)

	mu       sync.Mutex
	err      error // the session is over: every call returns this
	tag      uint32
	inflight uint32 // sends not yet completed by a credit
	pending  map[uint32]*call
	queue    []Event // events read but not yet taken by Next, from head on
	head     int
	reading  bool          // a goroutine is reading the socket
	changed  chan struct{} // closed when anything above changes, if anyone waits
}

// call is a request waiting for its answer.
type call struct {
	op        groupwire.Type
	done      bool
	abandoned bool // its caller gave up; drop the answer
	rec       groupwire.Record
}

// Dial connects to the daemon of opts' context and greets it. A refused
// version is an *Error with code BadVersion.
func Dial(ctx context.Context, opts Options) (*Session, error) {
	path := opts.Socket
	if path == "" {
		var err error
		if path, err = SocketPath(opts.Context); err != nil {
			return nil, err
		}
	}
	name := opts.Name
	if name == "" {
		name = clientName()
	}
	hello, err := groupwire.Append(nil, &groupwire.Record{Type: groupwire.THello, Tag: 1, Version: groupwire.Version, Name: name})
	if err != nil {
		return nil, fmt.Errorf("groupclient: client name %q: %w", name, err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", path)
	if err != nil {
		return nil, dialError(path, err)
	}
	conn := c.(*net.UnixConn)
	// A packet may be MaxPacket bytes, above the default send buffer of
	// a Unix socket, which bounds one SEQPACKET message.
	_ = conn.SetWriteBuffer(groupwire.MaxPacket)
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	s := &Session{conn: conn, raw: raw, path: path, wsem: make(chan struct{}, 1),
		rbuf: make([]byte, groupwire.MaxPacket), tag: 1, pending: map[uint32]*call{}}
	if err := s.handshake(ctx, hello); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func dialError(path string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("groupclient: no socket %s: is concord-noded running, and is this the right cluster context? (%w)", path, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("groupclient: %s: nobody listens: is concord-noded running? (%w)", path, err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("groupclient: %s: permission denied: process groups need root, or a uid the configuration lets in (%w)", path, err)
	}
	return fmt.Errorf("groupclient: connect %s: %w", path, err)
}

func (s *Session) handshake(ctx context.Context, hello []byte) error {
	if err := s.writePacket(ctx, hello); err != nil {
		return err
	}
	p, err := s.readPacket(ctx, false)
	if errors.Is(err, errCanceled) {
		return ctx.Err()
	}
	if err != nil {
		return err
	}
	rs, err := groupwire.Records(p)
	if err != nil {
		return fmt.Errorf("%w: hello's answer from %s: %w", ErrProtocol, s.path, err)
	}
	w := rs[0]
	switch {
	case w.Type == groupwire.TReply && w.Tag == 1 && w.Code != groupwire.OK:
		return &Error{Op: "hello", Code: w.Code, Text: w.Text}
	case w.Type != groupwire.TWelcome || w.Tag != 1:
		return protocolError("%s answered hello with a %s record (tag %d), want welcome", s.path, w.Type, w.Tag)
	case w.Version != groupwire.Version:
		return protocolError("%s welcomed version %d; this client speaks %d", s.path, w.Version, groupwire.Version)
	case w.Window == 0:
		return protocolError("%s welcomed with a window of 0: no send could ever go", s.path)
	case w.MaxPayload == 0 || w.MaxPayload > groupwire.MaxPayload:
		return protocolError("%s welcomed with a max payload of %d, want 1..%d", s.path, w.MaxPayload, groupwire.MaxPayload)
	}
	s.self, s.cluster, s.window, s.maxPayload = w.Self, w.Name, w.Window, int(w.MaxPayload)
	s.maxQueue = max(int(w.MaxQueue), 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 1; i < len(rs); i++ {
		if err := s.dispatch(&rs[i]); err != nil {
			s.fail(err)
			return err
		}
	}
	return nil
}

// Self is this session as a group member.
func (s *Session) Self() groupwire.Member { return s.self }

// Cluster is the name of the cluster the daemon belongs to.
func (s *Session) Cluster() string { return s.cluster }

// Window is how many sends may be in flight (not yet completed) at once.
func (s *Session) Window() int { return int(s.window) }

// MaxPayload is the largest payload the daemon takes.
func (s *Session) MaxPayload() int { return s.maxPayload }

// InFlight is how many sends have not completed yet.
func (s *Session) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.inflight)
}

// Close ends the session; the daemon removes this client from its groups
// (a view change of kind closed). Calls under way return ErrClosed.
func (s *Session) Close() error {
	// Bye tells the daemon this is a close, not a death; a daemon that
	// does not take it at once (a full socket) is not waited for.
	s.mu.Lock()
	open := s.err == nil
	s.mu.Unlock()
	if open {
		bye, _ := groupwire.Append(nil, &groupwire.Record{Type: groupwire.TBye})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		s.writePacket(ctx, bye)
		cancel()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail(ErrClosed)
	s.queue, s.head = nil, 0
	return nil
}

// fail ends the session with err, once. Called with s.mu held.
func (s *Session) fail(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	s.conn.Close()
	s.notify()
}

// notify wakes the goroutines waiting in await. Called with s.mu held.
func (s *Session) notify() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// newTag numbers a request. Called with s.mu held.
func (s *Session) newTag() uint32 {
	s.tag++
	if s.tag == 0 {
		s.tag = 1
	}
	return s.tag
}

func (s *Session) queued() int { return len(s.queue) - s.head }

// await returns once ready (called with s.mu held) reports true, with
// s.mu released. While waiting, it reads packets itself when no other
// goroutine does and, unless it waits for events, while fewer than
// maxQueue events wait for Next: only a program that reads its events
// makes the session read.
func (s *Session) await(ctx context.Context, forEvents bool, ready func() bool) error {
	s.mu.Lock()
	for {
		if ready() {
			s.mu.Unlock()
			return nil
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return err
		}
		if err := ctx.Err(); err != nil {
			s.mu.Unlock()
			return err
		}
		if !s.reading && (forEvents || s.queued() < s.maxQueue) {
			s.reading = true
			s.mu.Unlock()
			p, err := s.readPacket(ctx, false)
			s.mu.Lock()
			s.reading = false
			s.notify()
			if err != nil {
				if errors.Is(err, errCanceled) {
					continue // ctx.Err() above says so
				}
				s.fail(err)
				continue
			}
			s.handle(p)
			continue
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		s.mu.Lock()
	}
}

// poll handles the packets already waiting, without blocking, if no other
// goroutine reads and the queue has room. Called with s.mu held.
func (s *Session) poll() {
	for !s.reading && s.err == nil && s.queued() < s.maxQueue {
		s.reading = true
		s.mu.Unlock()
		p, err := s.readPacket(context.Background(), true)
		s.mu.Lock()
		s.reading = false
		s.notify()
		switch {
		case errors.Is(err, errNoPacket):
			return
		case err != nil:
			s.fail(err)
			return
		}
		s.handle(p)
	}
}

// handle takes one packet from the daemon. Called with s.mu held.
func (s *Session) handle(p []byte) {
	rs, err := groupwire.Records(p)
	if err != nil {
		s.fail(fmt.Errorf("%w: from %s: %w", ErrProtocol, s.path, err))
		return
	}
	for i := range rs {
		if err := s.dispatch(&rs[i]); err != nil {
			s.fail(err)
			return
		}
	}
	s.notify()
}

// dispatch takes one record from the daemon. Called with s.mu held.
func (s *Session) dispatch(r *groupwire.Record) error {
	switch r.Type {
	case groupwire.TReply, groupwire.TGroupList, groupwire.TMemberList:
		c := s.pending[r.Tag]
		if c == nil {
			return protocolError("a %s record with tag %d, which no request waits for", r.Type, r.Tag)
		}
		want := groupwire.TReply
		switch c.op {
		case groupwire.TGroups:
			want = groupwire.TGroupList
		case groupwire.TMembers:
			want = groupwire.TMemberList
		}
		if r.Type != want && (r.Type != groupwire.TReply || r.Code == groupwire.OK) {
			return protocolError("%s (tag %d) answered by a %s record (code %s)", c.op, r.Tag, r.Type, r.Code)
		}
		delete(s.pending, r.Tag)
		if !c.abandoned {
			c.rec, c.done = *r, true
		}
	case groupwire.TCredit:
		if r.Count > s.inflight {
			return protocolError("credit for %d sends, with %d in flight", r.Count, s.inflight)
		}
		s.inflight -= r.Count
	case groupwire.TSendFailed:
		if r.Tag == 0 {
			return protocolError("send-failed with tag 0, which no send has")
		}
		s.queue = append(s.queue, eventOf(r))
	case groupwire.TView, groupwire.TMessage, groupwire.TTx, groupwire.TBarrierDone:
		s.queue = append(s.queue, eventOf(r))
	default:
		return protocolError("a %s record (tag %d) from the daemon, which only clients send", r.Type, r.Tag)
	}
	return nil
}

// Next returns the next event, waiting for one until ctx ends. Events
// read before the session ended are returned before its error.
func (s *Session) Next(ctx context.Context) (Event, error) {
	var e Event
	err := s.await(ctx, true, func() bool {
		if s.queued() == 0 {
			return false
		}
		e = s.queue[s.head]
		s.queue[s.head] = Event{}
		s.head++
		if s.head == len(s.queue) {
			s.queue, s.head = s.queue[:0], 0
		}
		s.notify() // a waiter may read again, now the queue has room
		return true
	})
	return e, err
}
