package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/concord-ha/concord/daemons/concord-noded/internal/groupsrv"
	"github.com/concord-ha/concord/daemons/concord-noded/internal/nic"
	"github.com/concord-ha/concord/daemons/concord-noded/internal/storerun"
	"github.com/concord-ha/concord/lib/api/clusterctx"
	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/core/groups"
	"github.com/concord-ha/concord/lib/core/membership"
	"github.com/concord-ha/concord/lib/core/quorum"
	"github.com/concord-ha/concord/lib/driver/link"
	"github.com/concord-ha/concord/lib/store/confstore"
	"github.com/concord-ha/concord/lib/sys/sdnotify"
	"github.com/concord-ha/concord/lib/sys/ticker"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// Options are concord-noded's command-line settings.
type Options struct {
	Context    clusterctx.Context // which of the host's clusters; the paths below are its own
	ConfigPath string             // /etc/concord/cluster.conf
	KeyPath    string             // /etc/concord/authkey
	StateDir   string             // /var/lib/concord
	NodeName   string             // this node's name in the config; default: the host name
	// GroupSocket is where process-group sessions connect
	// (/run/concord/groups.sock); "" serves none.
	GroupSocket string
	Version     string
	Logger      *slog.Logger
}

// The store ticks at its own pace: raft works at human speed. Probes (does
// this node have replicated state?) and full status rebuilds are rare: they
// cost CPU on every node all the time.
const (
	storeTick    = 100 * time.Millisecond
	probeEvery   = 500 * time.Millisecond
	refreshEvery = time.Second
)

// rxBurst bounds the frames taken in one turn of the loop, so that ticks
// and requests are not kept waiting by a flood.
const rxBurst = 64

type rxFrame struct {
	link uint8
	src  net.HardwareAddr
	data []byte
}

// Daemon is one running concord-noded. All fields are owned by the loop
// goroutine except the mu-guarded status, which the D-Bus adapter reads,
// and the channels.
type Daemon struct {
	opts Options
	log  *slog.Logger

	fileCfg *config.Cluster // what cluster.conf said at start
	cfg     *config.Cluster // the replicated configuration in force
	self    config.Node
	inc     uint64

	core   *membership.Node
	quorum *quorum.Tracker
	qstate quorum.State
	store  *storerun.Runner
	sealer *frame.Sealer
	opener *frame.Opener
	ports  []Port
	health *link.Health
	group  net.HardwareAddr
	events Events

	tick      uint64
	view      membership.View
	state     string
	counters  map[string]uint64
	reqs      chan func()
	stopped   chan struct{} // closed when Run has returned
	rx        chan rxFrame
	lastWd    time.Time
	wdEvery   time.Duration
	wdWarned  time.Time // last "cannot ping the watchdog" warning
	lastNotif string
	dirty     bool // status changed since the last refresh

	seqs     chan uint64 // newest view seq to persist
	fragID   uint32
	reasm    map[reasmKey]*reassembly
	deleted  bool              // this node was deleted from the configuration: leave and stop
	mending  map[uint16]uint64 // tick at which a replica recovery for a node began (see replicaLost)
	cfgIndex uint64            // the store's applied index behind cfg; 0: not from the store yet
	told     map[uint16]uint64 // tick at which a node not in the configuration was last told so
	tells    tellLog           // log lines about such nodes (see logTold)
	joins    joinAnswers       // answers to joining nodes (see answerJoin)
	jobs     jobTable
	// leaderWait is how long a job waits for a configuration leader.
	leaderWait time.Duration

	// Heartbeat alternation (see sendHeartbeat).
	hbLink        int    // link of the last heartbeat sent on one link
	degraded      bool   // some peer is missing on some link, as of the last tick
	allLinksUntil uint64 // a peer asked for heartbeats on every link until this tick

	// This node's heartbeat NICs (nics.go).
	linkNames   []string // interfaces of this node's links, from its cluster.conf; never changes
	local       []localLink
	nics        NICs
	open        PortOpener
	nicEvents   <-chan nic.Event
	running     bool               // Run has started the link readers
	ready       bool               // READY=1 was sent
	saidWaiting bool               // "not ready" was logged
	notify      func(state string) // sd_notify
	notifier    *sdnotify.Notifier // nil when not run by systemd

	// deferred[i] holds link i's tickKinds until the next tick; nil when
	// the port cannot (they then arrive with the other frames).
	deferred []deferringPort
	dframes  []link.Frame
	deferErr map[uint16]uint64 // tick of the last deferred read error logged, per link
	net      netStats          // frames per peer and link, and warnings about failing ones (linkstats.go, authwarn.go)

	// Process groups (groups.go).
	gcore  *groups.Core
	gsrv   *groupsrv.Server
	gin    <-chan groupsrv.Input
	gsess  map[uint32]*gsession
	gdirty []uint32     // sessions to tell Events of after this turn (sessionDirty)
	gpend  []groups.Msg // waiting for room in membership's queue
	gbuf   []byte
	mbuf   []byte // membership's encoding buffer, reused
	// accounts looks up the users and groups of groups.allow rules.
	accounts accounts

	mu     sync.Mutex
	status nodebus.Status
}

