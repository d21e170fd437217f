package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/core/membership"
	"github.com/concord-ha/concord/lib/core/quorum"
	"github.com/concord-ha/concord/lib/driver/link"
	"github.com/concord-ha/concord/lib/store/atomicfile"
	"github.com/concord-ha/concord/lib/store/confstore"
	"github.com/concord-ha/concord/lib/sys/jlog"
	"github.com/concord-ha/concord/lib/sys/ticker"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// Options are concord-noded's command-line settings.
type Options struct {
	ConfigPath string // /etc/concord/cluster.conf
	KeyPath    string // /etc/concord/authkey
	StateDir   string // /var/lib/concord
	NodeName   string // this node's name in the config; default: the host name
	Version    string
	Logger     *slog.Logger
	LogControl *jlog.Control // nil: no org.freedesktop.LogControl1
	NoBus      bool          // run without D-Bus (tests)
}

// The store ticks at its own pace: raft works at human speed. Probes (does
// this node have replicated state?) and full status rebuilds are rare: they
// cost CPU on every node all the time.
const (
	storeTick    = 100 * time.Millisecond
	probeEvery   = 500 * time.Millisecond
	refreshEvery = time.Second
)

type rxFrame struct {
	link uint8
	src  net.HardwareAddr
	data []byte
}

// Daemon is one running concord-noded. All fields are owned by the loop
// goroutine except mu-guarded status, which D-Bus methods read.
type Daemon struct {
	opts Options
	log  *slog.Logger

	fileCfg *config.Cluster // what cluster.conf said at start
	cfg     *config.Cluster // the replicated configuration in force
	self    config.Node
	num     uint16 // this node's number; never changes, safe to read anywhere
	inc     uint64

	core   *membership.Node
	quorum *quorum.Tracker
	qstate quorum.State
	store  *storeRunner
	sealer *frame.Sealer
	opener *frame.Opener
	ports  []Port
	health *link.Health
	group  net.HardwareAddr

	tick      uint64
	view      membership.View
	state     string
	counters  map[string]uint64
	reqs      chan func()
	rx        chan rxFrame
	bus       *bus
	lastWd    time.Time
	wdEvery   time.Duration
	lastNotif string
	dirty     bool // status changed since the last refresh

	seqs     chan uint64 // newest view seq to persist
	fragID   uint32
	reasm    map[reasmKey]*frame.Reassembly
	deleted  bool              // this node was deleted from the configuration: leave and stop
	mending  map[uint16]uint64 // tick at which a replica recovery for a node began (see replicaLost)
	cfgIndex uint64            // the store's applied index behind cfg; 0: not from the store yet
	told     map[uint16]uint64 // tick at which a node not in the configuration was last told so

	// Heartbeat alternation (see sendHeartbeat).
	hbLink        int    // link of the last heartbeat sent on one link
	degraded      bool   // some peer is missing on some link, as of the last tick
	allLinksUntil uint64 // a peer asked for heartbeats on every link until this tick

	onDeliver func(group string, unicast bool, payload []byte) // tests: see deliveries without D-Bus

	mu     sync.Mutex
	status nodebus.Status
}

// Port is one heartbeat link as the daemon uses it; *link.Conn is the real one.
type Port interface {
	WriteTo(payload []byte, dst net.HardwareAddr) error
	ReadFrom(buf []byte) (int, net.HardwareAddr, error)
	Close() error
}

// New loads the configuration and key and opens the links and the store.
func New(opts Options) (*Daemon, error) {
	fc, err := config.Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	name := opts.NodeName
	if name == "" {
		if name, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("host name: %w", err)
		}
	}
	self := fc.NodeByName(name)
	if self == nil {
		return nil, fmt.Errorf("%s: this host %q is not a [node %s] section (set --node NAME to choose one)", opts.ConfigPath, name, name)
	}
	key, err := frame.LoadKey(opts.KeyPath)
	if err != nil {
		return nil, err
	}
	group := link.MulticastGroup(fc.ID)
	var ports []Port
	for i, l := range self.Links {
		c, err := link.Open(l.Interface, group)
		if err != nil {
			for _, p := range ports {
				p.Close()
			}
			return nil, fmt.Errorf("link %d (%s): %w", i, l.Interface, err)
		}
		ports = append(ports, c)
	}
	opts.NodeName = name
	d, err := NewWith(opts, fc, key, ports)
	if err != nil {
		for _, p := range ports {
			p.Close()
		}
		return nil, err
	}
	return d, nil
}

