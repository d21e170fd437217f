package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadyWaitsForALink runs the daemon on a real kernel, in a network
// namespace of its own whose only heartbeat NIC is down, as a fresh
// install leaves it, and whose veth peer is down too (no carrier): the
// daemon sets the NIC up, tells systemd what it waits for and not READY=1;
// once the peer is up (a cable plugged in), READY=1 comes. Needs root.
func TestReadyWaitsForALink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root (raw sockets, a network namespace)")
	}
	for _, tool := range []string{"unshare", "nsenter", "ip", "dbus-daemon"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: needs %s", tool)
		}
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "cluster.conf")
	key := filepath.Join(dir, "authkey")
	if err := os.WriteFile(conf, []byte(testConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, bytes.Repeat([]byte{9}, 64), 0o600); err != nil {
		t.Fatal(err)
	}
	bus := privateBus(t)
	sock := filepath.Join(t.TempDir(), "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	// unshare execs sh, which execs the daemon: one process, in the new
	// namespace.
	script := `ip link add hb0 address 02:00:00:00:00:01 type veth peer name hb0p && exec "$@"`
	cmd := exec.Command("unshare", "-n", "sh", "-c", script, "sh", binary,
		"-config", conf, "-key", key, "-node", "n1", "-state", t.TempDir())
	cmd.Env = append(withoutSystemd(os.Environ()), "NOTIFY_SOCKET="+sock, "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	inNS := func(args ...string) string {
		out, err := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(cmd.Process.Pid), "-n"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
		return string(out)
	}

	var said []string
	// await reads notifications until one is want; the deadline only
	// stops a hung test.
	await := func(want string) {
		t.Helper()
		buf := make([]byte, 4096)
		notify.SetReadDeadline(time.Now().Add(60 * time.Second))
		for {
			n, err := notify.Read(buf)
			if err != nil {
				t.Fatalf("no %q from the daemon: %v; it said %q\n%s", want, err, said, stderr.String())
			}
			said = append(said, string(buf[:n]))
			if string(buf[:n]) == want {
				return
			}
		}
	}
	await("STATUS=waiting for a working heartbeat link: hb0 no-carrier")
	for _, s := range said {
		if strings.Contains(s, "READY=1") {
			t.Fatalf("READY=1 with no working link: %q", said)
		}
	}
	if out := inNS("ip", "-o", "link", "show", "hb0"); !strings.Contains(out, ",UP") && !strings.Contains(out, "<UP") {
		t.Errorf("the daemon did not set hb0 up: %s", out)
	}
	inNS("ip", "link", "set", "hb0p", "up")
	await("READY=1")
	cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd.Wait()); code != exitOK {
		t.Errorf("exit %d after SIGTERM, want %d\n%s", code, exitOK, stderr.String())
	}
}