// Port is one heartbeat link as the daemon uses it; *link.Conn is the real one.
type Port interface {
	WriteTo(payload []byte, dst net.HardwareAddr) error
	ReadFrom(buf []byte) (int, net.HardwareAddr, error)
	Close() error
}

// New loads the configuration and key, opens the store, sets this node's
// heartbeat NICs up and opens the links of those that exist.
func New(opts Options) (*Daemon, error) {
	// cluster.conf, or the configuration fetched when this node joined.
	sc, err := loadConfig(&opts, opts.Logger)
	if err != nil {
		return nil, err
	}
	fc := sc.cfg
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
	// The manager checks names only: the MACs to check are the
	// configuration's in force, which can change (see checkLinkConfig).
	links := make([]nic.Link, len(self.Links))
	for i, l := range self.Links {
		links[i] = nic.Link{Index: i, Interface: l.Interface}
	}
	m, err := nic.New(links, nic.Options{Policy: nic.PolicyLeaveDown})
	if err != nil {
		return nil, err
	}
	opts.NodeName = name
	d, err := NewWith(opts, fc, key, make([]Port, len(self.Links)))
	if err != nil {
		return nil, err
	}
	group := link.MulticastGroup(fc.ID)
	if err := d.UseNICs(m, func(ifname string) (Port, error) { return link.Open(ifname, group) }); err != nil {
		d.closePorts()
		return nil, err
	}
	if sc.joining {
		d.joined(sc.index)
	}
	return d, nil
}

