package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/nodebus"
)

// Groups is the part of the API for named process groups.
type Groups interface {
	JoinGroup(name string) error
	SendGroup(name string, payload []byte) error
	// WatchGroup calls fn for each delivery to group until fn returns false or ctx ends.
	WatchGroup(ctx context.Context, group string, fn func(sender uint16, seq uint64, payload []byte) bool) error
}

func groupCmd(args []string, env Env) error {
	if len(args) < 2 {
		return usageError{"usage: concordctl group join|send|watch NAME ..."}
	}
	verb, name := args[0], args[1]
	fs := flag.NewFlagSet("group "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	count := fs.Int("count", 1, "")
	timeout := fs.Duration("timeout", 0, "")
	idle := fs.Duration("idle", 0, "")
	if err := fs.Parse(args[2:]); err != nil {
		return usageError{"group " + verb + ": " + err.Error()}
	}
	api, err := env.Dial()
	if err != nil {
		return err
	}
	g, ok := api.(Groups)
	if !ok {
		return fmt.Errorf("this concord-noded has no group API")
	}
	switch verb {
	case "join":
		if fs.NArg() != 0 {
			return usageError{"usage: concordctl group join NAME"}
		}
		return g.JoinGroup(name)
	case "send":
		if fs.NArg() != 1 {
			return usageError{"usage: concordctl group send NAME [--count N] MESSAGE"}
		}
		// With --count N, message i is "MESSAGE-i", so receivers can check order and loss.
		for i := 0; i < *count; i++ {
			msg := fs.Arg(0)
			if *count > 1 {
				msg = fmt.Sprintf("%s-%d", msg, i)
			}
			for {
				err := g.SendGroup(name, []byte(msg))
				if err == nil {
					break
				}
				if !isQueueFull(err) {
					return err
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		return nil
	case "watch":
		if fs.NArg() != 0 {
			return usageError{"usage: concordctl group watch NAME [--count N] [--timeout D] [--idle D]"}
		}
		ctx := context.Background()
		if *timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *timeout)
			defer cancel()
		}
		n := 0
		var idleTimer *time.Timer
		if *idle > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			idleTimer = time.AfterFunc(*idle, cancel)
		}
		err := g.WatchGroup(ctx, name, func(sender uint16, seq uint64, payload []byte) bool {
			fmt.Fprintf(env.Stdout, "%d %d %s\n", seq, sender, payload)
			n++
			if idleTimer != nil {
				idleTimer.Reset(*idle)
			}
			return *count <= 0 || n < *count
		})
		if err != nil {
			return err
		}
		if *count > 0 && n < *count {
			return fmt.Errorf("group watch: %d of %d messages before the timeout", n, *count)
		}
		return nil
	}
	return usageError{fmt.Sprintf("group: unknown verb %q", verb)}
}

func isQueueFull(err error) bool {
	return err != nil && strings.Contains(err.Error(), "queue full")
}

func (b *busAPI) JoinGroup(name string) error {
	return b.callErr(b.obj.Call(nodebus.ManagerIface+".JoinGroup", 0, name).Err)
}

func (b *busAPI) SendGroup(name string, payload []byte) error {
	return b.callErr(b.obj.Call(nodebus.ManagerIface+".SendGroup", 0, name, payload).Err)
}

func (b *busAPI) WatchGroup(ctx context.Context, group string, fn func(uint16, uint64, []byte) bool) error {
	if err := b.conn.AddMatchSignal(dbus.WithMatchObjectPath(nodebus.ManagerPath),
		dbus.WithMatchInterface(nodebus.ManagerIface), dbus.WithMatchMember("GroupMessage")); err != nil {
		return b.callErr(err)
	}
	ch := make(chan *dbus.Signal, 4096)
	b.conn.Signal(ch)
	defer b.conn.RemoveSignal(ch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-ch:
			var g string
			var sender uint16
			var seq uint64
			var payload []byte
			if err := dbus.Store(s.Body, &g, &sender, &seq, &payload); err != nil || g != group {
				continue
			}
			if !fn(sender, seq, payload) {
				return nil
			}
		}
	}
}
