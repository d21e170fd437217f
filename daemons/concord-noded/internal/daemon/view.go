package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/core/membership"
	"github.com/concord-ha/concord/lib/core/quorum"
	"github.com/concord-ha/concord/lib/store/atomicfile"
)

func (d *Daemon) installView(v membership.View, reason string) {
	d.view = v
	d.saveViewSeq(d.core.Status().MaxSeq)
	d.state = "joined"
	members := make([]uint16, len(v.Members))
	for i, m := range v.Members {
		members[i] = uint16(m)
	}
	d.log.Info(fmt.Sprintf("installed view %d.%d members %v (%s)", v.ID.Seq, v.ID.Coord, members, reason),
		"view", v.ID.Seq, "coordinator", v.ID.Coord, "members", fmt.Sprint(members), "reason", reason,
		"installed_at_us", time.Now().UnixMicro())
	d.events.ViewChanged(nodebus.ViewInfo{Seq: v.ID.Seq, Coordinator: uint16(v.ID.Coord), Members: members}, reason)
	d.setQuorum(d.quorum.Update(members, d.tick), "view "+fmt.Sprint(v.ID.Seq))
	d.refresh()
}

func (d *Daemon) setQuorum(st quorum.State, why string) {
	old := d.qstate
	d.qstate = st
	d.dirty = true
	if old.Quorate == st.Quorate && old.TotalVotes == st.TotalVotes && old.ExpectedVotes == st.ExpectedVotes && old.Quorum == st.Quorum {
		return
	}
	word := "not quorate"
	if st.Quorate {
		word = "quorate"
	}
	d.log.Info(fmt.Sprintf("quorum: %s, %d of %d votes, quorum %d (%s)", word, st.TotalVotes, st.ExpectedVotes, st.Quorum, st.Reason),
		"quorate", st.Quorate, "view", d.view.ID.Seq, "reason", why)
	d.events.QuorumChanged(quorumInfo(st))
}

func quorumInfo(st quorum.State) nodebus.QuorumInfo {
	return nodebus.QuorumInfo{Quorate: st.Quorate, TotalVotes: st.TotalVotes,
		ExpectedVotes: st.ExpectedVotes, Quorum: st.Quorum, Reason: st.Reason}
}

// The highest view seq this node has seen (installed or proposed) is kept
// on disk so a restarted node never reuses a view id of its previous life.
func (d *Daemon) viewSeqPath() string { return filepath.Join(d.opts.StateDir, "view-seq") }

func (d *Daemon) loadViewSeq() uint64 {
	b, err := os.ReadFile(d.viewSeqPath())
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		d.log.Warn("ignoring a corrupt view-seq file", "path", d.viewSeqPath(), "err", err)
		return 0
	}
	return n
}

// saveViewSeq hands seq to the writer goroutine; only the newest matters,
// and the fsync must not delay the loop.
func (d *Daemon) saveViewSeq(seq uint64) {
	select {
	case <-d.seqs:
	default:
	}
	d.seqs <- seq
}

func (d *Daemon) writeViewSeqs(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			select { // the newest seq, if one is still waiting
			case seq := <-d.seqs:
				d.writeViewSeq(seq)
			default:
			}
			return
		case seq := <-d.seqs:
			d.writeViewSeq(seq)
		}
	}
}

func (d *Daemon) writeViewSeq(seq uint64) {
	if err := atomicfile.Write(d.viewSeqPath(), []byte(strconv.FormatUint(seq, 10)+"\n"), 0o600); err != nil {
		d.log.Warn("cannot save the view seq", "err", err)
	}
}
