package jlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestControlLevelAndTarget(t *testing.T) {
	var b bytes.Buffer
	log, c := NewControlled("test", &b, slog.LevelInfo)
	if err := c.SetTarget("console"); err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("shown", "node", 2)
	if err := c.SetLevel("debug"); err != nil {
		t.Fatal(err)
	}
	log.Debug("now shown")
	if c.Level() != "debug" {
		t.Errorf("Level() = %q", c.Level())
	}
	if err := c.SetTarget("null"); err != nil {
		t.Fatal(err)
	}
	log.Error("dropped")
	out := b.String()
	for _, want := range []string{"shown", "node=2", "now shown"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"hidden", "dropped"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q:\n%s", bad, out)
		}
	}
	if err := c.SetLevel("loud"); err == nil || !strings.Contains(err.Error(), "loud") {
		t.Errorf("bad level: %v", err)
	}
	if err := c.SetTarget("kmsg"); err == nil || !strings.Contains(err.Error(), "kmsg") {
		t.Errorf("bad target: %v", err)
	}
	for name, want := range map[string]string{"warning": "warning", "notice": "info", "crit": "err"} {
		c.SetLevel(name)
		if c.Level() != want {
			t.Errorf("SetLevel(%q): Level() = %q, want %q", name, c.Level(), want)
		}
	}
}
