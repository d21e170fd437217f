package groupclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/concord-ha/concord/lib/api/groupclient/grouptest"
	"github.com/concord-ha/concord/lib/api/groupwire"
)

var (
	me    = groupwire.Member{Node: 1, Inc: 9, Client: 4, PID: 100, UID: 0}
	other = groupwire.Member{Node: 2, Inc: 3, Client: 1, PID: 200, UID: 0}
	view  = groupwire.ViewID{Seq: 7, Coord: 1, N: 2}
)

func welcome(window, queue uint32) groupwire.Record {
	return groupwire.Record{Self: me, Window: window, MaxPayload: 1024, MaxQueue: queue, Name: "alpha"}
}

// open dials a fake server, which welcomes with w, and returns both ends.
func open(t testing.TB, w groupwire.Record) (*Session, *grouptest.Conn) {
	t.Helper()
	srv := grouptest.Listen(t)
	type result struct {
		s   *Session
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Dial(context.Background(), Options{Socket: srv.Path, Name: "unit"})
		done <- result{s, err}
	}()
	c, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Welcome(w); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.s.Close() })
	return r.s, c
}

// recv and send are the fake server's steps; they may run on a goroutine
// of their own, so they report with Errorf.
func recv(t *testing.T, c *grouptest.Conn, want groupwire.Type) groupwire.Record {
	t.Helper()
	r, err := c.Recv()
	if err != nil {
		t.Errorf("server: %v", err)
	} else if r.Type != want {
		t.Errorf("server got %s, want %s", r.Type, want)
	}
	return r
}

