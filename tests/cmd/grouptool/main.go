// Command grouptool is a process-group member for the integration tests
// and benchmarks: it joins groups through lib/api/groupclient, does one
// thing (send a stream, enter a barrier, commit a transaction, stall),
// and writes every event it gets to a log, one line each, so that a test
// can compare what members on different nodes delivered.
//
//	grouptool member -group t -members 3 -send 1000 -out /tmp/a.log
//	grouptool raw [-hello] [-join G] HEX|zeros:N|send:GROUP:N...
//
// Raw mode opens a session by hand (with a proper hello first if -hello,
// and a join if -join), sends each argument as one packet (hex bytes, N
// zero bytes, or a well-formed send of N payload bytes to GROUP) and prints what the daemon answers, one record a line,
// then "closed" when the daemon ends the session or "open" if it is still
// open after -wait: for testing how the daemon takes bad input.
//
// Log lines:
//
//	ready                                 the first view with -members members
//	view GROUP VIEWID MEMBERS CHANGES     a view change
//	msg GROUP NODE/CLIENT SEQ             a message (payload "NODE/PID/SEQ ...")
//	tx NODE/CLIENT GROUP:PAYLOAD...       a transaction
//	barrier GROUP NAME ok|failed MEMBERS|REASON
//	sent N                                the sends are done (all completed)
//	send-failed TAG ERR
//	end REASON
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/concord-ha/concord/lib/api/groupclient"
	"github.com/concord-ha/concord/lib/api/groupwire"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grouptool member|barrier|tx|stall [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	if mode == "raw" {
		os.Exit(raw(os.Args[2:]))
	}
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	var groups multi
	fs.Var(&groups, "group", "group to join (repeatable; the first is the one -members and sends use)")
	cluster := fs.String("cluster", "", "cluster context")
	members := fs.Int("members", 1, "wait for a view of the first group with this many members")
	send := fs.Int("send", 0, "messages to send to the first group")
	size := fs.Int("size", 64, "payload bytes")
	interval := fs.Duration("interval", 0, "pause between sends (0: as fast as credit allows)")
	safe := fs.Bool("safe", false, "send with safe order")
	out := fs.String("out", "", "event log file (default stdout)")
	idle := fs.Duration("idle", 5*time.Second, "exit after this long without an event, once done")
	barrier := fs.String("barrier", "", "barrier name (barrier mode)")
	stall := fs.Duration("stall", 0, "stall mode: stop reading for this long")
	fs.Parse(os.Args[2:])
	if len(groups) == 0 {
		groups = multi{"t"}
	}
	w := os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fatal(err)
		}
		w = f
	}
	log := bufio.NewWriter(w)
	defer log.Flush()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	s, err := groupclient.Dial(ctx, groupclient.Options{Context: *cluster, Name: "grouptool-" + mode})
	if err != nil {
		fatal(err)
	}
	defer s.Close()
	for _, g := range groups {
		if err := s.Join(ctx, g); err != nil {
			fatal(err)
		}
	}
	self := s.Self()
	next := func(d time.Duration) (groupclient.Event, error) {
		c, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return s.Next(c)
	}
	// Wait for the view.
	for {
		ev, err := next(2 * time.Minute)
		if err != nil {
			end(log, "no view: "+err.Error())
			return
		}
		logEvent(log, ev)
		if ev.Kind == groupclient.ViewChange && ev.Group == groups[0] && len(ev.Members) >= *members {
			break
		}
	}
	fmt.Fprintln(log, "ready")
	log.Flush()

	sendsDone := make(chan error, 1)
	switch mode {
	case "member":
		go func() {
			payload := make([]byte, *size)
			order := groupwire.Agreed
			if *safe {
				order = groupwire.Safe
			}
			for k := 0; k < *send; k++ {
				p := fmt.Appendf(payload[:0], "%d/%d/%d ", self.Node, self.PID, k)
				p = p[:max(len(p), *size)]
				if _, err := s.Send(ctx, groups[0], order, p); err != nil {
					sendsDone <- err
					return
				}
				if *interval > 0 {
					time.Sleep(*interval)
				}
			}
			sendsDone <- s.Drain(ctx)
		}()
	case "barrier":
		sendsDone <- s.Barrier(ctx, groups[0], *barrier)
	case "tx":
		err := s.Begin(ctx)
		for _, g := range groups {
			if err == nil {
				err = s.Add(ctx, g, []byte(fmt.Sprintf("%d/%d for %s", self.Node, self.PID, g)))
			}
		}
		if err == nil {
			_, err = s.Commit(ctx, groupwire.Agreed)
		}
		sendsDone <- err
	case "stall":
		fmt.Fprintln(log, "stalling")
		log.Flush()
		time.Sleep(*stall)
		sendsDone <- nil
	default:
		end(log, "unknown mode "+mode)
		return
	}
	done := false
	for {
		select {
		case err := <-sendsDone:
			if err != nil {
				end(log, "send: "+err.Error())
				return
			}
			fmt.Fprintf(log, "sent %d\n", *send)
			log.Flush()
			done = true
		default:
		}
		wait := *idle
		if !done {
			// Short, so that the end of the sends shows without
			// waiting for someone else's event.
			wait = 200 * time.Millisecond
		}
		ev, err := next(wait)
		if err != nil {
			if done && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				end(log, "idle")
			} else if !done && errors.Is(err, context.DeadlineExceeded) {
				continue
			} else {
				end(log, err.Error())
			}
			return
		}
		logEvent(log, ev)
	}
}

