package daemon

import (
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// A node with another authkey, or another cluster on the same wire, must
// not go unnoticed: the node would seem to run, alone and not quorate,
// while every frame between it and its peers is dropped. So frames that
// fail authentication from the address of a configured node, and frames
// of another cluster id, are warned about: the first at once, then at
// most one per source every warnEvery with the count since the last, as
// tick counts on the loop (no timers, no work while nothing fails). Both
// sides warn: each drops the other's frames. The sender's number in a
// frame that fails its tag proves nothing, so the source is its Ethernet
// address, and the number is only what the frame claims.

// warnEvery is the least time between two warnings about one source.
const warnEvery = time.Minute

// maxStrangers bounds the sources of no configured node that are
// remembered; any number of forged addresses cannot grow the loop's
// memory past it. Frames from others are still counted as drops.
const maxStrangers = 32

// rateLimit lets a warning about one source out at most once per period.
type rateLimit struct {
	at    uint64 // tick of the last warning
	once  bool   // a warning went out
	since uint64 // events since the last warning, this one included
}

// due counts an event at tick now and reports whether it may be warned
// about, at most once every `every` ticks; if so the count starts over
// after the caller has read it.
func (r *rateLimit) due(now, every uint64) bool {
	r.since++
	if r.once && now-r.at < every {
		return false
	}
	r.once, r.at = true, now
	return true
}

// authFailures are the frames from a configured node's addresses that
// failed authentication.
type authFailures struct {
	rateLimit
	count   uint64
	last    time.Time
	failing bool // no authentic frame from the node since the last failure
	told    bool // a warning went out since its frames last authenticated again
}

// strangerKey is a source of frames that is not a configured node of this
// cluster: frames of another cluster id, or frames of this cluster id that
// fail authentication from an address of no configured node.
type strangerKey struct {
	cluster uint32
	mac     [6]byte
	auth    bool // of this cluster, failing authentication
}

type stranger struct {
	rateLimit
	link   uint8
	frames uint64
	last   time.Time
	// member: the source is a node that was in this cluster's view
	// while it sent these frames, a host in both clusters. It stays so
	// when the node leaves the view: its daemon of this cluster may stop
	// while its other cluster goes on.
	member bool
}

func (d *Daemon) warnTicks() uint64 { return d.ticks(orDefault(d.net.warnEvery, warnEvery)) }

func (d *Daemon) keyPath() string {
	if d.opts.KeyPath != "" {
		return d.opts.KeyPath
	}
	return frame.DefaultKeyPath
}

// since is the suffix of a repeated warning.
func since(n, total uint64) string {
	if n <= 1 && n == total {
		return ""
	}
	return fmt.Sprintf(" (%d since the last warning, %d in all)", n, total)
}

// authFailed handles a frame that failed authentication; h is its header
// as sent, unauthenticated.
func (d *Daemon) authFailed(f rxFrame, h frame.Header) {
	node := d.macNode(f.src)
	if node == 0 || node == d.self.Number {
		d.strangerFrame(f, strangerKey{cluster: h.Cluster, auth: true}, h.Sender)
		return
	}
	if d.net.auth == nil {
		d.net.auth = map[uint16]*authFailures{}
	}
	a := d.net.auth[node]
	if a == nil {
		a = &authFailures{}
		d.net.auth[node] = a
	}
	a.count++
	a.last = time.Now()
	if !a.failing {
		a.failing = true
		d.dirty = true
	}
	for l := range d.ports {
		d.path(node, uint8(l)).authBad = true
	}
	if !a.due(d.tick, d.warnTicks()) {
		return
	}
	n, total := a.since, a.count
	a.since = 0
	a.told = true
	who, link := d.nodeLink(node, f.src)
	claim := ""
	if h.Sender != node {
		claim = fmt.Sprintf(", which claim to be from node %d,", h.Sender)
	}
	d.log.Warn(fmt.Sprintf("frames from %s (%s)%s fail authentication: its %s differs from this node's%s",
		who, link, claim, d.keyPath(), since(n, total)),
		"node", node, "link", f.link, "mac", f.src.String(), "claimed_node", h.Sender,
		"reason", "authentication failed", "frames", n, "total", total)
}

// authGood is an authentic frame from node after some of its frames
// failed: its key is right again. Said once per warning, so a forger
// that sends with a node's address cannot make it say more.
func (d *Daemon) authGood(node uint16) {
	a := d.net.auth[node]
	if a == nil || !a.failing {
		return
	}
	a.failing = false
	d.dirty = true
	if !a.told {
		return
	}
	a.told = false
	who, _ := d.nodeLink(node, nil)
	d.log.Info(fmt.Sprintf("frames from %s authenticate again (%d failed in all, the last at %s)", who, a.count, a.last.Format(time.RFC3339)),
		"node", node, "reason", "authentication works", "total", a.count)
}

// nodeLink names node and its configured link with address mac: "node2",
// "hb0 52:54:00:00:00:02".
func (d *Daemon) nodeLink(node uint16, mac net.HardwareAddr) (string, string) {
	n := d.cfg.Node(node)
	if n == nil {
		return fmt.Sprintf("node %d", node), mac.String()
	}
	for _, l := range n.Links {
		if l.MAC.String() == mac.String() {
			return n.Name, l.Interface + " " + mac.String()
		}
	}
	return n.Name, mac.String()
}

// otherCluster handles a frame of another cluster id.
func (d *Daemon) otherCluster(f rxFrame, h frame.Header) {
	d.strangerFrame(f, strangerKey{cluster: h.Cluster}, h.Sender)
}

// alsoMember is the configured node, other than this one, whose link has
// the address mac, if it is in this cluster's view: frames of another
// cluster from it come from another cluster context on that host
// (concord-noded@NAME), which shares the heartbeat NICs on purpose.
func (d *Daemon) alsoMember(mac net.HardwareAddr) uint16 {
	node := d.macNode(mac)
	if node == 0 || node == d.self.Number {
		return 0
	}
	for _, m := range d.view.Members {
		if uint16(m) == node {
			return node
		}
	}
	return 0
}

// strangerFrame counts a frame of a source that is no configured node of
// this cluster and warns about it, rate-limited per source.
//
// Frames of another cluster from the address of a node of this view are
// another cluster context on that host: said once, at info level, and
// not warned about, then or later. From the address of a configured node
// not in the view, the first warning waits one period: when the two
// contexts start together, the other cluster's frames usually come
// before the node joins this view.
func (d *Daemon) strangerFrame(f rxFrame, k strangerKey, claimed uint16) {
	if len(f.src) != 6 {
		return
	}
	k.mac = [6]byte(f.src)
	s := d.net.strangers[k]
	if s == nil {
		if len(d.net.strangers) >= maxStrangers {
			return
		}
		if d.net.strangers == nil {
			d.net.strangers = map[strangerKey]*stranger{}
		}
		s = &stranger{}
		d.net.strangers[k] = s
	}
	s.frames++
	s.link = f.link
	s.last = time.Now()
	if !k.auth {
		if s.member {
			return
		}
		if node := d.alsoMember(f.src); node != 0 {
			s.member = true
			d.dirty = true
			who, link := d.nodeLink(node, f.src)
			d.log.Info(fmt.Sprintf("%s (%s) is also a member of cluster id %d, another cluster context on that host; its frames of that cluster are ignored here",
				who, link, k.cluster), "link", f.link, "mac", f.src.String(), "cluster_id", k.cluster, "node", node, "reason", "other cluster context")
			return
		}
		if s.frames == 1 && d.macNode(f.src) != 0 {
			s.once, s.at, s.since = true, d.tick, 1
			return
		}
	}
	if !s.due(d.tick, d.warnTicks()) {
		return
	}
	n, total := s.since, s.frames
	s.since = 0
	d.dirty = true
	ifname := d.linkName(f.link)
	mac := f.src.String()
	if k.auth {
		d.log.Warn(fmt.Sprintf("frames of this cluster from MAC %s on %s, claiming to be from node %d, fail authentication, and %s is no configured node's link: a node with another %s, or a NIC missing from the configuration%s",
			mac, ifname, claimed, mac, d.keyPath(), since(n, total)),
			"link", f.link, "mac", mac, "claimed_node", claimed, "reason", "authentication failed", "frames", n, "total", total)
		return
	}
	whose := ""
	if node := d.macNode(f.src); node != 0 && node != d.self.Number {
		who, _ := d.nodeLink(node, f.src)
		whose = fmt.Sprintf(", or %s's cluster.conf names another cluster", who)
		mac += " (" + who + "'s)"
	}
	d.log.Warn(fmt.Sprintf("frames of another cluster (id %d) from MAC %s on %s: two clusters share this link%s%s",
		k.cluster, mac, ifname, whose, since(n, total)),
		"link", f.link, "mac", f.src.String(), "cluster_id", k.cluster, "reason", "other cluster", "frames", n, "total", total)
}

// linkName is the interface of this node's link.
func (d *Daemon) linkName(link uint8) string {
	if int(link) < len(d.self.Links) {
		return d.self.Links[link].Interface
	}
	return fmt.Sprintf("link %d", link)
}

// authStatus puts what the status shows of node's failed frames in ni.
func (d *Daemon) authStatus(ni *nodebus.NodeInfo) {
	if a := d.net.auth[ni.Number]; a != nil {
		ni.AuthFailures, ni.LastAuthFailure, ni.AuthFailing = a.count, a.last.Format(time.RFC3339), a.failing
	}
}

// otherClusters is what the status shows of frames of other clusters.
func (d *Daemon) otherClusters() []nodebus.OtherCluster {
	var out []nodebus.OtherCluster
	for k, s := range d.net.strangers {
		if k.auth {
			continue
		}
		o := nodebus.OtherCluster{ClusterID: k.cluster, MAC: net.HardwareAddr(k.mac[:]).String(),
			Link: s.link, Interface: d.linkName(s.link), Frames: s.frames, Last: s.last.Format(time.RFC3339)}
		if s.member {
			if n := d.cfg.Node(d.macNode(net.HardwareAddr(k.mac[:]))); n != nil {
				o.AlsoMember = n.Name
			}
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ClusterID != out[j].ClusterID {
			return out[i].ClusterID < out[j].ClusterID
		}
		return out[i].MAC < out[j].MAC
	})
	return out
}
