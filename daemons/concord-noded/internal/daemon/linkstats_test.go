package daemon

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

// statsOf finds the row of node on link.
func statsOf(ls []nodebus.LinkStat, node uint16, link uint8) (nodebus.LinkStat, bool) {
	for _, l := range ls {
		if l.Node == node && l.Link == link {
			return l, true
		}
	}
	return nodebus.LinkStat{}, false
}

func mustLinkStats(t *testing.T, n *testNode) []nodebus.LinkStat {
	t.Helper()
	ls, err := n.d.LinkStats()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// Every peer on every link: frames in and out that grow, a last-heard
// time, and a round-trip time from the echoes; drops are counted on the
// link of the address they came from; a cut link is down and loses its
// RTT.
func TestLinkStats(t *testing.T) {
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	c := testConfig(t, 3)
	var ns []*testNode
	for i := 1; i <= 3; i++ {
		ns = append(ns, startNodeWith(t, h, c, fmt.Sprintf("n%d", i), t.TempDir(), func(d *Daemon) {
			d.net.echoEvery = 200 * time.Millisecond
		}))
	}
	agreeOn(t, ns, "[1 2 3]")
	n1 := ns[0]
	ready := func(ls []nodebus.LinkStat) (bool, string) {
		for _, node := range []uint16{2, 3} {
			for link := range uint8(2) {
				l, ok := statsOf(ls, node, link)
				if !ok {
					return false, fmt.Sprintf("no row for node %d link %d: %+v", node, link, ls)
				}
				if l.State != "up" || l.FramesIn == 0 || l.FramesOut == 0 || l.RTTMicros < 0 || l.LastHeardMs < 0 || l.LastHeardMs > 1000 {
					return false, fmt.Sprintf("node %d link %d: %+v", node, link, l)
				}
				if want := c.Node(1).Links[link].Interface; l.Interface != want || l.Name != fmt.Sprintf("n%d", node) {
					return false, fmt.Sprintf("node %d link %d named %q on %q", node, link, l.Name, l.Interface)
				}
			}
		}
		return len(ls) == 4, fmt.Sprintf("%d rows", len(ls))
	}
	var before []nodebus.LinkStat
	eventually(t, "stats of every peer and link with an RTT", func() (bool, string) {
		before = mustLinkStats(t, n1)
		return ready(before)
	})
	for _, l := range before {
		if l.RTTMicros > time.Second.Microseconds() {
			t.Errorf("node %d link %d: RTT %d µs, on a hub in memory", l.Node, l.Link, l.RTTMicros)
		}
	}
	eventually(t, "frames in and out grow on every link", func() (bool, string) {
		after := mustLinkStats(t, n1)
		for _, b := range before {
			a, _ := statsOf(after, b.Node, b.Link)
			if a.FramesIn <= b.FramesIn || a.FramesOut <= b.FramesOut {
				return false, fmt.Sprintf("node %d link %d: in %d -> %d, out %d -> %d", b.Node, b.Link, b.FramesIn, a.FramesIn, b.FramesOut, a.FramesOut)
			}
		}
		return true, ""
	})
	// No more counted than were sent: frames in from node 2 on a link are
	// at most what node 2 wrote there, and frames out to it at most what
	// node 1 wrote there. And none missed: every frame node 1 wrote on a
	// link goes to every node or to one, so frames out to nodes 2 and 3
	// add up to at least what it wrote (read before, on the loop's past).
	var written [2]uint64
	for link := range written {
		written[link] = uint64(n1.ports[link].sent.Load())
	}
	ls := mustLinkStats(t, n1)
	for link := range uint8(2) {
		l2, _ := statsOf(ls, 2, link)
		l3, _ := statsOf(ls, 3, link)
		if l2.FramesOut+l3.FramesOut < written[link] {
			t.Errorf("link %d: node 1 wrote %d frames, but %d went out to node 2 and %d to node 3", link, written[link], l2.FramesOut, l3.FramesOut)
		}
		l, _ := statsOf(ls, 2, link)
		if sent := uint64(ns[1].ports[link].sent.Load()); l.FramesIn > sent {
			t.Errorf("link %d: %d frames in from node 2, which wrote %d", link, l.FramesIn, sent)
		}
		if sent := uint64(n1.ports[link].sent.Load()); l.FramesOut > sent {
			t.Errorf("link %d: %d frames out to node 2, of %d written", link, l.FramesOut, sent)
		}
	}

	// Garbage from node 2's address on hb1 and from an unknown address on
	// hb0 is counted where it came from.
	group := n1.d.group
	ns[1].ports[1].WriteTo([]byte("CC"), group)
	stranger := h.port(0, net.HardwareAddr{2, 0xdd, 0, 0, 0, 1})
	stranger.WriteTo([]byte("CC"), group)
	stranger.WriteTo([]byte("CC"), group)
	eventually(t, "drops counted by source", func() (bool, string) {
		ls := mustLinkStats(t, n1)
		l2, _ := statsOf(ls, 2, 1)
		l0, ok := statsOf(ls, 0, 0)
		return l2.Drops["short"] == 1 && ok && l0.Drops["short"] == 2 && l0.Name == "" && l0.Interface == "hb0",
			fmt.Sprintf("node 2 hb1: %v; no node on hb0: %+v", l2.Drops, l0)
	})
	if l, _ := statsOf(mustLinkStats(t, n1), 3, 0); len(l.Drops) != 0 {
		t.Errorf("node 3 hb0 has drops %v, it sent no garbage", l.Drops)
	}

	// Node 3's hb1 cut: down, and its RTT goes once no echo comes back.
	h.setCut(1, c.Node(3).Links[1].MAC, true)
	eventually(t, "node 3's hb1 down, without an RTT", func() (bool, string) {
		l, _ := statsOf(mustLinkStats(t, n1), 3, 1)
		return l.State == "down" && l.RTTMicros == -1 && l.LastHeardMs >= 150, fmt.Sprintf("%+v", l)
	})
	if l, _ := statsOf(mustLinkStats(t, n1), 3, 0); l.State != "up" || l.RTTMicros < 0 {
		t.Errorf("node 3's hb0, not cut: %+v", l)
	}
}
