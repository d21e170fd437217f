package daemon

import (
	"maps"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// Per-link statistics, as corosync-cfgtool -s shows them: for each peer
// on each link, the frames in and out, the drops by reason, when it was
// last heard and the round-trip time. They cost a map lookup or two per
// frame and nothing per tick: figures such as "last heard" are made from
// tick numbers when someone asks (LinkStats), not kept up to date.
//
// The round-trip time comes from echoes: every echoEvery, this node sends
// one echo request per link to every node (to the link's multicast
// group), stamped with its monotonic clock; each peer that hears it
// answers at once, to this node's address on the link it came in on, and
// the reply's stamp gives the time there and back, loop to loop. So a
// link carries 1+(N-1) echo frames per node every 5 s, whatever else
// happens.

// echoEvery is how often echo requests go out; an RTT older than three
// of these is no longer shown.
const echoEvery = 5 * time.Second

// monoEpoch is the start of the clock echo stamps are read on.
var monoEpoch = time.Now()

func monoNow() time.Duration { return time.Since(monoEpoch) }

type pathKey struct {
	node uint16
	link uint8
}

// pathStat is one peer on one link.
type pathStat struct {
	in, out uint64 // out: frames sent to this peer's address (multicasts are counted per link)
	drops   map[string]uint64
	rtt     time.Duration // of the last echo reply
	rttTick uint64        // tick it came; 0: none yet
	authBad bool          // a frame from the peer's address failed authentication since the last authentic one
}

// linkTotals is what belongs to a link rather than a peer.
type linkTotals struct {
	multicast uint64            // frames sent to every node
	drops     map[string]uint64 // dropped frames from addresses of no configured node
}

// netStats is the loop's record of frames per peer and link, and of the
// warnings about frames that fail (authwarn.go). Its zero value is ready;
// the maps are made when first needed.
type netStats struct {
	paths map[pathKey]*pathStat
	links []linkTotals       // by link index
	macs  map[[6]byte]uint16 // link MAC -> node, of the configuration in macsOf
	// macsOf is the configuration macs was made from: applyConfig puts a
	// new one in d.cfg, and macs follows at the next lookup.
	macsOf *config.Cluster

	auth      map[uint16]*authFailures
	strangers map[strangerKey]*stranger
	// warnEvery and echoEvery are the defaults when 0; tests shorten them.
	warnEvery, echoEvery time.Duration
}

func (d *Daemon) path(node uint16, link uint8) *pathStat {
	s := &d.net
	k := pathKey{node, link}
	p := s.paths[k]
	if p == nil {
		if s.paths == nil {
			s.paths = map[pathKey]*pathStat{}
		}
		p = &pathStat{}
		s.paths[k] = p
	}
	return p
}

func (d *Daemon) linkTotals(link uint8) *linkTotals {
	s := &d.net
	if int(link) >= len(s.links) {
		s.links = append(s.links, make([]linkTotals, int(link)+1-len(s.links))...)
	}
	return &s.links[link]
}

// macNode is the configured node whose link has MAC mac, or 0.
func (d *Daemon) macNode(mac net.HardwareAddr) uint16 {
	if len(mac) != 6 {
		return 0
	}
	s := &d.net
	if s.macsOf != d.cfg {
		s.macs = map[[6]byte]uint16{}
		for _, n := range d.cfg.Nodes {
			for _, l := range n.Links {
				if len(l.MAC) == 6 {
					s.macs[[6]byte(l.MAC)] = n.Number
				}
			}
		}
		s.macsOf = d.cfg
	}
	return s.macs[[6]byte(mac)]
}

// heard counts an authentic frame from node on link, for the link's
// health (which keeps when it was last heard) and its statistics.
func (d *Daemon) heard(node uint16, link uint8) {
	d.health.Heard(node, link, d.tick)
	p := d.path(node, link)
	p.in++
	if p.authBad {
		p.authBad = false
		d.authGood(node)
	}
}

// drop counts a dropped frame under counter (a "dropped_" name of
// FrameCounters) and, by its reason, on the link: for node, or for no
// node when node is 0.
func (d *Daemon) drop(link uint8, node uint16, counter string) {
	d.counters[counter]++
	reason := strings.TrimPrefix(counter, "dropped_")
	var m *map[string]uint64
	if node == 0 {
		m = &d.linkTotals(link).drops
	} else {
		m = &d.path(node, link).drops
	}
	if *m == nil {
		*m = map[string]uint64{}
	}
	(*m)[reason]++
}

// dropFrom counts a dropped frame from source address src on link, for
// the node that has that address, if any.
func (d *Daemon) dropFrom(link uint8, src net.HardwareAddr, counter string) {
	node := d.macNode(src)
	if node == d.self.Number {
		node = 0
	}
	d.drop(link, node, counter)
}

// sent counts a frame sent on link to addr.
func (d *Daemon) sent(link int, addr net.HardwareAddr) {
	if len(addr) > 0 && addr[0]&1 != 0 {
		d.linkTotals(uint8(link)).multicast++
		return
	}
	if n := d.macNode(addr); n != 0 {
		d.path(n, uint8(link)).out++
	}
}

func (d *Daemon) echoTicks() uint64 { return d.ticks(orDefault(d.net.echoEvery, echoEvery)) }

// sendEchoes sends an echo request on every link, to every node, when
// some peer is there to answer.
func (d *Daemon) sendEchoes() {
	if len(d.cfg.Nodes) < 2 {
		return
	}
	stamp := uint64(monoNow())
	for i := range d.ports {
		f := d.seal(frame.KindEcho, frame.Echo{Stamp: stamp}.Encode())
		if f == nil {
			return
		}
		d.writeFrame(i, f, d.group)
	}
}

// echo answers a request, or takes the round-trip time from a reply.
func (d *Daemon) echo(f rxFrame, from uint16, payload []byte) {
	e, err := frame.DecodeEcho(payload)
	if err != nil {
		d.drop(f.link, from, "dropped_malformed")
		return
	}
	if !e.Reply {
		if int(f.link) >= len(d.ports) || len(f.src) != 6 {
			return
		}
		if r := d.seal(frame.KindEcho, frame.Echo{Reply: true, Stamp: e.Stamp}.Encode()); r != nil {
			d.writeFrame(int(f.link), r, f.src)
		}
		return
	}
	rtt := monoNow() - time.Duration(e.Stamp)
	// A reply to a request of an earlier life of this daemon has a stamp
	// of another clock: no time to believe.
	if rtt < 0 || rtt > 2*time.Duration(d.echoTicks())*d.cfg.Totem.Tick {
		return
	}
	p := d.path(from, f.link)
	p.rtt = rtt
	p.rttTick = d.tick
}

// linkStats is every peer's statistics on every link shared with it, and
// for each link the drops of frames from addresses of no configured node.
func (d *Daemon) linkStats() []nodebus.LinkStat {
	var out []nodebus.LinkStat
	tick := d.cfg.Totem.Tick
	fresh := 3 * d.echoTicks()
	local := func(l int) string {
		if l < len(d.self.Links) {
			return d.self.Links[l].Interface
		}
		return ""
	}
	for _, n := range d.cfg.Nodes {
		if n.Number == d.self.Number {
			continue
		}
		for l := range min(len(d.ports), len(n.Links)) {
			st := nodebus.LinkStat{Node: n.Number, Name: n.Name, Link: uint8(l), Interface: local(l), State: "down",
				LastHeardMs: -1, RTTMicros: -1}
			if d.health.State(n.Number, uint8(l)) {
				st.State = "up"
			}
			if l < len(d.net.links) {
				st.FramesOut = d.net.links[l].multicast
			}
			if last, ok := d.health.LastHeard(n.Number, uint8(l)); ok {
				st.LastHeardMs = (time.Duration(d.tick-last) * tick).Milliseconds()
			}
			if p := d.net.paths[pathKey{n.Number, uint8(l)}]; p != nil {
				st.FramesIn = p.in
				st.FramesOut += p.out
				if len(p.drops) > 0 {
					st.Drops = maps.Clone(p.drops)
				}
				if p.rttTick != 0 && d.tick-p.rttTick <= fresh {
					st.RTTMicros = p.rtt.Microseconds()
				}
			}
			out = append(out, st)
		}
	}
	for l := range d.ports {
		if l < len(d.net.links) && len(d.net.links[l].drops) > 0 {
			out = append(out, nodebus.LinkStat{Link: uint8(l), Interface: local(l), Drops: maps.Clone(d.net.links[l].drops),
				LastHeardMs: -1, RTTMicros: -1})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Node == 0) != (b.Node == 0) {
			return b.Node == 0
		}
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		return a.Link < b.Link
	})
	return out
}

// LinkStats is every peer's statistics on every link (see linkStats), as
// of now.
func (d *Daemon) LinkStats() ([]nodebus.LinkStat, error) {
	var out []nodebus.LinkStat
	if err := d.call(func() { out = d.linkStats() }); err != nil {
		return nil, err
	}
	return out, nil
}