// NewWith builds a daemon from a parsed configuration, a key and ports,
// one per link of this node, in order: open ones are taken to work; nil
// ones are opened by UseNICs when their NIC exists.
func NewWith(opts Options, fc *config.Cluster, key []byte, ports []Port) (*Daemon, error) {
	d := &Daemon{opts: opts, log: opts.Logger, counters: map[string]uint64{}, events: nopEvents{},
		reqs: make(chan func(), 64), stopped: make(chan struct{}), rx: make(chan rxFrame, 4096),
		state: "starting", ports: ports, reasm: map[reasmKey]*reassembly{}, seqs: make(chan uint64, 1),
		told: map[uint16]uint64{}, mending: map[uint16]uint64{}, jobs: jobTable{byID: map[uint32]*job{}},
		leaderWait: defaultLeaderWait, deferErr: map[uint16]uint64{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	// One socket for every notification: the watchdog ping, every few
	// seconds for ever, then costs one system call (go-systemd's SdNotify
	// makes, connects and closes a socket each time).
	n, err := sdnotify.Open(os.Getenv("NOTIFY_SOCKET"))
	if err != nil {
		d.log.Warn("cannot tell systemd about this daemon's state", "err", err)
	}
	d.notifier = n
	d.notify = func(s string) { n.Send(s) }
	if err := checkDeleted(opts.StateDir); err != nil {
		return nil, err
	}
	d.fileCfg = fc
	self := fc.NodeByName(opts.NodeName)
	if self == nil {
		return nil, fmt.Errorf("no node named %q in the configuration", opts.NodeName)
	}
	d.self = *self
	if len(ports) > len(self.Links) {
		return nil, fmt.Errorf("%d ports for the %d links of node %s", len(ports), len(self.Links), self.Name)
	}
	ports = append(ports, make([]Port, len(self.Links)-len(ports))...)
	d.ports = ports
	for _, l := range self.Links {
		d.linkNames = append(d.linkNames, l.Interface)
	}
	d.local = newLocalLinks(d.linkNames, ports)
	d.inc = uint64(time.Now().UnixNano())

	if d.sealer, err = frame.NewSealer(key, fc.ID, self.Number, d.inc); err != nil {
		return nil, err
	}
	if d.opener, err = frame.NewOpener(key, fc.ID); err != nil {
		return nil, err
	}
	st, err := confstore.Open(opts.StateDir, self.Number, coreLogger{d.log})
	if err != nil {
		return nil, err
	}
	d.store = storerun.New(st, fc, d.log)
	d.cfg = fc
	if st.Initialized() {
		// A node that joined but has not yet received the configuration
		// has an empty one: keep the file's until it arrives.
		if sc := st.Cluster(); len(sc.Nodes) > 0 {
			d.cfg = sc
			d.cfgIndex = st.Status().Applied
			if n := d.cfg.Node(self.Number); n != nil {
				d.self = *n
			} else {
				// It applied its own deletion and stopped before it
				// could say so (or an older version ran it).
				st.Close()
				d.markDeleted(fmt.Sprintf("its replicated configuration (index %d) no longer lists it", d.cfgIndex))
				return nil, checkDeleted(opts.StateDir)
			}
		}
	}
	if err := d.startCore(); err != nil {
		return nil, err
	}
	if err := d.startGroups(); err != nil {
		return nil, err
	}
	d.group = link.MulticastGroup(fc.ID)
	d.health = link.NewHealth(d.ticks(fc.Totem.LinkDeadTime))
	d.store.SetDeaf(!d.anyLinkWorks())
	// The status is whole from the start: the D-Bus adapter exports it
	// before the loop runs.
	d.publish(d.buildStatus())
	return d, nil
}

// SetEvents makes ev hear what happens in the loop. Call it before Run.
func (d *Daemon) SetEvents(ev Events) { d.events = ev }

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
		MaxPayload:      groupMaxPayload,
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
		if p != nil {
			p.Close()
		}
	}
}

