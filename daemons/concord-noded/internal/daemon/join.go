package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/concord-ha/concord/daemons/concord-noded/internal/nic"
	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/driver/link"
	"github.com/concord-ha/concord/lib/store/atomicfile"
	"github.com/concord-ha/concord/lib/store/confstore"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// Joining. A new node needs only the cluster key and its own name: its
// cluster.conf has the join form (config.JoinFile: no [cluster] section,
// at most [node NAME] and the names of its heartbeat NICs), or there is no
// file at all. It then fetches the configuration from the running cluster
// before it starts as a member:
//
//  1. It listens on its heartbeat NICs (those named in the file, else
//     every interface named hb*) for Concord frames of any multicast
//     group, since it does not know its cluster's yet.
//  2. A frame's header names its cluster id; the node proves that it has
//     that cluster's key by opening the frame with an Opener for that id.
//     Frames that do not open are counted and, if nothing else is heard,
//     make it say that its key is not the cluster's.
//  3. It sends a JoinRequest, as sender 0 (not a member yet) with its name,
//     to the cluster's group on every NIC, once a second.
//  4. Members answer with their replicated configuration and its index
//     (JoinConfig, fragmented; see answerJoin). The node takes the first
//     answer to one of its requests that lists it, checks that its NICs
//     have the MACs the configuration gives them, stores it in the state
//     directory (joinedFile; /etc is not rewritten) and starts with it as
//     a normal member that never bootstraps a configuration of its own.
//
// At later starts the stored configuration is used and nothing is fetched.

// joinedFile holds, in the state directory, the configuration this node
// fetched when it joined; it is read at every start while cluster.conf
// has the join form.
const joinedFile = "joined.conf"

// Timing of a join.
const (
	joinWait   = 60 * time.Second // listen this long for a cluster and its answer; under systemd's start timeout
	joinRetry  = time.Second      // between join requests
	joinSettle = 3 * time.Second  // after an answer without this node, wait this long for one with it
	maxOpeners = 16               // cluster ids tried at once: frames of strangers must not cost memory
)

// ErrTryAgain is wrapped by the errors of a start that may work later
// without any change here: no cluster was heard yet. concord-noded exits
// with 1 for them, which systemd restarts, and with 6 for the others.
var ErrTryAgain = errors.New("try again later")

type tryAgain struct{ msg string }

func (e *tryAgain) Error() string        { return e.msg }
func (e *tryAgain) Is(target error) bool { return target == ErrTryAgain }

// startConfig is what a start reads: the configuration, whether this
// node joins (or joined) a running cluster, and the index of a
// configuration just fetched (0 otherwise).
type startConfig struct {
	cfg     *config.Cluster
	joining bool
	index   uint64
}

// loadConfig reads the configuration a start needs: cluster.conf, or
// while it has the join form, the configuration fetched when this node
// joined, fetching it now if it never did. It sets o.NodeName when the
// file names the node.
func loadConfig(o *Options, log *slog.Logger) (startConfig, error) {
	if err := checkDeleted(o.StateDir); err != nil {
		return startConfig{}, err
	}
	data, err := os.ReadFile(o.ConfigPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return startConfig{}, err
	}
	if err == nil && !config.IsJoinForm(data) {
		fc, err := config.Load(o.ConfigPath)
		return startConfig{cfg: fc}, err
	}
	jf := &config.JoinFile{}
	form := o.ConfigPath + " does not exist"
	if err == nil {
		if jf, err = config.ParseJoin(o.ConfigPath, data); err != nil {
			return startConfig{}, err
		}
		form = o.ConfigPath + " has no [cluster] section"
	}
	switch {
	case jf.Name != "" && o.NodeName != "" && jf.Name != o.NodeName:
		return startConfig{}, fmt.Errorf("--node %s, but %s names [node %s]", o.NodeName, o.ConfigPath, jf.Name)
	case jf.Name != "":
		o.NodeName = jf.Name
	case o.NodeName == "":
		if o.NodeName, err = os.Hostname(); err != nil {
			return startConfig{}, fmt.Errorf("host name: %w", err)
		}
	}
	if fc, err := loadJoined(o.StateDir, o.NodeName); fc != nil || err != nil {
		return startConfig{cfg: fc, joining: true}, err
	}
	key, err := frame.LoadKey(o.KeyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return startConfig{}, fmt.Errorf("%s, so this node joins a running cluster, which needs the cluster's key: copy %s from a member (root, mode 0600)",
			form, o.KeyPath)
	}
	if err != nil {
		return startConfig{}, fmt.Errorf("%s, so this node joins a running cluster: %w", form, err)
	}
	log.Info(form + ", so this node joins a running cluster: looking for it")
	ports, err := openJoinPorts(jf.Links, log)
	if err != nil {
		return startConfig{}, err
	}
	j := &joiner{name: o.NodeName, key: key, keyPath: o.KeyPath, ports: ports, log: log, macOf: localMAC,
		status: func(s string) { sddaemon.SdNotify(false, "STATUS="+s) }}
	r, err := j.run(context.Background())
	if err != nil {
		return startConfig{}, err
	}
	if err := saveJoined(o.StateDir, o.NodeName, r); err != nil {
		return startConfig{}, err
	}
	log.Info(fmt.Sprintf("joined cluster %s: node %d sent its configuration (index %d); kept in %s",
		r.cfg.Name, r.from, r.index, filepath.Join(o.StateDir, joinedFile)), "node", r.from, "config_index", r.index)
	return startConfig{cfg: r.cfg, joining: true, index: r.index}, nil
}

