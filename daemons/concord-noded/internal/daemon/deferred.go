package daemon

import (
	"errors"
	"net"
	"time"

	"github.com/concord-ha/concord/lib/driver/link"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// deferringPort is a Port that can hold frames of some kinds in the kernel
// until asked for them, as *link.Conn can. Heartbeats are most of the
// frames, and their content only counts per tick (the core and the link
// health mark the tick they were heard in), so holding them to the next
// tick changes nothing but the wake-ups: the loop wakes once a tick, not
// once a tick and again for each peer's heartbeat. Raft's frames wait for
// the tick too (see tickKinds).
type deferringPort interface {
	Defer(off uint32, vals ...byte) error
	ReadDeferred(frames []link.Frame) (n int, err error)
}

// tickKinds are the frame kinds that wait for the next tick on ports that
// can hold them. Raft works at human speed (its own tick is 100 ms, its
// heartbeats 400 ms apart): a tick more per hop costs a configuration
// change a few tens of milliseconds, and spares every node the wake-ups
// for the leader's heartbeats and their answers.
var tickKinds = []byte{frame.KindHeartbeat, frame.KindConfig}

const (
	// maxDeferred bounds the frames read from one link at one tick: a
	// flood waits in the kernel (which drops the excess) instead of
	// stalling the loop.
	maxDeferred = 1024
	deferBatch  = 64 // frames read by one system call
)

// deferPort asks port i, just opened, to hold tickKinds until the next
// tick. A port that cannot, or fails to, delivers them like any other
// frame, which works the same at the cost of wake-ups.
func (d *Daemon) deferPort(i int) {
	for len(d.deferred) < len(d.ports) {
		d.deferred = append(d.deferred, nil)
	}
	d.deferred[i] = nil
	dp, ok := d.ports[i].(deferringPort)
	if !ok {
		return
	}
	if err := dp.Defer(frame.KindOffset, tickKinds...); err != nil {
		d.log.Warn("heartbeats on this link will wake the daemon as they arrive", "link", i, "err", err)
		return
	}
	d.deferred[i] = dp
	if d.dframes == nil {
		d.dframes = make([]link.Frame, deferBatch)
		for k := range d.dframes {
			d.dframes[k].Buf = make([]byte, 2048)
		}
	}
}

// readDeferred handles the frames the links held since the last tick,
// before d.tick moves: they count as heard in the tick they arrived in,
// exactly as if they had woken the loop then.
func (d *Daemon) readDeferred() {
	for i, p := range d.deferred {
		if p == nil || d.ports[i] == nil {
			continue
		}
		for range maxDeferred / deferBatch {
			n, err := p.ReadDeferred(d.dframes)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) && again(d.deferErr, uint16(i), d.tick, d.ticks(time.Second)) {
					d.log.Warn("link read failed", "link", i, "err", err)
				}
				break
			}
			for _, f := range d.dframes[:n] {
				d.receive(rxFrame{link: uint8(i), src: f.Src, data: f.Buf[:f.N]})
			}
			if n < deferBatch { // none left
				break
			}
		}
	}
}
