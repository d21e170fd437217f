package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/concord-ha/concord/lib/api/groupclient"
	"github.com/concord-ha/concord/lib/api/groupwire"
)

// groupLimit bounds what a group command waits for from the daemon, but
// for watch, which waits as long as it is told.
const groupLimit = time.Minute

func groupCmd(args []string, jsonOut bool, env Env) error {
	if len(args) == 0 {
		return usageError{"usage: concordctl group list | members NAME | watch NAME | send NAME [TEXT]"}
	}
	verb := args[0]
	fs := flag.NewFlagSet("group "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var count *int
	var timeout, interval *time.Duration
	var size *int
	var safe, stats *bool
	switch verb {
	case "list", "members":
	case "watch":
		count = fs.Int("count", 0, "")
		timeout = fs.Duration("timeout", 0, "")
		stats = fs.Bool("stats", false, "")
	case "send":
		count = fs.Int("count", 1, "")
		size = fs.Int("size", 0, "")
		interval = fs.Duration("interval", 0, "")
		safe = fs.Bool("safe", false, "")
	default:
		return usageError{fmt.Sprintf("group: unknown verb %q (want list, members, watch or send)", verb)}
	}
	pos, err := positionals(fs, args[1:])
	if err != nil {
		return err
	}
	switch verb {
	case "list":
		if len(pos) != 0 {
			return usageError{"usage: concordctl group list"}
		}
		return groupList(env, jsonOut)
	case "members":
		if len(pos) != 1 {
			return usageError{"usage: concordctl group members NAME"}
		}
		return groupMembers(env, jsonOut, pos[0])
	case "watch":
		if len(pos) != 1 {
			return usageError{"usage: concordctl group watch NAME [--count N] [--timeout D] [--stats]"}
		}
		if *count < 0 {
			return usageError{fmt.Sprintf("group watch: --count %d: want 0 (no end) or more", *count)}
		}
		return groupWatch(env, jsonOut, pos[0], *count, *timeout, *stats)
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageError{"usage: concordctl group send NAME [--safe] [--count N] [--size BYTES] [--interval D] [TEXT]"}
	}
	text := ""
	if len(pos) == 2 {
		text = pos[1]
	}
	switch {
	case text == "" && *size == 0:
		return usageError{"group send: nothing to send: give a TEXT or a --size"}
	case *size < 0 || *size > groupwire.MaxPayload:
		return usageError{fmt.Sprintf("group send: --size %d: want 0..%d bytes", *size, groupwire.MaxPayload)}
	case *count < 1:
		return usageError{fmt.Sprintf("group send: --count %d: want 1 or more", *count)}
	}
	order := groupwire.Agreed
	if *safe {
		order = groupwire.Safe
	}
	return groupSend(env, jsonOut, pos[0], order, text, *count, *size, *interval)
}

// dialGroups opens a session with concord-noded's process groups.
func dialGroups(ctx context.Context, env Env) (*groupclient.Session, error) {
	return groupclient.Dial(ctx, groupclient.Options{Socket: env.GroupSocket, Context: env.cluster.Name(), Name: "concordctl"})
}

func groupList(env Env, jsonOut bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), groupLimit)
	defer cancel()
	s, err := dialGroups(ctx, env)
	if err != nil {
		return err
	}
	defer s.Close()
	gs, err := s.Groups(ctx)
	if err != nil {
		return err
	}
	if jsonOut {
		type group struct {
			Group   string `json:"group"`
			View    string `json:"view"`
			Members uint32 `json:"members"`
		}
		out := []group{}
		for _, g := range gs {
			out = append(out, group{g.Group, g.View.String(), g.Members})
		}
		return writeJSON(env.Stdout, out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tVIEW\tMEMBERS")
	for _, g := range gs {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", g.Group, g.View, g.Members)
	}
	return tw.Flush()
}

// jsonMember is a member in JSON output.
type jsonMember struct {
	Node        uint16 `json:"node"`
	Incarnation uint64 `json:"incarnation"`
	Client      uint32 `json:"client"`
	PID         uint32 `json:"pid"`
	UID         uint32 `json:"uid"`
}

func jsonMembers(ms []groupwire.Member) []jsonMember {
	out := []jsonMember{}
	for _, m := range ms {
		out = append(out, jsonMember{m.Node, m.Inc, m.Client, m.PID, m.UID})
	}
	return out
}

func groupMembers(env Env, jsonOut bool, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), groupLimit)
	defer cancel()
	s, err := dialGroups(ctx, env)
	if err != nil {
		return err
	}
	defer s.Close()
	v, ms, err := s.Members(ctx, name)
	if err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(env.Stdout, struct {
			Group   string       `json:"group"`
			View    string       `json:"view"`
			Members []jsonMember `json:"members"`
		}{name, v.String(), jsonMembers(ms)})
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCLIENT\tPID\tUID")
	for _, m := range ms {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\n", m.Node, m.Client, m.PID, m.UID)
	}
	return tw.Flush()
}

