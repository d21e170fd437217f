package daemon

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/groupwire"
)

// wireClient is a bare protocol client for these tests (the client
// libraries have their own tests).
type wireClient struct {
	t    *testing.T
	c    *net.UnixConn
	self groupwire.Member
	tag  uint32
	buf  []byte
	got  []groupwire.Record // read and not yet taken
}

func dialGroups(t *testing.T, path string) *wireClient {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &wireClient{t: t, c: c, buf: make([]byte, groupwire.MaxPacket)}
	r := w.call(groupwire.Record{Type: groupwire.THello, Version: 1, Name: "test"}, groupwire.TWelcome)
	w.self = r.Self
	return w
}

func (w *wireClient) send(rs ...groupwire.Record) {
	w.t.Helper()
	var pkt []byte
	for i := range rs {
		var err error
		if pkt, err = groupwire.Append(pkt, &rs[i]); err != nil {
			w.t.Fatal(err)
		}
	}
	if _, err := w.c.Write(pkt); err != nil {
		w.t.Fatal(err)
	}
}

// next returns the next record read, waiting up to 10 s.
func (w *wireClient) next() (groupwire.Record, error) {
	for len(w.got) == 0 {
		w.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := w.c.Read(w.buf)
		if err != nil {
			return groupwire.Record{}, err
		}
		if n == 0 {
			return groupwire.Record{}, fmt.Errorf("session ended")
		}
		rs, err := groupwire.Records(append([]byte(nil), w.buf[:n]...))
		if err != nil {
			w.t.Fatalf("daemon sent a bad packet: %v", err)
		}
		w.got = rs
	}
	r := w.got[0]
	w.got = w.got[1:]
	return r, nil
}

// call sends r with a fresh tag and returns the answer of type want,
// failing on anything else addressed to the tag.
func (w *wireClient) call(r groupwire.Record, want groupwire.Type) groupwire.Record {
	w.t.Helper()
	w.tag++
	r.Tag = w.tag
	w.send(r)
	var skipped []groupwire.Record // kept for later reads
	defer func() { w.got = append(skipped, w.got...) }()
	for {
		a, err := w.next()
		if err != nil {
			w.t.Fatalf("%s: %v", r.Type, err)
		}
		if a.Tag != r.Tag || a.Type == groupwire.TCredit {
			skipped = append(skipped, a)
			continue
		}
		if a.Type != want || (a.Type == groupwire.TReply && a.Code != groupwire.OK) {
			w.t.Fatalf("%s: got %s %s %q, want %s", r.Type, a.Type, a.Code, a.Text, want)
		}
		return a
	}
}

// until reads records until fn says stop, failing after 10 s.
func (w *wireClient) until(what string, fn func(groupwire.Record) bool) {
	w.t.Helper()
	for {
		r, err := w.next()
		if err != nil {
			w.t.Fatalf("waiting for %s: %v", what, err)
		}
		if fn(r) {
			return
		}
	}
}

func startGroupCluster(t *testing.T, n int) ([]*testNode, []string) {
	t.Helper()
	return startGroupClusterWith(t, n, nil)
}

// startGroupClusterWith calls setup1 on node 1's daemon before it runs.
func startGroupClusterWith(t *testing.T, n int, setup1 func(*Daemon)) ([]*testNode, []string) {
	t.Helper()
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	c := testConfig(t, n)
	dir := t.TempDir()
	var ns []*testNode
	var socks, want []string
	for i := 1; i <= n; i++ {
		sock := filepath.Join(dir, fmt.Sprintf("g%d.sock", i))
		var setup func(*Daemon)
		if i == 1 {
			setup = setup1
		}
		ns = append(ns, startNodeOpts(t, h, c, Options{NodeName: fmt.Sprintf("n%d", i), StateDir: t.TempDir(), Version: "test", GroupSocket: sock}, setup))
		socks = append(socks, sock)
		want = append(want, fmt.Sprint(i))
	}
	agreeOn(t, ns, "["+strings.Join(want, " ")+"]")
	return ns, socks
}

