//go:build linux

package link

import (
	"encoding/binary"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// allmulti reads the NIC's all-multicast count (IFLA_ALLMULTI) in the
// current thread's network namespace; ok is false when the kernel does
// not report it (before Linux 6.7).
func allmulti(t *testing.T, ifname string) (count uint32, ok bool) {
	t.Helper()
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(ifname)))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("RTM_GETLINK %s: %d messages, %v", ifname, len(msgs), err)
	}
	attrs, err := nl.ParseRouteAttr(msgs[0][unix.SizeofIfInfomsg:])
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range attrs {
		if a.Attr.Type == unix.IFLA_ALLMULTI && len(a.Value) == 4 {
			return binary.NativeEndian.Uint32(a.Value), true
		}
	}
	return 0, false
}

// A veth delivers every multicast frame anyway, so what is checked is the
// NIC's all-multicast mode, which real NICs need to pass frames of groups
// nobody joined: on while the socket asks for it, off once it is closed.
func TestReceiveAllMulticast(t *testing.T) {
	h, leave := inNetns(t)
	defer leave()
	addVeth(t, h, "cc-a", "cc-b")
	if _, ok := allmulti(t, "cc-a"); !ok {
		t.Skip("SKIP: this kernel does not report IFLA_ALLMULTI (Linux 6.7 and later do)")
	}
	if n, _ := allmulti(t, "cc-a"); n != 0 {
		t.Fatalf("cc-a's all-multicast count is %d before anyone asked", n)
	}
	c := openConn(t, "cc-a", MulticastGroup(1))
	if err := c.ReceiveAllMulticast(); err != nil {
		t.Fatal(err)
	}
	if n, _ := allmulti(t, "cc-a"); n != 1 {
		t.Fatalf("cc-a's all-multicast count is %d, want 1", n)
	}
	c.Close()
	if n, _ := allmulti(t, "cc-a"); n != 0 {
		t.Fatalf("cc-a's all-multicast count is %d after the socket closed, want 0", n)
	}
	if err := c.ReceiveAllMulticast(); err == nil {
		t.Fatal("ReceiveAllMulticast on a closed Conn succeeded")
	}
}
