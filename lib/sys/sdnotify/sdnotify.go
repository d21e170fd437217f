// Package sdnotify tells systemd about a service's state (sd_notify(3):
// READY=1, WATCHDOG=1, STATUS=...) through one socket kept open for the
// life of the daemon. A daemon that pings the watchdog every second or so
// then pays one system call a ping, not a socket, a connect, a poller
// registration and a close.
package sdnotify

import (
	"fmt"
	"strings"
)

// Notifier sends to $NOTIFY_SOCKET. A nil *Notifier sends nothing, as
// when the daemon is not run by systemd.
type Notifier struct {
	conn
}

// Open returns a Notifier for socket, the value of $NOTIFY_SOCKET: a path,
// or an abstract name starting with '@'. An empty socket returns nil and
// no error.
func Open(socket string) (*Notifier, error) {
	if socket == "" {
		return nil, nil
	}
	if !strings.HasPrefix(socket, "/") && !strings.HasPrefix(socket, "@") || len(socket) < 2 {
		return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is not a path or an abstract socket name", socket)
	}
	n := &Notifier{}
	if err := n.open(socket); err != nil {
		return nil, fmt.Errorf("sdnotify: %s: %w", socket, err)
	}
	return n, nil
}

// Send sends state, one or more newline-separated assignments such as
// "WATCHDOG=1". It never blocks: if systemd's queue is full the state is
// lost and Send returns an error.
func (n *Notifier) Send(state string) error {
	if n == nil {
		return nil
	}
	if err := n.send(state); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Close closes the socket.
func (n *Notifier) Close() error {
	if n == nil {
		return nil
	}
	return n.close()
}
