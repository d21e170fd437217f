package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testEtherType is IEEE's local experimental EtherType: nothing else on the
// test bridges uses it.
const testEtherType = 0x88b5

func TestSmoke(t *testing.T) {
	requireHost(t)
	deb := os.Getenv("CONCORD_DEB")
	if deb != "" {
		if _, err := os.Stat(deb); err != nil {
			t.Logf("CONCORD_DEB=%s not usable (%v); not installing Concord", deb, err)
			deb = ""
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := New(ctx, t, Options{Nodes: 2, Deb: deb})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("timings: rootfs %v, boot %v (median %v)", c.Timings.Rootfs.Round(time.Millisecond),
		c.Timings.Boot, c.Timings.MedianBoot().Round(time.Millisecond))

	t.Run("identity", func(t *testing.T) {
		ids := map[string]int{}
		for i := 1; i <= c.Size(); i++ {
			state, err := c.Systemctl(ctx, i, "is-system-running")
			if s := strings.TrimSpace(state); s != "running" && s != "degraded" {
				t.Errorf("node%d: is-system-running = %q (%v)", i, s, err)
			}
			host, _, err := c.Exec(ctx, i, "hostname")
			if err != nil || strings.TrimSpace(host) != fmt.Sprintf("node%d", i) {
				t.Errorf("node%d: hostname %q, %v", i, host, err)
			}
			if mode, _, err := c.Exec(ctx, i, "stat", "-c", "%a", "/"); strings.TrimSpace(mode) != "755" {
				t.Errorf("node%d: / has mode %q (%v), want 755", i, mode, err)
			}
			mid, _, err := c.Exec(ctx, i, "cat", "/etc/machine-id")
			mid = strings.TrimSpace(mid)
			if err != nil || mid != c.Node(i).MachineID {
				t.Errorf("node%d: machine-id %q, want %q (%v)", i, mid, c.Node(i).MachineID, err)
			}
			if j, dup := ids[mid]; dup {
				t.Errorf("node%d and node%d share machine-id %s", j, i, mid)
			}
			ids[mid] = i
		}
	})

	t.Run("links", func(t *testing.T) {
		macs := map[string]string{}
		for i := 1; i <= c.Size(); i++ {
			n := c.Node(i)
			for l := 0; l < 2; l++ {
				name := fmt.Sprintf("node%d/%s", i, LinkName(l))
				got, _, err := c.Exec(ctx, i, "cat", "/sys/class/net/"+LinkName(l)+"/address", "/sys/class/net/"+LinkName(l)+"/operstate")
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				f := strings.Fields(got)
				if len(f) != 2 || f[0] != n.MACs[l].String() || f[1] != "up" {
					t.Errorf("%s: address and operstate %q, want %s up", name, f, n.MACs[l])
				}
				if other, dup := macs[f[0]]; dup {
					t.Errorf("%s and %s share MAC %s", other, name, f[0])
				}
				macs[f[0]] = name
				master, err := os.Readlink("/sys/class/net/" + n.HostIfs[l] + "/master")
				if err != nil || !strings.HasSuffix(master, "/"+c.Bridge(l)) {
					t.Errorf("%s: host side %s master %q (%v), want %s", name, n.HostIfs[l], master, err, c.Bridge(l))
				}
			}
		}
	})

	t.Run("frames", func(t *testing.T) {
		for l := 0; l < 2; l++ {
			if err := exchange(c, 1, 2, l, []byte(fmt.Sprintf("hello on hb%d", l))); err != nil {
				t.Errorf("hb%d: %v", l, err)
			}
		}
	})

	t.Run("cut link", func(t *testing.T) {
		if err := c.CutLink(1, 0); err != nil {
			t.Fatal(err)
		}
		rules, err := c.Rules()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`iifname "` + c.Node(1).HostIfs[0] + `"`, `oifname "` + c.Node(1).HostIfs[0] + `"`} {
			if !strings.Contains(rules, want) {
				t.Errorf("rules after CutLink(1, 0) lack %s:\n%s", want, rules)
			}
		}
		// A frame sent while the link is cut is counted by a drop rule;
		// after RestoreLink the next frame is the first one to arrive.
		rx, err := openPacket(c, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(rx)
		if err := send(c, 1, 2, 0, []byte("lost")); err != nil {
			t.Fatal(err)
		}
		if err := Eventually(ctx, func() (bool, string) {
			r, _ := c.Rules()
			return dropped(r) > 0, "no packets counted by the drop rules:\n" + r
		}); err != nil {
			t.Error(err)
		}
		if err := exchange(c, 1, 2, 1, []byte("hb1 still works")); err != nil {
			t.Errorf("hb1 with hb0 cut: %v", err)
		}
		if err := c.RestoreLink(1, 0); err != nil {
			t.Fatal(err)
		}
		if r, _ := c.Rules(); strings.Contains(r, "drop") {
			t.Errorf("rules after RestoreLink still drop:\n%s", r)
		}
		if err := send(c, 1, 2, 0, []byte("found")); err != nil {
			t.Fatal(err)
		}
		if got, err := recv(rx); err != nil || string(got) != "found" {
			t.Errorf("first frame after restore = %q, %v; want \"found\"", got, err)
		}
	})

	t.Run("cut link one way", func(t *testing.T) {
		if err := c.CutLinkTx(1, 0); err != nil {
			t.Fatal(err)
		}
		r, _ := c.Rules()
		if !strings.Contains(r, `iifname "`+c.Node(1).HostIfs[0]+`"`) || strings.Contains(r, "oifname") {
			t.Errorf("rules after CutLinkTx(1, 0) should drop what node1 sends on hb0 only:\n%s", r)
		}
		if err := exchange(c, 2, 1, 0, []byte("node1 still hears hb0")); err != nil {
			t.Errorf("hb0 towards the node whose sending side is cut: %v", err)
		}
		before := dropped(r)
		if err := send(c, 1, 2, 0, []byte("lost")); err != nil {
			t.Fatal(err)
		}
		if err := Eventually(ctx, func() (bool, string) {
			r, _ := c.Rules()
			return dropped(r) > before, "what node1 sent on hb0 was not dropped:\n" + r
		}); err != nil {
			t.Error(err)
		}
		if err := c.RestoreLink(1, 0); err != nil {
			t.Fatal(err)
		}
		if r, _ := c.Rules(); strings.Contains(r, "drop") {
			t.Errorf("rules after RestoreLink still drop:\n%s", r)
		}
	})

	t.Run("partition", func(t *testing.T) {
		if err := c.Partition([][]int{{1}, {2}}); err != nil {
			t.Fatal(err)
		}
		r, _ := c.Rules()
		if n := strings.Count(r, "partition node"); n != 4 {
			t.Errorf("2 nodes, 2 links: want 4 partition rules, got %d:\n%s", n, r)
		}
		if err := c.Heal(); err != nil {
			t.Fatal(err)
		}
		if r, _ := c.Rules(); strings.Contains(r, "drop") {
			t.Errorf("rules after Heal still drop:\n%s", r)
		}
		if err := c.Partition([][]int{{1}, {1, 2}}); err == nil {
			t.Error("Partition accepted node 1 in two sets")
		}
	})

	t.Run("freeze", func(t *testing.T) {
		if err := c.Freeze(2); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(c.FreezerCgroup(2) + "/freezer.state"); err != nil || strings.TrimSpace(string(b)) != "FROZEN" {
			t.Errorf("freezer.state of frozen node2 = %q, %v", b, err)
		}
		if !inCgroup(c.FreezerCgroup(2), c.Leader(2)) {
			t.Errorf("node2's PID 1 (%d) is not in its freezer cgroup %s", c.Leader(2), c.FreezerCgroup(2))
		}
		if _, _, err := c.Exec(ctx, 2, "true"); err == nil || !strings.Contains(err.Error(), "FROZEN") {
			t.Errorf("Exec in frozen node2: %v, want an error naming FROZEN", err)
		}
		if err := c.Thaw(2); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(c.FreezerCgroup(2) + "/freezer.state"); strings.TrimSpace(string(b)) != "THAWED" {
			t.Errorf("freezer.state of thawed node2 = %q", b)
		}
		if _, err := c.Systemctl(ctx, 2, "is-system-running"); err != nil {
			t.Errorf("node2 after thaw: %v", err)
		}
	})

	t.Run("kill and start", func(t *testing.T) {
		if err := c.WriteFile(2, "/var/lib/survivor", []byte("disk"), 0o600); err != nil {
			t.Fatal(err)
		}
		old := c.Leader(2)
		if err := c.Kill(2); err != nil {
			t.Fatal(err)
		}
		if c.Running(2) {
			t.Error("node2 runs after Kill")
		}
		if err := c.Kill(2); err == nil {
			t.Error("Kill of a node that is down succeeded")
		}
		if !Dead(old) {
			t.Errorf("node2's PID 1 (%d) survived Kill", old)
		}
		if _, err := c.Systemctl(ctx, 1, "is-system-running"); err != nil {
			t.Errorf("node1 after node2's death: %v", err)
		}
		start := time.Now()
		if err := c.Start(ctx, 2); err != nil {
			t.Fatal(err)
		}
		t.Logf("node2 booted again in %v", time.Since(start).Round(time.Millisecond))
		if b, err := c.ReadFile(2, "/var/lib/survivor"); err != nil || string(b) != "disk" {
			t.Errorf("file written before power loss: %q, %v", b, err)
		}
		if err := exchange(c, 2, 1, 0, []byte("back")); err != nil {
			t.Errorf("hb0 after restart: %v", err)
		}
	})

	t.Run("concord package", func(t *testing.T) {
		if deb == "" {
			t.Skip("SKIP: CONCORD_DEB not set or missing; `make deb` builds it")
		}
		for i := 1; i <= c.Size(); i++ {
			out, err := c.Systemctl(ctx, i, "cat", "concord-noded")
			if err != nil || !strings.Contains(out, "ExecStart=/usr/sbin/concord-noded") {
				t.Errorf("node%d: systemctl cat concord-noded: %v\n%s", i, err, out)
			}
		}
		// The udev rules mark hb* NICs as not for network managers.
		out, stderr, err := c.Exec(ctx, 1, "udevadm", "test", "--action=add", "/sys/class/net/hb0")
		for _, want := range []string{"NM_UNMANAGED=1", "ID_NET_MANAGED_BY=org.concordha.node1"} {
			if !strings.Contains(out+stderr, want) {
				t.Errorf("udevadm test hb0 lacks %s (%v):\n%s%s", want, err, out, stderr)
			}
		}
	})
}

func inCgroup(dir string, pid int) bool {
	for _, p := range cgroupPids(dir) {
		if p == pid {
			return true
		}
	}
	return false
}

var counterRE = regexp.MustCompile(`packets (\d+) bytes`)

func dropped(rules string) int {
	total := 0
	for _, m := range counterRE.FindAllStringSubmatch(rules, -1) {
		var n int
		fmt.Sscan(m[1], &n)
		total += n
	}
	return total
}

// openPacket opens an AF_PACKET socket for testEtherType on hb<l> inside
// node i: the socket belongs to the network namespace it was made in.
func openPacket(c *Cluster, i, l int) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(self)
	target, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", c.Leader(i)), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return -1, err
	}
	defer func() {
		if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
			panic("cannot return to the host network namespace: " + err.Error())
		}
	}()
	ifi, err := net.InterfaceByName(LinkName(l))
	if err != nil {
		return -1, err
	}
	proto := htons(testEtherType)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	tv := unix.Timeval{Sec: 10}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd, nil
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