// joined sets up a daemon of a node that joined a running cluster, index
// being that of the configuration it just fetched, if it did. It must
// never bootstrap a configuration of its own. And until its store has the
// replicated configuration, the fetched one's index is its own: a peer
// whose configuration is newer and does not list it can tell it that it
// was deleted in between (see notMember), as configurations are totally
// ordered by index.
func (d *Daemon) joined(index uint64) {
	d.store.PeerInitialized()
	if d.cfgIndex == 0 {
		d.cfgIndex = index
	}
}

// joined is what a join fetched.
type joined struct {
	cfg   *config.Cluster
	index uint64 // the sender's applied index
	from  uint16 // the member that sent it
	when  time.Time
}

// saveJoined keeps what a join fetched in the state directory.
func saveJoined(dir, name string, r *joined) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	head := fmt.Sprintf("# The configuration of cluster %s, as node %d sent it (index %d) when %s joined on %s.\n"+
		"# concord-noded reads it at start while cluster.conf has the join form (see concord-noded(8));\n"+
		"# the replicated configuration (concordctl config show) is the one in force.\n",
		r.cfg.Name, r.from, r.index, name, r.when.UTC().Format(time.RFC3339))
	return atomicfile.Write(filepath.Join(dir, joinedFile), append([]byte(head), config.Format(r.cfg)...), 0o644)
}

// loadJoined returns the configuration of a node that joined before: the
// replicated one it applied last (the store's cluster.json), if that
// still lists name, else the one it fetched. Both nil: it never joined.
func loadJoined(dir, name string) (*config.Cluster, error) {
	path := filepath.Join(dir, joinedFile)
	fc, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%v (fetched when this node joined; remove it to fetch the configuration again)", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, confstore.ClusterFile)); err == nil {
		var c config.Cluster
		if json.Unmarshal(b, &c) == nil && c.Validate() == nil && c.ID == fc.ID && c.NodeByName(name) != nil {
			return &c, nil
		}
	}
	if fc.NodeByName(name) == nil {
		return nil, fmt.Errorf("%s does not list this node, %s: remove it to fetch the configuration again", path, name)
	}
	return fc, nil
}

// localMAC is the MAC of interface name on this host.
func localMAC(name string) (net.HardwareAddr, bool) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, false
	}
	return ifi.HardwareAddr, true
}

