package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/concord-ha/concord/lib/api/clusterctx"
	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/driver/link"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// The joining node's side of a join (see join.go).

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
	context clusterctx.Context
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
	return fmt.Errorf("node %s is not in cluster %s's configuration (index %d, from node %d): run `%s` on a member first, then start %s here again",
		j.name, a.cluster, a.index, a.from, j.nodeAdd(), j.context.Unit())
}

// nodeAdd is the command that adds this node with the NICs it listens on.
func (j *joiner) nodeAdd() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s node add %s", j.context.Ctl(), j.name)
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
	fix := fmt.Sprintf("%s node edit %s", j.context.Ctl(), j.name)
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
		return fmt.Errorf("cluster %s's configuration gives node %s other MACs than its NICs have (%s): correct it on a member with `%s`, then start %s here again",
			c.Name, j.name, strings.Join(wrong, "; "), fix, j.context.Unit())
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
		"copy %s from a member (root, mode 0600) and start %s again", j.keyPath, strings.Join(parts, ", "), j.context.KeyPath(), j.context.Unit())
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