func send(c *Cluster, from, to, l int, payload []byte) error {
	fd, err := openPacket(c, from, l)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrLinklayer{Protocol: htons(testEtherType), Ifindex: ifindexOf(fd), Halen: 6}
	copy(sa.Addr[:], c.Node(to).MACs[l])
	return unix.Sendto(fd, payload, 0, sa)
}

func ifindexOf(fd int) int {
	sa, err := unix.Getsockname(fd)
	if ll, ok := sa.(*unix.SockaddrLinklayer); err == nil && ok {
		return ll.Ifindex
	}
	return 0
}

func recv(fd int) ([]byte, error) {
	buf := make([]byte, 1600)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf[:n], "\x00"), nil // short frames arrive padded to 46 bytes
}

// exchange sends one frame from node from to node to over hb<l> and checks
// it arrives intact.
func exchange(c *Cluster, from, to, l int, payload []byte) error {
	rx, err := openPacket(c, to, l)
	if err != nil {
		return err
	}
	defer unix.Close(rx)
	if err := send(c, from, to, l, payload); err != nil {
		return err
	}
	got, err := recv(rx)
	if err != nil {
		return fmt.Errorf("no frame from node%d to node%d: %w", from, to, err)
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("node%d got %q, want %q", to, got, payload)
	}
	return nil
}