// openJoinPorts opens the NICs a joining node listens on: those named,
// else every interface named hb*. It sets them up first, as the daemon
// does with its configured NICs, since nothing else will.
func openJoinPorts(names []string, log *slog.Logger) ([]joinPort, error) {
	if len(names) == 0 {
		ifs, err := net.Interfaces()
		if err != nil {
			return nil, err
		}
		for _, ifi := range ifs {
			if strings.HasPrefix(ifi.Name, "hb") {
				names = append(names, ifi.Name)
			}
		}
		slices.Sort(names)
		if len(names) == 0 {
			return nil, &tryAgain{"no heartbeat NIC to join the cluster on: no interface is named hb*; " +
				"name them so, or list them in cluster.conf as link = IFNAME lines under [node NAME]"}
		}
	}
	links := make([]nic.Link, len(names))
	for i, n := range names {
		links[i] = nic.Link{Index: i, Interface: n}
	}
	if m, err := nic.New(links, nic.Options{}); err != nil {
		return nil, err
	} else if sts, err := m.Up(); err != nil {
		log.Warn("cannot set the heartbeat NICs up: " + err.Error())
	} else {
		for _, st := range sts {
			if !st.Working() {
				log.Warn(st.String(), "link", st.Index, "interface", st.Interface)
			}
		}
	}
	var ports []joinPort
	for _, n := range names {
		c, err := link.Open(n, nil)
		if err == nil {
			if err = c.ReceiveAllMulticast(); err != nil {
				c.Close()
			}
		}
		if err != nil {
			log.Warn("cannot listen for the cluster on "+n+": "+err.Error(), "interface", n)
			continue
		}
		ports = append(ports, joinPort{name: n, mac: c.HardwareAddr(), Port: c})
	}
	if len(ports) == 0 {
		return nil, &tryAgain{fmt.Sprintf("cannot listen for the cluster on any of %s", strings.Join(names, ", "))}
	}
	return ports, nil
}

// joinPort is a NIC a joining node listens on.
type joinPort struct {
	name string
	mac  net.HardwareAddr
	Port
}

// joiner fetches the configuration for a node that has only the key.
type joiner struct {
	name    string
	key     []byte
	keyPath string // for messages
	ports   []joinPort
	log     *slog.Logger
	macOf   func(ifname string) (net.HardwareAddr, bool) // nil: the ports' MACs
	status  func(string)                                 // systemd's STATUS=; nil: none

	wait, retry, settle time.Duration // zero: joinWait, joinRetry, joinSettle
}

// heard is the first frame heard of a cluster whose frames do not open.
type heard struct {
	link   string
	src    net.HardwareAddr
	frames int
}

