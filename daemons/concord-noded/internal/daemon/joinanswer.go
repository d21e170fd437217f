package daemon

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/concord-ha/concord/lib/wire/frame"
)

// Answers to joining nodes (see join.go). Only frames that opened with the
// cluster key get here, so only a node with the key is answered. Each
// name is answered at most once a second, and all names together at most
// joinAnswersPerSecond times a second, so a node with the key that
// floods requests costs the members little; the answer goes to the asker
// alone, on the link its request came in on.

const (
	joinAnswersPerSecond = 8
	joinLogEvery         = time.Minute // one log line per name
)

// joinAnswers is the members' side of joins.
type joinAnswers struct {
	last   map[string]uint64 // tick of the last answer to a name
	logged map[string]uint64 // tick of the last log line about a name
	second uint64            // the second that count is for
	count  int               // answers in that second
}

// allow reports whether name may be answered at tick now, one second
// being every ticks, and counts the answer if so.
func (a *joinAnswers) allow(name string, now, every uint64) bool {
	if a.last == nil {
		a.last, a.logged = map[string]uint64{}, map[string]uint64{}
	}
	if t, ok := a.last[name]; ok && now-t < every {
		return false
	}
	if s := now / every; s != a.second {
		a.second, a.count = s, 0
	}
	if a.count >= joinAnswersPerSecond {
		return false
	}
	a.count++
	if len(a.last) > 1024 {
		// Names of the past; the per-second cap still holds.
		clear(a.last)
		clear(a.logged)
	}
	a.last[name] = now
	return true
}

// answerJoin handles a frame from sender 0, a node that is not a member.
// Only a join request is answered: with the configuration in force and
// its index, in fragments, to the asker's MAC on the link it came in on.
// A node without a replicated configuration yet does not answer.
func (d *Daemon) answerJoin(f rxFrame, h frame.Header, payload []byte) {
	// Every joining node is sender 0, each with its own incarnations:
	// the replay state of one must not make another's requests stale.
	d.opener.Forget(0)
	if h.Kind != frame.KindJoinRequest {
		d.counters["dropped_unknown_node"]++
		return
	}
	req, err := frame.DecodeJoinRequest(payload)
	if err != nil {
		d.counters["dropped_malformed"]++
		return
	}
	if d.cfgIndex == 0 || len(f.src) != 6 || int(f.link) >= len(d.ports) {
		d.counters["join_not_answered"]++
		return
	}
	if !d.joins.allow(req.Name, d.tick, d.ticks(time.Second)) {
		d.counters["join_rate_limited"]++
		return
	}
	cj, err := json.Marshal(d.cfg)
	if err != nil {
		d.log.Error("cannot encode the configuration for a joining node", "err", err)
		return
	}
	d.fragID++
	frags, err := frame.Fragment(d.fragID, frame.JoinConfig{RequestID: req.RequestID, Index: d.cfgIndex, Config: cj}.Encode(), frame.MaxPayload)
	if err != nil {
		d.log.Error("the configuration is too large to send to a joining node", "bytes", len(cj), "err", err)
		return
	}
	for _, p := range frags {
		fr := d.seal(frame.KindJoinConfig, p)
		if fr == nil || !d.writeFrame(int(f.link), fr, f.src) {
			return
		}
	}
	d.counters["join_answered"]++
	if !again(d.joins.logged, req.Name, d.tick, d.ticks(joinLogEvery)) {
		return
	}
	if n := d.cfg.NodeByName(req.Name); n != nil {
		d.log.Info(fmt.Sprintf("node %s (%d) asks to join from %s on link %d; sent it the configuration (index %d)",
			req.Name, n.Number, f.src, f.link, d.cfgIndex), "node", n.Number, "link", f.link, "config_index", d.cfgIndex)
		return
	}
	d.log.Warn(fmt.Sprintf("a node named %s asks to join from %s on link %d but is not in the configuration "+
		"(add it with %s node add); sent it the configuration (index %d), by which it can tell", req.Name, f.src, f.link, d.opts.Context.Ctl(), d.cfgIndex),
		"link", f.link, "reason", "not in configuration", "config_index", d.cfgIndex)
}
