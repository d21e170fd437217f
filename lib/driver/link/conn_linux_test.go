//go:build linux

package link

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNetns moves the calling goroutine, locked to its thread, into a new
// network namespace and returns a netlink handle in it and a function
// that moves back. Everything made in the namespace, including the veths,
// goes away when the namespace's last socket closes.
func inNetns(t *testing.T) (*netlink.Handle, func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("getting current netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		if errors.Is(err, os.ErrPermission) {
			t.Skipf("SKIP: creating a network namespace needs CAP_SYS_ADMIN: %v", err)
		}
		t.Fatalf("creating netns: %v", err)
	}
	var h *netlink.Handle
	leave := func() {
		if h != nil {
			h.Close()
		}
		ns.Close()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked so the runtime discards it
			// instead of reusing a thread in the wrong namespace.
			t.Errorf("returning to the original netns: %v", err)
			return
		}
		orig.Close()
		runtime.UnlockOSThread()
	}
	if h, err = netlink.NewHandleAt(ns); err != nil {
		leave()
		t.Fatalf("netlink handle: %v", err)
	}
	return h, leave
}

func addVeth(t *testing.T, h *netlink.Handle, a, b string) {
	t.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b}
	if err := h.LinkAdd(veth); err != nil {
		if errors.Is(err, os.ErrPermission) {
			t.Skipf("SKIP: creating a veth pair needs CAP_NET_ADMIN: %v", err)
		}
		t.Fatalf("adding veth %s/%s: %v", a, b, err)
	}
	for _, name := range []string{a, b} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatalf("setting %s up: %v", name, err)
		}
	}
}

func openConn(t *testing.T, name string, group net.HardwareAddr) *Conn {
	t.Helper()
	c, err := Open(name, group)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			t.Skipf("SKIP: opening a packet socket needs CAP_NET_RAW: %v", err)
		}
		t.Fatal(err)
	}
	if c.Name() != name {
		t.Fatalf("Name() = %q, want %q", c.Name(), name)
	}
	return c
}

var warmup = []byte("warm-up")

// warmUp sends frames from a to b until one arrives. A fresh veth drops
// frames until the kernel has attached its qdisc after carrier-on, which
// happens asynchronously.
func warmUp(t *testing.T, a, b *Conn) {
	t.Helper()
	buf := make([]byte, 1500)
	for range 500 {
		if err := a.WriteTo(warmup, b.HardwareAddr()); err != nil {
			t.Fatal(err)
		}
		b.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		n, _, err := b.ReadFrom(buf)
		if err == nil && bytes.Equal(buf[:n], warmup) {
			b.SetReadDeadline(time.Time{})
			return
		}
	}
	t.Fatalf("no frame from %s reached %s", a.Name(), b.Name())
}

// expect reads the next frame on c that is not a warm-up and checks it.
func expect(t *testing.T, c *Conn, payload []byte, src net.HardwareAddr) {
	t.Helper()
	buf := make([]byte, 1500)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("%s: waiting for %q: %v", c.Name(), payload, err)
		}
		if bytes.Equal(buf[:n], warmup) {
			continue
		}
		if !bytes.Equal(buf[:n], payload) || !bytes.Equal(from, src) {
			t.Fatalf("%s: got %q from %s, want %q from %s", c.Name(), buf[:n], from, payload, src)
		}
		return
	}
}

// joined reports whether /proc lists group on ifname in the current
// thread's network namespace.
func joined(t *testing.T, ifname string, group net.HardwareAddr) bool {
	f, err := os.Open("/proc/thread-self/net/dev_mcast")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := strings.ReplaceAll(group.String(), ":", "")
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) == 5 && fs[1] == ifname && fs[4] == want {
			return true
		}
	}
	return false
}

