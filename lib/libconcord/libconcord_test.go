package libconcord

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gw "github.com/concord-ha/concord/lib/api/groupwire"
)

// built holds what TestMain built from this tree: the library (by its
// Makefile), the driver (against the library, with the flags its
// pkg-config file gives) and the driver with ThreadSanitizer.
var built struct {
	dir, driver, tsan, decode string
	skip                      string
}

func TestMain(m *testing.M) {
	os.Exit(func() int {
		for _, tool := range []string{"gcc", "make", "pkg-config"} {
			if _, err := exec.LookPath(tool); err != nil {
				built.skip = "SKIP: needs " + tool + " (tests/setup.sh installs it)"
				fmt.Fprintln(os.Stderr, built.skip)
				return m.Run()
			}
		}
		dir, err := os.MkdirTemp("", "libconcord-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := build(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

func run(name string, args []string, env ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func build(dir string) error {
	inc, _ := filepath.Abs("include")
	if err := run("make", []string{"--no-print-directory", "OUT=" + dir, "PREFIX=" + dir, "LIBDIR=" + dir, "INCLUDEDIR=" + inc, "VERSION=9.9.9"}, "MAKEFLAGS="); err != nil {
		return err
	}
	cmd := exec.Command("pkg-config", "--cflags", "--libs", "concord")
	cmd.Env = append(os.Environ(), "PKG_CONFIG_PATH="+dir)
	flags, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("pkg-config --cflags --libs concord: %v", err)
	}
	built.dir = dir
	built.driver = filepath.Join(dir, "driver")
	args := []string{"-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-o", built.driver, "testdata/driver.c"}
	args = append(args, strings.Fields(string(flags))...)
	if err := run("gcc", append(args, "-Wl,-rpath,"+dir, "-pthread")); err != nil {
		return err
	}
	// The decoder alone, with AddressSanitizer and UBSan, for FuzzDecode.
	built.decode = filepath.Join(dir, "decode")
	dec := []string{"-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g", "-Iinclude", "-o", built.decode, "testdata/decode.c", "src/wire.c"}
	if err := run("gcc", append([]string{"-fsanitize=address,undefined", "-fno-sanitize-recover=all"}, dec...)); err != nil {
		fmt.Fprintf(os.Stderr, "no sanitizers for the decoder: %v\n", err)
		if err := run("gcc", dec); err != nil {
			return err
		}
	}
	// The library's sources built into the driver, with ThreadSanitizer.
	built.tsan = filepath.Join(dir, "driver-tsan")
	if err := run("gcc", []string{"-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g", "-fsanitize=thread", "-Iinclude",
		"-o", built.tsan, "testdata/driver.c", "src/group.c", "src/wire.c", "-pthread"}); err != nil {
		fmt.Fprintf(os.Stderr, "SKIP: no ThreadSanitizer build: %v\n", err)
		built.tsan = ""
	}
	return nil
}

func needBuild(t testing.TB) {
	t.Helper()
	if built.skip != "" {
		t.Skip(built.skip)
	}
}

// daemon is a fake concord-noded: one session on a SEQPACKET socket.
type daemon struct {
	t    testing.TB
	path string
	ln   *net.UnixListener
	c    *net.UnixConn
}

func newDaemon(t testing.TB) *daemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "groups.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, path: path, ln: ln}
	t.Cleanup(func() {
		ln.Close()
		if d.c != nil {
			d.c.Close()
		}
	})
	return d
}

func (d *daemon) accept() {
	d.t.Helper()
	d.ln.SetDeadline(time.Now().Add(5 * time.Second))
	c, err := d.ln.AcceptUnix()
	if err != nil {
		d.t.Fatalf("accept: %v", err)
	}
	d.c = c
}

// read returns the next packet the client wrote.
func (d *daemon) read() []byte {
	d.t.Helper()
	b, err := d.tryRead(5 * time.Second)
	if err != nil {
		d.t.Fatalf("daemon read: %v", err)
	}
	return b
}

func (d *daemon) tryRead(wait time.Duration) ([]byte, error) {
	b := make([]byte, gw.MaxPacket+1)
	d.c.SetReadDeadline(time.Now().Add(wait))
	n, err := d.c.Read(b)
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}

// nothing checks that the client wrote nothing more.
func (d *daemon) nothing() {
	d.t.Helper()
	if b, err := d.tryRead(100 * time.Millisecond); err == nil {
		d.t.Errorf("client wrote %x, want nothing", b)
	}
}

// expect reads one packet and checks it holds exactly want, encoded by
// the Go reference encoder with the tag the client chose (which it
// returns; want.Tag 0 takes the packet's own, nonzero).
func (d *daemon) expect(want gw.Record) uint32 {
	d.t.Helper()
	p := d.read()
	got, rest, err := gw.Next(p)
	if err != nil || len(rest) != 0 {
		d.t.Fatalf("client wrote %x: %v, %d bytes left", p, err, len(rest))
	}
	if want.Tag == 0 {
		want.Tag = got.Tag
		if got.Tag == 0 {
			d.t.Errorf("%s with tag 0, the events' tag", got.Type)
		}
	}
	b, err := gw.Append(nil, &want)
	if err != nil {
		d.t.Fatal(err)
	}
	if !bytes.Equal(p, b) {
		d.t.Fatalf("client wrote\n%x\nwant (%s)\n%x", p, want.Type, b)
	}
	return got.Tag
}

func (d *daemon) send(rs ...gw.Record) {
	d.t.Helper()
	var p []byte
	for i := range rs {
		var err error
		if p, err = gw.Append(p, &rs[i]); err != nil {
			d.t.Fatal(err)
		}
	}
	d.raw(p)
}

func (d *daemon) raw(p []byte) {
	d.t.Helper()
	if _, err := d.c.Write(p); err != nil {
		d.t.Fatalf("daemon write: %v", err)
	}
}

// closed checks that the client ended the session.
func (d *daemon) closed() {
	d.t.Helper()
	b, err := d.tryRead(5 * time.Second)
	if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		d.t.Errorf("after a malformed record the client wrote %x (%v), want the session closed", b, err)
	}
}

// driver is testdata/driver.c running libconcord.
type driver struct {
	t      testing.TB
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan string
	stderr lockedBuffer
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startDriver(t testing.TB, bin, sock string) *driver {
	t.Helper()
	p := &driver{t: t, cmd: exec.Command(bin), lines: make(chan string, 4096)}
	p.cmd.Env = append(os.Environ(), "CONCORD_GROUP_SOCKET="+sock, "TSAN_OPTIONS=halt_on_error=1 exitcode=66")
	p.cmd.Stderr = &p.stderr
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			p.lines <- s.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		p.in.Close()
		if t.Failed() {
			p.cmd.Process.Kill() // it may be waiting on the daemon
		}
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && !t.Failed() {
				t.Errorf("driver: %v\n%s", err, p.stderr.String())
			}
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			t.Errorf("driver did not exit\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *driver) do(format string, args ...any) {
	p.t.Helper()
	if _, err := fmt.Fprintf(p.in, format+"\n", args...); err != nil {
		p.t.Fatalf("driver: %v", err)
	}
}

func (p *driver) line() string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("driver exited\n%s", p.stderr.String())
		}
		return l
	case <-time.After(5 * time.Second):
		p.t.Fatalf("driver said nothing for 5s\n%s", p.stderr.String())
	}
	return ""
}

func (p *driver) want(format string, args ...any) {
	p.t.Helper()
	want := fmt.Sprintf(format, args...)
	if got := p.line(); got != want {
		p.t.Fatalf("driver said\n%q\nwant\n%q", got, want)
	}
}

// quiet checks that the driver says nothing for a while (it is blocked).
func (p *driver) quiet() {
	p.t.Helper()
	select {
	case l := <-p.lines:
		p.t.Fatalf("driver said %q, want it blocked", l)
	case <-time.After(150 * time.Millisecond):
	}
}

var (
	self = gw.Member{Node: 1, Inc: 1<<40 + 5, Client: 7, PID: 4242, UID: 0}
	m2   = gw.Member{Node: 3, Inc: 99, Client: 1, PID: 17, UID: 1000}
	v1   = gw.ViewID{Seq: 12, Coord: 1, N: 3, Branch: 0xabcdef0123}
	id1  = gw.MsgID{Node: 2, Inc: 5, Seq: 1<<33 + 77}
)

func welcome(window, maxPayload uint32) gw.Record {
	return gw.Record{Type: gw.TWelcome, Tag: 1, Version: 1, Self: self, Window: window, MaxPayload: maxPayload, MaxQueue: 4096, Name: "alpha"}
}

// session starts the driver and opens a session with the welcome w.
func session(t testing.TB, bin string, w gw.Record) (*daemon, *driver) {
	t.Helper()
	needBuild(t)
	d := newDaemon(t)
	p := startDriver(t, bin, d.path)
	p.do("open")
	d.accept()
	d.expect(gw.Record{Type: gw.THello, Tag: 1, Version: gw.Version, Name: filepath.Base(bin)})
	d.send(w)
	p.want("open 0 %s %d %d %d %s", fmtMember(w.Self), w.Window, w.MaxPayload, w.MaxQueue, w.Name)
	return d, p
}

// The driver's output, made here from the records the daemon sent.

func fmtMember(m gw.Member) string {
	return fmt.Sprintf("%d/%d/%d/%d/%d", m.Node, m.Inc, m.Client, m.PID, m.UID)
}

func fmtMembers(ms []gw.Member) string {
	var s []string
	for _, m := range ms {
		s = append(s, fmtMember(m))
	}
	return "[" + strings.Join(s, ",") + "]"
}

func fmtView(v gw.ViewID) string { return fmt.Sprintf("%d.%d.%d.%d", v.Seq, v.Coord, v.N, v.Branch) }

func fmtID(id gw.MsgID) string { return fmt.Sprintf("%d/%d/%d", id.Node, id.Inc, id.Seq) }

func fmtHex(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return fmt.Sprintf("%x", b)
}

// errno maps a code as the library documents it.
var errno = map[gw.Code]syscall.Errno{
	gw.Invalid: syscall.EINVAL, gw.BadName: syscall.EINVAL, gw.NotMember: syscall.ENOTCONN, gw.Already: syscall.EALREADY,
	gw.TooLarge: syscall.EMSGSIZE, gw.WouldBlock: syscall.EAGAIN, gw.NoTx: syscall.EPROTO, gw.Denied: syscall.EACCES,
	gw.BadVersion: syscall.EPROTONOSUPPORT, gw.Unavailable: syscall.ESHUTDOWN, gw.NotFound: syscall.ENOENT,
}

func fmtEvent(r gw.Record) string {
	switch r.Type {
	case gw.TView:
		var cs []string
		for _, c := range r.Changes {
			cs = append(cs, fmt.Sprintf("{%s %d %s}", fmtMember(c.Member), c.Kind, c.Reason))
		}
		return fmt.Sprintf("view %s %s %s [%s]", r.Group, fmtView(r.View), fmtMembers(r.Members), strings.Join(cs, ","))
	case gw.TMessage:
		d := 0
		if r.Direct {
			d = 1
		}
		return fmt.Sprintf("message %s %s %s %d %d %s %s", r.Group, fmtView(r.View), fmtMember(r.From), r.Order, d, fmtID(r.ID), fmtHex(r.Payload))
	case gw.TTx:
		var ps []string
		for _, p := range r.Parts {
			ps = append(ps, p.Group+":"+fmtHex(p.Payload))
		}
		return fmt.Sprintf("tx %s %d %d %s [%s]", fmtMember(r.From), r.Order, r.Tx, fmtID(r.ID), strings.Join(ps, ","))
	case gw.TBarrierDone:
		f := 0
		if r.Failed {
			f = 1
		}
		return fmt.Sprintf("barrier %s %s %d {%s} %s", r.Group, r.Barrier, f, r.Text, fmtMembers(r.Members))
	case gw.TSendFailed:
		return fmt.Sprintf("sendfailed %d %d %s {%s}", r.Tag, -int(errno[r.Code]), fmtID(r.ID), r.Text)
	}
	panic(r.Type.String())
}

func neg(e syscall.Errno) int { return -int(e) }

func TestHandshake(t *testing.T) {
	_, p := session(t, built.driver, welcome(256, 65536))
	p.do("close")
	p.want("close 0")

	// Refused: the daemon's code as an errno, nothing left open.
	d := newDaemon(t)
	p = startDriver(t, built.driver, d.path)
	p.do("open")
	d.accept()
	d.read()
	d.send(gw.Record{Type: gw.TReply, Tag: 1, Code: gw.BadVersion, Text: "version 1 is not spoken here"})
	p.want("open %d", neg(syscall.EPROTONOSUPPORT))

	// No daemon, and a context that is not a plain name.
	p = startDriver(t, built.driver, filepath.Join(t.TempDir(), "none.sock"))
	p.do("open")
	p.want("open %d", neg(syscall.ENOENT))
}

func TestContextPath(t *testing.T) {
	needBuild(t)
	p := startDriver(t, built.driver, "")
	for _, bad := range []string{"../x", ".hidden", "a/b", strings.Repeat("n", 65)} {
		p.do("open %s", bad)
		p.want("open %d", neg(syscall.EINVAL))
	}
}

func TestRequests(t *testing.T) {
	d, p := session(t, built.driver, welcome(256, 65536))
	tags := map[uint32]bool{1: true}
	fresh := func(tag uint32) {
		t.Helper()
		if tags[tag] {
			t.Errorf("tag %d used twice", tag)
		}
		tags[tag] = true
	}

	p.do("join db")
	tag := d.expect(gw.Record{Type: gw.TJoin, Group: "db"})
	fresh(tag)
	d.send(gw.Record{Type: gw.TReply, Tag: tag})
	p.want("join 0")

	p.do("join db")
	tag = d.expect(gw.Record{Type: gw.TJoin, Group: "db"})
	fresh(tag)
	d.send(gw.Record{Type: gw.TReply, Tag: tag, Code: gw.Already, Text: "already a member"})
	p.want("join %d", neg(syscall.EALREADY))

	p.do("leave web")
	tag = d.expect(gw.Record{Type: gw.TLeave, Group: "web"})
	fresh(tag)
	d.send(gw.Record{Type: gw.TReply, Tag: tag, Code: gw.NotMember})
	p.want("leave %d", neg(syscall.ENOTCONN))

	p.do("barrier db ready")
	tag = d.expect(gw.Record{Type: gw.TBarrier, Group: "db", Barrier: "ready"})
	fresh(tag)
	d.send(gw.Record{Type: gw.TReply, Tag: tag})
	p.want("barrier 0")

	p.do("send db 1 68656c6c6f")
	l := p.line()
	var rc int
	if _, err := fmt.Sscanf(l, "send %d %d", &rc, &tag); err != nil || rc != 0 {
		t.Fatalf("driver said %q", l)
	}
	fresh(tag)
	d.expect(gw.Record{Type: gw.TSend, Tag: tag, Group: "db", Order: gw.Safe, Payload: []byte("hello")})

	p.do("send db 0 -")
	if _, err := fmt.Sscanf(p.line(), "send %d %d", &rc, &tag); err != nil || rc != 0 {
		t.Fatal("empty send refused")
	}
	fresh(tag)
	d.expect(gw.Record{Type: gw.TSend, Tag: tag, Group: "db", Order: gw.Agreed})

	p.do("sendto db %s 000102", fmtMember(m2))
	if _, err := fmt.Sscanf(p.line(), "sendto %d %d", &rc, &tag); err != nil || rc != 0 {
		t.Fatal("send-to refused")
	}
	fresh(tag)
	d.expect(gw.Record{Type: gw.TSendTo, Tag: tag, Group: "db", To: m2, Payload: []byte{0, 1, 2}})

	p.do("txbegin")
	tag = d.expect(gw.Record{Type: gw.TTxBegin})
	fresh(tag)
	d.send(gw.Record{Type: gw.TReply, Tag: tag})
	p.want("txbegin 0")
	for _, g := range []string{"a", "b"} {
		p.do("txadd %s 78", g)
		tag = d.expect(gw.Record{Type: gw.TTxAdd, Group: g, Payload: []byte("x")})
		fresh(tag)
		d.send(gw.Record{Type: gw.TReply, Tag: tag})
		p.want("txadd 0")
	}
	p.do("txcommit 1")
	if _, err := fmt.Sscanf(p.line(), "txcommit %d %d", &rc, &tag); err != nil || rc != 0 {
		t.Fatal("tx-commit refused")
	}
	fresh(tag)
	d.expect(gw.Record{Type: gw.TTxCommit, Tag: tag, Order: gw.Safe})
	p.do("txadd a 78")
	tag = d.expect(gw.Record{Type: gw.TTxAdd, Group: "a", Payload: []byte("x")})
	d.send(gw.Record{Type: gw.TReply, Tag: tag, Code: gw.NoTx})
	p.want("txadd %d", neg(syscall.EPROTO))

	p.do("groups")
	tag = d.expect(gw.Record{Type: gw.TGroups})
	gl := []gw.GroupInfo{{Group: "db", View: v1, Members: 2}, {Group: "wéb", Members: 1}}
	d.send(gw.Record{Type: gw.TGroupList, Tag: tag, Groups: gl})
	p.want("groups 0 db:%s:2 wéb:%s:1", fmtView(v1), fmtView(gw.ViewID{}))
	p.do("groups")
	tag = d.expect(gw.Record{Type: gw.TGroups})
	d.send(gw.Record{Type: gw.TGroupList, Tag: tag})
	p.want("groups 0")

	p.do("members db")
	tag = d.expect(gw.Record{Type: gw.TMembers, Group: "db"})
	d.send(gw.Record{Type: gw.TMemberList, Tag: tag, Group: "db", View: v1, Members: []gw.Member{self, m2}})
	p.want("members 0 %s %s", fmtView(v1), fmtMembers([]gw.Member{self, m2}))
	p.do("members nope")
	tag = d.expect(gw.Record{Type: gw.TMembers, Group: "nope"})
	d.send(gw.Record{Type: gw.TReply, Tag: tag, Code: gw.NotFound, Text: "no group nope"})
	p.want("members %d %s ", neg(syscall.ENOENT), fmtView(gw.ViewID{}))

	// Refused here, before the wire: a name too long, an order unknown.
	p.do("join %s", strings.Repeat("g", gw.MaxName+1))
	p.want("join %d", neg(syscall.EINVAL))
	p.do("send db 2 00")
	p.want("send %d 0", neg(syscall.EINVAL))
	d.nothing()
}

// events has one event of each kind, with lists, empty strings and
// multi-byte names.
func events() []gw.Record {
	return []gw.Record{
		{Type: gw.TView, Group: "db", View: v1, Members: []gw.Member{self, m2}, Changes: []gw.Change{{Member: m2, Kind: gw.Joined}, {Member: gw.Member{Node: 2, Client: 9}, Kind: gw.Removed, Reason: "too slow: 4096 events unread"}}},
		{Type: gw.TMessage, Group: "db", View: v1, From: m2, Order: gw.Safe, Direct: true, ID: id1, Payload: []byte("hi\x00there")},
		{Type: gw.TMessage, Group: "ünï", View: v1, From: self, ID: id1},
		{Type: gw.TTx, From: m2, Order: gw.Agreed, Tx: 1<<40 + 3, ID: id1, Parts: []gw.Part{{Group: "a", Payload: []byte("1")}, {Group: "b"}}},
		{Type: gw.TBarrierDone, Group: "db", Barrier: "ready", Members: []gw.Member{self, m2}},
		{Type: gw.TBarrierDone, Group: "db", Barrier: "go", Failed: true, Text: "3/1(pid 17) died"},
		{Type: gw.TSendFailed, Tag: 4, Code: gw.NotMember, ID: id1, Text: "not a member of group db"},
		{Type: gw.TSendFailed, Tag: 5, Code: gw.TooLarge, Text: "too large"},
	}
}

func TestEvents(t *testing.T) {
	d, p := session(t, built.driver, welcome(256, 65536))
	// Batched in one packet, with a credit among them (for nothing in
	// flight it would be a lie: send first).
	p.do("send db 0 00")
	p.line()
	d.read()
	evs := events()
	all := append(append(append([]gw.Record{}, evs[:3]...), gw.Record{Type: gw.TCredit, Count: 1}), evs[3:]...)
	d.send(all...)
	p.do("pollfd 2000")
	p.want("pollfd 1")
	p.do("dispatch")
	for _, e := range evs {
		p.want("%s", fmtEvent(e))
	}
	p.want("dispatch %d", len(evs))
	p.do("dispatch")
	p.want("dispatch 0")
	p.do("pollfd 0")
	p.want("pollfd 0")

	// Two in one packet, dispatched one at a time: the fd stays readable
	// for the second, which is read already.
	d.send(evs[0], evs[1])
	p.do("dispatch block")
	p.want("%s", fmtEvent(evs[0]))
	p.want("dispatch 1")
	p.do("pollfd 0")
	p.want("pollfd 1")
	p.do("dispatch one")
	p.want("%s", fmtEvent(evs[1]))
	p.want("dispatch 1")
	p.do("pollfd 0")
	p.want("pollfd 0")

	// One packet each, delivered one at a time.
	for _, e := range evs {
		d.send(e)
	}
	for _, e := range evs {
		p.do("dispatch block")
		p.want("%s", fmtEvent(e))
		p.want("dispatch 1")
	}

	// A flood: dispatch ALL returns after 64 packets, the fd readable.
	for i := 0; i < 70; i++ {
		d.send(evs[2])
	}
	p.do("pollfd 2000")
	p.want("pollfd 1")
	p.do("dispatch")
	for i := 0; i < 64; i++ {
		p.want("%s", fmtEvent(evs[2]))
	}
	p.want("dispatch 64")
	p.do("pollfd 0")
	p.want("pollfd 1")
	p.do("dispatch")
	for i := 0; i < 6; i++ {
		p.want("%s", fmtEvent(evs[2]))
	}
	p.want("dispatch 6")

	// Events read while a request waits for its answer stay queued; the
	// fd says so although the socket is empty.
	p.do("join web")
	tag := d.expect(gw.Record{Type: gw.TJoin, Group: "web"})
	d.send(evs[0])
	d.send(evs[1], gw.Record{Type: gw.TReply, Tag: tag})
	p.want("join 0")
	p.do("pollfd 0")
	p.want("pollfd 1")
	p.do("dispatch one")
	p.want("%s", fmtEvent(evs[0]))
	p.want("dispatch 1")
	p.do("pollfd 0")
	p.want("pollfd 1")
	p.do("dispatch")
	p.want("%s", fmtEvent(evs[1]))
	p.want("dispatch 1")
	p.do("pollfd 0")
	p.want("pollfd 0")
}

// A callback may call the library: a request that waits for its answer
// (reading the socket from inside dispatch) and a send. Events read
// meanwhile come after, in order, from the same dispatch.
func TestReentrant(t *testing.T) {
	d, p := session(t, built.driver, welcome(8, 65536))
	p.do("reenter on")
	p.want("reenter 1")
	msg := events()[1]
	d.send(msg)
	p.do("dispatch")
	p.want("%s", fmtEvent(msg))
	tag := d.expect(gw.Record{Type: gw.TMembers, Group: "db"})
	view := events()[0]
	d.send(view)
	d.send(gw.Record{Type: gw.TMemberList, Tag: tag, Group: "db", View: v1, Members: []gw.Member{self, m2}})
	l := p.line()
	var rc, rc2, n int
	var sendTag uint32
	if _, err := fmt.Sscanf(l, "reentered %d %d %d %d", &rc, &n, &rc2, &sendTag); err != nil || rc != 0 || n != 2 || rc2 != 0 {
		t.Fatalf("driver said %q", l)
	}
	d.expect(gw.Record{Type: gw.TSend, Tag: sendTag, Group: "db", Order: msg.Order, Payload: msg.Payload})
	p.want("%s", fmtEvent(view))
	p.want("dispatch 2")
}

func TestCredit(t *testing.T) {
	d, p := session(t, built.driver, welcome(2, 65536))
	var rc int
	var tag uint32
	for i := 0; i < 2; i++ {
		p.do("send db 0 0%d", i)
		p.line()
		d.read()
	}
	p.do("send db 0 02")
	p.want("send %d 0", neg(syscall.EAGAIN))
	d.nothing()
	p.do("pollfd 0")
	p.want("pollfd 0")
	d.send(gw.Record{Type: gw.TCredit, Count: 1})
	p.do("pollfd 2000")
	p.want("pollfd 1")
	p.do("dispatch")
	p.want("dispatch 0")
	p.do("send db 0 02")
	if _, err := fmt.Sscanf(p.line(), "send %d %d", &rc, &tag); err != nil || rc != 0 {
		t.Fatal("send after credit refused")
	}
	d.expect(gw.Record{Type: gw.TSend, Tag: tag, Group: "db", Payload: []byte{2}})

	// Window full again: a blocking send waits for credit, reading the
	// events that come first into the queue.
	p.do("send db 0 03 block")
	p.quiet()
	d.nothing()
	d.send(events()[1])
	p.quiet()
	d.send(gw.Record{Type: gw.TCredit, Count: 2})
	if _, err := fmt.Sscanf(p.line(), "send %d %d", &rc, &tag); err != nil || rc != 0 {
		t.Fatal("blocking send failed")
	}
	d.expect(gw.Record{Type: gw.TSend, Tag: tag, Group: "db", Payload: []byte{3}})
	p.do("dispatch")
	p.want("%s", fmtEvent(events()[1]))
	p.want("dispatch 1")
	// A send-failed comes before the credit that counts it.
	d.send(gw.Record{Type: gw.TSendFailed, Tag: tag, Code: gw.WouldBlock, Text: "no credit"}, gw.Record{Type: gw.TCredit, Count: 1})
	p.do("dispatch block")
	p.want("sendfailed %d %d 0/0/0 {no credit}", tag, neg(syscall.EAGAIN))
	p.want("dispatch 1")
}

func TestPayloadLimits(t *testing.T) {
	d, p := session(t, built.driver, welcome(8, 1000))
	p.do("sendsize db 1001")
	p.want("send %d", neg(syscall.EMSGSIZE))
	p.do("txadd db %s", strings.Repeat("00", 1001))
	p.want("txadd %d", neg(syscall.EMSGSIZE))
	d.nothing()
	p.do("sendsize db 1000")
	p.want("send 0")
	if r, _, err := gw.Next(d.read()); err != nil || len(r.Payload) != 1000 {
		t.Fatalf("send of 1000 bytes: %v", err)
	}

	// The protocol's own bound, whatever the welcome says.
	d, p = session(t, built.driver, welcome(8, 1<<20))
	p.do("sendsize db %d", gw.MaxPayload+1)
	p.want("send %d", neg(syscall.EMSGSIZE))
	d.nothing()
	p.do("sendsize db %d", gw.MaxPayload)
	p.want("send 0")
	if r, _, err := gw.Next(d.read()); err != nil || len(r.Payload) != gw.MaxPayload {
		t.Fatalf("send of %d bytes: %v", gw.MaxPayload, err)
	}
}

// rawRecord is a record with any header and body.
func rawRecord(t gw.Type, tag uint32, body []byte) []byte {
	b := make([]byte, gw.HeaderLen, gw.HeaderLen+len(body))
	putLE(b, uint32(gw.HeaderLen+len(body)))
	b[4], b[5] = byte(t), byte(t>>8)
	putLE(b[8:], tag)
	return append(b, body...)
}

func putLE(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func enc(t testing.TB, r gw.Record) []byte {
	b, err := gw.Append(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMalformed(t *testing.T) {
	needBuild(t)
	msg := enc(t, events()[1])
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(msg)) }
	member := make([]byte, 22)
	for _, c := range []struct {
		name string
		p    []byte
	}{
		{"short", msg[:5]},
		{"length past packet", mod(func(b []byte) []byte { b[0]++; return b })},
		{"length below header", mod(func(b []byte) []byte { putLE(b, 4); return b })},
		{"flags", mod(func(b []byte) []byte { b[6] = 1; return b })},
		{"unknown type", rawRecord(40, 0, nil)},
		{"a request", enc(t, gw.Record{Type: gw.TJoin, Tag: 2, Group: "db"})},
		{"bad order", mod(func(b []byte) []byte { b[12+2+2+22+22] = 2; return b })},
		{"bad direct", mod(func(b []byte) []byte { b[12+2+2+22+22+1] = 2; return b })},
		{"truncated payload", mod(func(b []byte) []byte { putLE(b, uint32(len(b)-1)); return b[:len(b)-1] })},
		{"trailing bytes", mod(func(b []byte) []byte { putLE(b, uint32(len(b)+1)); return append(b, 0) })},
		{"empty group", rawRecord(gw.TMemberList, 0, append([]byte{0, 0}, make([]byte, 22+4)...))},
		{"NUL in group", rawRecord(gw.TView, 0, append([]byte{1, 0, 0}, make([]byte, 22+8)...))},
		{"not UTF-8", rawRecord(gw.TView, 0, append([]byte{1, 0, 0xff}, make([]byte, 22+8)...))},
		{"UTF-8 surrogate", rawRecord(gw.TView, 0, append([]byte{3, 0, 0xed, 0xa0, 0x80}, make([]byte, 22+8)...))},
		{"UTF-8 overlong", rawRecord(gw.TView, 0, append([]byte{2, 0, 0xc0, 0xaf}, make([]byte, 22+8)...))},
		{"group too long", rawRecord(gw.TView, 0, append(append([]byte{0, 1}, bytes.Repeat([]byte("g"), 256)...), make([]byte, 22+8)...))},
		{"huge payload", rawRecord(gw.TTx, 0, append(make([]byte, 22+1+8+18), 1, 0, 0, 0, 1, 0, 'g', 1, 0, 1, 0))},
		{"forged count", rawRecord(gw.TView, 0, append(append([]byte{1, 0, 'g'}, make([]byte, 22)...), 0xff, 0xff, 0xff, 0x0f))},
		{"bad code", rawRecord(gw.TSendFailed, 0, append([]byte{99, 0}, make([]byte, 18+2)...))},
		{"send-failed ok", rawRecord(gw.TSendFailed, 0, make([]byte, 2+18+2))},
		{"bad change kind", rawRecord(gw.TView, 0, append(append([]byte{1, 0, 'g'}, make([]byte, 22+4)...), append([]byte{1, 0, 0, 0}, append(member, 9, 0, 0)...)...))},
		{"bad failed flag", rawRecord(gw.TBarrierDone, 0, []byte{1, 0, 'g', 1, 0, 'b', 2, 0, 0, 0, 0, 0, 0})},
		{"text too long", rawRecord(gw.TSendFailed, 0, append(append([]byte{1, 0}, make([]byte, 18)...), append([]byte{byte((gw.MaxText + 1) & 0xff), byte((gw.MaxText + 1) >> 8)}, bytes.Repeat([]byte("x"), gw.MaxText+1)...)...))},
		{"reply to no request", enc(t, gw.Record{Type: gw.TReply, Tag: 77})},
		{"list to no request", enc(t, gw.Record{Type: gw.TGroupList, Tag: 77})},
		{"welcome again", enc(t, welcome(4, 100))},
		{"credit never owed", enc(t, gw.Record{Type: gw.TCredit, Count: 1})},
		{"fragment after a record", []byte{0x0c, 0, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Malformed for the Go decoder too, but for those only a client
			// can tell: out of place, or not for this direction.
			if _, err := gw.Records(c.p); err == nil && !strings.Contains("a request|reply to no request|list to no request|welcome again|credit never owed|send-failed ok", c.name) {
				t.Fatalf("the Go decoder takes %x: the case is wrong", c.p)
			}
			d, p := session(t, built.driver, welcome(4, 65536))
			// An event before the bad record is still delivered.
			d.raw(append(enc(t, events()[0]), c.p...))
			p.do("dispatch")
			p.want("%s", fmtEvent(events()[0]))
			p.want("dispatch 1")
			p.do("dispatch")
			p.want("dispatch %d", neg(syscall.EPROTO))
			d.closed()
			p.do("join db")
			p.want("join %d", neg(syscall.EPROTO))
			p.do("close")
			p.want("close 0")
		})
	}

	// While a request waits for its answer.
	t.Run("during a request", func(t *testing.T) {
		d, p := session(t, built.driver, welcome(4, 65536))
		p.do("members db")
		tag := d.expect(gw.Record{Type: gw.TMembers, Group: "db"})
		d.send(gw.Record{Type: gw.TGroupList, Tag: tag})
		p.want("members %d %s ", neg(syscall.EPROTO), fmtView(gw.ViewID{}))
		d.closed()
	})

	// In the handshake: an event first, a version we did not offer.
	for name, first := range map[string][]byte{
		"event before welcome": enc(t, events()[0]),
		"welcome version 2":    func() []byte { w := welcome(4, 100); w.Version = 2; return enc(t, w) }(),
		"welcome bad tag":      func() []byte { w := welcome(4, 100); w.Tag = 2; return enc(t, w) }(),
		"reply ok to hello":    enc(t, gw.Record{Type: gw.TReply, Tag: 1}),
	} {
		t.Run(name, func(t *testing.T) {
			d := newDaemon(t)
			p := startDriver(t, built.driver, d.path)
			p.do("open")
			d.accept()
			d.read()
			d.raw(first)
			p.want("open %d", neg(syscall.EPROTO))
			d.closed()
		})
	}

	t.Run("packet past the maximum", func(t *testing.T) {
		d, p := session(t, built.driver, welcome(4, 65536))
		big := make([]byte, gw.MaxPacket+1)
		if _, err := d.c.Write(big); err != nil {
			t.Skipf("SKIP: this kernel's socket buffer takes no packet of %d bytes: %v", len(big), err)
		}
		p.do("dispatch")
		p.want("dispatch %d", neg(syscall.EPROTO))
	})
}

// Two threads send at once through one handle, with a small window, so
// both wait for credit in turn; with ThreadSanitizer too.
func TestThreads(t *testing.T) {
	needBuild(t)
	for _, bin := range []string{built.driver, built.tsan} {
		if bin == "" {
			t.Log("SKIP: no ThreadSanitizer build")
			continue
		}
		t.Run(filepath.Base(bin), func(t *testing.T) {
			const each = 2000
			d, p := session(t, bin, welcome(8, 65536))
			p.do("threads %d db", each)
			next := [2]int{}
			tags := map[uint32]bool{}
			for n := 0; n < 2*each; n++ {
				r, rest, err := gw.Next(d.read())
				if err != nil || len(rest) != 0 || r.Type != gw.TSend || r.Group != "db" {
					t.Fatalf("send %d: %+v, %v", n, r, err)
				}
				var th, i int
				if _, err := fmt.Sscanf(string(r.Payload), "t%d-%d", &th, &i); err != nil || th > 1 || i != next[th] {
					t.Fatalf("send %d: payload %q, want thread %d's message %d", n, r.Payload, th, next[th])
				}
				next[th]++
				if tags[r.Tag] {
					t.Fatalf("tag %d twice", r.Tag)
				}
				tags[r.Tag] = true
				if n%3 == 2 {
					d.send(gw.Record{Type: gw.TCredit, Count: 3})
				}
			}
			d.send(gw.Record{Type: gw.TCredit, Count: 2 * each % 3})
			p.want("threads 0 0")
			if strings.Contains(p.stderr.String(), "ThreadSanitizer") {
				t.Errorf("%s", p.stderr.String())
			}
		})
	}
}

// One thread dispatches, blocking in the socket, while two others send
// and wait for credit: the reading passes between them, and credit and
// messages each reach the thread that waits for them.
func TestThreadsWithDispatcher(t *testing.T) {
	needBuild(t)
	for _, bin := range []string{built.driver, built.tsan} {
		if bin == "" {
			t.Log("SKIP: no ThreadSanitizer build")
			continue
		}
		t.Run(filepath.Base(bin), func(t *testing.T) {
			const each, msgs = 1500, 750
			d, p := session(t, bin, welcome(8, 65536))
			p.do("bgdispatch %d", msgs)
			p.want("bgdispatch started")
			p.do("threads %d db", each)
			msg := events()[1]
			for n := 0; n < 2*each; n++ {
				if r, _, err := gw.Next(d.read()); err != nil || r.Type != gw.TSend {
					t.Fatalf("send %d: %+v, %v", n, r, err)
				}
				// Credit first, so that a message alone wakes only the dispatcher.
				d.send(gw.Record{Type: gw.TCredit, Count: 1})
				if n%4 == 3 {
					d.send(msg)
				}
			}
			p.want("threads 0 0")
			p.do("bgdispatch")
			p.want("bgdispatch 0 %d", msgs)
			if strings.Contains(p.stderr.String(), "ThreadSanitizer") {
				t.Errorf("%s", p.stderr.String())
			}
		})
	}
}

// The library exports its API and nothing else, under its soname.
func TestExports(t *testing.T) {
	needBuild(t)
	f, err := elf.Open(filepath.Join(built.dir, "libconcord.so.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if so, err := f.DynString(elf.DT_SONAME); err != nil || len(so) != 1 || so[0] != "libconcord.so.1" {
		t.Errorf("soname %v, %v; want libconcord.so.1", so, err)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	header, err := os.ReadFile("include/concord/group.h")
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, s := range syms {
		if s.Section == elf.SHN_UNDEF || elf.ST_TYPE(s.Info) != elf.STT_FUNC {
			continue
		}
		exported[s.Name] = true
		if !strings.HasPrefix(s.Name, "concord_group_") || !regexp.MustCompile(`[ *]`+s.Name+`\(`).Match(header) {
			t.Errorf("exported %s, which group.h does not declare", s.Name)
		}
		if s.Version != "CONCORD_1" {
			t.Errorf("%s has version %q, want CONCORD_1", s.Name, s.Version)
		}
	}
	for _, line := range strings.Split(string(header), "\n") {
		for _, w := range strings.FieldsFunc(line, func(r rune) bool { return strings.ContainsRune(" *(", r) }) {
			if strings.HasPrefix(w, "concord_group_") && strings.Contains(line, w+"(") && !strings.HasPrefix(strings.TrimSpace(line), "void (*") && !exported[w] {
				t.Errorf("group.h declares %s, the library does not export it", w)
			}
		}
	}
	libs, _ := f.ImportedLibraries()
	for _, l := range libs {
		if l != "libc.so.6" {
			t.Errorf("links %s: only libc is wanted", l)
		}
	}
}

// The example, built by the Makefile, joins, sends its input and prints
// what it receives.
func TestExample(t *testing.T) {
	needBuild(t)
	bin := filepath.Join(built.dir, "examples", "concord-chat")
	d := newDaemon(t)
	cmd := exec.Command(bin, "room")
	cmd.Env = append(os.Environ(), "CONCORD_GROUP_SOCKET="+d.path, "LD_LIBRARY_PATH="+built.dir)
	in, _ := cmd.StdinPipe()
	var out lockedBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	d.accept()
	d.expect(gw.Record{Type: gw.THello, Tag: 1, Version: gw.Version, Name: "concord-chat"})
	d.send(welcome(8, 65536))
	tag := d.expect(gw.Record{Type: gw.TJoin, Group: "room"})
	d.send(gw.Record{Type: gw.TView, Group: "room", View: v1, Members: []gw.Member{self}, Changes: []gw.Change{{Member: self, Kind: gw.Joined}}},
		gw.Record{Type: gw.TReply, Tag: tag})
	io.WriteString(in, "hello there\n")
	r, _, err := gw.Next(d.read())
	if err != nil || r.Type != gw.TSend || r.Group != "room" || string(r.Payload) != "hello there" {
		t.Fatalf("example sent %+v, %v", r, err)
	}
	d.send(gw.Record{Type: gw.TMessage, Group: "room", View: v1, From: m2, ID: id1, Payload: []byte("hi back")}, gw.Record{Type: gw.TCredit, Count: 1})
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "3/1: hi back") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"* cluster alpha, I am 1/7", "* room: view 12.1, 1 members", "1/7 (pid 4242) joined", "3/1: hi back"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("example printed\n%s\nwithout %q", out.String(), want)
		}
	}
}

// The library's own rates against the fake daemon, whose Go loop is part
// of what is measured (so these are floors): 1 KiB sends with a window of
// 256, and 1 KiB messages received, 16 records a packet.
func BenchmarkSend1K(b *testing.B) {
	d, p := session(b, built.driver, welcome(256, 65536))
	n := b.N
	p.do("blast %d 1024 db", n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, gw.MaxPacket)
		owed := 0
		for i := 0; i < n; i++ {
			if _, err := d.c.Read(buf); err != nil {
				return
			}
			if owed++; owed == 32 || i == n-1 {
				c, _ := gw.Append(nil, &gw.Record{Type: gw.TCredit, Count: uint32(owed)})
				d.c.Write(c)
				owed = 0
			}
		}
	}()
	d.c.SetReadDeadline(time.Time{})
	var rc int
	var ns int64
	if _, err := fmt.Sscanf(p.line(), "blast %d %d", &rc, &ns); err != nil || rc != 0 {
		b.Fatalf("blast: %d, %v", rc, err)
	}
	<-done
	b.ReportMetric(float64(n)/(float64(ns)/1e9), "msgs/s")
}

func BenchmarkReceive1K(b *testing.B) {
	d, p := session(b, built.driver, welcome(256, 65536))
	n := b.N
	msg := events()[1]
	msg.Payload = make([]byte, 1024)
	var packet []byte
	for i := 0; i < 16; i++ {
		packet, _ = gw.Append(packet, &msg)
	}
	p.do("drain %d", n)
	go func() {
		for sent := 0; sent < n; sent += 16 {
			if _, err := d.c.Write(packet); err != nil {
				return
			}
		}
	}()
	var rc int
	var ns int64
	if _, err := fmt.Sscanf(p.line(), "drain %d %d", &rc, &ns); err != nil || rc != 0 {
		b.Fatalf("drain: %d, %v", rc, err)
	}
	b.ReportMetric(float64(n)/(float64(ns)/1e9), "msgs/s")
}