// NewWith builds a daemon from a parsed configuration, a key and open ports
// (one per link of this node, in order).
func NewWith(opts Options, fc *config.Cluster, key []byte, ports []Port) (*Daemon, error) {
	d := &Daemon{opts: opts, log: opts.Logger, counters: map[string]uint64{},
		reqs: make(chan func(), 64), rx: make(chan rxFrame, 4096), state: "starting", ports: ports,
		reasm: map[reasmKey]*frame.Reassembly{}, seqs: make(chan uint64, 1),
		told: map[uint16]uint64{}, mending: map[uint16]uint64{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.fileCfg = fc
	self := fc.NodeByName(opts.NodeName)
	if self == nil {
		return nil, fmt.Errorf("no node named %q in the configuration", opts.NodeName)
	}
	d.self = *self
	d.num = self.Number
	d.inc = uint64(time.Now().UnixNano())
	var err error
	if d.sealer, err = frame.NewSealer(key, fc.ID, self.Number, d.inc); err != nil {
		return nil, err
	}
	if d.opener, err = frame.NewOpener(key, fc.ID); err != nil {
		return nil, err
	}
	st, err := confstore.Open(opts.StateDir, self.Number, storeLogger{d.log})
	if err != nil {
		return nil, err
	}
	d.store = newStoreRunner(st, fc, d.log)
	d.cfg = fc
	if st.Initialized() {
		// A node that joined but has not yet received the configuration
		// has an empty one: keep the file's until it arrives.
		if sc := st.Cluster(); len(sc.Nodes) > 0 {
			d.cfg = sc
			d.cfgIndex = st.Status().Applied
			if n := d.cfg.Node(self.Number); n != nil {
				d.self = *n
			}
		}
	}
	if err := d.startCore(); err != nil {
		return nil, err
	}
	d.group = link.MulticastGroup(fc.ID)
	d.health = link.NewHealth(d.ticks(fc.Totem.LinkDeadTime))
	return d, nil
}

func (d *Daemon) ticks(t time.Duration) uint64 {
	n := uint64(t / d.cfg.Totem.Tick)
	if n == 0 {
		n = 1
	}
	return n
}

func (d *Daemon) startCore() error {
	c := d.cfg
	peers := nodeNumbers(c)
	core, err := membership.New(membership.Config{
		ID:              membership.NodeID(d.self.Number),
		Incarnation:     d.inc,
		Peers:           toIDs(peers),
		HeartbeatTicks:  int(d.ticks(c.Totem.HeartbeatInterval)),
		Detector:        membership.NewTimeoutDetector(int(d.ticks(c.Totem.DeadTime))),
		TransitionTicks: int(d.ticks(c.Totem.JoinTimeout)),
		MinSeq:          d.loadViewSeq(),
		Logger:          coreLogger{d.log},
	})
	if err != nil {
		return err
	}
	d.core = core
	q, err := quorum.NewTracker(quorumConfig(c))
	if err != nil {
		return fmt.Errorf("quorum: %w", err)
	}
	d.quorum = q
	return nil
}

func quorumConfig(c *config.Cluster) quorum.Config {
	votes := map[uint16]uint32{}
	for _, n := range c.Nodes {
		votes[n.Number] = n.Votes
	}
	return quorum.Config{
		Votes: votes, ExpectedVotes: c.Quorum.ExpectedVotes, TwoNode: c.Quorum.TwoNode,
		WaitForAll: c.Quorum.WaitForAll, LastManStanding: c.Quorum.LastManStanding,
		LMSWindowTicks: uint64(c.Quorum.LMSWindow / c.Totem.Tick), TieBreaker: c.Quorum.TieBreaker,
	}
}

func nodeNumbers(c *config.Cluster) []uint16 {
	var ns []uint16
	for _, n := range c.Nodes {
		ns = append(ns, n.Number)
	}
	return ns
}

func toIDs(ns []uint16) []membership.NodeID {
	ids := make([]membership.NodeID, len(ns))
	for i, n := range ns {
		ids[i] = membership.NodeID(n)
	}
	return ids
}

func (d *Daemon) closePorts() {
	for _, p := range d.ports {
		p.Close()
	}
}

// Run is the event loop. It returns when ctx ends, after leaving the
// cluster cleanly.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.closePorts()
	sctx, stopStore := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.store.run(sctx) }()
	go func() { defer wg.Done(); d.writeViewSeqs(sctx) }()
	// The store and the view-seq writer finish what they write before Run
	// returns: nothing touches the state directory afterwards.
	defer func() { stopStore(); wg.Wait() }()
	for i, p := range d.ports {
		go d.readLink(uint8(i), p)
	}
	if !d.opts.NoBus {
		b, err := newBus(d)
		if err != nil {
			return err
		}
		d.bus = b
		defer b.close()
	}
	if wd, err := daemon.SdWatchdogEnabled(false); err == nil && wd > 0 {
		d.wdEvery = wd / 3
	}
	d.refresh()
	d.log.Info("concord-noded started", "node", d.self.Number, "name", d.self.Name, "cluster", d.cfg.Name,
		"links", len(d.ports), "incarnation", d.inc)
	daemon.SdNotify(false, daemon.SdNotifyReady)
	if !d.store.init.Load() {
		d.probe(0)
	}
	d.state = "joining"
	d.dirty = true

	// Ticks on the wall clock's boundaries line up the heartbeats of nodes
	// with synchronised clocks, so each wakes once a tick for its own and
	// its peers' together (see lib/ticker).
	t, err := ticker.New(d.cfg.Totem.Tick)
	if err != nil {
		return err
	}
	defer t.Stop()
	var leaveDeadline <-chan time.Time
	done := ctx.Done()
	for {
		select {
		case <-done:
			done = nil
			d.state = "leaving"
			d.dirty = true
			d.log.Info("leaving the cluster", "reason", "stop requested")
			daemon.SdNotify(false, daemon.SdNotifyStopping)
			d.core.Leave()
			leaveDeadline = time.After(300 * time.Millisecond)
		case <-leaveDeadline:
			d.log.Info("left the cluster", "view", d.view.ID.Seq)
			return nil
		case f := <-d.rx:
			d.receive(f)
		case fn := <-d.reqs:
			fn()
		case ev := <-d.store.out:
			d.storeEvent(ev)
		case <-t.C:
			d.onTick()
		}
		d.process()
		if d.deleted && done != nil {
			done = nil
			d.state = "leaving"
			d.dirty = true
			d.core.Leave()
			leaveDeadline = time.After(300 * time.Millisecond)
		}
	}
}

