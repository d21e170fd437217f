package noded

import (
	"strings"
	"testing"

	"github.com/concord-ha/concord/tests/harness/concordtest"
)

// A disaster leaves 2 of 5 nodes: no quorum, and no configuration leader
// either (Raft needs 3). `concordctl quorum unblock` on one survivor makes
// both quorate, and each survivor's journal says who forced it.
func TestQuorumUnblockAfterDisaster(t *testing.T) {
	c, ctx := boot(t, concordtest.Options{Nodes: 5})
	mustView(t, ctx, c, []int{1, 2, 3, 4, 5}, ids(1, 2, 3, 4, 5))
	out, err := c.Exec(ctx, 1, "concordctl", "quorum", "unblock", "--yes")
	if err == nil || !strings.Contains(err.Error(), "nothing to unblock") {
		t.Fatalf("unblock while quorate: %v\n%s", err, out)
	}
	for _, i := range []int{3, 4, 5} {
		if err := c.Kill(i); err != nil {
			t.Fatal(err)
		}
	}
	mustView(t, ctx, c, []int{1, 2}, ids(1, 2))
	mustQuorate(t, ctx, c, 1, false)
	mustQuorate(t, ctx, c, 2, false)
	// Without --yes and without the word, nothing happens.
	if out, err := c.Exec(ctx, 1, "sh", "-c", "echo no | concordctl quorum unblock"); err == nil {
		t.Fatalf("unblock went ahead without confirmation: %s", out)
	}
	mustQuorate(t, ctx, c, 2, false)
	out, err = c.Exec(ctx, 1, "sh", "-c", "echo unblock | concordctl quorum unblock")
	if err != nil {
		t.Fatalf("quorum unblock: %v", err)
	}
	t.Logf("concordctl quorum unblock: %s", out)
	for _, i := range []int{1, 2} {
		s := mustQuorate(t, ctx, c, i, true)
		if !strings.Contains(s.Quorum.Reason, "forced by quorum unblock") {
			t.Errorf("node%d quorate for another reason: %+v", i, s.Quorum)
		}
		j, err := c.Exec(ctx, i, "journalctl", "-u", "concord-noded", "--no-pager", "-o", "cat")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(j, "QUORUM FORCED by uid 0 pid") {
			t.Errorf("node%d's journal does not say who forced quorum:\n%s", i, tail(j, 2000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