func logEvent(w *bufio.Writer, ev groupclient.Event) {
	switch ev.Kind {
	case groupclient.ViewChange:
		var ms, chs []string
		for _, m := range ev.Members {
			ms = append(ms, fmt.Sprintf("%d/%d", m.Node, m.Client))
		}
		for _, c := range ev.Changes {
			chs = append(chs, fmt.Sprintf("%d/%d:%s:%q", c.Member.Node, c.Member.Client, c.Kind, c.Reason))
		}
		fmt.Fprintf(w, "view %s %s [%s] [%s]\n", ev.Group, ev.View, strings.Join(ms, " "), strings.Join(chs, " "))
	case groupclient.Message:
		f := strings.Fields(string(ev.Payload))
		seq := "?"
		if len(f) > 0 {
			seq = f[0]
		}
		fmt.Fprintf(w, "msg %s %d/%d %s\n", ev.Group, ev.From.Node, ev.From.Client, seq)
	case groupclient.Transaction:
		var ps []string
		for _, p := range ev.Parts {
			ps = append(ps, p.Group+":"+strings.ReplaceAll(string(p.Payload), " ", "_"))
		}
		fmt.Fprintf(w, "tx %d/%d %s\n", ev.From.Node, ev.From.Client, strings.Join(ps, " "))
	case groupclient.BarrierDone:
		if ev.Failed {
			fmt.Fprintf(w, "barrier %s %s failed %q\n", ev.Group, ev.Barrier, ev.Reason)
		} else {
			fmt.Fprintf(w, "barrier %s %s ok %d\n", ev.Group, ev.Barrier, len(ev.Members))
		}
	case groupclient.SendFailed:
		fmt.Fprintf(w, "send-failed %d %v\n", ev.Tag, ev.Err)
	}
}

func end(w *bufio.Writer, why string) {
	fmt.Fprintf(w, "end %s\n", why)
	w.Flush()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "grouptool:", err)
	os.Exit(1)
}

