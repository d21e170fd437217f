package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/coreos/go-systemd/v22/journal"
)

// cannotStart logs why the daemon stops before it runs. Under systemd the
// line goes to stderr, the unit's journal stream: a process that exits
// right after a native journal write loses the race with journald, which
// then cannot tell the line's unit, and `journalctl -u concord-noded` and
// `systemctl status` would not show why it did not start. "<3>" makes the
// line an error there, as the native one would be.
func cannotStart(log *slog.Logger, err error) {
	msg := "cannot start: " + err.Error()
	if ok, _ := journal.StderrIsJournalStream(); ok {
		fmt.Fprintf(os.Stderr, "<3>%s\n", msg)
		return
	}
	log.Error(msg)
}
