package fenceproto

import (
	"io"
	"strings"
	"sync"
)

// redactor replaces known secret values with "[set]" in everything written.
type redactor struct {
	mu      sync.Mutex
	secrets []string
}

func newRedactor() *redactor { return &redactor{} }

func (r *redactor) add(s string) {
	if r == nil || s == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, s)
}

func (r *redactor) apply(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "[set]")
	}
	return s
}

// redactWriter redacts each Write; callers write whole lines.
type redactWriter struct {
	w io.Writer
	r *redactor
}

func (w *redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.w, w.r.apply(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
