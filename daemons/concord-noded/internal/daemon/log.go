package daemon

import (
	"fmt"
	"log/slog"
	"strings"
)

// coreLogger adapts the membership core's and the config store's logger
// interface to slog.
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
