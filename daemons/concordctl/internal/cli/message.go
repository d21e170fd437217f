package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

// Messages is the part of the API for 1-1 messages.
type Messages interface {
	SendNode(node uint16, payload []byte) error
	// WatchNode calls fn for each 1-1 message to this node until fn returns false or ctx ends.
	WatchNode(ctx context.Context, fn func(sender uint16, seq uint64, payload []byte) bool) error
}

func messageCmd(args []string, env Env) error {
	if len(args) == 0 {
		return usageError{"usage: concordctl message send NODE MESSAGE | message watch [--count N] [--timeout D]"}
	}
	verb := args[0]
	fs := flag.NewFlagSet("message "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	count := fs.Int("count", 1, "")
	timeout := fs.Duration("timeout", 0, "")
	pos, err := positionals(fs, args[1:])
	if err != nil {
		return err
	}
	switch verb {
	case "send":
		if len(pos) != 2 {
			return usageError{"usage: concordctl message send NODE MESSAGE (NODE: a name or a number)"}
		}
		s, err := status(env)
		if err != nil {
			return err
		}
		num, err := resolveNode(s, pos[0])
		if err != nil {
			return err
		}
		m, err := messages(env)
		if err != nil {
			return err
		}
		return m.SendNode(num, []byte(pos[1]))
	case "watch":
		if len(pos) != 0 {
			return usageError{"usage: concordctl message watch [--count N] [--timeout D]"}
		}
		m, err := messages(env)
		if err != nil {
			return err
		}
		ctx, cancel := watchContext(*timeout)
		defer cancel()
		n := 0
		err = m.WatchNode(ctx, func(sender uint16, seq uint64, payload []byte) bool {
			fmt.Fprintf(env.Stdout, "%d %d %s\n", seq, sender, payload)
			n++
			return *count <= 0 || n < *count
		})
		if err != nil {
			return err
		}
		if *count > 0 && n < *count {
			return fmt.Errorf("message watch: %d of %d messages before the timeout", n, *count)
		}
		return nil
	}
	return usageError{fmt.Sprintf("message: unknown verb %q", verb)}
}

func messages(env Env) (Messages, error) {
	api, err := env.dial()
	if err != nil {
		return nil, err
	}
	m, ok := api.(Messages)
	if !ok {
		return nil, fmt.Errorf("this concord-noded has no 1-1 message API")
	}
	return m, nil
}

// resolveNode takes a node name or number.
func resolveNode(s nodebus.Status, arg string) (uint16, error) {
	for _, n := range s.Nodes {
		if n.Name == arg {
			return n.Number, nil
		}
	}
	if v, err := strconv.ParseUint(arg, 10, 16); err == nil {
		for _, n := range s.Nodes {
			if n.Number == uint16(v) {
				return n.Number, nil
			}
		}
	}
	return 0, fmt.Errorf("no node named or numbered %q", arg)
}

// watchContext is the context of a watch command: it ends after timeout,
// or never if timeout is 0.
func watchContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		return context.WithTimeout(context.Background(), timeout)
	}
	return context.WithCancel(context.Background())
}
