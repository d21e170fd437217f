package groupclient

import (
	"errors"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/concord-ha/concord/lib/api/groupwire"
)

// fuzzSession is a session on one end of a socket pair, welcomed, with
// sends in flight and a request waiting, to take packets straight into
// handle.
func fuzzSession(t *testing.T) *Session {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), "fuzz")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{conn: c.(*net.UnixConn), path: "fuzz", window: 8, maxPayload: groupwire.MaxPayload, maxQueue: 100,
		tag: 10, inflight: 4, pending: map[uint32]*call{2: {op: groupwire.TJoin}, 3: {op: groupwire.TGroups}}}
	t.Cleanup(func() { s.conn.Close() })
	return s
}

// FuzzHandle: whatever the daemon sends, the session takes it whole or
// ends with a protocol error; it never panics, never counts more credit
// than it lent, and never queues from a packet that did not decode.
func FuzzHandle(f *testing.F) {
	for _, r := range []groupwire.Record{
		{Type: groupwire.TReply, Tag: 2},
		{Type: groupwire.TGroupList, Tag: 3, Groups: []groupwire.GroupInfo{{Group: "g", Members: 1}}},
		{Type: groupwire.TCredit, Count: 3},
		{Type: groupwire.TMessage, Group: "g", Payload: []byte("x")},
		{Type: groupwire.TSendFailed, Tag: 5, Code: groupwire.NotMember},
		{Type: groupwire.TView, Group: "g", Members: []groupwire.Member{me}, Changes: []groupwire.Change{{Member: me, Kind: groupwire.Joined}}},
	} {
		b, _ := groupwire.Append(nil, &r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		s := fuzzSession(t)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.handle(p)
		if s.inflight > 4 {
			t.Fatalf("in flight %d, more than was sent", s.inflight)
		}
		if _, err := groupwire.Records(p); err != nil {
			if !errors.Is(s.err, ErrProtocol) || !errors.Is(s.err, groupwire.ErrMalformed) {
				t.Fatalf("undecodable packet, session error %v", s.err)
			}
			if s.queued() != 0 {
				t.Fatalf("%d events queued from an undecodable packet", s.queued())
			}
		}
		if s.err != nil && !errors.Is(s.err, ErrProtocol) {
			t.Fatalf("session error %v is not a protocol error", s.err)
		}
	})
}