// raw is raw mode; it returns the exit status.
func raw(args []string) int {
	fs := flag.NewFlagSet("raw", flag.ExitOnError)
	cluster := fs.String("cluster", "", "cluster context")
	hello := fs.Bool("hello", false, "say a proper hello first and read the welcome")
	join := fs.String("join", "", "join this group after the hello")
	wait := fs.Duration("wait", 3*time.Second, "how long to read answers after the last packet")
	fs.Parse(args)
	var pkts [][]byte
	for _, a := range fs.Args() {
		if n, ok := strings.CutPrefix(a, "zeros:"); ok {
			k, err := strconv.Atoi(n)
			if err != nil || k < 0 {
				fatal(fmt.Errorf("bad packet %q: want zeros:N", a))
			}
			pkts = append(pkts, make([]byte, k))
			continue
		}
		if rest, ok := strings.CutPrefix(a, "send:"); ok {
			g, n, _ := strings.Cut(rest, ":")
			k, err := strconv.Atoi(n)
			if err != nil || k < 0 {
				fatal(fmt.Errorf("bad packet %q: want send:GROUP:N", a))
			}
			// By hand: the encoder refuses a payload over the limit.
			p := binary.LittleEndian.AppendUint32(nil, uint32(groupwire.HeaderLen+2+len(g)+1+4+k))
			p = binary.LittleEndian.AppendUint16(p, uint16(groupwire.TSend))
			p = binary.LittleEndian.AppendUint16(p, 0)
			p = binary.LittleEndian.AppendUint32(p, 3) // tag
			p = binary.LittleEndian.AppendUint16(p, uint16(len(g)))
			p = append(p, g...)
			p = append(p, byte(groupwire.Agreed))
			p = binary.LittleEndian.AppendUint32(p, uint32(k))
			pkts = append(pkts, append(p, make([]byte, k)...))
			continue
		}
		b, err := hex.DecodeString(a)
		if err != nil {
			fatal(fmt.Errorf("bad packet %q: %v", a, err))
		}
		pkts = append(pkts, b)
	}
	path, err := groupclient.SocketPath(*cluster)
	if err != nil {
		fatal(err)
	}
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		fatal(err)
	}
	defer conn.Close()
	// Room for a packet over the daemon's limit, so that the daemon, not
	// this kernel, is what refuses it (SO_SNDBUFFORCE needs root).
	if rc, err := conn.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, 4<<20) != nil {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4<<20)
			}
		})
	}
	buf := make([]byte, groupwire.MaxPacket)
	// read prints the records of one packet; false when the session ended.
	read := func(d time.Duration) bool {
		conn.SetReadDeadline(time.Now().Add(d))
		n, err := conn.Read(buf)
		if err != nil || n == 0 {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				fmt.Println("open")
			} else {
				fmt.Println("closed")
			}
			return false
		}
		rs, err := groupwire.Records(buf[:n])
		if err != nil {
			fmt.Printf("undecodable %d bytes: %v\n", n, err)
			return true
		}
		for _, r := range rs {
			switch r.Type {
			case groupwire.TReply, groupwire.TSendFailed:
				fmt.Printf("%s tag %d code %s %q\n", r.Type, r.Tag, r.Code, r.Text)
			case groupwire.TWelcome:
				fmt.Printf("welcome %s\n", r.Self)
			case groupwire.TView:
				fmt.Printf("view %s %s %d members\n", r.Group, r.View, len(r.Members))
			default:
				fmt.Println(r.Type)
			}
		}
		return true
	}
	send := func(p []byte) bool {
		if _, err := conn.Write(p); err != nil {
			fmt.Printf("write %d bytes: %v\n", len(p), err)
			return false
		}
		return true
	}
	record := func(r groupwire.Record) []byte {
		p, err := groupwire.Append(nil, &r)
		if err != nil {
			fatal(err)
		}
		return p
	}
	if *hello {
		if !send(record(groupwire.Record{Type: groupwire.THello, Tag: 1, Version: groupwire.Version, Name: "grouptool-raw"})) || !read(5*time.Second) {
			return 1
		}
	}
	if *join != "" {
		if !send(record(groupwire.Record{Type: groupwire.TJoin, Tag: 2, Group: *join})) {
			return 1
		}
		// The view that shows us joined comes before the reply.
		for {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(buf)
			if err != nil || n == 0 {
				fmt.Println("closed")
				return 1
			}
			rs, err := groupwire.Records(buf[:n])
			if err != nil {
				fmt.Printf("undecodable %d bytes: %v\n", n, err)
				return 1
			}
			replied := false
			for _, r := range rs {
				if r.Type == groupwire.TReply {
					fmt.Printf("%s tag %d code %s %q\n", r.Type, r.Tag, r.Code, r.Text)
					replied = true
				}
			}
			if replied {
				break
			}
		}
	}
	for _, p := range pkts {
		if !send(p) {
			break
		}
	}
	for read(*wait) {
	}
	return 0
}