// run listens, asks and returns the configuration. It closes the ports.
func (j *joiner) run(ctx context.Context) (*joined, error) {
	wait, retry, settle := orDefault(j.wait, joinWait), orDefault(j.retry, joinRetry), orDefault(j.settle, joinSettle)
	rx := make(chan rxFrame, 256)
	done := make(chan struct{})
	defer func() {
		close(done)
		for _, p := range j.ports {
			p.Close()
		}
	}()
	for i, p := range j.ports {
		go j.read(uint8(i), p, rx, done)
	}
	var (
		openers  = map[uint32]*frame.Opener{}
		badKey   = map[uint32]*heard{}
		cluster  uint32
		op       *frame.Opener
		reqs     = map[uint64]bool{}
		reasm    = map[uint16]*reassembly{}
		notIn    *absent // an answer without this node
		notInAt  time.Time
		lastInc  uint64
		deadline = time.NewTimer(wait)
		tick     = time.NewTicker(retry)
	)
	defer deadline.Stop()
	defer tick.Stop()
	j.say(fmt.Sprintf("joining: listening on %s for a Concord cluster", j.portNames()))
	ask := func() {
		inc := max(uint64(time.Now().UnixNano()), lastInc+1)
		lastInc = inc
		if err := j.ask(cluster, inc, reqs); err != nil {
			j.log.Error("cannot send a join request: " + err.Error())
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case f := <-rx:
			h, err := frame.ParseHeader(f.data)
			if err != nil || h.Sender == 0 {
				continue // not Concord's, or another node that joins
			}
			if op == nil {
				o := openers[h.Cluster]
				if o == nil {
					if len(openers) >= maxOpeners {
						continue
					}
					if o, err = frame.NewOpener(j.key, h.Cluster); err != nil {
						return nil, err
					}
					openers[h.Cluster] = o
				}
				if _, _, err := o.Open(nil, f.data); err != nil {
					if errors.Is(err, frame.ErrAuth) {
						j.keyMismatch(badKey, h.Cluster, f)
					}
					continue
				}
				cluster, op = h.Cluster, o
				j.log.Info(fmt.Sprintf("heard cluster id %d on %s from %s (node %d); asking its members for the configuration",
					cluster, j.ports[f.link].name, f.src, h.Sender), "node", h.Sender)
				j.say(fmt.Sprintf("joining: asking cluster id %d for its configuration", cluster))
				ask()
				continue
			}
			if h.Cluster != cluster || h.Kind != frame.KindJoinConfig {
				continue
			}
			h, payload, err := op.Open(nil, f.data)
			if err != nil {
				continue
			}
			r := reasm[h.Sender]
			if r == nil || r.incarnation != h.Incarnation {
				r = &reassembly{incarnation: h.Incarnation}
				reasm[h.Sender] = r
			}
			whole, err := r.Add(payload)
			if whole == nil || err != nil {
				continue
			}
			got, without := j.answer(h.Sender, cluster, whole, reqs)
			switch {
			case got != nil:
				if err := j.checkMACs(got.cfg); err != nil {
					return nil, err
				}
				return got, nil
			case without != nil && notIn == nil:
				notIn, notInAt = without, time.Now()
			}
		case <-tick.C:
			switch {
			case op == nil:
			case notIn != nil && time.Since(notInAt) >= settle:
				return nil, j.notMember(notIn)
			default:
				ask()
			}
		case <-deadline.C:
			switch {
			case notIn != nil:
				return nil, j.notMember(notIn)
			case op != nil:
				return nil, &tryAgain{fmt.Sprintf("heard cluster id %d on %s, but no member answered with its configuration within %v "+
					"(a member answers once it has the replicated configuration)", cluster, j.portNames(), wait)}
			case len(badKey) > 0:
				return nil, j.keyError(badKey)
			}
			return nil, &tryAgain{fmt.Sprintf("heard no Concord frames on %s within %v: are the other nodes running, and these NICs on their heartbeat networks?",
				j.portNames(), wait)}
		}
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// read hands frames from one port to the joiner until the port closes.
func (j *joiner) read(idx uint8, p Port, rx chan<- rxFrame, done <-chan struct{}) {
	buf := make([]byte, 2048)
	for {
		n, src, err := p.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		select {
		case rx <- rxFrame{link: idx, src: src, data: append([]byte(nil), buf[:n]...)}:
		case <-done:
			return
		default: // behind: a member resends
		}
	}
}

// ask sends a join request as sender 0 with incarnation inc (larger than
// this node's previous ones, so nonces never repeat) to the cluster's
// group on every port.
func (j *joiner) ask(cluster uint32, inc uint64, reqs map[uint64]bool) error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	id := binary.BigEndian.Uint64(b[:])
	p, err := frame.JoinRequest{RequestID: id, Name: j.name}.Encode()
	if err != nil {
		return fmt.Errorf("this node's name %q cannot be sent: %w", j.name, err)
	}
	s, err := frame.NewSealer(j.key, cluster, 0, inc)
	if err != nil {
		return err
	}
	f, _, err := s.Seal(nil, frame.KindJoinRequest, p)
	if err != nil {
		return err
	}
	reqs[id] = true
	group := link.MulticastGroup(cluster)
	for i, port := range j.ports {
		frame.SetLink(f, uint8(i))
		if err := port.WriteTo(f, group); err != nil {
			j.log.Debug("join request not sent", "interface", port.name, "err", err)
		}
	}
	return nil
}

// absent is an answer that does not list this node.
type absent struct {
	cluster string
	index   uint64
	from    uint16
}

// answer checks a member's reassembled answer. It returns what was
// fetched, or, for an answer to one of this node's requests that does not
// list it, which answer that was; both nil for anything else.
func (j *joiner) answer(from uint16, cluster uint32, b []byte, reqs map[uint64]bool) (*joined, *absent) {
	jc, err := frame.DecodeJoinConfig(b)
	if err != nil {
		j.log.Warn(fmt.Sprintf("node %d sent a join answer that does not parse: %v", from, err), "node", from)
		return nil, nil
	}
	if !reqs[jc.RequestID] {
		return nil, nil // an answer to another node's request
	}
	c := &config.Cluster{}
	err = json.Unmarshal(jc.Config, c)
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		j.log.Warn(fmt.Sprintf("node %d sent a configuration that is not valid: %v", from, err), "node", from)
		return nil, nil
	}
	if c.ID != cluster {
		j.log.Warn(fmt.Sprintf("node %d of cluster id %d sent the configuration of cluster id %d", from, cluster, c.ID), "node", from)
		return nil, nil
	}
	if c.NodeByName(j.name) == nil {
		j.log.Debug("an answer without this node", "node", from, "config_index", jc.Index)
		return nil, &absent{cluster: c.Name, index: jc.Index, from: from}
	}
	return &joined{cfg: c, index: jc.Index, from: from, when: time.Now()}, nil
}