// Processes on three nodes join one group, see the same views, and get
// one sender's messages in order, everywhere; a closed session is a view
// change with its reason.
func TestGroupSessionsAcrossNodes(t *testing.T) {
	_, socks := startGroupCluster(t, 3)
	var cs []*wireClient
	for _, s := range socks {
		c := dialGroups(t, s)
		c.call(groupwire.Record{Type: groupwire.TJoin, Group: "g"}, groupwire.TReply)
		cs = append(cs, c)
	}
	for i, c := range cs {
		c.until("a view of 3", func(r groupwire.Record) bool { return r.Type == groupwire.TView && len(r.Members) == 3 })
		if c.self.Node != uint16(i+1) {
			t.Errorf("client %d: self on node %d", i, c.self.Node)
		}
	}
	const n = 300
	var batch []groupwire.Record
	for k := 0; k < n; k++ {
		batch = append(batch, groupwire.Record{Type: groupwire.TSend, Tag: uint32(1000 + k), Group: "g", Payload: []byte(fmt.Sprint(k))})
		if len(batch) == 50 {
			cs[0].send(batch...)
			batch = nil
		}
	}
	credits := 0
	for i, c := range cs {
		k := 0
		c.until("all messages", func(r groupwire.Record) bool {
			switch r.Type {
			case groupwire.TMessage:
				if string(r.Payload) != fmt.Sprint(k) || r.From != cs[0].self {
					t.Fatalf("client %d: message %d is %q from %v", i, k, r.Payload, r.From)
				}
				k++
			case groupwire.TCredit:
				if i == 0 {
					credits += int(r.Count)
				}
			case groupwire.TSendFailed:
				t.Fatalf("client %d: send failed: %s %s", i, r.Code, r.Text)
			}
			return k == n
		})
	}
	for credits < n {
		r, err := cs[0].next()
		if err != nil {
			t.Fatalf("credits: %d of %d: %v", credits, n, err)
		}
		if r.Type == groupwire.TCredit {
			credits += int(r.Count)
		}
	}
	cs[1].c.Close()
	for _, i := range []int{0, 2} {
		cs[i].until("client 2's departure", func(r groupwire.Record) bool {
			if r.Type != groupwire.TView || len(r.Changes) != 1 {
				return false
			}
			ch := r.Changes[0]
			if ch.Member != cs[1].self || ch.Kind != groupwire.Closed || len(r.Members) != 2 {
				t.Fatalf("client %d: departure seen as %+v, members %v", i, ch, r.Members)
			}
			return true
		})
	}
}

// Bad input ends that session with an error naming the fault; the daemon
// and the other sessions go on.
func TestGroupBadInput(t *testing.T) {
	_, socks := startGroupCluster(t, 1)
	good := dialGroups(t, socks[0])
	good.call(groupwire.Record{Type: groupwire.TJoin, Group: "g"}, groupwire.TReply)
	for _, c := range []struct {
		name  string
		hello bool
		pkt   []byte
		want  string
	}{
		{"garbage", true, []byte("this is not a record"), "malformed record"},
		{"truncated", true, func() []byte {
			b, _ := groupwire.Append(nil, &groupwire.Record{Type: groupwire.TSend, Group: "g", Payload: []byte("abc")})
			return b[:len(b)-1]
		}(), "length"},
		{"no hello", false, func() []byte {
			b, _ := groupwire.Append(nil, &groupwire.Record{Type: groupwire.TJoin, Group: "g"})
			return b
		}(), "first packet must be one hello"},
		{"event from a client", true, func() []byte {
			b, _ := groupwire.Append(nil, &groupwire.Record{Type: groupwire.TCredit, Count: 1})
			return b
		}(), "credit is not a request"},
	} {
		var w *wireClient
		if c.hello {
			w = dialGroups(t, socks[0])
		} else {
			conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: socks[0], Net: "unixpacket"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			w = &wireClient{t: t, c: conn, buf: make([]byte, groupwire.MaxPacket)}
		}
		if _, err := w.c.Write(c.pkt); err != nil {
			t.Fatal(err)
		}
		var reply groupwire.Record
		w.until(c.name+" reply", func(r groupwire.Record) bool { reply = r; return r.Type == groupwire.TReply })
		if reply.Code != groupwire.Invalid || !strings.Contains(reply.Text, c.want) {
			t.Errorf("%s: reply %s %q, want invalid naming %q", c.name, reply.Code, reply.Text, c.want)
		}
		if _, err := w.next(); err == nil {
			t.Errorf("%s: session still open", c.name)
		}
	}
	// An oversized payload is refused for that send alone.
	good.send(groupwire.Record{Type: groupwire.TSend, Tag: 77, Group: "g", Payload: make([]byte, groupwire.MaxPayload)})
	good.send(groupwire.Record{Type: groupwire.TSend, Tag: 78, Group: "nope", Payload: []byte("x")})
	var fails []string
	good.until("the refusal", func(r groupwire.Record) bool {
		if r.Type == groupwire.TSendFailed {
			fails = append(fails, fmt.Sprintf("%d %s", r.Tag, r.Code))
		}
		return len(fails) == 1
	})
	if fails[0] != "78 not a member" {
		t.Errorf("refusals %v, want [78 not a member]", fails)
	}
	good.call(groupwire.Record{Type: groupwire.TMembers, Group: "g"}, groupwire.TMemberList)
}

