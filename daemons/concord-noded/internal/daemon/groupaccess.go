package daemon

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/concord-ha/concord/lib/api/config"
)

// Who may use process groups: root and the daemon's own user always; other
// users as the groups.allow.* options of the replicated configuration say
// (see concord.conf(5)). Names are looked up on this node when a session
// opens or joins, so a rule follows the node's own user database.

// accounts finds users and groups; the real one reads the system's.
type accounts interface {
	uid(name string) (uint32, bool)
	gid(name string) (uint32, bool)
	groupsOf(uid uint32) []uint32
}

type systemAccounts struct{}

func (systemAccounts) uid(name string) (uint32, bool) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(u.Uid, 10, 32)
	return uint32(n), err == nil
}

func (systemAccounts) gid(name string) (uint32, bool) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(n), err == nil
}

func (systemAccounts) groupsOf(uid uint32) []uint32 {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil
	}
	ids, _ := u.GroupIds()
	var out []uint32
	for _, s := range ids {
		if n, err := strconv.ParseUint(s, 10, 32); err == nil {
			out = append(out, uint32(n))
		}
	}
	return out
}

// groupRulesFor returns the rules that apply to a process of uid and
// (primary) gid; nil for root and the daemon's user, to whom all apply.
func groupRulesFor(rules []config.GroupRule, acc accounts, uid, gid uint32) (all bool, mine []config.GroupRule) {
	if uid == 0 || int(uid) == os.Geteuid() {
		return true, nil
	}
	var gids []uint32
	gidsDone := false
	for _, r := range rules {
		want, ok := parseID(r.Who)
		switch r.Kind {
		case "user":
			if !ok {
				want, ok = acc.uid(r.Who)
			}
			if ok && want == uid {
				mine = append(mine, r)
			}
		case "group":
			if !ok {
				want, ok = acc.gid(r.Who)
			}
			if !ok {
				continue
			}
			if !gidsDone {
				gids, gidsDone = append(acc.groupsOf(uid), gid), true
			}
			for _, g := range gids {
				if g == want {
					mine = append(mine, r)
					break
				}
			}
		}
	}
	return false, mine
}

func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// mayJoin says whether a process may join group, and if not, why.
func mayJoin(rules []config.GroupRule, acc accounts, uid, gid uint32, group string) error {
	all, mine := groupRulesFor(rules, acc, uid, gid)
	if all {
		return nil
	}
	var pats []string
	for _, r := range mine {
		if r.Allows(group) {
			return nil
		}
		pats = append(pats, r.Patterns...)
	}
	if len(mine) == 0 {
		return fmt.Errorf("uid %d may not use process groups on this node (root may; others as the groups.allow.* options say)", uid)
	}
	return fmt.Errorf("uid %d may not join group %q (its groups.allow rules allow %s)", uid, group, strings.Join(pats, " "))
}
