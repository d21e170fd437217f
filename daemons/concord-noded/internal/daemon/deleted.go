package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/concord-ha/concord/lib/store/atomicfile"
)

// A deleted node stays out. Its unit may still be enabled, and a restart
// would otherwise run it with a configuration that no longer lists it,
// where peers' notices cannot stop it (they are not newer than what it
// applied). So when it learns that it was deleted (it applies its own
// deletion, a peer with a newer configuration says so, or its replicated
// configuration at start no longer lists it) it writes deletedFile in the
// state directory, and refuses to start while that file is there.
// Clearing the state directory, after the node was added again, is the
// way back in: the node then starts afresh and fetches or receives the
// configuration.

// deletedFile in the state directory says that this node was deleted, and
// how to add it again.
const deletedFile = "deleted"

// markDeleted records that this node was deleted (how says how it
// learnt it) and makes the loop leave and stop.
func (d *Daemon) markDeleted(how string) {
	if d.deleted {
		return // the first word stands: a peer's notice, then its own deletion
	}
	d.deleted = true
	add := d.opts.Context.Ctl() + " node add " + d.self.Name
	for _, l := range d.self.Links {
		add += fmt.Sprintf(" --link \"%s %s\"", l.Interface, l.MAC)
	}
	msg := fmt.Sprintf("this node, %s (number %d), was deleted from cluster %s's configuration: %s, on %s. "+
		"It stays out: to add it again, run `%s` on a member, then here `rm -r %s` (this file with the rest of the state) and `systemctl start %s`.\n",
		d.self.Name, d.self.Number, d.cfg.Name, how, time.Now().UTC().Format(time.RFC3339), add, d.opts.StateDir, d.opts.Context.Unit())
	path := filepath.Join(d.opts.StateDir, deletedFile)
	if err := atomicfile.Write(path, []byte(msg), 0o644); err != nil {
		d.log.Error("cannot record that this node was deleted, so a restart would run it again: " + err.Error())
	}
}

// checkDeleted refuses a start after this node was deleted.
func checkDeleted(dir string) error {
	path := filepath.Join(dir, deletedFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return fmt.Errorf("%s (%s)", strings.TrimSpace(string(b)), path)
}

// Telling a node that it is not in the configuration (tellNotMember). A
// node that applied its own deletion stops for good; one that cannot
// compare yet (no replicated configuration of its own) or an older
// version may keep sending. So such a node is told at once, then after
// tellFirst, twice that, and so on up to every tellMax; one not told for
// twice tellMax is new again. It is logged about at most every
// tellLogEvery, with how many times it was told in between.
const (
	tellFirst    = time.Second
	tellMax      = time.Minute
	tellLogEvery = 5 * time.Minute
)

// tellLog is how often each node not in the configuration is told, and
// the log lines about it, at most one every tellLogEvery with the count of
// tellings since the last (see rateLimit).
type tellLog struct {
	every  map[uint16]uint64 // ticks until the next telling may be
	logged map[uint16]*rateLimit
}

// tellDue reports whether node may be told now and if so records it
// (d.told holds the tick of the last telling).
func (d *Daemon) tellDue(node uint16) bool {
	l := &d.tells
	if l.every == nil {
		l.every, l.logged = map[uint16]uint64{}, map[uint16]*rateLimit{}
	}
	last, ok := d.told[node]
	every := l.every[node]
	switch {
	case !ok || d.tick-last >= 2*d.ticks(tellMax):
		every = d.ticks(tellFirst)
	case d.tick-last < every:
		return false
	default:
		every = min(2*every, d.ticks(tellMax))
	}
	d.told[node], l.every[node] = d.tick, every
	return true
}

// logTold logs, if it is time, that node was told it is not a member.
func (d *Daemon) logTold(node uint16) {
	r := d.tells.logged[node]
	if r == nil {
		r = &rateLimit{}
		d.tells.logged[node] = r
	}
	seen, last := r.once, r.at
	if !r.due(d.tick, d.ticks(tellLogEvery)) {
		return
	}
	msg := fmt.Sprintf("node %d is not in the cluster configuration but sends frames; told it so", node)
	if seen {
		msg = fmt.Sprintf("node %d is not in the cluster configuration but still sends frames; told it so %d times in the last %v",
			node, r.since, (time.Duration(d.tick-last) * d.cfg.Totem.Tick).Round(time.Second))
	}
	r.since = 0
	d.log.Info(msg, "node", node, "reason", "not in configuration", "config_index", d.cfgIndex)
}