// interrupted is a context that ends at SIGINT or SIGTERM, or after
// timeout if it is not 0.
func interrupted(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if timeout <= 0 {
		return ctx, stop
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return ctx, func() { cancel(); stop() }
}

// leave leaves group and ends the session, within a short time even when
// the command's context has ended.
func leave(s *groupclient.Session, group string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Leave(ctx, group)
	s.Close()
}

func groupWatch(env Env, jsonOut bool, name string, count int, timeout time.Duration, stats bool) error {
	ctx, cancel := interrupted(timeout)
	defer cancel()
	s, err := dialGroups(ctx, env)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Join(ctx, name); err != nil {
		return err
	}
	defer leave(s, name)
	n := 0
	var st latency
	for count == 0 || n < count {
		e, err := s.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				return err
			}
			if count > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("group watch: %d of %d messages before the timeout", n, count)
			}
			break // interrupted, or the timeout without a count
		}
		if e.Kind == groupclient.Message || e.Kind == groupclient.Transaction {
			n++
		}
		switch {
		case stats && e.Kind == groupclient.Message:
			st.add(e.Payload, time.Now())
		case stats:
		case jsonOut:
			if err := writeJSONLine(env.Stdout, jsonEvent(e)); err != nil {
				return err
			}
		default:
			fmt.Fprintln(env.Stdout, eventLine(e))
		}
	}
	if stats {
		st.print(env.Stdout)
	}
	return nil
}

// eventLine is an event on one line of text.
func eventLine(e groupclient.Event) string {
	var b strings.Builder
	switch e.Kind {
	case groupclient.ViewChange:
		fmt.Fprintf(&b, "view %s of %s, %d members:", e.View, e.Group, len(e.Members))
		for i, c := range e.Changes {
			if i > 0 {
				b.WriteString(";")
			}
			fmt.Fprintf(&b, " %s %s", c.Member, c.Kind)
			if c.Reason != "" {
				fmt.Fprintf(&b, " (%s)", oneLine(c.Reason))
			}
		}
	case groupclient.Message:
		fmt.Fprintf(&b, "message from %s, %s", e.From, orderName(e.Order))
		if e.Direct {
			b.WriteString(", to this member only")
		}
		fmt.Fprintf(&b, ": %s", text(e.Payload))
	case groupclient.Transaction:
		fmt.Fprintf(&b, "transaction %d from %s, %s:", e.Tx, e.From, orderName(e.Order))
		for i, p := range e.Parts {
			if i > 0 {
				b.WriteString(";")
			}
			fmt.Fprintf(&b, " %s: %s", p.Group, text(p.Payload))
		}
	case groupclient.BarrierDone:
		if e.Failed {
			fmt.Fprintf(&b, "barrier %s of %s failed: %s", e.Barrier, e.Group, oneLine(e.Reason))
			break
		}
		fmt.Fprintf(&b, "barrier %s of %s released:", e.Barrier, e.Group)
		for _, m := range e.Members {
			fmt.Fprintf(&b, " %s", m)
		}
	case groupclient.SendFailed:
		fmt.Fprintf(&b, "send %d failed: %v", e.Tag, e.Err)
	default:
		fmt.Fprintf(&b, "%s", e.Kind)
	}
	return b.String()
}

func orderName(o groupwire.Order) string {
	if o == groupwire.Safe {
		return "safe"
	}
	return "agreed"
}

// text shows a payload as it is when it is printable text on one line,
// quoted otherwise.
func text(p []byte) string {
	if utf8.Valid(p) && strings.IndexFunc(string(p), func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return string(p)
	}
	return strconv.Quote(string(p))
}

// oneLine keeps a reason from the daemon on its line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

type jsonChange struct {
	Member jsonMember `json:"member"`
	Kind   string     `json:"kind"`
	Reason string     `json:"reason,omitempty"`
}

type jsonPart struct {
	Group   string `json:"group"`
	Payload string `json:"payload,omitempty"`
	Hex     string `json:"payload_hex,omitempty"`
}