// notMember is the error of a node that the cluster does not list.
func (j *joiner) notMember(a *absent) error {
	return fmt.Errorf("node %s is not in cluster %s's configuration (index %d, from node %d): run `%s` on a member first, then start concord-noded here again",
		j.name, a.cluster, a.index, a.from, j.nodeAdd())
}

// nodeAdd is the command that adds this node with the NICs it listens on.
func (j *joiner) nodeAdd() string {
	var b strings.Builder
	fmt.Fprintf(&b, "concordctl node add %s", j.name)
	for _, p := range j.ports {
		fmt.Fprintf(&b, " --link \"%s %s\"", p.name, p.mac)
	}
	return b.String()
}

// checkMACs checks that this node's NICs have the MACs the configuration
// gives its links: peers send to those MACs. A link whose NIC is not here
// is left to the daemon, which reports it.
func (j *joiner) checkMACs(c *config.Cluster) error {
	self := c.NodeByName(j.name)
	macOf := j.macOf
	if macOf == nil {
		macOf = func(name string) (net.HardwareAddr, bool) {
			for _, p := range j.ports {
				if p.name == name {
					return p.mac, true
				}
			}
			return nil, false
		}
	}
	var wrong []string
	fix := fmt.Sprintf("concordctl node edit %s", j.name)
	for i, l := range self.Links {
		m, ok := macOf(l.Interface)
		switch {
		case !ok:
			j.log.Warn(fmt.Sprintf("cluster %s gives node %s link %d on %s, which this node does not have", c.Name, j.name, i, l.Interface),
				"link", i, "interface", l.Interface)
			m = l.MAC
		case !bytes.Equal(m, l.MAC):
			wrong = append(wrong, fmt.Sprintf("link %d %s has %s here, not %s", i, l.Interface, m, l.MAC))
		}
		fix += fmt.Sprintf(" --link \"%s %s\"", l.Interface, m)
	}
	if len(wrong) > 0 {
		return fmt.Errorf("cluster %s's configuration gives node %s other MACs than its NICs have (%s): correct it on a member with `%s`, then start concord-noded here again",
			c.Name, j.name, strings.Join(wrong, "; "), fix)
	}
	return nil
}

// keyMismatch notes a frame that does not open with this node's key, and
// says so once per cluster id.
func (j *joiner) keyMismatch(bad map[uint32]*heard, cluster uint32, f rxFrame) {
	if h := bad[cluster]; h != nil {
		h.frames++
		return
	}
	bad[cluster] = &heard{link: j.ports[f.link].name, src: f.src, frames: 1}
	j.log.Warn(fmt.Sprintf("frames of cluster id %d heard on %s from %s do not authenticate with the key in %s; listening on",
		cluster, j.ports[f.link].name, f.src, j.keyPath))
}

// keyError is the error of a node that heard only frames its key does
// not open.
func (j *joiner) keyError(bad map[uint32]*heard) error {
	var ids []uint32
	for id := range bad {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var parts []string
	for _, id := range ids {
		h := bad[id]
		parts = append(parts, fmt.Sprintf("cluster id %d on %s from %s (%d frames)", id, h.link, h.src, h.frames))
	}
	return fmt.Errorf("heard only frames that do not authenticate with the key in %s, of %s: this node's key is not its cluster's; "+
		"copy /etc/concord/authkey from a member (root, mode 0600) and start concord-noded again", j.keyPath, strings.Join(parts, ", "))
}

func (j *joiner) portNames() string {
	var ns []string
	for _, p := range j.ports {
		ns = append(ns, p.name)
	}
	return strings.Join(ns, ", ")
}

func (j *joiner) say(s string) {
	if j.status != nil {
		j.status(s)
	}
}
