package daemon

import (
	"net"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/core/membership"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// sendFrame seals payload once and sends a copy on every link: to the
// multicast group when to is 0, else to that node's address on the link.
func (d *Daemon) sendFrame(kind uint8, to uint16, payload []byte) {
	d.sendFrameOn(kind, to, payload, -1)
}

// sendFrameOn sends payload on link only, or on every link if only is -1.
func (d *Daemon) sendFrameOn(kind uint8, to uint16, payload []byte, only int) {
	f := d.seal(kind, payload)
	if f == nil {
		return
	}
	var dst *config.Node
	if to != 0 {
		if dst = d.cfg.Node(to); dst == nil {
			return
		}
	}
	for i := range d.ports {
		if only >= 0 && i != only {
			continue
		}
		addr := d.group
		if dst != nil {
			if i >= len(dst.Links) {
				continue
			}
			addr = dst.Links[i].MAC
		}
		d.writeFrame(i, f, addr)
	}
}

// seal makes a frame of kind, with FlagAllLinks while this node misses a
// peer on some link; nil if payload cannot be sealed.
func (d *Daemon) seal(kind uint8, payload []byte) []byte {
	var flags uint8
	if d.degraded {
		flags = frame.FlagAllLinks
	}
	f, _, err := d.sealer.SealFlags(nil, kind, flags, payload)
	if err != nil {
		d.log.Error("cannot seal frame", "kind", frame.KindName(kind), "len", len(payload), "err", err)
		return nil
	}
	return f
}

// writeFrame sends sealed frame f on link i to addr and counts the outcome.
func (d *Daemon) writeFrame(i int, f []byte, addr net.HardwareAddr) bool {
	if !d.linkWorks(i) {
		return false // its NIC is down or missing: reported, nothing to count
	}
	frame.SetLink(f, uint8(i))
	if err := d.ports[i].WriteTo(f, addr); err != nil {
		d.counters["send_errors"]++
		return false
	}
	d.counters["sent"]++
	d.sent(i, addr)
	return true
}

// sendFragments sends b as fragments of kind to node to (0: all).
func (d *Daemon) sendFragments(kind uint8, to uint16, b []byte) {
	d.sendFragmentsOn(kind, to, b, -1)
}

// sendFragmentsOn is sendFragments on link only (-1: every link).
func (d *Daemon) sendFragmentsOn(kind uint8, to uint16, b []byte, only int) {
	d.fragID++
	frags, err := frame.Fragment(d.fragID, b, frame.MaxPayload)
	if err != nil {
		d.log.Error("message too large to send", "kind", frame.KindName(kind), "to", to, "bytes", len(b), "err", err)
	}
	for _, f := range frags {
		d.sendFrameOn(kind, to, f, only)
	}
}

// probe asks, from a node without replicated state, whether a cluster
// already runs: a node that has state answers to the asker alone. A
// cluster in steady state sends no probes at all.
func (d *Daemon) probe(to uint16) {
	d.sendFrame(frame.KindProbe, to, frame.Probe{HasState: d.store.Initialized()}.Encode())
}

// again reports whether something done for key at most once every
// `every` ticks may be done now, and if so records that it is.
func again[K comparable](last map[K]uint64, key K, now, every uint64) bool {
	if t, ok := last[key]; ok && now-t < every {
		return false
	}
	last[key] = now
	return true
}

// Ordered traffic (messages to order, ordered messages, their acks and
// nacks) is the bulk of a busy cluster's frames. While every link works
// both ways it goes on one link, the lowest: a copy on every link would
// double what every node sends, receives and decrypts, for nothing, as
// the order's own retransmissions recover a lost frame. Heartbeats keep
// watching every link; as soon as a node misses a peer on a link (or is
// asked to, or a NIC here fails) ordered traffic goes on every link
// again, as heartbeats do. One link, not turns: frames of two links reach
// the loop through two readers, and reordering them would look like
// gaps to the order.
func bulk(t membership.MsgType) bool {
	switch t {
	case membership.MsgData, membership.MsgOrdered, membership.MsgAck, membership.MsgNack:
		return true
	}
	return false
}

// dataLink is the link ordered traffic takes now: the lowest, or -1 (every
// link) unless every link works both ways.
func (d *Daemon) dataLink() int {
	if !d.linksWhole() {
		return -1
	}
	return 0
}
