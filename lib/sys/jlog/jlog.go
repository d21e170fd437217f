package jlog

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

type handler struct {
	ident  string
	level  slog.Leveler
	attrs  []slog.Attr
	prefix string // group prefix for field names
	mu     sync.Mutex
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	vars := map[string]string{"SYSLOG_IDENTIFIER": h.ident}
	add := func(a slog.Attr) {
		a.Value = a.Value.Resolve()
		if a.Equal(slog.Attr{}) {
			return
		}
		key := FieldName(h.prefix + a.Key)
		vars[key] = a.Value.String()
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(a); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	// The message stays a sentence; the attributes are journal fields
	// (journalctl -o verbose, or -F NODE, or NODE=2 as a match).
	return journal.Send(r.Message, priority(r.Level), vars)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &handler{ident: h.ident, level: h.level, prefix: h.prefix}
	n.attrs = append(append(n.attrs, h.attrs...), as...)
	return n
}

func (h *handler) WithGroup(name string) slog.Handler {
	n := &handler{ident: h.ident, level: h.level, prefix: h.prefix + name + "_", attrs: h.attrs}
	return n
}

func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	default:
		return journal.PriDebug
	}
}

// FieldName maps an attribute key to a journal field name: upper case
// letters, digits and underscores, not starting with an underscore or digit.
func FieldName(key string) string {
	var b strings.Builder
	for _, c := range key {
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), "_0123456789")
	if s == "" {
		return "FIELD"
	}
	return s
}
