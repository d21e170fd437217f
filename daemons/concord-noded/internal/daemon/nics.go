package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/concord-ha/concord/daemons/concord-noded/internal/nic"
	"github.com/concord-ha/concord/lib/api/nodebus"
)

// This node's heartbeat NICs. Nothing else brings them up (the udev rule
// keeps network managers off them), so the daemon does, at start, and then
// follows each one through the NIC manager's events: a link whose NIC is
// down, has no carrier or is missing is reported (journal, status, D-Bus),
// a NIC that appears later or is re-created gets its port opened then,
// READY=1 waits until one link works, and so does the bootstrap of the
// replicated configuration (a node that hears nothing cannot tell a
// running cluster from none).
//
// The interface names come from this node's cluster.conf, for the life of
// the daemon; the MACs the NICs must have come from the configuration in
// force (the replicated one once there is one), since those are what peers
// send this node's frames to.

// NICs is the heartbeat NIC manager as the daemon uses it; *nic.Manager
// is the real one.
type NICs interface {
	Up() ([]nic.Status, error)
	NICs() ([]nic.NIC, error)
	Watch(ctx context.Context) (<-chan nic.Event, error)
}

// PortOpener opens a heartbeat port on the named interface.
type PortOpener func(ifname string) (Port, error)

// localLink is one heartbeat link of this node, as the loop knows it.
type localLink struct {
	name     string     // interface, from this node's cluster.conf
	st       nic.Status // as the NIC manager last said
	ifindex  int        // of the NIC the port was opened on; 0: unknown or no port
	openErr  string     // why the port cannot be opened; "" when it is, or there is no NIC
	macNote  string     // how the NIC's MAC differs from the configuration's; "" when it does not
	nameNote string     // how the configuration's name of the link differs from name
}

// newLocalLinks describes the links of a daemon given open ports: without
// a NIC manager, an open port is taken to work.
func newLocalLinks(names []string, ports []Port) []localLink {
	ls := make([]localLink, len(names))
	for i, n := range names {
		ls[i].name = n
		ls[i].st.Link = nic.Link{Index: i, Interface: n}
		if i < len(ports) && ports[i] != nil {
			ls[i].st.State = nic.StateUp
		}
	}
	return ls
}

// linkWorks reports whether frames can flow on link i.
func (d *Daemon) linkWorks(i int) bool {
	return i < len(d.ports) && d.ports[i] != nil && d.local[i].st.Working()
}

func (d *Daemon) anyLinkWorks() bool {
	for i := range d.local {
		if d.linkWorks(i) {
			return true
		}
	}
	return false
}

func (d *Daemon) allLinksWork() bool {
	for i := range d.local {
		if !d.linkWorks(i) {
			return false
		}
	}
	return true
}

// linkState is link i's state and reason for the status.
func (d *Daemon) linkState(i int) (state, reason string) {
	l := &d.local[i]
	switch {
	case !l.st.Working():
		return l.st.State.String(), joinNotes(l.st.Reason, l.macNote)
	case d.ports[i] == nil:
		return "no-socket", joinNotes("cannot open "+l.name+": "+l.openErr, l.macNote)
	case l.macNote != "":
		return "wrong-mac", l.macNote
	}
	return "up", ""
}