func (d *Daemon) readLink(idx uint8, c Port) {
	buf := make([]byte, 2048)
	for {
		n, src, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.Warn("link read failed", "link", idx, "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		b := make([]byte, n)
		copy(b, buf[:n])
		select {
		case d.rx <- rxFrame{link: idx, src: src, data: b}:
		default:
			// The loop is behind; dropping here is what a full NIC ring does.
			d.exec(func() { d.counters["dropped_backlog"]++ })
		}
	}
}

// exec runs fn on the loop without waiting.
func (d *Daemon) exec(fn func()) {
	select {
	case d.reqs <- fn:
	default:
	}
}

// call runs fn on the loop and waits for it.
func (d *Daemon) call(fn func()) {
	done := make(chan struct{})
	d.reqs <- func() { fn(); close(done) }
	<-done
}

func (d *Daemon) receive(f rxFrame) {
	d.counters["received"]++
	h, payload, err := d.opener.Open(nil, f.data)
	switch {
	case err == nil:
	case errors.Is(err, frame.ErrReplay):
		// The same frame again, usually its copy from another link. If it
		// is authentic, that link works; a forged copy proves nothing.
		d.counters["duplicate"]++
		if d.knownPeer(h.Sender) && d.opener.Authentic(f.data) {
			d.health.Heard(h.Sender, f.link, d.tick)
		}
		return
	default:
		d.counters[dropReason(err)]++
		return
	}
	if !d.knownPeer(h.Sender) {
		d.counters["dropped_unknown_node"]++
		if h.Sender != d.self.Number {
			d.tellNotMember(h.Sender, f)
		}
		return
	}
	d.health.Heard(h.Sender, f.link, d.tick)
	if h.Flags&frame.FlagAllLinks != 0 {
		// The sender flags every frame while it misses a link, so holding
		// for one link dead-time bridges the gaps between its frames.
		d.allLinksUntil = d.tick + d.ticks(d.cfg.Totem.LinkDeadTime)
	}
	switch h.Kind {
	case frame.KindMembership:
		d.stepCore(h.Sender, payload)
	case frame.KindMembershipFrag:
		if whole := d.reassemble(h.Sender, h.Kind, payload); whole != nil {
			d.stepCore(h.Sender, whole)
		}
	case frame.KindConfig:
		d.store.peerInit.Store(true)
		whole := d.reassemble(h.Sender, h.Kind, payload)
		if whole == nil {
			return
		}
		if !d.store.step(h.Sender, whole) {
			d.counters["dropped_backlog"]++
		}
	case frame.KindNotMember:
		d.notMember(h.Sender, payload)
	case frame.KindStateLost:
		if _, err := frame.DecodeStateLost(payload); err != nil {
			d.counters["dropped_malformed"]++
			return
		}
		d.replicaLost(h.Sender)
	case frame.KindProbe:
		p, err := frame.DecodeProbe(payload)
		switch {
		case err != nil:
			d.counters["dropped_malformed"]++
		case p.HasState:
			d.store.peerInit.Store(true)
		case d.store.init.Load():
			d.probe(h.Sender)
		}
	default:
		d.counters["dropped_unknown_kind"]++
	}
}

func (d *Daemon) stepCore(from uint16, payload []byte) {
	var m membership.Message
	if err := m.UnmarshalBinary(payload); err != nil {
		d.counters["dropped_malformed"]++
		return
	}
	if err := d.core.Step(m); err != nil {
		d.counters["dropped_rejected"]++
		d.log.Debug("membership message rejected", "from", from, "err", err)
	}
}

type reasmKey struct {
	sender uint16
	kind   uint8
}

// reassemble adds a fragment and returns the whole message once complete.
func (d *Daemon) reassemble(sender uint16, kind uint8, payload []byte) []byte {
	k := reasmKey{sender, kind}
	r := d.reasm[k]
	if r == nil {
		r = &frame.Reassembly{}
		d.reasm[k] = r
	}
	whole, err := r.Add(payload)
	if err != nil {
		d.counters["dropped_malformed"]++
		return nil
	}
	return whole
}

// sendFragments sends b as fragments of kind to node to (0: all).
func (d *Daemon) sendFragments(kind uint8, to uint16, b []byte) {
	d.fragID++
	frags, err := frame.Fragment(d.fragID, b, frame.MaxPayload)
	if err != nil {
		d.log.Error("message too large to send", "kind", frame.KindName(kind), "to", to, "bytes", len(b), "err", err)
	}
	for _, f := range frags {
		d.sendFrame(kind, to, f)
	}
}

func dropReason(err error) string {
	switch {
	case errors.Is(err, frame.ErrShort):
		return "dropped_short"
	case errors.Is(err, frame.ErrMagic), errors.Is(err, frame.ErrVersion):
		return "dropped_malformed"
	case errors.Is(err, frame.ErrCluster):
		return "dropped_cluster"
	case errors.Is(err, frame.ErrAuth):
		return "dropped_auth"
	case errors.Is(err, frame.ErrStaleIncarnation):
		return "dropped_stale"
	}
	return "dropped_other"
}

func (d *Daemon) knownPeer(n uint16) bool {
	return n != d.self.Number && d.cfg.Node(n) != nil
}

func (d *Daemon) onTick() {
	d.tick++
	d.core.Tick()
	if d.tick%d.ticks(storeTick) == 0 {
		d.store.tick()
	}
	if d.tick%d.ticks(probeEvery) == 0 && !d.store.init.Load() {
		d.probe(0)
	}
	for _, ch := range d.health.Tick(d.tick) {
		state := "down"
		if ch.Up {
			state = "up"
		}
		lvl := slog.LevelWarn
		if ch.Up {
			lvl = slog.LevelInfo
		}
		d.log.Log(context.Background(), lvl, fmt.Sprintf("link %d to node %d is %s", ch.Link, ch.Peer, state),
			"node", ch.Peer, "link", ch.Link, "state", state)
		if d.bus != nil {
			d.bus.emit("LinkChanged", ch.Peer, ch.Link, state)
		}
		d.dirty = true
	}
	if deg := d.linksDegraded(); deg != d.degraded {
		d.degraded = deg
		if deg {
			d.log.Debug("a peer is missing on a link: heartbeats on every link, and asking peers to do the same")
		} else {
			d.log.Debug("every peer heard on every link: heartbeats alternate between links")
		}
	}
	if st, changed := d.quorum.Tick(d.tick); changed {
		d.setQuorum(st, "last_man_standing window")
	}
	if d.wdEvery > 0 && time.Since(d.lastWd) >= d.wdEvery {
		daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		d.lastWd = time.Now()
	}
	// Status is rebuilt when something changed, and once a second for the
	// slow-moving parts (node states, counters).
	if d.dirty || d.tick%d.ticks(refreshEvery) == 0 {
		d.refresh()
	}
}

// probe asks, from a node without replicated state, whether a cluster
// already runs: a node that has state answers to the asker alone. A
// cluster in steady state sends no probes at all.
func (d *Daemon) probe(to uint16) {
	d.sendFrame(frame.KindProbe, to, frame.Probe{HasState: d.store.init.Load()}.Encode())
}

// process drains the core and the store after every event.
func (d *Daemon) process() {
	if d.core.HasReady() {
		rd := d.core.Ready()
		for i := range rd.Messages {
			m := &rd.Messages[i]
			b, err := m.MarshalBinary()
			if err != nil {
				d.log.Error("membership: cannot encode message", "err", err)
				continue
			}
			if len(b) > frame.MaxPayload {
				d.counters["sent_fragmented"]++
				d.sendFragments(frame.KindMembershipFrag, uint16(m.To), b)
				continue
			}
			if m.Type == membership.MsgHeartbeat && m.To == 0 {
				d.sendHeartbeat(b)
				continue
			}
			d.sendFrame(frame.KindMembership, uint16(m.To), b)
		}
		for _, ev := range rd.Events {
			if ev.View != nil {
				d.installView(*ev.View, ev.Reason)
			}
			if dl := ev.Delivery; dl != nil && d.onDeliver != nil {
				d.onDeliver(dl.Group, dl.Unicast, dl.Payload)
			}
			if dl := ev.Delivery; dl != nil && d.bus != nil {
				if dl.Unicast {
					d.bus.emit("NodeMessage", uint16(dl.From), dl.Seq, dl.Payload)
				} else {
					d.bus.emit("GroupMessage", dl.Group, uint16(dl.From), dl.Seq, dl.Payload)
				}
			}
		}
		d.core.Advance()
	}
}

// storeEvent sends what the store wants sent and applies what it applied.
func (d *Daemon) storeEvent(ev storeEvent) {
	if ev.lostTo != 0 {
		d.log.Error(fmt.Sprintf("this node's replicated configuration state was lost (node %d, the leader, knows of entries it lacks); asking node %d to replicate it again", ev.lostTo, ev.lostTo),
			"node", ev.lostTo, "reason", "replicated state lost")
		d.sendFrame(frame.KindStateLost, ev.lostTo, frame.StateLost{}.Encode())
	}
	for _, o := range ev.outgoing {
		d.sendFragments(frame.KindConfig, o.To, o.Data)
	}
	for _, r := range ev.applied {
		if r.Err == nil {
			d.log.Info("configuration changed: "+r.Op.String(), "reason", r.Op.String(), "origin", r.Op.Origin)
			if d.bus != nil {
				d.bus.emit("ConfigChanged", ev.index, r.Op.String())
			}
		}
	}
	if ev.index > d.cfgIndex {
		d.cfgIndex = ev.index
	}
	if ev.cluster != nil {
		d.applyConfig(ev.cluster)
	}
}

func (d *Daemon) applyConfig(c *config.Cluster) {
	if len(c.Nodes) == 0 {
		return
	}
	old := d.cfg
	if old.Node(d.self.Number) != nil && c.Node(d.self.Number) == nil {
		d.log.Warn("this node was deleted from the cluster configuration; stopping", "node", d.self.Number)
		d.deleted = true
	}
	if n := c.Node(d.self.Number); n != nil {
		d.self = *n
	}
	d.cfg = c
	for _, n := range old.Nodes {
		if c.Node(n.Number) == nil {
			d.opener.Forget(n.Number)
			d.health.Forget(n.Number)
		}
	}
	d.core.SetPeers(toIDs(nodeNumbers(c)))
	st, err := d.quorum.SetConfig(quorumConfig(c))
	if err != nil {
		d.log.Error("quorum: new configuration rejected", "err", err)
	} else {
		d.setQuorum(st, "configuration changed")
	}
	d.refresh()
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
	if d.bus != nil {
		d.bus.emit("ViewChanged", v.ID.Seq, uint16(v.ID.Coord), members, reason)
	}
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
	if d.bus != nil {
		d.bus.emit("QuorumChanged", st.Quorate, st.TotalVotes, st.ExpectedVotes, st.Quorum, st.Reason)
	}
}

// sendFrame seals payload once and sends a copy on every link: to the
// multicast group when to is 0, else to that node's address on the link.
func (d *Daemon) sendFrame(kind uint8, to uint16, payload []byte) {
	d.sendFrameOn(kind, to, payload, -1)
}

// sendFrameOn sends payload on link only, or on every link if only is -1.
func (d *Daemon) sendFrameOn(kind uint8, to uint16, payload []byte, only int) {
	f := d.seal(kind, payload)
	if f == nil {
		return
	}
	var dst *config.Node
	if to != 0 {
		if dst = d.cfg.Node(to); dst == nil {
			return
		}
	}
	for i := range d.ports {
		if only >= 0 && i != only {
			continue
		}
		addr := d.group
		if dst != nil {
			if i >= len(dst.Links) {
				continue
			}
			addr = dst.Links[i].MAC
		}
		d.writeFrame(i, f, addr)
	}
}

// seal makes a frame of kind, with FlagAllLinks while this node misses a
// peer on some link; nil if payload cannot be sealed.
func (d *Daemon) seal(kind uint8, payload []byte) []byte {
	var flags uint8
	if d.degraded {
		flags = frame.FlagAllLinks
	}
	f, _, err := d.sealer.SealFlags(nil, kind, flags, payload)
	if err != nil {
		d.log.Error("cannot seal frame", "kind", kind, "len", len(payload), "err", err)
		return nil
	}
	return f
}

// writeFrame sends sealed frame f on link i to addr and counts the outcome.
func (d *Daemon) writeFrame(i int, f []byte, addr net.HardwareAddr) bool {
	frame.SetLink(f, uint8(i))
	if err := d.ports[i].WriteTo(f, addr); err != nil {
		d.counters["send_errors"]++
		return false
	}
	d.counters["sent"]++
	return true
}

// again reports whether something done for node at most once every
// `every` ticks may be done now, and if so records that it is.
func again(last map[uint16]uint64, node uint16, now, every uint64) bool {
	if t, ok := last[node]; ok && now-t < every {
		return false
	}
	last[node] = now
	return true
}

// refresh rebuilds the status snapshot that D-Bus readers see.
func (d *Daemon) refresh() {
	cs := d.core.Status()
	inView := map[uint16]bool{}
	for _, m := range d.view.Members {
		inView[uint16(m)] = true
	}
	s := nodebus.Status{
		Version:   d.opts.Version,
		Cluster:   nodebus.ClusterInfo{Name: d.cfg.Name, ID: d.cfg.ID},
		LocalNode: d.self.Number, LocalName: d.self.Name, State: d.state,
		View: nodebus.ViewInfo{Seq: d.view.ID.Seq, Coordinator: uint16(d.view.ID.Coord)},
		Quorum: nodebus.QuorumInfo{Quorate: d.qstate.Quorate, TotalVotes: d.qstate.TotalVotes,
			ExpectedVotes: d.qstate.ExpectedVotes, Quorum: d.qstate.Quorum, Reason: d.qstate.Reason},
	}
	for _, m := range d.view.Members {
		s.View.Members = append(s.View.Members, uint16(m))
	}
	s.Config = nodebus.ConfigInfo{Leader: uint16(d.store.leader.Load()), Index: d.cfgIndex}
	s.Heartbeats = d.heartbeatMode()
	for _, n := range d.cfg.Nodes {
		ni := nodebus.NodeInfo{Number: n.Number, Name: n.Name, UUID: n.UUID.String(), Votes: n.Votes,
			InView: inView[n.Number], Attrs: n.Attrs, State: cs.NodeState(membership.NodeID(n.Number))}
		for i, l := range n.Links {
			state := "down"
			switch {
			case n.Number == d.self.Number:
				state = "local"
			case i < len(d.ports) && d.health.State(n.Number, uint8(i)):
				state = "up"
			}
			ni.Links = append(ni.Links, nodebus.LinkInfo{Index: uint8(i), Interface: l.Interface, MAC: l.MAC.String(), State: state})
		}
		s.Nodes = append(s.Nodes, ni)
	}
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Number < s.Nodes[j].Number })
	d.dirty = false
	d.mu.Lock()
	d.status = s
	d.mu.Unlock()
	if d.bus != nil {
		d.bus.update(s, d.counters)
	}
	word := "not quorate"
	if s.Quorum.Quorate {
		word = "quorate"
	}
	notif := fmt.Sprintf("view %d: %d of %d nodes, %s", s.View.Seq, len(s.View.Members), len(s.Nodes), word)
	if notif != d.lastNotif {
		d.lastNotif = notif
		daemon.SdNotify(false, "STATUS="+notif)
	}
}

func (d *Daemon) snapshot() nodebus.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

func (d *Daemon) statusJSON() []byte {
	b, _ := json.MarshalIndent(d.snapshot(), "", "  ")
	return b
}

func (d *Daemon) configText() []byte {
	var b []byte
	d.call(func() { b = config.Format(d.cfg) })
	return b
}

// loggers adapting the cores' logger interfaces to slog.
type coreLogger struct{ l *slog.Logger }

func (c coreLogger) Debugf(f string, a ...any) { c.l.Debug(fmt.Sprintf(f, a...)) }
func (c coreLogger) Infof(f string, a ...any) {
	msg := fmt.Sprintf(f, a...)
	if strings.Contains(msg, " installed view ") {
		// The daemon logs each install itself, with journal fields.
		c.l.Debug(msg)
		return
	}
	c.l.Info(msg)
}
func (c coreLogger) Warnf(f string, a ...any) { c.l.Warn(fmt.Sprintf(f, a...)) }

type storeLogger = coreLogger
