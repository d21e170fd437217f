package daemon

import (
	"errors"
	"net"

	"github.com/concord-ha/concord/lib/core/membership"
	"github.com/concord-ha/concord/lib/wire/frame"
)

func (d *Daemon) readLink(idx uint8, c Port) {
	buf := make([]byte, 2048)
	var rf readFailures
	for {
		n, src, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			rf.failed(d, idx, err)
			continue
		}
		rf.ok(d, idx)
		b := make([]byte, n)
		copy(b, buf[:n])
		select {
		case d.rx <- rxFrame{link: idx, src: src, data: b}:
		default:
			// The loop is behind; dropping here is what a full NIC ring does.
			d.exec(func() { d.dropFrom(idx, src, "dropped_backlog") })
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
			d.heard(h.Sender, f.link)
		}
		return
	default:
		d.dropFrom(f.link, f.src, dropReason(err))
		switch err {
		case frame.ErrAuth:
			d.authFailed(f, h)
		case frame.ErrCluster:
			d.otherCluster(f, h)
		}
		return
	}
	if h.Sender == 0 {
		d.answerJoin(f, h, payload)
		return
	}
	if !d.knownPeer(h.Sender) {
		d.dropFrom(f.link, f.src, "dropped_unknown_node")
		if h.Sender != d.self.Number {
			d.tellNotMember(h.Sender, f)
		}
		return
	}
	d.heard(h.Sender, f.link)
	if h.Flags&frame.FlagAllLinks != 0 {
		// The sender flags every frame while it misses a link, so holding
		// for one link dead-time bridges the gaps between its frames.
		d.allLinksUntil = d.tick + d.ticks(d.cfg.Totem.LinkDeadTime)
	}
	switch h.Kind {
	case frame.KindMembership:
		d.stepCore(f.link, h.Sender, payload, false)
	case frame.KindHeartbeat:
		d.stepCore(f.link, h.Sender, payload, true)
	case frame.KindMembershipFrag:
		if whole := d.reassemble(f.link, h, payload); whole != nil {
			d.stepCore(f.link, h.Sender, whole, false)
		}
	case frame.KindConfig:
		d.store.PeerInitialized()
		whole := d.reassemble(f.link, h, payload)
		if whole == nil {
			return
		}
		if !d.store.Step(h.Sender, whole) {
			d.drop(f.link, h.Sender, "dropped_backlog")
		}
	case frame.KindNotMember:
		d.notMember(h.Sender, payload)
	case frame.KindStateLost:
		if _, err := frame.DecodeStateLost(payload); err != nil {
			d.drop(f.link, h.Sender, "dropped_malformed")
			return
		}
		d.replicaLost(h.Sender)
	case frame.KindProbe:
		p, err := frame.DecodeProbe(payload)
		switch {
		case err != nil:
			d.drop(f.link, h.Sender, "dropped_malformed")
		case p.HasState:
			d.store.PeerInitialized()
		case d.store.Initialized():
			d.probe(h.Sender)
		}
	case frame.KindEcho:
		d.echo(f, h.Sender, payload)
	default:
		d.drop(f.link, h.Sender, "dropped_unknown_kind")
	}
}

// stepCore hands a membership message to the core; a heartbeat frame
// must hold a heartbeat, since it may have waited for the tick.
func (d *Daemon) stepCore(link uint8, from uint16, payload []byte, heartbeat bool) {
	var m membership.Message
	if err := m.UnmarshalBinary(payload); err != nil || heartbeat && m.Type != membership.MsgHeartbeat {
		d.drop(link, from, "dropped_malformed")
		return
	}
	if err := d.core.Step(m); err != nil {
		d.drop(link, from, "dropped_rejected")
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
func (d *Daemon) reassemble(link uint8, h frame.Header, payload []byte) []byte {
	k := reasmKey{h.Sender, h.Kind}
	r := d.reasm[k]
	if r == nil || r.incarnation != h.Incarnation {
		r = &reassembly{incarnation: h.Incarnation}
		d.reasm[k] = r
	}
	whole, err := r.Add(payload)
	if err != nil {
		d.drop(link, h.Sender, "dropped_malformed")
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