// jsonEvent is an event as one JSON object; a payload that is not UTF-8
// goes as payload_hex.
func jsonEvent(e groupclient.Event) any {
	type event struct {
		Kind    string       `json:"kind"`
		Group   string       `json:"group,omitempty"`
		View    string       `json:"view,omitempty"`
		Members []jsonMember `json:"members,omitempty"`
		Changes []jsonChange `json:"changes,omitempty"`
		From    *jsonMember  `json:"from,omitempty"`
		Order   string       `json:"order,omitempty"`
		Direct  bool         `json:"direct,omitempty"`
		Payload string       `json:"payload,omitempty"`
		Hex     string       `json:"payload_hex,omitempty"`
		Tx      uint64       `json:"transaction,omitempty"`
		Parts   []jsonPart   `json:"parts,omitempty"`
		Barrier string       `json:"barrier,omitempty"`
		Failed  bool         `json:"failed,omitempty"`
		Reason  string       `json:"reason,omitempty"`
		Tag     uint32       `json:"tag,omitempty"`
		Error   string       `json:"error,omitempty"`
	}
	j := event{Kind: e.Kind.String(), Group: e.Group, Barrier: e.Barrier, Failed: e.Failed, Reason: e.Reason, Tx: e.Tx, Tag: e.Tag}
	if e.Kind == groupclient.ViewChange || e.Kind == groupclient.Message {
		j.View = e.View.String()
	}
	if e.Kind == groupclient.ViewChange || e.Kind == groupclient.BarrierDone {
		j.Members = jsonMembers(e.Members)
	}
	for _, c := range e.Changes {
		j.Changes = append(j.Changes, jsonChange{jsonMembers([]groupwire.Member{c.Member})[0], c.Kind.String(), c.Reason})
	}
	if e.Kind == groupclient.Message || e.Kind == groupclient.Transaction {
		from := jsonMembers([]groupwire.Member{e.From})[0]
		j.From, j.Order, j.Direct = &from, orderName(e.Order), e.Direct
	}
	if e.Kind == groupclient.Message {
		j.Payload, j.Hex = jsonPayload(e.Payload)
	}
	for _, p := range e.Parts {
		jp := jsonPart{Group: p.Group}
		jp.Payload, jp.Hex = jsonPayload(p.Payload)
		j.Parts = append(j.Parts, jp)
	}
	if e.Err != nil {
		j.Error = e.Err.Error()
	}
	return j
}

func jsonPayload(p []byte) (text, hex string) {
	if utf8.Valid(p) {
		return string(p), ""
	}
	return "", fmt.Sprintf("%x", p)
}

func groupSend(env Env, jsonOut bool, name string, order groupwire.Order, text string, count, size int, interval time.Duration) error {
	ctx, cancel := interrupted(0)
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, groupLimit)
	defer dcancel()
	s, err := dialGroups(dctx, env)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Join(dctx, name); err != nil {
		return err
	}
	defer leave(s, name)
	// Events are read as they come (this member's own messages come back
	// to it), so the daemon never counts this client as a slow reader;
	// failures are kept.
	rctx, stopReading := context.WithCancel(ctx)
	var failed []error
	read := make(chan struct{})
	go func() {
		defer close(read)
		for {
			e, err := s.Next(rctx)
			if err != nil {
				return
			}
			if e.Kind == groupclient.SendFailed {
				failed = append(failed, e.Err)
			}
		}
	}()
	payload := func(i int) []byte {
		msg := text
		if msg == "" {
			msg = "m"
		}
		if count > 1 {
			msg = fmt.Sprintf("%s-%d", msg, i)
		}
		if size > 0 {
			// Stamped for group watch --stats (the nodes of one host share
			// its clock), and padded.
			msg = fmt.Sprintf("%s@%d#", msg, time.Now().UnixNano())
			msg += strings.Repeat(".", max(0, size-len(msg)))
		}
		return []byte(msg)
	}
	start := time.Now()
	bytes := 0
	for i := 0; i < count; {
		if interval > 0 {
			if i > 0 {
				select {
				case <-time.After(interval):
				case <-ctx.Done():
				}
			}
			p := payload(i)
			if _, err := s.Send(ctx, name, order, p); err != nil {
				stopReading()
				return err
			}
			bytes += len(p)
			i++
			continue
		}
		var batch [][]byte
		for ; i < count && len(batch) < 64; i++ {
			batch = append(batch, payload(i))
			bytes += len(batch[len(batch)-1])
		}
		if _, err := s.SendBatch(ctx, name, order, batch); err != nil {
			stopReading()
			return err
		}
	}
	err = s.Drain(ctx)
	elapsed := time.Since(start)
	stopReading()
	<-read // it returns the events left before it stops
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("group send: %d of %d sends failed; the first: %w", len(failed), count, failed[0])
	}
	rate := float64(count) / max(elapsed.Seconds(), 1e-9)
	if jsonOut {
		return writeJSON(env.Stdout, map[string]any{"group": name, "sent": count, "bytes": bytes,
			"seconds": elapsed.Seconds(), "rate_per_s": int(rate)})
	}
	fmt.Fprintf(env.Stdout, "sent %d messages (%d bytes) to %s in %.3f s: %.0f messages/s\n", count, bytes, name, elapsed.Seconds(), rate)
	return nil
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
