//go:build linux

package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func receive(t *testing.T, l *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 256)
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := l.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestSendToPathAndAbstractSockets(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify"),
		fmt.Sprintf("@concord-sdnotify-test-%d", os.Getpid()),
	} {
		l := listen(t, name)
		n, err := Open(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"READY=1", "WATCHDOG=1", "STATUS=view 3: 3 of 3 nodes, quorate"} {
			if err := n.Send(s); err != nil {
				t.Fatalf("%s: Send(%q): %v", name, s, err)
			}
			if got := receive(t, l); got != s {
				t.Errorf("%s: received %q, want %q", name, got, s)
			}
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.Send("WATCHDOG=1"); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Send after Close: %v, want os.ErrClosed", err)
		}
	}
}

// systemd re-creates its notify socket when it re-executes: the next send
// must reach the new one.
func TestSendAfterTheSocketIsRecreated(t *testing.T) {
	name := filepath.Join(t.TempDir(), "notify")
	l := listen(t, name)
	n, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	l.Close()
	os.Remove(name)
	if err := n.Send("WATCHDOG=1"); err == nil {
		t.Error("Send with no socket there succeeded")
	}
	l2 := listen(t, name)
	if err := n.Send("WATCHDOG=1"); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, l2); got != "WATCHDOG=1" {
		t.Errorf("received %q", got)
	}
}

func TestOpenChecksTheName(t *testing.T) {
	n, err := Open("")
	if n != nil || err != nil {
		t.Errorf("Open(\"\") = %v, %v; want nil, nil", n, err)
	}
	if err := n.Send("READY=1"); err != nil {
		t.Errorf("Send on a nil Notifier: %v", err)
	}
	for _, s := range []string{"relative/path", "@", "vsock:2:1234", "/" + strings.Repeat("x", 200)} {
		if _, err := Open(s); err == nil {
			t.Errorf("Open(%q) succeeded", s)
		}
	}
}