func joinNotes(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

// localLinks is the status's list of this node's links.
func (d *Daemon) localLinks() []nodebus.LocalLink {
	out := make([]nodebus.LocalLink, len(d.local))
	for i, l := range d.local {
		state, reason := d.linkState(i)
		mac := ""
		if l.st.HWAddr != nil {
			mac = l.st.HWAddr.String()
		}
		out[i] = nodebus.LocalLink{Index: uint8(i), Interface: l.name, MAC: mac, State: state, Reason: reason}
	}
	return out
}

// linkProblems names each link that is not up with its state:
// "hb0 no-carrier, hb1 missing".
func (d *Daemon) linkProblems() string {
	var ps []string
	for i, l := range d.local {
		if st, _ := d.linkState(i); st != "up" {
			ps = append(ps, l.name+" "+st)
		}
	}
	return strings.Join(ps, ", ")
}

// waiting says what the node waits for, for the status: "" while a link
// works.
func (d *Daemon) waiting() string {
	if d.anyLinkWorks() {
		return ""
	}
	if len(d.local) == 0 {
		return "a heartbeat link (this node has none in its configuration)"
	}
	return "a working heartbeat link: " + d.linkProblems()
}

// UseNICs makes the daemon manage this node's heartbeat NICs with m and
// open their ports with open; call it before Run, on a daemon made
// without ports. It sets the NICs up and opens the ports of those that
// exist, and logs a line for each link it set up or that does not work,
// and for each configured MAC that is not on the link's NIC. An error is
// for not being able to look at the NICs at all; a missing NIC is not
// one.
func (d *Daemon) UseNICs(m NICs, open PortOpener) error {
	sts, err := m.Up()
	if err != nil {
		return fmt.Errorf("heartbeat NICs: %w", err)
	}
	d.nics, d.open = m, open
	for _, st := range sts {
		if st.Index < 0 || st.Index >= len(d.local) {
			continue
		}
		i := st.Index
		d.local[i].st = st
		d.syncPort(i)
		switch {
		case !d.linkWorks(i):
			state, reason := d.linkState(i)
			line := fmt.Sprintf("link %d (%s): %s", i, d.local[i].name, state)
			if reason != "" {
				line += ": " + reason
			}
			if st.Action != "" {
				line += "; " + st.Action
			}
			d.log.Warn(line, "link", i, "interface", d.local[i].name, "state", state)
		case st.Action != "":
			d.log.Info(st.String(), "link", i, "interface", d.local[i].name, "state", "up")
		}
	}
	d.checkLinkConfig()
	d.linksChanged()
	d.publish(d.buildStatus())
	return nil
}

// watchNICs starts following the NICs; the events come to the loop.
func (d *Daemon) watchNICs(ctx context.Context) error {
	if d.nics == nil {
		return nil
	}
	ch, err := d.nics.Watch(ctx)
	if err != nil {
		return fmt.Errorf("heartbeat NICs: %w", err)
	}
	d.nicEvents = ch
	return nil
}

// nicEvent handles a change of one of this node's NICs.
func (d *Daemon) nicEvent(ev nic.Event, ok bool) {
	if !ok {
		d.nicEvents = nil
		d.log.Error("heartbeat NIC watch ended: changes of the NICs are no longer followed")
		return
	}
	if ev.Err != nil {
		d.log.Warn(ev.String())
		return
	}
	i := ev.Index
	if i < 0 || i >= len(d.local) {
		return
	}
	was := d.linkWorks(i)
	d.local[i].st = ev.Status
	d.syncPort(i)
	works := d.linkWorks(i)
	lvl := slog.LevelWarn
	if works || ev.Action == "set it up" {
		// A NIC that appeared down was set up: the next event says
		// whether it works.
		lvl = slog.LevelInfo
	}
	line := ev.String()
	if ev.Working() && !works {
		line += "; cannot open it: " + d.local[i].openErr
	}
	state, _ := d.linkState(i)
	d.log.Log(context.Background(), lvl, line, "link", i, "interface", d.local[i].name, "state", state)
	if was != works {
		d.health.SetCarrier(uint8(i), works)
	}
	d.checkLinkConfig()
	d.linksChanged()
}

// syncPort opens, reopens or closes link i's port to match its NIC: a
// port is bound to one interface, so a NIC that was re-created (a new
// ifindex) needs a new one, and a NIC that is gone needs none.
func (d *Daemon) syncPort(i int) {
	l := &d.local[i]
	idx := l.st.Ifindex
	if d.open == nil || (d.ports[i] != nil && l.ifindex == idx) {
		return
	}
	if d.ports[i] != nil {
		d.ports[i].Close()
		d.ports[i] = nil
		if idx != 0 {
			d.log.Info(fmt.Sprintf("link %d (%s): the NIC was re-created (ifindex %d, was %d); opening it again", i, l.name, idx, l.ifindex),
				"link", i, "interface", l.name)
		}
	}
	l.ifindex = 0
	if idx == 0 {
		l.openErr = ""
		return
	}
	p, err := d.open(l.name)
	if err != nil {
		if l.openErr != err.Error() {
			d.log.Error(fmt.Sprintf("link %d (%s): cannot open it: %v", i, l.name, err), "link", i, "interface", l.name)
		}
		l.openErr = err.Error()
		return
	}
	l.openErr = ""
	l.ifindex = idx
	d.ports[i] = p
	if d.running {
		d.deferPort(i)
		go d.readLink(uint8(i), p)
	}
}

// linksChanged tells those who wait for a working link: the store, which
// does not bootstrap while nothing can be heard, and systemd, which gets
// READY=1 once one works.
func (d *Daemon) linksChanged() {
	works := d.anyLinkWorks()
	d.store.SetDeaf(!works)
	d.dirty = true
	if !d.running || d.ready {
		return
	}
	if !works {
		if !d.saidWaiting {
			d.log.Warn("not ready: waiting for " + d.waiting())
			d.saidWaiting = true
		}
		return
	}
	d.ready = true
	d.notify("READY=1")
}

// checkLinkConfig compares this node's links with the configuration in
// force, and logs each difference when it appears or changes: a NIC whose
// MAC is not the configured one loses every frame peers send to this
// node alone on that link (Raft's messages, for one), and a configured
// MAC on no NIC at all is a NIC this node does not have or a typo. Called
// at start, on every NIC change and on every configuration change.
func (d *Daemon) checkLinkConfig() {
	var nics []nic.NIC
	listed := false
	for i := range d.local {
		l := &d.local[i]
		var want net.HardwareAddr
		nameNote := ""
		if i < len(d.self.Links) {
			want = d.self.Links[i].MAC
			if n := d.self.Links[i].Interface; n != l.name {
				nameNote = fmt.Sprintf("link %d: the cluster configuration names it %s; this node uses %s, as its cluster.conf says", i, n, l.name)
			}
		} else {
			nameNote = fmt.Sprintf("link %d (%s): in this node's cluster.conf but not in the cluster configuration; peers do not know its MAC", i, l.name)
		}
		if nameNote != l.nameNote {
			if nameNote != "" {
				d.log.Warn(nameNote, "link", i, "interface", l.name)
			}
			l.nameNote = nameNote
		}
		note := ""
		if want != nil && !bytes.Equal(l.st.HWAddr, want) && d.nics != nil {
			if !listed {
				nics, _ = d.nics.NICs()
				listed = true
			}
			note = macNote(l, want, nics)
		}
		if note != l.macNote {
			switch {
			case note != "":
				d.log.Warn(fmt.Sprintf("link %d (%s): %s", i, l.name, note), "link", i, "interface", l.name)
			case l.macNote != "":
				d.log.Info(fmt.Sprintf("link %d (%s): MAC %s is the configured one again", i, l.name, want), "link", i, "interface", l.name)
			}
			l.macNote = note
			d.dirty = true
		}
	}
}

// macNote says how link l's NIC and the configured MAC want differ.
func macNote(l *localLink, want net.HardwareAddr, nics []nic.NIC) string {
	on := nic.Holders(nics, want)
	has := ""
	if l.st.HWAddr != nil {
		has = fmt.Sprintf(" (%s has %s)", l.name, l.st.HWAddr)
	}
	if on == "" {
		return fmt.Sprintf("configured MAC %s is on no NIC of this node%s", want, has)
	}
	if l.st.HWAddr == nil {
		return fmt.Sprintf("configured MAC %s is on %s, not on %s", want, on, l.name)
	}
	return fmt.Sprintf("%s has MAC %s, but the configuration gives this link %s, which is on %s", l.name, l.st.HWAddr, want, on)
}

// readFailures keeps a link reader, on its own goroutine, from flooding
// the journal: it logs a
// failure when it is new (a first one, or another error than the last),
// and waits longer after each one, up to a second.
type readFailures struct {
	last string
	wait time.Duration
}

func (r *readFailures) failed(d *Daemon, idx uint8, err error) {
	if msg := err.Error(); msg != r.last {
		r.last = msg
		name := d.linkNames[idx]
		d.log.Warn(fmt.Sprintf("link %d (%s): receiving failed: %v (logged again only if the error changes)", idx, name, err),
			"link", idx, "interface", name)
	}
	r.wait = min(max(2*r.wait, 10*time.Millisecond), time.Second)
	time.Sleep(r.wait)
}

// ok records a frame received; after failures it says so.
func (r *readFailures) ok(d *Daemon, idx uint8) {
	if r.last == "" {
		return
	}
	r.last, r.wait = "", 0
	name := d.linkNames[idx]
	d.log.Info(fmt.Sprintf("link %d (%s): receiving again", idx, name), "link", idx, "interface", name)
}
