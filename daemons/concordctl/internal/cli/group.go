package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Groups is the part of the API for named process groups.
type Groups interface {
	JoinGroup(name string) error
	LeaveGroup(name string) error
	SendGroup(name string, payload []byte) error
	// SendGroupMany sends payloads in order and returns how many were taken.
	SendGroupMany(name string, payloads [][]byte) (int, error)
	// WatchGroup calls fn for each delivery to group until fn returns false or ctx ends.
	WatchGroup(ctx context.Context, group string, fn func(sender uint16, seq uint64, payload []byte) bool) error
}

func groupCmd(args []string, env Env) error {
	if len(args) < 2 {
		return usageError{"usage: concordctl group join|leave|send|watch NAME ..."}
	}
	verb, name := args[0], args[1]
	switch verb {
	case "join", "leave", "send", "watch":
	default:
		return usageError{fmt.Sprintf("group: unknown verb %q (want join, leave, send or watch)", verb)}
	}
	fs := flag.NewFlagSet("group "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	count := fs.Int("count", 1, "")
	timeout := fs.Duration("timeout", 0, "")
	idle := fs.Duration("idle", 0, "")
	size := fs.Int("size", 0, "")
	stats := fs.Bool("stats", false, "")
	interval := fs.Duration("interval", 0, "")
	if err := fs.Parse(args[2:]); err != nil {
		return usageError{"group " + verb + ": " + err.Error()}
	}
	api, err := env.dial()
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
	case "leave":
		if fs.NArg() != 0 {
			return usageError{"usage: concordctl group leave NAME"}
		}
		return g.LeaveGroup(name)
	case "send":
		if fs.NArg() != 1 {
			return usageError{"usage: concordctl group send NAME [--count N] [--size BYTES] [--interval D] MESSAGE"}
		}
		// With --count N, message i is "MESSAGE-i", so receivers can check order and loss.
		if *size < 0 || *size > 1200 {
			return usageError{fmt.Sprintf("group send: --size %d: want 0..1200 bytes", *size)}
		}
		// Messages go in batches of up to 64 per call; with --size they are
		// stamped when the batch is made and padded, so watchers with
		// --stats can measure latency (the nodes of one host share its clock).
		// With --interval, one message per call at that pace, to measure
		// latency without queueing.
		batch := 64
		if *interval > 0 {
			batch = 1
		}
		for i := 0; i < *count; {
			if *interval > 0 && i > 0 {
				time.Sleep(*interval)
			}
			var ps [][]byte
			for ; i < *count && len(ps) < batch; i++ {
				msg := fs.Arg(0)
				if *count > 1 {
					msg = fmt.Sprintf("%s-%d", msg, i)
				}
				if *size > 0 {
					msg = fmt.Sprintf("%s@%d#", msg, time.Now().UnixNano())
					msg += strings.Repeat(".", max(0, *size-len(msg)))
				}
				ps = append(ps, []byte(msg))
			}
			for len(ps) > 0 {
				n, err := g.SendGroupMany(name, ps)
				if err != nil && !isQueueFull(err) {
					return err
				}
				ps = ps[n:]
				if len(ps) > 0 {
					time.Sleep(2 * time.Millisecond)
				}
			}
		}
		return nil
	case "watch":
		if fs.NArg() != 0 {
			return usageError{"usage: concordctl group watch NAME [--count N] [--timeout D] [--idle D] [--stats]"}
		}
		ctx, cancel := watchContext(*timeout)
		defer cancel()
		n := 0
		var idleTimer *time.Timer
		if *idle > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			idleTimer = time.AfterFunc(*idle, cancel)
		}
		var st latency
		err := g.WatchGroup(ctx, name, func(sender uint16, seq uint64, payload []byte) bool {
			if *stats {
				st.add(payload, time.Now())
			} else {
				fmt.Fprintf(env.Stdout, "%d %d %s\n", seq, sender, payload)
			}
			n++
			if idleTimer != nil {
				idleTimer.Reset(*idle)
			}
			return *count <= 0 || n < *count
		})
		if err != nil {
			return err
		}
		if *stats {
			st.print(env.Stdout)
		}
		if *count > 0 && n < *count {
			return fmt.Errorf("group watch: %d of %d messages before the timeout", n, *count)
		}
		return nil
	}
	return usageError{fmt.Sprintf("group: unknown verb %q", verb)}
}

// latency summarises stamped deliveries for --stats.
type latency struct {
	first, last time.Time
	n, bytes    int
	lat         []time.Duration // of stamped deliveries
}

func (l *latency) add(payload []byte, now time.Time) {
	if l.first.IsZero() {
		l.first = now
	}
	l.last = now
	l.n++
	l.bytes += len(payload)
	s := string(payload)
	at, hash := strings.LastIndexByte(s, '@'), strings.IndexByte(s, '#')
	if at < 0 || hash < at {
		return
	}
	ns, err := strconv.ParseInt(s[at+1:hash], 10, 64)
	if err == nil {
		l.lat = append(l.lat, now.Sub(time.Unix(0, ns)))
	}
}

func (l *latency) print(w io.Writer) {
	rate := 0.0
	if secs := l.last.Sub(l.first).Seconds(); secs > 0 {
		rate = float64(l.n-1) / secs
	}
	fmt.Fprintf(w, "messages %d bytes %d rate_per_s %.0f", l.n, l.bytes, rate)
	if k := len(l.lat); k > 0 {
		sort.Slice(l.lat, func(i, j int) bool { return l.lat[i] < l.lat[j] })
		fmt.Fprintf(w, " latency_median_us %d latency_min_us %d latency_max_us %d",
			l.lat[k/2].Microseconds(), l.lat[0].Microseconds(), l.lat[k-1].Microseconds())
	}
	fmt.Fprintln(w)
}
