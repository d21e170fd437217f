package daemon

import (
	"fmt"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/core/groups"
)

// A surviving minority is made quorate by an unblock asked on one of its
// nodes: every member applies it, in order, without a configuration
// leader (Raft needs 3 of 5 and has 2). A node from outside coming back
// ends the override.
func TestQuorumUnblockReachesThePartition(t *testing.T) {
	h, c, ns := startCluster(t, 5)
	if _, err := ns[0].d.UnblockQuorum("test"); err == nil || !strings.Contains(err.Error(), "already quorate") {
		t.Fatalf("unblock while quorate: %v", err)
	}
	for _, n := range ns[2:] {
		n.crash()
	}
	agreeOn(t, ns[:2], "[1 2]")
	for _, n := range ns[:2] {
		if q := n.d.Status().Quorum; q.Quorate {
			t.Fatalf("2 of 5 quorate before the unblock: %+v", q)
		}
	}
	if _, err := ns[0].d.UnblockQuorum("uid 0 (test)"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both survivors quorate by the unblock", func() (bool, string) {
		for _, n := range ns[:2] {
			q := n.d.Status().Quorum
			if !q.Quorate || !strings.Contains(q.Reason, "forced by quorum unblock") {
				return false, fmt.Sprintf("%s: %+v", n.d.Status().LocalName, q)
			}
		}
		return true, ""
	})
	// Node 3 returns (a new life in a fresh state directory): the
	// configured expected votes are back, and 3 of 5 is quorate anyway.
	n3 := startNode(t, h, c, "n3", t.TempDir())
	agreeOn(t, []*testNode{ns[0], ns[1], n3}, "[1 2 3]")
	eventually(t, "the override ended", func() (bool, string) {
		q := ns[0].d.Status().Quorum
		return q.Quorate && q.ExpectedVotes == 5 && !strings.Contains(q.Reason, "forced"), fmt.Sprintf("%+v", q)
	})
}

// Group "" carries unblocks and process-group messages: neither may be
// taken for the other.
func TestControlPayloadsAreApart(t *testing.T) {
	b, err := groups.AppendBatch(nil, []groups.Msg{{Kind: groups.MsgJoin, Group: "g", ID: groups.MsgID{Node: 1, Inc: 1, Seq: 1}, Sender: groups.Member{Node: 1, Inc: 1, Client: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if isControl(b) {
		t.Error("a process-group batch looks like an unblock")
	}
	if _, err := groups.SplitBatch(unblockMsg{origin: 1, who: "x"}.marshal()); err == nil {
		t.Error("an unblock decodes as process-group messages")
	}
}

func TestUnblockMessageRoundTrip(t *testing.T) {
	m := unblockMsg{origin: 7, who: strings.Repeat("w", 300)}
	m.view.Seq, m.view.Coord = 9, 3
	got, err := parseUnblock(m.marshal())
	if err != nil || got.view != m.view || got.origin != 7 || len(got.who) != maxWho {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, unblockMagic, append(m.marshal(), 'x')} {
		if _, err := parseUnblock(bad); err == nil {
			t.Errorf("parseUnblock(%q) accepted", bad)
		}
	}
}
