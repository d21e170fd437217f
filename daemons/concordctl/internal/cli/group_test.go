package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/groupclient"
	"github.com/concord-ha/concord/lib/api/groupclient/grouptest"
	"github.com/concord-ha/concord/lib/api/groupwire"
)

// The group verbs against grouptest's fake daemon, as a program of the
// test's own (a groupclient session) would meet them.

// syncBuffer is a buffer one goroutine writes while another reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func ctl(d *grouptest.Daemon, args ...string) (code int, stdout, stderr string) {
	var out, errb syncBuffer
	code = Main(args, Env{Stdout: &out, Stderr: &errb, GroupSocket: d.Path,
		Dial: func(string) (API, error) { return nil, fmt.Errorf("no D-Bus in this test") }})
	return code, out.String(), errb.String()
}

func member(t *testing.T, d *grouptest.Daemon, groups ...string) *groupclient.Session {
	t.Helper()
	s, err := groupclient.Dial(context.Background(), groupclient.Options{Socket: d.Path, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, g := range groups {
		if err := s.Join(context.Background(), g); err != nil {
			t.Fatal(err)
		}
		<-d.Joined()
	}
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), grouptest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func TestGroupListAndMembers(t *testing.T) {
	d := grouptest.StartDaemon(t, 64)
	a := member(t, d, "alpha", "beta")
	b := member(t, d, "beta")
	pid := os.Getpid()
	code, out, errs := ctl(d, "group", "list")
	want := "GROUP  VIEW   MEMBERS\nalpha  1.1/1  1\nbeta   2.1/2  2\n"
	if code != 0 || out != want {
		t.Fatalf("group list: code %d\n%s\nwant\n%s\nstderr %s", code, out, want, errs)
	}
	code, out, _ = ctl(d, "--json", "group", "list")
	var gs []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &gs) != nil || len(gs) != 2 || gs[1]["group"] != "beta" || gs[1]["members"] != 2.0 || gs[1]["view"] != "2.1/2" {
		t.Fatalf("group list --json: %d %s", code, out)
	}
	code, out, _ = ctl(d, "group", "members", "beta")
	want = fmt.Sprintf("NODE  CLIENT  PID%s  UID\n1     %d       %d  %d\n1     %d       %d  %d\n", strings.Repeat(" ", len(fmt.Sprint(pid))-3),
		a.Self().Client, pid, os.Getuid(), b.Self().Client, pid, os.Getuid())
	if code != 0 || out != want {
		t.Fatalf("group members: code %d\n%q\nwant\n%q", code, out, want)
	}
	code, out, _ = ctl(d, "group", "members", "beta", "--json")
	var ms struct {
		Group   string
		View    string
		Members []struct{ Node, Client, PID, UID uint32 }
	}
	if code != 0 || json.Unmarshal([]byte(out), &ms) != nil || ms.Group != "beta" || len(ms.Members) != 2 || ms.Members[1].Client != b.Self().Client || ms.Members[0].PID != uint32(pid) {
		t.Fatalf("group members --json: %d %s", code, out)
	}
	code, _, errs = ctl(d, "group", "members", "gamma")
	if code != 1 || errs != "concordctl: groupclient: members: not found: no group gamma\n" {
		t.Fatalf("members of no group: %d %q", code, errs)
	}
}

func TestGroupSend(t *testing.T) {
	d := grouptest.StartDaemon(t, 4) // 10 sends need credit back
	ctx := testCtx(t)
	r := member(t, d, "g")
	code, out, errs := ctl(d, "group", "send", "g", "--count", "10", "--safe", "hello")
	if code != 0 || !regexp.MustCompile(`^sent 10 messages \(70 bytes\) to g in [0-9.]+ s: [0-9]+ messages/s\n$`).MatchString(out) {
		t.Fatalf("group send: %d %q %q", code, out, errs)
	}
	// The receiver sees the sender join, its messages in order, and leave.
	var got []string
	for len(got) < 12 {
		e, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch e.Kind {
		case groupclient.ViewChange:
			if e.Changes[0].Member != r.Self() {
				got = append(got, e.Changes[0].Kind.String())
			}
		case groupclient.Message:
			if e.Order != groupwire.Safe {
				t.Errorf("message %q in order %d, want safe", e.Payload, e.Order)
			}
			got = append(got, string(e.Payload))
		}
	}
	want := "joined hello-0 hello-1 hello-2 hello-3 hello-4 hello-5 hello-6 hello-7 hello-8 hello-9 left"
	if strings.Join(got, " ") != want {
		t.Fatalf("receiver saw %q\nwant %q", strings.Join(got, " "), want)
	}
	// --size pads and stamps.
	code, _, errs = ctl(d, "group", "send", "g", "--size", "100", "--interval", "1ms", "--count", "2")
	if code != 0 {
		t.Fatalf("send --size: %s", errs)
	}
	for n := 0; n < 2; {
		e, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == groupclient.Message {
			if len(e.Payload) != 100 || !regexp.MustCompile(`^m-\d@\d+#\.+$`).Match(e.Payload) {
				t.Fatalf("sized payload %q", e.Payload)
			}
			n++
		}
	}
}

func TestGroupWatch(t *testing.T) {
	d := grouptest.StartDaemon(t, 64)
	ctx := testCtx(t)
	s := member(t, d, "g")
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errs := ctl(d, "group", "watch", "g", "--count", "3")
		done <- result{code, out, errs}
	}()
	<-d.Joined()
	if _, err := s.Send(ctx, "g", groupwire.Agreed, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, "g", groupwire.Safe, []byte("two\x00")); err != nil {
		t.Fatal(err)
	}
	// 1-1 to the watcher, the second member of the view.
	var watcher groupwire.Member
	for watcher.Client == 0 {
		e, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == groupclient.ViewChange && len(e.Members) == 2 {
			watcher = e.Members[1]
		}
	}
	if _, err := s.SendTo(ctx, "g", watcher, []byte("just you")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	me := s.Self().String()
	want := fmt.Sprintf("view 2.1/2 of g, 2 members: %s joined\nmessage from %s, agreed: one\nmessage from %s, safe: \"two\\x00\"\nmessage from %s, agreed, to this member only: just you\n",
		watcher, me, me, me)
	if r.code != 0 || r.out != want {
		t.Fatalf("group watch: code %d stderr %q\n%s\nwant\n%s", r.code, r.err, r.out, want)
	}
	// It left the group when done.
	for {
		e, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == groupclient.ViewChange && e.Changes[0].Member == watcher {
			if e.Changes[0].Kind != groupwire.Left {
				t.Fatalf("watcher went away as %s", e.Changes[0].Kind)
			}
			break
		}
	}
}

func TestGroupWatchJSONAndTimeout(t *testing.T) {
	d := grouptest.StartDaemon(t, 64)
	ctx := testCtx(t)
	s := member(t, d, "g")
	done := make(chan string, 1)
	go func() {
		code, out, errs := ctl(d, "--json", "group", "watch", "g", "--count", "1")
		done <- fmt.Sprint(code, out, errs)
	}()
	<-d.Joined()
	if _, err := s.Send(ctx, "g", groupwire.Agreed, []byte{0xff, 'a'}); err != nil {
		t.Fatal(err)
	}
	got := <-done
	lines := strings.Split(strings.TrimPrefix(got, "0"), "\n")
	var view, msg map[string]any
	if len(lines) != 3 || json.Unmarshal([]byte(lines[0]), &view) != nil || json.Unmarshal([]byte(lines[1]), &msg) != nil {
		t.Fatalf("watch --json: %q", got)
	}
	if view["kind"] != "view" || view["changes"].([]any)[0].(map[string]any)["kind"] != "joined" ||
		msg["kind"] != "message" || msg["payload_hex"] != "ff61" || msg["order"] != "agreed" {
		t.Fatalf("watch --json: %q", got)
	}
	start := time.Now()
	code, _, errs := ctl(d, "group", "watch", "g", "--count", "1", "--timeout", "100ms")
	if code != 1 || errs != "concordctl: group watch: 0 of 1 messages before the timeout\n" || time.Since(start) > 5*time.Second {
		t.Fatalf("watch --timeout: %d %q", code, errs)
	}
	if code, _, errs := ctl(d, "group", "watch", "g", "--timeout", "50ms"); code != 0 {
		t.Fatalf("watch --timeout without --count: %d %q", code, errs)
	}
}

func TestGroupDaemonDown(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main([]string{"group", "list"}, Env{Stdout: &out, Stderr: &errb, GroupSocket: t.TempDir() + "/groups.sock"})
	if code != 1 || !strings.Contains(errb.String(), "is concord-noded running") {
		t.Fatalf("code %d: %s", code, errb.String())
	}
}
