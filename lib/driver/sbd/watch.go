package sbd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concord-ha/concord/lib/driver/watchdog"
)

// WatchConfig configures the self-fencing watcher of one node.
type WatchConfig struct {
	Disks    []*Disk
	Node     string // our slot's name
	Watchdog watchdog.Device
	// Loop is the read interval; default the first header's loop timeout.
	Loop time.Duration
	// DiskTimeout is how long a majority of disks may be unreadable before
	// we stop feeding the watchdog; default the header's watchdog timeout.
	DiskTimeout time.Duration
	Logf        func(format string, args ...any)
}

// Outcome says why Watch returned.
type Outcome int

// Outcomes. After Fenced and DiskLost the watchdog is no longer fed and
// will reset the machine; the caller must not disarm it.
const (
	Stopped  Outcome = iota // the context ended; the watchdog is still armed
	Fenced                  // a reset, off or crashdump pill arrived
	DiskLost                // no majority of disks readable for DiskTimeout
	Exited                  // an exit message: the caller may disarm and stop
	Failed                  // the watchdog refused a keep-alive or setup failed
)

func (o Outcome) String() string {
	return [...]string{"stopped", "fenced", "disk lost", "exited", "failed"}[o]
}

// Result is what Watch saw last.
type Result struct {
	Outcome Outcome
	Msg     Message // the pill, for Fenced and Exited
	From    string
	Err     error
}

// Watch allocates (or finds) the node's slot on every disk, then reads its
// mailboxes every loop, feeding the watchdog while a majority of disks is
// readable and no pill is there. A test message is logged and cleared.
// A disk read that hangs stops the loop, and so the feeding: fail-safe.
func Watch(ctx context.Context, cfg WatchConfig) Result {
	if len(cfg.Disks) == 0 || cfg.Node == "" || cfg.Watchdog == nil {
		return Result{Outcome: Failed, Err: errors.New("sbd: watch needs disks, a node name and a watchdog")}
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	h := cfg.Disks[0].Header()
	loop, timeout := cfg.Loop, cfg.DiskTimeout
	if loop <= 0 {
		loop = max(h.Loop, 100*time.Millisecond)
	}
	if timeout <= 0 {
		timeout = h.Watchdog
	}
	slots := make([]int, len(cfg.Disks))
	for i, d := range cfg.Disks {
		s, err := d.Allocate(cfg.Node)
		if err != nil {
			return Result{Outcome: Failed, Err: err}
		}
		slots[i] = s
	}
	if err := cfg.Watchdog.KeepAlive(); err != nil {
		return Result{Outcome: Failed, Err: fmt.Errorf("sbd: watchdog: %w", err)}
	}
	lastGood := time.Now()
	tick := time.NewTicker(loop)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return Result{Outcome: Stopped, Err: ctx.Err()}
		case <-tick.C:
		}
		ok := 0
		for i, d := range cfg.Disks {
			m, err := d.Mailbox(slots[i])
			if err != nil {
				logf("sbd: %s: %v", d.Name, err)
				continue
			}
			ok++
			switch m.Msg {
			case MsgReset, MsgOff, MsgCrashdump:
				logf("sbd: %s: %s from %q for %s: no more watchdog keep-alives", d.Name, m.Msg, m.From, cfg.Node)
				return Result{Outcome: Fenced, Msg: m.Msg, From: m.From}
			case MsgExit:
				logf("sbd: %s: exit from %q", d.Name, m.From)
				return Result{Outcome: Exited, Msg: m.Msg, From: m.From}
			case MsgTest:
				logf("sbd: %s: test message from %q, clearing", d.Name, m.From)
				if err := d.WriteMailbox(slots[i], Mailbox{Msg: MsgClear}); err != nil {
					logf("sbd: %v", err)
				}
			}
		}
		if ok*2 > len(cfg.Disks) {
			lastGood = time.Now()
		} else if since := time.Since(lastGood); since > timeout {
			logf("sbd: %d of %d disks readable for %v: no more watchdog keep-alives", ok, len(cfg.Disks), since.Round(time.Millisecond))
			return Result{Outcome: DiskLost}
		}
		if err := cfg.Watchdog.KeepAlive(); err != nil {
			return Result{Outcome: Failed, Err: fmt.Errorf("sbd: watchdog: %w", err)}
		}
	}
}
