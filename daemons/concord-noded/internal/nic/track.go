package nic

import (
	"fmt"
	"time"
)

// Policy says what to do with a configured NIC that is set down while
// the daemon watches it (see the package comment).
type Policy int

const (
	PolicyLeaveDown Policy = iota // report it, leave it down
	PolicyKeepUp                  // set it up again, at most once per ReupInterval
)

// ReupInterval is the least time between two re-ups of one NIC under
// PolicyKeepUp.
const ReupInterval = time.Minute

// track is what is remembered about one configured link between looks.
type track struct {
	seen     bool      // an interface has been seen under the link's name
	ifindex  int       // the interface last seen under the name
	adminUp  bool      // its administrative state then
	lastReup time.Time // when a downed NIC was last set up again (PolicyKeepUp)
	note     string    // why a down NIC is left down, while it stays down
	status   Status    // last status reported
}

// step looks at the link again. It returns the new status and whether
// the NIC is to be set up; the caller does that and fills in Action.
func (t *track) step(l Link, nics []NIC, p Policy, now time.Time) (st Status, setUp bool) {
	st = assess(l, nics, t.ifindex)
	if st.Ifindex == 0 {
		// Keep ifindex and note: a rename back is the same interface,
		// not a new one.
		return st, false
	}
	appeared := !t.seen || st.Ifindex != t.ifindex
	if st.AdminUp || appeared {
		t.note = ""
	}
	switch {
	case st.AdminUp:
	case appeared:
		// New interfaces start down and nothing else brings heartbeat
		// NICs up.
		setUp = true
	case t.adminUp:
		// Set down by someone while we watched it.
		if p == PolicyKeepUp && (t.lastReup.IsZero() || now.Sub(t.lastReup) >= ReupInterval) {
			setUp = true
			t.lastReup = now
			break
		}
		if p == PolicyKeepUp {
			t.note = fmt.Sprintf("set down again within %v of the last re-up; left down (ip link set %s up)", ReupInterval, l.Interface)
		} else {
			t.note = fmt.Sprintf("set down while concord-noded runs; left down (ip link set %s up)", l.Interface)
		}
	}
	t.seen, t.ifindex, t.adminUp = true, st.Ifindex, st.AdminUp
	if t.note != "" {
		st.Reason += "; " + t.note
	}
	return st, setUp
}
