package daemon

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/core/membership"
)

// Forcing quorum (concordctl quorum unblock) must reach every member of
// the partition at the same point of its history, and must work without a
// configuration leader: it travels as a message to group "" (every member
// of the view) in the membership core's total order, not through the
// replicated store. Its payload starts with unblockMagic, which SendGroup
// refuses from clients.
//
//	0      4          12        14        16
//	+------+----------+---------+---------+---------------+
//	| magic| view seq | coord   | origin  | who (text)    |
//	+------+----------+---------+---------+---------------+
var unblockMagic = []byte{0, 'C', 'Q', 'U'}

const unblockFixed = 16

// maxWho bounds the requester's description carried in the message.
const maxWho = 200

type unblockMsg struct {
	view   membership.ViewID
	origin uint16
	who    string
}

func (m unblockMsg) marshal() []byte {
	who := m.who
	if len(who) > maxWho {
		who = who[:maxWho]
	}
	b := make([]byte, unblockFixed, unblockFixed+len(who))
	copy(b, unblockMagic)
	binary.BigEndian.PutUint64(b[4:], m.view.Seq)
	binary.BigEndian.PutUint16(b[12:], uint16(m.view.Coord))
	binary.BigEndian.PutUint16(b[14:], m.origin)
	return append(b, who...)
}

// isControl reports whether a group-"" payload is one of Concord's own.
func isControl(p []byte) bool { return bytes.HasPrefix(p, unblockMagic) }

func parseUnblock(p []byte) (unblockMsg, error) {
	if !isControl(p) || len(p) < unblockFixed || len(p) > unblockFixed+maxWho {
		return unblockMsg{}, fmt.Errorf("quorum unblock: malformed message of %d bytes", len(p))
	}
	return unblockMsg{
		view:   membership.ViewID{Seq: binary.BigEndian.Uint64(p[4:]), Coord: membership.NodeID(binary.BigEndian.Uint16(p[12:]))},
		origin: binary.BigEndian.Uint16(p[14:]),
		who:    string(p[unblockFixed:]),
	}, nil
}

// UnblockQuorum asks every member of the current view to force quorum, on
// the admin's word that the missing nodes are down. who says who asked
// (uid, process), for the journal of every node.
func (d *Daemon) UnblockQuorum(who string) (nodebus.QuorumInfo, error) {
	var st nodebus.QuorumInfo
	err := d.groupOp(func() error {
		st = quorumInfo(d.qstate)
		switch {
		case d.state != "joined":
			return fmt.Errorf("this node is %s, not in a view: nothing to unblock", d.state)
		case d.qstate.Quorate:
			return fmt.Errorf("already quorate (%s): nothing to unblock", d.qstate.Reason)
		case d.qstate.TotalVotes == 0:
			return fmt.Errorf("the members of this view hold no votes: unblocking cannot make them quorate")
		}
		d.log.Warn(fmt.Sprintf("quorum unblock requested here by %s for view %d.%d; sending it to the view's members", who, d.view.ID.Seq, d.view.ID.Coord),
			"who", who, "view", d.view.ID.Seq)
		return d.core.Broadcast("", unblockMsg{view: d.view.ID, origin: d.self.Number, who: who}.marshal())
	})
	return st, err
}

// unblockDelivered applies an unblock in the order every member sees it.
// One meant for an earlier view is ignored: the partition changed since
// the admin looked, so they must look again.
func (d *Daemon) unblockDelivered(from uint16, p []byte) {
	m, err := parseUnblock(p)
	if err != nil {
		d.counters["dropped_malformed"]++
		d.log.Warn(err.Error(), "node", from)
		return
	}
	if m.view != d.view.ID {
		d.log.Warn(fmt.Sprintf("quorum unblock from node %d (%s) was for view %d.%d; this node is in view %d.%d now: ignored, run it again if still needed",
			from, m.who, m.view.Seq, m.view.Coord, d.view.ID.Seq, d.view.ID.Coord), "node", from, "who", m.who)
		return
	}
	st, err := d.quorum.Unblock()
	if err != nil {
		d.log.Info(fmt.Sprintf("quorum unblock from node %d (%s): %v", from, m.who, err), "node", from, "who", m.who)
		return
	}
	d.log.Warn(fmt.Sprintf("QUORUM FORCED by %s on node %d: quorate with %d of %d configured votes; the missing nodes must be down, or both sides will act",
		m.who, from, st.TotalVotes, d.quorum.Configured()), "node", from, "who", m.who, "view", d.view.ID.Seq)
	d.setQuorum(st, "quorum unblock by "+m.who)
}
