package nodebus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/api/nodebus/nodebustest"
)

// server is a minimal concord-noded made of raw godbus exports, to test
// the client's side of the job protocol; the real adapter is tested with
// this client in daemons/concord-noded/internal/busapi.
type server struct {
	conn *dbus.Conn

	mu sync.Mutex
	// answer answers SetOption; it may emit signals first.
	answer func(key, value string) (dbus.ObjectPath, *dbus.Error)
}

func (s *server) setOption(fn func(key, value string) (dbus.ObjectPath, *dbus.Error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = fn
}

func startServer(t *testing.T, addr string) *server {
	t.Helper()
	s := &server{conn: nodebustest.Conn(t, addr)}
	table := map[string]any{
		"SetOption": func(key, value string) (dbus.ObjectPath, *dbus.Error) {
			s.mu.Lock()
			fn := s.answer
			s.mu.Unlock()
			return fn(key, value)
		},
		"GetConfig": func() (string, *dbus.Error) { return "[cluster]\nname = fake\n", nil },
	}
	if err := s.conn.ExportMethodTable(table, nodebus.ManagerPath, nodebus.ManagerIface); err != nil {
		t.Fatal(err)
	}
	if r, err := s.conn.RequestName(nodebus.BusName, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v %v", nodebus.BusName, r, err)
	}
	return s
}

func (s *server) jobRemoved(t *testing.T, id uint32, result, message string) {
	t.Helper()
	if err := s.conn.Emit(nodebus.ManagerPath, nodebus.ManagerIface+".JobRemoved", id, nodebus.JobPath(id), nodebus.JobSetOption, result, message); err != nil {
		t.Error(err) // also called off the test's goroutine
	}
}

func client(t *testing.T, addr string) *nodebus.Client {
	t.Helper()
	c, err := nodebus.DialAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The daemon may end a job before its reply reaches the client: the client
// subscribed before it called, so it still sees the end. Each result
// comes back as the contract says.
func TestWaitSeesEveryResult(t *testing.T) {
	addr := nodebustest.Bus(t)
	s := startServer(t, addr)
	c := client(t, addr)
	for i, tc := range []struct {
		result, message string
		wantName        string // "" for no error
		wantMsg         string
	}{
		{nodebus.ResultDone, "set option k=v", "", ""},
		{nodebus.ResultFailed, nodebus.ErrConfigConflict + ": confstore: set option k=v: rejected", nodebus.ErrConfigConflict, "confstore: set option k=v: rejected"},
		{nodebus.ResultTimeout, nodebus.ErrTimeout + ": the change was not applied within 10s; it may still be applied later", nodebus.ErrTimeout, "the change was not applied within 10s; it may still be applied later"},
		{nodebus.ResultFailed, "no name here", nodebus.ErrFailed, "no name here"},
	} {
		id := uint32(i + 1)
		s.setOption(func(string, string) (dbus.ObjectPath, *dbus.Error) {
			s.jobRemoved(t, id+100, nodebus.ResultFailed, "someone else's job") // not ours: ignored
			s.jobRemoved(t, id, tc.result, tc.message)
			return nodebus.JobPath(id), nil
		})
		job, err := c.SetOption("k", "v")
		if err != nil || job != nodebus.JobPath(id) {
			t.Fatalf("SetOption: %q %v", job, err)
		}
		end, err := c.Wait(waitCtx(t), job)
		if end.Result != tc.result || end.ID != id || end.Kind != nodebus.JobSetOption {
			t.Errorf("%s: ended %+v", tc.result, end)
		}
		var e *nodebus.Error
		switch {
		case tc.wantName == "" && err != nil:
			t.Errorf("%s: %v, want no error", tc.result, err)
		case tc.wantName != "" && (!errors.As(err, &e) || e.Name != tc.wantName || e.Message != tc.wantMsg):
			t.Errorf("%s: %#v, want %s %q", tc.result, err, tc.wantName, tc.wantMsg)
		}
		if _, err := c.Wait(waitCtx(t), job); err == nil {
			t.Errorf("a second Wait for %s succeeded", job)
		}
	}
}

// The daemon leaves the bus after it started the job: the change may or
// may not have happened, and Wait says so instead of waiting for ever.
func TestWaitWhenTheDaemonLeaves(t *testing.T) {
	addr := nodebustest.Bus(t)
	s := startServer(t, addr)
	c := client(t, addr)
	s.setOption(func(string, string) (dbus.ObjectPath, *dbus.Error) { return nodebus.JobPath(7), nil })
	job, err := c.SetOption("k", "v")
	if err != nil {
		t.Fatal(err)
	}
	// Another client's job 5 ends, and the daemon leaves.
	s.jobRemoved(t, 5, nodebus.ResultFailed, nodebus.ErrNoLeader+": the old daemon's job 5")
	s.conn.Close()
	if _, err := c.Wait(waitCtx(t), job); !errors.Is(err, nodebus.ErrLost) {
		t.Fatalf("Wait after the daemon left: %v, want ErrLost", err)
	}

	// A new daemon numbers its jobs afresh: the old one's job 5 must not
	// answer for the new one's.
	s2 := startServer(t, addr)
	s2.setOption(func(string, string) (dbus.ObjectPath, *dbus.Error) { return nodebus.JobPath(5), nil })
	job, err = c.SetOption("k", "v")
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, func() { s2.jobRemoved(t, 5, nodebus.ResultDone, "set option k=v") })
	if _, err := c.Wait(waitCtx(t), job); err != nil {
		t.Fatalf("Wait for the new daemon's job 5: %v", err)
	}
}

// The daemon goes away during the call: no reply, and the error says the
// change may have happened (ErrLost), not merely that a call failed.
func TestChangeWithoutReply(t *testing.T) {
	addr := nodebustest.Bus(t)
	s := startServer(t, addr)
	c := client(t, addr)
	s.setOption(func(string, string) (dbus.ObjectPath, *dbus.Error) {
		s.conn.Close()
		return nodebus.JobPath(1), nil
	})
	if _, err := c.SetOption("k", "v"); !errors.Is(err, nodebus.ErrLost) {
		t.Fatalf("SetOption as the daemon dies: %v, want ErrLost", err)
	}
}

// Without a daemon, every error carries the bus's error name.
func TestNoDaemon(t *testing.T) {
	addr := nodebustest.Bus(t)
	c := client(t, addr)
	_, err := c.Config()
	var e *nodebus.Error
	if !errors.As(err, &e) || e.Name != "org.freedesktop.DBus.Error.ServiceUnknown" {
		t.Fatalf("Config without a daemon: %#v", err)
	}
	if _, err := c.SetOption("k", "v"); errors.Is(err, nodebus.ErrLost) || !errors.As(err, &e) {
		t.Fatalf("a change without a daemon: %v; the change surely did not happen", err)
	}
}

func TestErrorForms(t *testing.T) {
	e := nodebus.Errorf(nodebus.ErrNoLeader, "no configuration leader: %s", "x")
	if e.Error() != "no configuration leader: x (org.concordha.node1.NoLeader)" {
		t.Errorf("Error() = %q", e.Error())
	}
	back := nodebus.ParseFailure(nodebus.FailureMessage(e))
	if *back != *e {
		t.Errorf("ParseFailure(FailureMessage(e)) = %+v, want %+v", back, e)
	}
	for _, msg := range []string{"", "plain words: with a colon", "org.x.Y"} {
		if p := nodebus.ParseFailure(msg); p.Name != nodebus.ErrFailed || p.Message != msg {
			t.Errorf("ParseFailure(%q) = %+v", msg, p)
		}
	}
	if nodebus.JobPath(12) != "/org/concordha/node1/job/12" || nodebus.NodePath(3) != "/org/concordha/node1/node/3" {
		t.Errorf("paths %s %s", nodebus.JobPath(12), nodebus.NodePath(3))
	}
}

func TestViewIDTellsViewsWithOneSeqApart(t *testing.T) {
	// Issue 8 item 13: a node left through its singleton view 3.2 and,
	// restarted, installed 3.1 of all nodes. The seq repeats; the ID not.
	if a, b := nodebus.ViewID(3, 2), nodebus.ViewID(3, 1); a == b || a != "3.2" {
		t.Fatalf("ViewID(3, 2) = %q, ViewID(3, 1) = %q", a, b)
	}
}
