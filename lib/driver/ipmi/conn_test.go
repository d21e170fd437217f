package ipmi

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// peer is a UDP socket on loopback that answers the nth datagram it gets.
type peer struct {
	pc   *net.UDPConn
	got  atomic.Int32
	done chan struct{}
}

func newPeer(t *testing.T, answerAt int32) *peer {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{pc: pc, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if p.got.Add(1) == answerAt {
				pc.WriteToUDP(append([]byte("re:"), buf[:n]...), from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-p.done })
	return p
}

func dialPeer(t *testing.T, p *peer, resend time.Duration) *conn {
	t.Helper()
	raw, err := net.DialUDP("udp", nil, p.pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &conn{raw: raw, resend: resend}
}

func TestConnRead(t *testing.T) {
	cases := []struct {
		name     string
		answerAt int32 // 0: never
		budget   time.Duration
		deadline time.Duration
		want     string // reply, or "silent", "timeout"
		minSent  int32
	}{
		{"answered at once", 1, 0, 5 * time.Second, "re:req", 1},
		{"answered after two retransmissions", 3, 0, 5 * time.Second, "re:req", 3},
		{"silent past the step budget", 0, 300 * time.Millisecond, 5 * time.Second, "silent", 2},
		{"silent past go-ipmi's deadline", 0, 0, 300 * time.Millisecond, "timeout", 2},
		{"deadline before budget", 0, 5 * time.Second, 300 * time.Millisecond, "timeout", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, tc.answerAt)
			c := dialPeer(t, p, 50*time.Millisecond)
			c.arm(tc.budget)
			if _, err := c.Write([]byte("req")); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(tc.deadline))
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			var got string
			var se *silentError
			var ne net.Error
			switch {
			case err == nil:
				got = string(buf[:n])
			case errors.As(err, &se):
				got = "silent"
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Error("silentError must not look like a timeout: go-ipmi would retry it")
				}
			case errors.As(err, &ne) && ne.Timeout():
				got = "timeout"
				if _, ok := err.(net.Error); !ok {
					t.Error("timeout must be a net.Error by type assertion, as go-ipmi checks")
				}
			default:
				t.Fatalf("Read: %v", err)
			}
			if got != tc.want {
				t.Errorf("Read = %q, want %q", got, tc.want)
			}
			if s := p.got.Load(); s < tc.minSent {
				t.Errorf("peer got %d copies, want at least %d", s, tc.minSent)
			}
		})
	}
}

func TestConnRefused(t *testing.T) {
	p := newPeer(t, 0)
	c := dialPeer(t, p, time.Second)
	p.pc.Close()
	c.arm(0)
	c.Write([]byte("req"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 64))
	e := classifyLogin("x:1", err, loginFacts{})
	if !errors.Is(e, ErrUnreachable) {
		t.Fatalf("closed port: %v, classified %v", err, e)
	}
}

func TestConnInterrupt(t *testing.T) {
	p := newPeer(t, 0)
	c := dialPeer(t, p, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{conn: c}
	release := s.begin(ctx, 0, time.Second)
	defer release()
	c.Write([]byte("req"))
	c.SetReadDeadline(time.Now().Add(time.Hour))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 64))
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, errInterrupted) {
			t.Errorf("Read after cancel: %v, want errInterrupted", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Read not woken by the context")
	}
}