// Run is the event loop. It returns when ctx ends, after leaving the
// cluster cleanly.
func (d *Daemon) Run(ctx context.Context) error {
	defer close(d.stopped)
	defer d.notifier.Close()
	defer d.closePorts()
	sctx, stopStore := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.store.Run(sctx) }()
	go func() { defer wg.Done(); d.writeViewSeqs(sctx) }()
	// The store and the view-seq writer finish what they write before Run
	// returns: nothing touches the state directory afterwards.
	defer func() { stopStore(); wg.Wait() }()
	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if err := d.watchNICs(wctx); err != nil {
		return err
	}
	if d.opts.GroupSocket != "" {
		srv, err := groupsrv.Listen(d.opts.GroupSocket, d.log)
		if err != nil {
			return err
		}
		d.gsrv, d.gin = srv, srv.Inputs()
		defer srv.Close()
	}
	d.running = true
	for i, p := range d.ports {
		if p != nil {
			d.deferPort(i)
			go d.readLink(uint8(i), p)
		}
	}
	if wd, err := daemon.SdWatchdogEnabled(false); err == nil && wd > 0 {
		d.wdEvery = wd / 3
	}
	started := "concord-noded started"
	if !d.opts.Context.IsDefault() {
		started += fmt.Sprintf(" in cluster context %s (bus name %s, state %s)", d.opts.Context, d.opts.Context.BusName(), d.opts.StateDir)
	}
	d.log.Info(started, "node", d.self.Number, "name", d.self.Name, "cluster", d.cfg.Name,
		"links", len(d.ports), "incarnation", d.inc, "cluster_context", d.opts.Context.String())
	d.linksChanged() // READY=1, or why not yet
	d.refresh()
	if !d.store.Initialized() {
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
			d.notify(daemon.SdNotifyStopping)
			d.core.Leave()
			leaveDeadline = time.After(300 * time.Millisecond)
		case <-leaveDeadline:
			d.log.Info("left the cluster", "view", d.view.ID.Seq)
			return nil
		case f := <-d.rx:
			// Frames that came meanwhile are taken in the same turn: one
			// output (one ack, one batch of deliveries) for the burst.
			d.receive(f)
			for i := 0; i < rxBurst; i++ {
				select {
				case f := <-d.rx:
					d.receive(f)
					continue
				default:
				}
				break
			}
		case fn := <-d.reqs:
			fn()
		case in := <-d.gin:
			// Take what the sessions have said meanwhile too: what they
			// send between two turns goes to membership as one batch.
			d.groupInput(in)
			for more := true; more; {
				select {
				case in := <-d.gin:
					d.groupInput(in)
				default:
					more = false
				}
			}
			d.flushGroups()
		case ev := <-d.store.Events():
			d.storeEvent(ev)
		case ev, ok := <-d.nicEvents:
			d.nicEvent(ev, ok)
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

// exec runs fn on the loop without waiting.
func (d *Daemon) exec(fn func()) {
	select {
	case d.reqs <- fn:
	default:
	}
}

// errStopped is what a request gets once the loop has returned.
var errStopped = nodebus.Errorf(nodebus.ErrStopping, "concord-noded is stopping")

// call runs fn on the loop and waits for it; it does not wait for a loop
// that has returned.
func (d *Daemon) call(fn func()) error {
	done := make(chan struct{})
	select {
	case d.reqs <- func() { fn(); close(done) }:
	case <-d.stopped:
		return errStopped
	}
	select {
	case <-done:
		return nil
	case <-d.stopped:
		select {
		case <-done:
			return nil
		default:
			return errStopped
		}
	}
}

func (d *Daemon) onTick() {
	d.readDeferred()
	d.tick++
	d.core.Tick()
	if d.tick%d.ticks(storeTick) == 0 {
		d.store.Tick()
		d.retryJobs()
	}
	if d.tick%d.ticks(probeEvery) == 0 && !d.store.Initialized() {
		d.probe(0)
	}
	if d.tick%d.echoTicks() == 0 {
		d.sendEchoes()
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
		d.events.LinkChanged(ch.Peer, ch.Link, ch.Up)
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
		// The notify socket is non-blocking: when systemd is too busy to
		// read it, the ping is tried again next tick, not in a third of
		// the watchdog time (three lost pings and systemd kills a daemon
		// whose loop is running fine).
		if err := d.notifier.Send(daemon.SdNotifyWatchdog); err != nil {
			if time.Since(d.wdWarned) >= d.wdEvery {
				d.wdWarned = time.Now()
				d.log.Warn("cannot ping systemd's watchdog; trying again every tick", "err", err,
					"since_last_ping", time.Since(d.lastWd).Round(time.Millisecond).String())
			}
		} else {
			d.lastWd = time.Now()
		}
	}
	// Status is rebuilt when something changed, and once a second for the
	// slow-moving parts (node states, counters).
	if d.dirty || d.tick%d.ticks(refreshEvery) == 0 {
		d.refresh()
	}
	if d.tick%d.ticks(refreshEvery) == 0 {
		d.sessionsChanged(true)
	}
}

// process drains the core after every event.
func (d *Daemon) process() {
	if !d.core.HasReady() {
		return
	}
	rd := d.core.Ready()
	for i := range rd.Messages {
		m := &rd.Messages[i]
		b, err := m.AppendBinary(d.mbuf[:0])
		if err != nil {
			d.log.Error("membership: cannot encode message", "err", err)
			continue
		}
		d.mbuf = b
		if m.Type == membership.MsgHeartbeat && m.To == 0 {
			d.sendHeartbeat(b)
			continue
		}
		link := -1
		if bulk(m.Type) {
			link = d.dataLink()
		}
		if len(b) > frame.MaxPayload {
			d.counters["sent_fragmented"]++
			d.sendFragmentsOn(frame.KindMembershipFrag, uint16(m.To), b, link)
			continue
		}
		d.sendFrameOn(frame.KindMembership, uint16(m.To), b, link)
	}
	groupsTouched := false
	for _, ev := range rd.Events {
		if ev.View != nil {
			d.installView(*ev.View, ev.Reason)
			d.groupView(*ev.View, ev.Survivors)
			groupsTouched = true
		}
		if dl := ev.Delivery; dl != nil {
			// Group "" carries Concord's own traffic only: quorum
			// unblocks and the process groups' messages.
			switch {
			case dl.Unicast || dl.Group != "":
				d.counters["unexpected_deliveries"]++
			case isControl(dl.Payload):
				d.unblockDelivered(uint16(dl.From), dl.Payload)
			default:
				d.groupDelivered(dl.From, dl.Payload, dl.Unstable)
				groupsTouched = true
			}
		}
	}
	d.core.Advance()
	if groupsTouched || len(d.gpend) > 0 {
		d.flushGroups()
	}
}

// storeEvent sends what the store wants sent, applies what it applied,
// and moves the jobs on; a job ends only after the configuration it
// changed is in force here.
func (d *Daemon) storeEvent(ev storerun.Event) {
	if ev.LostTo != 0 {
		d.log.Error(fmt.Sprintf("this node's replicated configuration state was lost (node %d, the leader, knows of entries it lacks); asking node %d to replicate it again", ev.LostTo, ev.LostTo),
			"node", ev.LostTo, "reason", "replicated state lost")
		d.sendFrame(frame.KindStateLost, ev.LostTo, frame.StateLost{}.Encode())
	}
	for _, o := range ev.Outgoing {
		d.sendFragments(frame.KindConfig, o.To, o.Data)
	}
	for _, r := range ev.Applied {
		if r.Err == nil {
			d.log.Info("configuration changed: "+r.Op.String(), "reason", r.Op.String(), "origin", r.Op.Origin)
			d.events.ConfigChanged(ev.Index, r.Op.String())
		}
	}
	if ev.Index > d.cfgIndex {
		d.cfgIndex = ev.Index
	}
	if ev.Cluster != nil {
		d.applyConfig(ev.Cluster)
	}
	for _, o := range ev.Proposed {
		d.jobProposed(o)
	}
	for _, o := range ev.Done {
		d.jobDone(o)
	}
}

func (d *Daemon) applyConfig(c *config.Cluster) {
	if len(c.Nodes) == 0 {
		return
	}
	old := d.cfg
	if old.Node(d.self.Number) != nil && c.Node(d.self.Number) == nil {
		d.log.Warn("this node was deleted from the cluster configuration; stopping", "node", d.self.Number)
		d.markDeleted(fmt.Sprintf("it applied its own deletion (configuration index %d)", d.cfgIndex))
	}
	if n := c.Node(d.self.Number); n != nil {
		d.self = *n
	}
	d.cfg = c
	d.checkLinkConfig()
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