func TestConnVeth(t *testing.T) {
	h, leave := inNetns(t)
	defer leave()
	addVeth(t, h, "cc-a", "cc-b")

	group := MulticastGroup(0x0c0ffee1)
	a := openConn(t, "cc-a", group)
	defer a.Close()
	b := openConn(t, "cc-b", group)
	defer b.Close()
	if !joined(t, "cc-b", group) {
		t.Fatalf("cc-b did not join %s", group)
	}
	warmUp(t, a, b)
	warmUp(t, b, a)

	// A second socket on cc-a must not see what cc-a itself sends (the
	// kernel copies outgoing frames only to ETH_P_ALL sockets).
	a2 := openConn(t, "cc-a", nil)
	defer a2.Close()

	// A socket of another EtherType on cc-a, whose frames must not reach b.
	ifa, err := net.InterfaceByName("cc-a")
	if err != nil {
		t.Fatal(err)
	}
	other, err := packet.Listen(ifa, packet.Datagram, 0x88B6, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	big := bytes.Repeat([]byte{0x5a}, 1500)
	tests := []struct {
		name     string
		from, to *Conn
		dst      net.HardwareAddr
		payload  []byte
	}{
		{"unicast a to b", a, b, b.HardwareAddr(), []byte("unicast from a")},
		{"unicast b to a", b, a, a.HardwareAddr(), []byte("unicast from b")},
		{"multicast a to b", a, b, group, []byte("multicast from a")},
		{"multicast b to a", b, a, group, []byte("multicast from b")},
		{"full MTU", a, b, group, big},
		{"short payload", b, a, a.HardwareAddr(), []byte{1}},
	}
	for _, tt := range tests {
		if _, err := other.WriteTo([]byte("other ethertype"), &packet.Addr{HardwareAddr: tt.dst}); err != nil {
			t.Fatal(err)
		}
		if err := tt.from.WriteTo(tt.payload, tt.dst); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		// The frame of the other EtherType was sent first; the next frame
		// read must still be ours.
		expect(t, tt.to, tt.payload, tt.from.HardwareAddr())
	}
	// a2 has seen a's own frames go out only if outgoing frames leak:
	// the first frame it reads must be one that b sent.
	expect(t, a2, []byte("unicast from b"), b.HardwareAddr())

	if err := a.WriteTo(make([]byte, 1501), b.HardwareAddr()); err == nil {
		t.Error("WriteTo of 1501 bytes on a 1500-byte MTU succeeded")
	}
	st, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets == 0 || st.Drops != 0 {
		t.Errorf("b stats %+v, want packets and no drops", st)
	}
}

// The daemon's link readers stop on net.ErrClosed: a read blocked when the
// Conn closes, and any later read or write, must return it.
func TestConnCloseAndDeadline(t *testing.T) {
	h, leave := inNetns(t)
	defer leave()
	addVeth(t, h, "cc-a", "cc-b")
	a := openConn(t, "cc-a", nil)
	buf := make([]byte, 1500)

	a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := a.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrom past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	a.SetReadDeadline(time.Time{})
	if err := a.WriteTo([]byte("x"), net.HardwareAddr{1, 2, 3}); err == nil || !strings.Contains(err.Error(), `bad destination "01:02:03"`) {
		t.Errorf("WriteTo a 3-byte address: %v", err)
	}
	if err := a.WriteTo(nil, MulticastGroup(1)); err == nil || !strings.Contains(err.Error(), "empty payload") {
		t.Errorf("WriteTo of nothing: %v", err)
	}

	done := make(chan error, 1)
	go func() {
		_, _, err := a.ReadFrom(buf)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked ReadFrom after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrom still blocked 5 s after Close")
	}
	if _, _, err := a.ReadFrom(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrom after Close: %v, want net.ErrClosed", err)
	}
	if err := a.WriteTo([]byte("x"), MulticastGroup(1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close: %v, want net.ErrClosed", err)
	}
}

func TestOpenErrors(t *testing.T) {
	_, leave := inNetns(t)
	defer leave()
	if _, err := Open("cc-missing", nil); err == nil || !strings.Contains(err.Error(), "cc-missing") {
		t.Errorf("Open of a missing interface: %v", err)
	}
	// Loopback has no Ethernet address.
	if _, err := Open("lo", nil); err == nil || !strings.Contains(err.Error(), `lo: not an Ethernet interface (hardware address "")`) {
		t.Errorf("Open(lo): %v", err)
	}
	unicast := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	if _, err := Open("lo", unicast); err == nil || !strings.Contains(err.Error(), `bad multicast group "02:00:00:00:00:01"`) {
		t.Errorf("Open with a unicast group: %v", err)
	}
}

// Deferred frames (byte 3 is 2 or 7 here, as a kind byte would be) reach
// only ReadDeferred, in order and several in one call, and every other
// frame, however short, only ReadFrom.
func TestConnDefer(t *testing.T) {
	h, leave := inNetns(t)
	defer leave()
	addVeth(t, h, "cc-a", "cc-b")
	group := MulticastGroup(0x0c0ffee1)
	a := openConn(t, "cc-a", group)
	defer a.Close()
	b := openConn(t, "cc-b", group)
	frames := make([]Frame, 2)
	for i := range frames {
		frames[i].Buf = make([]byte, 1500)
	}
	if _, err := b.ReadDeferred(frames); err == nil || !strings.Contains(err.Error(), "Defer was not called") {
		t.Errorf("ReadDeferred before Defer: %v", err)
	}
	warmUp(t, a, b)
	if err := b.Defer(3); err == nil {
		t.Error("Defer of no values succeeded")
	}
	if err := b.Defer(3, 7, 2); err != nil {
		t.Fatal(err)
	}
	if err := b.Defer(3, 7); err == nil {
		t.Error("a second Defer succeeded")
	}
	deferred := [][]byte{[]byte("CC\x01\x07multicast"), []byte("CC\x01\x02other deferred kind"), []byte("CC\x01\x07unicast")}
	eager := [][]byte{[]byte("CC\x01\x01other kind"), []byte("ab"), []byte("abc"), []byte("CC\x01\x06")}
	send := func(p []byte, dst net.HardwareAddr) {
		t.Helper()
		if err := a.WriteTo(p, dst); err != nil {
			t.Fatal(err)
		}
	}
	send(deferred[0], group)
	send(deferred[1], b.HardwareAddr())
	for _, p := range eager {
		send(p, b.HardwareAddr())
	}
	send(deferred[2], b.HardwareAddr())
	marker := []byte("marker")
	send(marker, group)
	// The frames sent before the marker have all been queued once it is
	// read: each ReadFrom must be the next eager one.
	for _, p := range append(eager, marker) {
		expect(t, b, p, a.HardwareAddr())
	}
	var got [][]byte
	for _, want := range []int{2, 1, 0} { // two frames a call
		n, err := b.ReadDeferred(frames)
		if err != nil || n != want {
			t.Fatalf("ReadDeferred: %d frames, err %v; want %d", n, err, want)
		}
		for _, f := range frames[:n] {
			if !bytes.Equal(f.Src, a.HardwareAddr()) {
				t.Errorf("ReadDeferred: %q from %s, want from %s", f.Buf[:f.N], f.Src, a.HardwareAddr())
			}
			got = append(got, append([]byte(nil), f.Buf[:f.N]...))
		}
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", deferred) {
		t.Errorf("deferred frames %q, want %q", got, deferred)
	}
	if st, err := b.Stats(); err != nil || st.Drops != 0 {
		t.Errorf("b stats %+v, %v", st, err)
	}
	// As root (the test's netns needs it), the larger queue was granted;
	// the kernel reports twice the size asked for.
	if v, err := unix.GetsockoptInt(b.dfd, unix.SOL_SOCKET, unix.SO_RCVBUF); err != nil || v < deferredRcvbuf {
		t.Errorf("deferred socket's receive buffer: %d, %v; want %d or more", v, err, deferredRcvbuf)
	}
	b.Close()
	if _, err := b.ReadDeferred(frames); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadDeferred after Close: %v, want net.ErrClosed", err)
	}
}
