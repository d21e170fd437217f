package jlog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/coreos/go-systemd/v22/journal"
)

// Control changes a logger's level and target while it runs; it backs
// org.freedesktop.LogControl1, so `systemctl service-log-level` works.
type Control struct {
	ident  string
	level  slog.LevelVar
	target atomic.Value // string: auto, journal, console, null
}

// Targets and levels as LogControl1 names them.
var (
	Targets = []string{"auto", "journal", "console", "null"}
	levels  = map[string]slog.Level{
		"emerg": slog.LevelError, "alert": slog.LevelError, "crit": slog.LevelError, "err": slog.LevelError,
		"warning": slog.LevelWarn, "notice": slog.LevelInfo, "info": slog.LevelInfo, "debug": slog.LevelDebug,
	}
)

// NewControlled returns a logger whose level and target c can change.
// The target starts as "auto": the journal when it is reachable, else w.
func NewControlled(identifier string, w io.Writer, level slog.Level) (*slog.Logger, *Control) {
	c := &Control{ident: identifier}
	c.level.Set(level)
	c.target.Store("auto")
	j := &handler{ident: identifier, level: &c.level}
	t := slog.NewTextHandler(w, &slog.HandlerOptions{Level: &c.level})
	return slog.New(&router{c: c, journal: j, console: t}), c
}

// Identifier is the syslog identifier.
func (c *Control) Identifier() string { return c.ident }

// Level is the level as a syslog name.
func (c *Control) Level() string {
	switch l := c.level.Level(); {
	case l <= slog.LevelDebug:
		return "debug"
	case l <= slog.LevelInfo:
		return "info"
	case l <= slog.LevelWarn:
		return "warning"
	}
	return "err"
}

// SetLevel takes a syslog level name (emerg … debug).
func (c *Control) SetLevel(name string) error {
	l, ok := levels[name]
	if !ok {
		return fmt.Errorf("invalid log level %q (want emerg, alert, crit, err, warning, notice, info or debug)", name)
	}
	c.level.Set(l)
	return nil
}

// Target is where logs go: auto, journal, console or null.
func (c *Control) Target() string { return c.target.Load().(string) }

// SetTarget changes where logs go.
func (c *Control) SetTarget(name string) error {
	for _, t := range Targets {
		if t == name {
			c.target.Store(name)
			return nil
		}
	}
	return fmt.Errorf("invalid log target %q (want auto, journal, console or null)", name)
}

// router sends each record to the journal or the console handler,
// whichever the Control's target names.
type router struct {
	c       *Control
	journal slog.Handler
	console slog.Handler
}

func (r *router) pick() slog.Handler {
	switch r.c.Target() {
	case "journal":
		return r.journal
	case "console":
		return r.console
	case "null":
		return nil
	}
	if journal.Enabled() {
		return r.journal
	}
	return r.console
}

func (r *router) Enabled(ctx context.Context, l slog.Level) bool {
	h := r.pick()
	return h != nil && h.Enabled(ctx, l)
}

func (r *router) Handle(ctx context.Context, rec slog.Record) error {
	if h := r.pick(); h != nil {
		return h.Handle(ctx, rec)
	}
	return nil
}

func (r *router) WithAttrs(as []slog.Attr) slog.Handler {
	return &router{c: r.c, journal: r.journal.WithAttrs(as), console: r.console.WithAttrs(as)}
}

func (r *router) WithGroup(name string) slog.Handler {
	return &router{c: r.c, journal: r.journal.WithGroup(name), console: r.console.WithGroup(name)}
}