func send(t *testing.T, c *grouptest.Conn, rs ...groupwire.Record) {
	t.Helper()
	if err := c.Send(rs...); err != nil {
		t.Errorf("server: %v", err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), grouptest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func TestHandshake(t *testing.T) {
	srv := grouptest.Listen(t)
	done := make(chan *Session, 1)
	go func() {
		s, err := Dial(context.Background(), Options{Socket: srv.Path, Name: "pgbench"})
		if err != nil {
			t.Error(err)
		}
		done <- s
	}()
	c, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Packet()
	if err != nil {
		t.Fatal(err)
	}
	// The hello's bytes, as doc.go draws them.
	want := "17000000" + "0100" + "0000" + "01000000" + "0100" + "0700" + fmt.Sprintf("%x", "pgbench")
	if got := fmt.Sprintf("%x", p); got != want {
		t.Fatalf("hello = %s", got)
	}
	send(t, c, groupwire.Record{Type: groupwire.TWelcome, Tag: 1, Version: 1, Self: me, Window: 32, MaxPayload: 4096, MaxQueue: 10, Name: "alpha"})
	s := <-done
	if s == nil {
		t.FailNow()
	}
	defer s.Close()
	if s.Self() != me || s.Cluster() != "alpha" || s.Window() != 32 || s.MaxPayload() != 4096 || s.maxQueue != 10 {
		t.Fatalf("self %v cluster %q window %d max payload %d queue %d", s.Self(), s.Cluster(), s.Window(), s.MaxPayload(), s.maxQueue)
	}
}

// dialAnswered dials a server that answers hello with rs.
func dialAnswered(t *testing.T, rs ...groupwire.Record) error {
	t.Helper()
	srv := grouptest.Listen(t)
	go func() {
		c, err := srv.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		if _, err := c.Recv(); err != nil {
			t.Error(err)
			return
		}
		c.Send(rs...)
		c.Recv() // until the client closes
	}()
	s, err := Dial(ctxT(t), Options{Socket: srv.Path})
	if err == nil {
		s.Close()
	}
	return err
}

func TestHandshakeRefusals(t *testing.T) {
	w := groupwire.Record{Type: groupwire.TWelcome, Tag: 1, Version: 1, Self: me, Window: 8, MaxPayload: 100, MaxQueue: 4}
	mod := func(f func(r *groupwire.Record)) groupwire.Record { r := w; f(&r); return r }
	for _, c := range []struct {
		name string
		rs   []groupwire.Record
		is   error
		text string
	}{
		{"version refused", []groupwire.Record{{Type: groupwire.TReply, Tag: 1, Code: groupwire.BadVersion, Text: "this daemon speaks version 3 only"}},
			ErrBadVersion, "hello: bad version: this daemon speaks version 3 only"},
		{"denied", []groupwire.Record{{Type: groupwire.TReply, Tag: 1, Code: groupwire.Denied, Text: "uid 1000 may not connect"}},
			ErrDenied, "uid 1000 may not connect"},
		{"later version", []groupwire.Record{mod(func(r *groupwire.Record) { r.Version = 2 })}, ErrProtocol, "welcomed version 2"},
		{"window 0", []groupwire.Record{mod(func(r *groupwire.Record) { r.Window = 0 })}, ErrProtocol, "window of 0"},
		{"max payload 0", []groupwire.Record{mod(func(r *groupwire.Record) { r.MaxPayload = 0 })}, ErrProtocol, "max payload of 0"},
		{"wrong tag", []groupwire.Record{mod(func(r *groupwire.Record) { r.Tag = 5 })}, ErrProtocol, "welcome record (tag 5)"},
		{"event first", []groupwire.Record{{Type: groupwire.TCredit, Count: 1}}, ErrProtocol, "answered hello with a credit"},
		{"reply ok", []groupwire.Record{{Type: groupwire.TReply, Tag: 1}}, ErrProtocol, "answered hello with a reply"},
		{"bad record after welcome", []groupwire.Record{w, {Type: groupwire.TCredit, Count: 1}}, ErrProtocol, "credit for 1 sends, with 0 in flight"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := dialAnswered(t, c.rs...)
			if !errors.Is(err, c.is) || !strings.Contains(fmt.Sprint(err), c.text) {
				t.Fatalf("got %v, want %v with %q", err, c.is, c.text)
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	_, err := Dial(ctxT(t), Options{Socket: t.TempDir() + "/none.sock"})
	if err == nil || !strings.Contains(err.Error(), "is concord-noded running") {
		t.Fatalf("missing socket: %v", err)
	}
	if _, err := Dial(ctxT(t), Options{Socket: "/x", Name: strings.Repeat("n", 65)}); err == nil || !strings.Contains(err.Error(), "client name") {
		t.Fatalf("long name: %v", err)
	}
}

func TestSocketPath(t *testing.T) {
	t.Setenv(EnvSocket, "")
	for _, c := range []struct{ ctx, want, err string }{
		{"", "/run/concord/groups.sock", ""},
		{"beta", "/run/concord/beta/groups.sock", ""},
		{"prod-2_eu1", "/run/concord/prod-2_eu1/groups.sock", ""},
		{"..", "", "cluster context"},
		{"a/b", "", "'/'"},
		{"prod.eu", "", "'.'"},
		{strings.Repeat("x", 33), "", "at most 32"},
	} {
		got, err := SocketPath(c.ctx)
		if got != c.want || (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("SocketPath(%q) = %q, %v", c.ctx, got, err)
		}
	}
	t.Setenv(EnvSocket, "/tmp/g.sock")
	if got, _ := SocketPath("beta"); got != "/tmp/g.sock" {
		t.Errorf("with %s set: %q", EnvSocket, got)
	}
}

func TestJoinReply(t *testing.T) {
	s, c := open(t, welcome(8, 100))
	ctx := ctxT(t)
	go func() {
		r := recv(t, c, groupwire.TJoin)
		if r.Group != "db" {
			t.Errorf("join %q", r.Group)
		}
		// A view read while Join waits is kept for Next.
		send(t, c, groupwire.Record{Type: groupwire.TView, Group: "db", View: view, Members: []groupwire.Member{me},
			Changes: []groupwire.Change{{Member: me, Kind: groupwire.Joined}}},
			groupwire.Record{Type: groupwire.TReply, Tag: r.Tag})
		r = recv(t, c, groupwire.TJoin)
		send(t, c, groupwire.Record{Type: groupwire.TReply, Tag: r.Tag, Code: groupwire.Already, Text: `already a member of "db"`})
		r = recv(t, c, groupwire.TMembers)
		send(t, c, groupwire.Record{Type: groupwire.TMemberList, Tag: r.Tag, Group: "db", View: view, Members: []groupwire.Member{me, other}})
		r = recv(t, c, groupwire.TGroups)
		send(t, c, groupwire.Record{Type: groupwire.TGroupList, Tag: r.Tag, Groups: []groupwire.GroupInfo{{Group: "db", View: view, Members: 2}}})
		r = recv(t, c, groupwire.TMembers)
		send(t, c, groupwire.Record{Type: groupwire.TReply, Tag: r.Tag, Code: groupwire.NotFound, Text: "no group x"})
	}()
	if err := s.Join(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	err := s.Join(ctx, "db")
	var e *Error
	if !errors.Is(err, ErrAlready) || !errors.As(err, &e) || e.Code != groupwire.Already || e.Text != `already a member of "db"` || e.Op != "join" {
		t.Fatalf("second join: %v", err)
	}
	v, ms, err := s.Members(ctx, "db")
	if err != nil || v != view || !reflect.DeepEqual(ms, []groupwire.Member{me, other}) {
		t.Fatalf("members: %v %v %v", v, ms, err)
	}
	gs, err := s.Groups(ctx)
	if err != nil || len(gs) != 1 || gs[0].Group != "db" || gs[0].Members != 2 {
		t.Fatalf("groups: %v %v", gs, err)
	}
	if _, _, err := s.Members(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("members of x: %v", err)
	}
	ev, err := s.Next(ctx)
	if err != nil || ev.Kind != ViewChange || ev.Group != "db" || ev.Changes[0].Kind != groupwire.Joined || ev.Members[0] != me {
		t.Fatalf("queued view: %+v %v", ev, err)
	}
}

func TestSendBytes(t *testing.T) {
	s, c := open(t, welcome(8, 100))
	ctx := ctxT(t)
	tag, err := s.Send(ctx, "db", groupwire.Safe, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Packet()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := groupwire.Append(nil, &groupwire.Record{Type: groupwire.TSend, Tag: tag, Group: "db", Order: groupwire.Safe, Payload: []byte("hello")})
	if !bytes.Equal(p, want) {
		t.Fatalf("send packet\n%x\nwant\n%x", p, want)
	}
	tag2, err := s.SendTo(ctx, "db", other, []byte{1, 2})
	if err != nil || tag2 == tag {
		t.Fatalf("send-to: tag %d (send's %d), %v", tag2, tag, err)
	}
	r := recv(t, c, groupwire.TSendTo)
	if r.Tag != tag2 || r.To != other || !bytes.Equal(r.Payload, []byte{1, 2}) {
		t.Fatalf("send-to record %+v", r)
	}
	if s.InFlight() != 2 {
		t.Fatalf("in flight %d", s.InFlight())
	}
	// Refused before the socket: the same codes as the daemon's.
	if _, err := s.Send(ctx, "db", 0, make([]byte, 1025)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("large payload: %v", err)
	}
	if _, err := s.Send(ctx, "", 0, nil); !errors.Is(err, ErrBadName) {
		t.Fatalf("empty group: %v", err)
	}
	if err := s.Barrier(ctx, "db", strings.Repeat("b", 256)); !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), "barrier") {
		t.Fatalf("long barrier name: %v", err)
	}
	if s.InFlight() != 2 {
		t.Fatalf("a refused send took credit: in flight %d", s.InFlight())
	}
}

func TestCreditsAndWouldBlock(t *testing.T) {
	s, c := open(t, welcome(2, 100))
	ctx := ctxT(t)
	for i := range 2 {
		if _, err := s.TrySend(ctx, "g", 0, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.TrySend(ctx, "g", 0, []byte("x")); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("third send in a window of 2: %v", err)
	}
	recv(t, c, groupwire.TSend)
	recv(t, c, groupwire.TSend)
	send(t, c, groupwire.Record{Type: groupwire.TCredit, Count: 1})
	// TrySend reads the credit waiting on the socket.
	deadline := time.Now().Add(grouptest.Timeout)
	for {
		_, err := s.TrySend(ctx, "g", 0, []byte("y"))
		if err == nil {
			break
		}
		if !errors.Is(err, ErrWouldBlock) || time.Now().After(deadline) {
			t.Fatalf("after a credit: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if r := recv(t, c, groupwire.TSend); string(r.Payload) != "y" {
		t.Fatalf("resumed with %q", r.Payload)
	}
	// Send waits for credit.
	sent := make(chan error, 1)
	go func() {
		_, err := s.Send(ctx, "g", 0, []byte("z"))
		sent <- err
	}()
	select {
	case err := <-sent:
		t.Fatalf("Send with no credit returned %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	send(t, c, groupwire.Record{Type: groupwire.TCredit, Count: 2})
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if s.InFlight() != 1 {
		t.Fatalf("in flight %d, want 1", s.InFlight())
	}
	if _, err := s.TrySend(ctx, "g", 0, nil); err != nil {
		t.Fatal(err)
	}
	// Send honours its context while it waits.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := s.Send(short, "g", 0, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send past its deadline: %v", err)
	}
	go send(t, c, groupwire.Record{Type: groupwire.TCredit, Count: 2})
	if err := s.Drain(ctx); err != nil || s.InFlight() != 0 {
		t.Fatalf("drain: %v, %d in flight", err, s.InFlight())
	}
	// More credit than sends in flight is the daemon's mistake.
	send(t, c, groupwire.Record{Type: groupwire.TCredit, Count: 1})
	if _, err := s.Next(ctx); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "credit for 1 sends, with 0 in flight") {
		t.Fatalf("extra credit: %v", err)
	}
}

func TestEvents(t *testing.T) {
	s, c := open(t, welcome(8, 100))
	ctx := ctxT(t)
	id := groupwire.MsgID{Node: 2, Inc: 3, Seq: 44}
	rs := []groupwire.Record{
		{Type: groupwire.TView, Group: "db", View: view, Members: []groupwire.Member{me}, Changes: []groupwire.Change{{Member: other, Kind: groupwire.Died, Reason: "killed by signal 9"}}},
		{Type: groupwire.TMessage, Group: "db", View: view, From: other, Order: groupwire.Safe, Direct: true, ID: id, Payload: []byte("hi")},
		{Type: groupwire.TTx, From: other, Order: groupwire.Agreed, Tx: 5, ID: id, Parts: []groupwire.Part{{Group: "a", Payload: []byte("1")}, {Group: "b", Payload: []byte("2")}}},
		{Type: groupwire.TBarrierDone, Group: "db", Barrier: "ready", Failed: true, Text: "2/1 died"},
		{Type: groupwire.TSendFailed, Tag: 9, Code: groupwire.NotMember, ID: id, Text: "left before its turn"},
	}
	send(t, c, rs[:2]...)
	send(t, c, rs[2:]...)
	var got []Event
	for range rs {
		e, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	want := []Event{
		{Kind: ViewChange, Group: "db", View: view, Members: []groupwire.Member{me}, Changes: rs[0].Changes},
		{Kind: Message, Group: "db", View: view, From: other, Order: groupwire.Safe, Direct: true, ID: id, Payload: []byte("hi")},
		{Kind: Transaction, From: other, Tx: 5, ID: id, Parts: rs[2].Parts},
		{Kind: BarrierDone, Group: "db", Barrier: "ready", Failed: true, Reason: "2/1 died"},
		{Kind: SendFailed, Tag: 9, ID: id, Err: &Error{Op: "send", Code: groupwire.NotMember, Text: "left before its turn"}},
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if !errors.Is(got[4].Err, ErrNotMember) {
		t.Errorf("send-failed error %v is not ErrNotMember", got[4].Err)
	}
}

func TestMalformedFromDaemon(t *testing.T) {
	good, _ := groupwire.Append(nil, &groupwire.Record{Type: groupwire.TMessage, Group: "g", Payload: []byte("x")})
	for _, c := range []struct {
		name   string
		packet []byte
		want   string
	}{
		{"garbage", []byte("not a record at all"), "malformed record: length 544501614"},
		{"truncated", good[:len(good)-1], "length"},
		{"request type", func() []byte {
			b, _ := groupwire.Append(nil, &groupwire.Record{Type: groupwire.TJoin, Group: "g"})
			return b
		}(), "a join record (tag 0) from the daemon"},
		{"reply to nothing", func() []byte {
			b, _ := groupwire.Append(nil, &groupwire.Record{Type: groupwire.TReply, Tag: 77})
			return b
		}(), "tag 77, which no request waits for"},
		{"send-failed without tag", func() []byte {
			b, _ := groupwire.Append(nil, &groupwire.Record{Type: groupwire.TSendFailed})
			return b
		}(), "send-failed with tag 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, conn := open(t, welcome(8, 100))
			ctx := ctxT(t)
			if err := conn.SendRaw(append(bytes.Clone(good), c.packet...)); err != nil {
				t.Fatal(err)
			}
			// Records before the bad one in its packet may come out first.
			_, err := s.Next(ctx)
			if err == nil {
				_, err = s.Next(ctx)
			}
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a protocol error with %q", err, c.want)
			}
			if strings.Contains(c.name, "garbage") && !errors.Is(err, groupwire.ErrMalformed) {
				t.Errorf("%v does not wrap groupwire.ErrMalformed", err)
			}
			// The session is over, for every call.
			if err2 := s.Join(ctx, "g"); !errors.Is(err2, ErrProtocol) {
				t.Fatalf("join after: %v", err2)
			}
			if _, err := conn.Recv(); err == nil {
				t.Fatal("the client did not close the session")
			}
		})
	}
}

func TestContextCancel(t *testing.T) {
	s, c := open(t, welcome(8, 100))
	ctx := ctxT(t)
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := s.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v", err)
	}
	// A Join whose caller gave up: its late reply is dropped, and the
	// session goes on.
	short2, cancel2 := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel2()
	if err := s.Join(short2, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Join: %v", err)
	}
	r := recv(t, c, groupwire.TJoin)
	send(t, c, groupwire.Record{Type: groupwire.TReply, Tag: r.Tag},
		groupwire.Record{Type: groupwire.TMessage, Group: "a", From: other, Payload: []byte("after")})
	e, err := s.Next(ctx)
	if err != nil || string(e.Payload) != "after" {
		t.Fatalf("after the cancels: %+v %v", e, err)
	}
	// Cancel from another goroutine while Next blocks.
	c2, cancel3 := context.WithCancel(ctx)
	go func() { time.Sleep(20 * time.Millisecond); cancel3() }()
	if _, err := s.Next(c2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next canceled: %v", err)
	}
	// Close ends a blocked Next.
	go func() { time.Sleep(20 * time.Millisecond); s.Close() }()
	if _, err := s.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestDisconnected(t *testing.T) {
	s, c := open(t, welcome(8, 100))
	ctx := ctxT(t)
	send(t, c, groupwire.Record{Type: groupwire.TMessage, Group: "a", From: other, Payload: []byte("last")})
	c.Close()
	if e, err := s.Next(ctx); err != nil || string(e.Payload) != "last" {
		t.Fatalf("event before the hang-up: %+v %v", e, err)
	}
	if _, err := s.Next(ctx); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("after the hang-up: %v", err)
	}
	if _, err := s.Send(ctx, "a", 0, nil); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("send after the hang-up: %v", err)
	}
}

// TestReadsOnlyForTheProgram: a Join waiting for its reply reads events
// ahead for Next only up to the welcome's max queue, then waits for Next.
func TestReadsOnlyForTheProgram(t *testing.T) {
	s, c := open(t, welcome(8, 3))
	ctx := ctxT(t)
	joined := make(chan error, 1)
	go func() { joined <- s.Join(ctx, "g") }()
	r := recv(t, c, groupwire.TJoin)
	for i := range 5 {
		send(t, c, groupwire.Record{Type: groupwire.TMessage, Group: "g", From: other, Payload: []byte{byte(i)}})
	}
	send(t, c, groupwire.Record{Type: groupwire.TReply, Tag: r.Tag})
	select {
	case err := <-joined:
		t.Fatalf("Join read past the queue bound and returned %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	s.mu.Lock()
	q := s.queued()
	s.mu.Unlock()
	if q != 3 {
		t.Fatalf("%d events read ahead, want 3", q)
	}
	// Taking the three queued events makes room: the Join reads on, to
	// its reply, without Next reading.
	for i := range 3 {
		if e, err := s.Next(ctx); err != nil || e.Payload[0] != byte(i) {
			t.Fatalf("event %d: %+v %v", i, e, err)
		}
	}
	select {
	case err := <-joined:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(grouptest.Timeout):
		t.Fatal("Join did not go on reading once Next made room")
	}
	for i := 3; i < 5; i++ {
		if e, err := s.Next(ctx); err != nil || e.Payload[0] != byte(i) {
			t.Fatalf("event %d: %+v %v", i, e, err)
		}
	}
}

func TestTransaction(t *testing.T) {
	s, c := open(t, welcome(1, 100))
	ctx := ctxT(t)
	go func() {
		r := recv(t, c, groupwire.TTxBegin)
		send(t, c, groupwire.Record{Type: groupwire.TReply, Tag: r.Tag})
		r = recv(t, c, groupwire.TTxAdd)
		if r.Group != "a" || string(r.Payload) != "1" {
			t.Errorf("tx-add %+v", r)
		}
		send(t, c, groupwire.Record{Type: groupwire.TReply, Tag: r.Tag, Code: groupwire.NoTx, Text: "no transaction open"})
		r = recv(t, c, groupwire.TTxCommit)
		if r.Order != groupwire.Safe {
			t.Errorf("tx-commit order %d", r.Order)
		}
		r = recv(t, c, groupwire.TBarrier)
		if r.Group != "a" || r.Barrier != "b1" {
			t.Errorf("barrier %+v", r)
		}
		send(t, c, groupwire.Record{Type: groupwire.TReply, Tag: r.Tag})
	}()
	if err := s.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, "a", []byte("1")); !errors.Is(err, ErrNoTx) {
		t.Fatalf("add: %v", err)
	}
	if tag, err := s.Commit(ctx, groupwire.Safe); err != nil || tag == 0 || s.InFlight() != 1 {
		t.Fatalf("commit: %d %v, %d in flight", tag, err, s.InFlight())
	}
	if err := s.Barrier(ctx, "a", "b1"); err != nil {
		t.Fatal(err)
	}
}

func TestSendBatch(t *testing.T) {
	s, c := open(t, welcome(3, 100))
	ctx := ctxT(t)
	var payloads [][]byte
	for i := range 10 {
		payloads = append(payloads, []byte{byte(i)})
	}
	var got []groupwire.Record
	var packets int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(got) < 10 {
			p, err := c.Packet()
			if err != nil {
				t.Error(err)
				return
			}
			rs, err := groupwire.Records(p)
			if err != nil || len(rs) > 3 {
				t.Errorf("packet of %d records (window 3), %v", len(rs), err)
			}
			packets++
			got = append(got, rs...)
			c.Send(groupwire.Record{Type: groupwire.TCredit, Count: uint32(len(rs))})
		}
	}()
	tags, err := s.SendBatch(ctx, "g", groupwire.Agreed, payloads)
	if err != nil || len(tags) != 10 {
		t.Fatalf("%d tags, %v", len(tags), err)
	}
	<-done
	for i, r := range got {
		if r.Payload[0] != byte(i) || r.Tag != tags[i] {
			t.Errorf("record %d: payload %v tag %d, want tag %d", i, r.Payload, r.Tag, tags[i])
		}
	}
	if packets > 5 {
		t.Errorf("%d packets for 10 sends in a window of 3", packets)
	}
}

// TestConcurrentSenders: many goroutines send through one session while
// another reads events; every send arrives once, with its own tag, and the
// credit adds up.
func TestConcurrentSenders(t *testing.T) {
	const senders, each = 8, 200
	s, c := open(t, welcome(16, 1<<20))
	ctx := ctxT(t)
	seen := map[uint32]bool{}
	var mu sync.Mutex
	srvDone := make(chan error, 1)
	go func() {
		for n := 0; n < senders*each; {
			p, err := c.Packet()
			if err != nil {
				srvDone <- err
				return
			}
			rs, err := groupwire.Records(p)
			if err != nil {
				srvDone <- err
				return
			}
			mu.Lock()
			for _, r := range rs {
				if r.Type != groupwire.TSend || seen[r.Tag] {
					srvDone <- fmt.Errorf("%s with tag %d (seen: %v)", r.Type, r.Tag, seen[r.Tag])
					mu.Unlock()
					return
				}
				seen[r.Tag] = true
			}
			mu.Unlock()
			n += len(rs)
			// An event with each credit, for the reader.
			if err := c.Send(groupwire.Record{Type: groupwire.TMessage, Group: "g", From: other, Payload: []byte("e")},
				groupwire.Record{Type: groupwire.TCredit, Count: uint32(len(rs))}); err != nil {
				srvDone <- err
				return
			}
		}
		srvDone <- nil
	}()
	events := make(chan int, 1)
	rctx, stop := context.WithCancel(ctx)
	go func() {
		n := 0
		for {
			if _, err := s.Next(rctx); err != nil {
				events <- n
				return
			}
			n++
		}
	}()
	var wg sync.WaitGroup
	tags := make(chan uint32, senders*each)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var tag uint32
				var err error
				if i%2 == 0 {
					tag, err = s.Send(ctx, "g", 0, []byte{byte(g), byte(i)})
				} else {
					var ts []uint32
					ts, err = s.SendBatch(ctx, "g", 0, [][]byte{{byte(g), byte(i)}})
					if len(ts) == 1 {
						tag = ts[0]
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
				tags <- tag
			}
		}()
	}
	wg.Wait()
	close(tags)
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-srvDone; err != nil {
		t.Fatal(err)
	}
	stop()
	n := <-events
	mu.Lock()
	defer mu.Unlock()
	for tag := range tags {
		if !seen[tag] {
			t.Errorf("tag %d never reached the daemon", tag)
		}
	}
	if len(seen) != senders*each || s.InFlight() != 0 || n == 0 {
		t.Fatalf("daemon saw %d sends, %d in flight, %d events read", len(seen), s.InFlight(), n)
	}
}

// TestFakeDaemon: two sessions on grouptest.Daemon see each other's views
// and messages (the fake the CLI tests use).
func TestFakeDaemon(t *testing.T) {
	d := grouptest.StartDaemon(t, 64)
	ctx := ctxT(t)
	a, err := Dial(ctx, Options{Socket: d.Path})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Dial(ctx, Options{Socket: d.Path})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, s := range []*Session{a, b} {
		if err := s.Join(ctx, "g"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Send(ctx, "g", 0, []byte("from a")); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for len(kinds) < 2 {
		e, err := b.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, fmt.Sprintf("%s %s", e.Kind, e.Payload))
	}
	if strings.Join(kinds, ",") != "view ,message from a" {
		t.Fatalf("b saw %q", kinds)
	}
}

// TestNoReadingBehindTheProgram: a session nobody asks anything of leaves
// the daemon's packets in its socket, where the daemon's queue sees them.
func TestNoReadingBehindTheProgram(t *testing.T) {
	s, c := open(t, welcome(8, 100))
	for range 3 {
		send(t, c, groupwire.Record{Type: groupwire.TMessage, Group: "g", From: other, Payload: []byte("unread")})
	}
	time.Sleep(50 * time.Millisecond)
	unread := func() int {
		var n int
		var err error
		s.raw.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if unread() == 0 {
		t.Fatal("the session read its socket with no call asking it to")
	}
	for range 3 {
		if _, err := s.Next(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	if n := unread(); n != 0 {
		t.Fatalf("%d bytes left after Next took every event", n)
	}
}
