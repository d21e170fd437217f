package nodebus

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// JoinGroup makes this node a member of a process group.
func (c *Client) JoinGroup(name string) error {
	return callErr(c.call("JoinGroup", name).Err, false)
}

// LeaveGroup leaves a process group.
func (c *Client) LeaveGroup(name string) error {
	return callErr(c.call("LeaveGroup", name).Err, false)
}

// SendGroup sends one message to a group, totally ordered.
func (c *Client) SendGroup(name string, payload []byte) error {
	return callErr(c.call("SendGroup", name, payload).Err, false)
}

// SendGroupMany sends payloads in order and returns how many were taken.
func (c *Client) SendGroupMany(name string, payloads [][]byte) (int, error) {
	var n uint32
	if err := c.call("SendGroupMany", name, payloads).Store(&n); err != nil {
		return 0, callErr(err, false)
	}
	return int(n), nil
}

// SendNode sends a reliable 1-1 message to a node of the view.
func (c *Client) SendNode(node uint16, payload []byte) error {
	return callErr(c.call("SendNode", node, payload).Err, false)
}

// WatchGroup calls fn for each delivery to group until fn returns false or
// ctx ends.
func (c *Client) WatchGroup(ctx context.Context, group string, fn func(sender uint16, seq uint64, payload []byte) bool) error {
	return c.watch(ctx, "GroupMessage", func(s *dbus.Signal) bool {
		var g string
		var sender uint16
		var seq uint64
		var payload []byte
		if err := dbus.Store(s.Body, &g, &sender, &seq, &payload); err != nil || g != group {
			return true
		}
		return fn(sender, seq, payload)
	})
}

// WatchNode calls fn for each 1-1 message to this node until fn returns
// false or ctx ends.
func (c *Client) WatchNode(ctx context.Context, fn func(sender uint16, seq uint64, payload []byte) bool) error {
	return c.watch(ctx, "NodeMessage", func(s *dbus.Signal) bool {
		var sender uint16
		var seq uint64
		var payload []byte
		if err := dbus.Store(s.Body, &sender, &seq, &payload); err != nil {
			return true
		}
		return fn(sender, seq, payload)
	})
}

// watch subscribes to a Manager signal and calls fn for each until it
// returns false or ctx ends.
func (c *Client) watch(ctx context.Context, member string, fn func(*dbus.Signal) bool) error {
	// By sender too: the daemons of other cluster contexts on this host
	// send the same signals from the same path under their own names.
	if err := c.conn.AddMatchSignal(dbus.WithMatchSender(c.bus), dbus.WithMatchObjectPath(ManagerPath),
		dbus.WithMatchInterface(ManagerIface), dbus.WithMatchMember(member)); err != nil {
		return callErr(err, false)
	}
	ch := make(chan *dbus.Signal, 4096)
	c.conn.Signal(ch)
	defer c.conn.RemoveSignal(ch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case s, ok := <-ch:
			if !ok {
				return fmt.Errorf("%w: the bus connection closed", ErrLost)
			}
			if s.Name != ManagerIface+"."+member {
				continue
			}
			if !fn(s) {
				return nil
			}
		}
	}
}
