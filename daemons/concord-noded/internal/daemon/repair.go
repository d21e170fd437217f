package daemon

import (
	"fmt"
	"time"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/store/confstore"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// A node deleted from the configuration is told by Raft only if the
// deletion reaches it, which Raft does not promise for a removed voter. So
// a node that hears an authentic frame from a node it does not know tells
// that node, less and less often (see tellDue), with the index of its
// configuration.
// The receiver leaves, as it would on applying its own deletion, only if
// that index is newer than its own: configurations are totally ordered by
// index, so a newer one without it means it was deleted. A node just
// added, told by a peer that has not applied the addition yet, holds the
// newer configuration itself and stays; a node with no configuration
// from the store yet (index 0) cannot compare and stays too, but one that
// joined with only the key has the index of the configuration it fetched
// (see joined).
func (d *Daemon) tellNotMember(node uint16, f rxFrame) {
	if d.cfgIndex == 0 || len(f.src) != 6 || int(f.link) >= len(d.ports) {
		return
	}
	if !d.tellDue(node) {
		return
	}
	fr := d.seal(frame.KindNotMember, frame.NotMember{Node: node, ConfigIndex: d.cfgIndex}.Encode())
	if fr == nil || !d.writeFrame(int(f.link), fr, f.src) {
		return
	}
	d.counters["told_not_member"]++
	d.logTold(node)
}

// replicaLost handles a peer's word that its replicated state is gone: a
// replaced disk, a wiped /var/lib/concord. Raft cannot mend that by
// itself, since it trusts that a follower keeps what it acknowledged; so
// the peer's replica is taken out of Raft and back in, and the leader
// then sends it everything. The node list does not change, so the
// membership does not either. At most one recovery per node runs, and
// not more often than every 10 s. It is a job of the daemon's own.
func (d *Daemon) replicaLost(node uint16) {
	if !again(d.mending, node, d.tick, d.ticks(10*time.Second)) {
		return
	}
	d.log.Warn(fmt.Sprintf("node %d lost its replicated configuration state; replicating it to node %d again", node, node),
		"node", node, "reason", "replicated state lost")
	j := d.startJob("replica", fmt.Sprint(node),
		confstore.Op{Kind: confstore.ReplicaOut, Number: node}, confstore.Op{Kind: confstore.ReplicaIn, Number: node})
	j.internal = true
	j.onEnd = func(err *nodebus.Error) {
		if err != nil {
			d.log.Error(fmt.Sprintf("replicating the configuration to node %d again failed; the leader retries within seconds", node),
				"node", node, "err", err)
		}
	}
	d.announce(j)
}

// notMember handles a peer's word that this node is not in its
// configuration (see tellNotMember).
func (d *Daemon) notMember(from uint16, p []byte) {
	n, err := frame.DecodeNotMember(p)
	if err != nil {
		d.counters["dropped_malformed"]++
		return
	}
	if n.Node != d.self.Number || d.deleted {
		return
	}
	if d.cfgIndex == 0 || n.ConfigIndex <= d.cfgIndex {
		d.log.Debug("a peer says this node is not in its configuration, which is not newer than ours",
			"node", from, "config_index", n.ConfigIndex, "ours", d.cfgIndex)
		return
	}
	d.log.Warn(fmt.Sprintf("node %d says this node was deleted from the cluster configuration (its index %d, ours %d); stopping", from, n.ConfigIndex, d.cfgIndex),
		"node", from, "reason", "deleted from the configuration", "config_index", n.ConfigIndex)
	d.markDeleted(fmt.Sprintf("node %d said so (its configuration index %d, this node's %d)", from, n.ConfigIndex, d.cfgIndex))
}