// framesIn is how many frames node n heard from peer on link l.
func framesIn(t *testing.T, n *testNode, peer uint16, l uint8) uint64 {
	t.Helper()
	ls, err := n.d.LinkStats()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ls {
		if s.Node == peer && s.Link == l {
			return s.FramesIn
		}
	}
	return 0
}

// While both links work, ordered traffic takes one link; when that link
// fails, it goes on the other and nothing is lost.
func TestOrderedTrafficOnOneLink(t *testing.T) {
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	c := testConfig(t, 2)
	dir := t.TempDir()
	var ns []*testNode
	var cs []*wireClient
	for i := 1; i <= 2; i++ {
		sock := filepath.Join(dir, fmt.Sprintf("g%d.sock", i))
		ns = append(ns, startNodeOpts(t, h, c, Options{NodeName: fmt.Sprintf("n%d", i), StateDir: t.TempDir(), Version: "test", GroupSocket: sock}, nil))
	}
	agreeOn(t, ns, "[1 2]")
	for i := 1; i <= 2; i++ {
		cs = append(cs, dialGroups(t, filepath.Join(dir, fmt.Sprintf("g%d.sock", i))))
		cs[i-1].call(groupwire.Record{Type: groupwire.TJoin, Group: "g"}, groupwire.TReply)
	}
	cs[1].until("a view of 2", func(r groupwire.Record) bool { return r.Type == groupwire.TView && len(r.Members) == 2 })
	flood := func(from, n int) {
		var batch []groupwire.Record
		for k := from; k < from+n; k++ {
			batch = append(batch, groupwire.Record{Type: groupwire.TSend, Group: "g", Payload: make([]byte, 3000)})
			batch[len(batch)-1].Payload[0] = byte(k)
			if len(batch) == 20 {
				cs[0].send(batch...)
				batch = nil
			}
		}
		k := from
		cs[1].until("the messages", func(r groupwire.Record) bool {
			if r.Type == groupwire.TMessage {
				if r.Payload[0] != byte(k) {
					t.Fatalf("message %d arrived as %d", k, r.Payload[0])
				}
				k++
			}
			return k == from+n
		})
	}
	// Right after the view forms, peers still ask for every link for a while.
	eventually(t, "ordered traffic on one link", func() (bool, string) {
		links := make([]int, 2)
		for i, n := range ns {
			n.d.call(func() { links[i] = n.d.dataLink() })
		}
		return links[0] == 0 && links[1] == 0, fmt.Sprint("data links ", links)
	})
	l0, l1 := framesIn(t, ns[1], 1, 0), framesIn(t, ns[1], 1, 1)
	flood(0, 200)
	d0, d1 := framesIn(t, ns[1], 1, 0)-l0, framesIn(t, ns[1], 1, 1)-l1
	// 200 messages of 3000 bytes are at least 400 frames; heartbeats are
	// a few dozen at most in the time.
	if d0 < 400 || d1 > d0/4 {
		t.Fatalf("frames on link 0: %d, on link 1: %d; want the ordered traffic on link 0 alone", d0, d1)
	}
	h.setCut(0, c.Node(2).Links[0].MAC, true)
	flood(200, 200)
}
