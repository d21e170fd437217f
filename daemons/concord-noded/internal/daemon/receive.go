package daemon

import (
	"errors"
	"net"
	"time"

	"github.com/concord-ha/concord/lib/core/membership"
	"github.com/concord-ha/concord/lib/wire/frame"
)

func (d *Daemon) readLink(idx uint8, c Port) {
	buf := make([]byte, 2048)
	for {
		n, src, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.Warn("link read failed", "link", idx, "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		b := make([]byte, n)
		copy(b, buf[:n])
		select {
		case d.rx <- rxFrame{link: idx, src: src, data: b}:
		default:
			// The loop is behind; dropping here is what a full NIC ring does.
			d.exec(func() { d.counters["dropped_backlog"]++ })
		}
	}
}

func (d *Daemon) receive(f rxFrame) {
	d.counters["received"]++
	h, payload, err := d.opener.Open(nil, f.data)
	switch {
	case err == nil:
	case errors.Is(err, frame.ErrReplay):
		// The same frame again, usually its copy from another link. If it
		// is authentic, that link works; a forged copy proves nothing.
		d.counters["duplicate"]++
		if d.knownPeer(h.Sender) && d.opener.Authentic(f.data) {
			d.health.Heard(h.Sender, f.link, d.tick)
		}
		return
	default:
		d.counters[dropReason(err)]++
		return
	}
	if h.Sender == 0 {
		d.answerJoin(f, h, payload)
		return
	}
	if !d.knownPeer(h.Sender) {
		d.counters["dropped_unknown_node"]++
		if h.Sender != d.self.Number {
			d.tellNotMember(h.Sender, f)
		}
		return
	}
	d.health.Heard(h.Sender, f.link, d.tick)
	if h.Flags&frame.FlagAllLinks != 0 {
		// The sender flags every frame while it misses a link, so holding
		// for one link dead-time bridges the gaps between its frames.
		d.allLinksUntil = d.tick + d.ticks(d.cfg.Totem.LinkDeadTime)
	}
	switch h.Kind {
	case frame.KindMembership:
		d.stepCore(h.Sender, payload)
	case frame.KindMembershipFrag:
		if whole := d.reassemble(h, payload); whole != nil {
			d.stepCore(h.Sender, whole)
		}
	case frame.KindConfig:
		d.store.PeerInitialized()
		whole := d.reassemble(h, payload)
		if whole == nil {
			return
		}
		if !d.store.Step(h.Sender, whole) {
			d.counters["dropped_backlog"]++
		}
	case frame.KindNotMember:
		d.notMember(h.Sender, payload)
	case frame.KindStateLost:
		if _, err := frame.DecodeStateLost(payload); err != nil {
			d.counters["dropped_malformed"]++
			return
		}
		d.replicaLost(h.Sender)
	case frame.KindProbe:
		p, err := frame.DecodeProbe(payload)
		switch {
		case err != nil:
			d.counters["dropped_malformed"]++
		case p.HasState:
			d.store.PeerInitialized()
		case d.store.Initialized():
			d.probe(h.Sender)
		}
	default:
		d.counters["dropped_unknown_kind"]++
	}
}

func (d *Daemon) stepCore(from uint16, payload []byte) {
	var m membership.Message
	if err := m.UnmarshalBinary(payload); err != nil {
		d.counters["dropped_malformed"]++
		return
	}
	if err := d.core.Step(m); err != nil {
		d.counters["dropped_rejected"]++
		d.log.Debug("membership message rejected", "from", from, "err", err)
	}
}

type reasmKey struct {
	sender uint16
	kind   uint8
}

// reassembly is a sender's message being reassembled, in one life of the
// sender: message ids start again at every start, so fragments of a
// previous life must not complete a message of this one.
type reassembly struct {
	incarnation uint64
	frame.Reassembly
}

// reassemble adds a fragment and returns the whole message once complete.
func (d *Daemon) reassemble(h frame.Header, payload []byte) []byte {
	k := reasmKey{h.Sender, h.Kind}
	r := d.reasm[k]
	if r == nil || r.incarnation != h.Incarnation {
		r = &reassembly{incarnation: h.Incarnation}
		d.reasm[k] = r
	}
	whole, err := r.Add(payload)
	if err != nil {
		d.counters["dropped_malformed"]++
		return nil
	}
	return whole
}

func dropReason(err error) string {
	switch {
	case errors.Is(err, frame.ErrShort):
		return "dropped_short"
	case errors.Is(err, frame.ErrMagic), errors.Is(err, frame.ErrVersion):
		return "dropped_malformed"
	case errors.Is(err, frame.ErrCluster):
		return "dropped_cluster"
	case errors.Is(err, frame.ErrAuth):
		return "dropped_auth"
	case errors.Is(err, frame.ErrStaleIncarnation):
		return "dropped_stale"
	}
	return "dropped_other"
}

func (d *Daemon) knownPeer(n uint16) bool {
	return n != d.self.Number && d.cfg.Node(n) != nil
}
