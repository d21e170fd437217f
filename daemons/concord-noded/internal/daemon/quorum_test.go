package daemon

import (
	"fmt"
	"testing"
)

// Issue 9 item 6: quorum counts the votes of the view's members, not of
// the configured nodes. An isolated node of three installs its singleton
// view and is not quorate; the two others stay quorate; after the heal
// all three are quorate again.
func TestIsolatedNodeIsInquorate(t *testing.T) {
	h, c, ns := startCluster(t, 3)
	isolate := func(cut bool) {
		for i, l := range c.Node(3).Links {
			h.setCut(i, l.MAC, cut)
		}
	}
	isolate(true)
	agreeOn(t, ns[2:], "[3]")
	agreeOn(t, ns[:2], "[1 2]")
	eventually(t, "node 3 inquorate, nodes 1 and 2 quorate", func() (bool, string) {
		var out string
		ok := true
		for i, n := range ns {
			q := n.d.Status().Quorum
			want := i < 2
			ok = ok && q.Quorate == want && q.TotalVotes == map[bool]uint32{true: 2, false: 1}[want]
			out += fmt.Sprintf("n%d %+v; ", i+1, q)
		}
		return ok, out
	})
	isolate(false)
	agreeOn(t, ns, "[1 2 3]")
	eventually(t, "all quorate after the heal", func() (bool, string) {
		for i, n := range ns {
			if q := n.d.Status().Quorum; !q.Quorate || q.TotalVotes != 3 {
				return false, fmt.Sprintf("n%d %+v", i+1, q)
			}
		}
		return true, ""
	})
}
