package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// The exit codes are tested on the built program, as systemd sees them.

const testVersion = "9.9.9~exittest"

var binary string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "noded-exit-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if _, err := exec.LookPath("go"); err != nil {
			fmt.Fprintln(os.Stderr, "SKIP: no go command to build concord-noded with")
			return 0
		}
		binary = filepath.Join(dir, "concord-noded")
		cmd := exec.Command("go", "build", "-ldflags", "-X github.com/concord-ha/concord/lib/sys/version.version="+testVersion, "-o", binary, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// run starts the daemon with args and returns its exit code and stderr.
func run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("concord-noded %v: %v\n%s", args, err, stderr.String())
	return 0, ""
}

// logsVisible says whether the daemon's log lines reach stderr: with a
// journal to write to, jlog sends them there instead.
func logsVisible(t *testing.T) bool {
	if journal.Enabled() {
		t.Log("NOTE: a journal is reachable, so the daemon logs there: checking exit codes only, not log lines")
		return false
	}
	return true
}

func TestVersion(t *testing.T) {
	cmd := exec.Command(binary, "-version")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("-version: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != testVersion {
		t.Errorf("-version printed %q, want the linker's %q", got, testVersion)
	}
}

func TestExitBadCommandLine(t *testing.T) {
	for _, args := range [][]string{{"-nosuchflag"}, {"extra-argument"}} {
		if code, stderr := run(t, args...); code != exitUsage {
			t.Errorf("concord-noded %v: exit %d, want %d (bad command line)\n%s", args, code, exitUsage, stderr)
		}
	}
}

func TestExitBadConfiguration(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "cluster.conf")
	if err := os.WriteFile(bad, []byte("[cluster]\nname = x\nbogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.conf")
	if err := os.WriteFile(good, []byte(testConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown key", []string{"-config", bad, "-state", dir}, "bogus"},
		{"missing file", []string{"-config", filepath.Join(dir, "none.conf"), "-state", dir}, "none.conf"},
		{"missing key", []string{"-config", good, "-key", filepath.Join(dir, "nokey"), "-node", "n1", "-state", dir}, "nokey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := run(t, tc.args...)
			if code != exitConfig {
				t.Errorf("exit %d, want %d (cannot start)\n%s", code, exitConfig, stderr)
			}
			if logsVisible(t) && !strings.Contains(stderr, tc.want) {
				t.Errorf("the log does not name %q:\n%s", tc.want, stderr)
			}
		})
	}
}

const testConfig = "[cluster]\nname = t\n\n[node n1]\nnumber = 1\nlink = hb0 02:00:00:00:00:01\n"

// TestExitWatchdogWhileStuck stops the daemon where it cannot go on: it
// waits for its configuration to be written into a FIFO. systemd's
// watchdog signal then must end it with one line and exitWatchdog, the
// goroutine dump only at debug level. Needs no privileges.
func TestExitWatchdogWhileStuck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		debug    bool
		watchdog bool
		line     string
	}{
		{"by systemd", false, true, "stopped answering the watchdog"},
		{"by hand", false, false, "sent by hand"},
		{"debug", true, true, "stopped answering the watchdog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "cluster.conf")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skipf("SKIP: mkfifo: %v", err)
			}
			args := []string{"-config", fifo, "-state", t.TempDir()}
			if tc.debug {
				args = append(args, "-debug")
			}
			cmd := exec.Command(binary, args...)
			cmd.Env = withoutSystemd(os.Environ())
			if tc.watchdog {
				cmd.Env = append(cmd.Env, "WATCHDOG_USEC=5000000")
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Opening the FIFO for writing returns once the daemon opened it
			// for reading: past the point where it catches SIGABRT.
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				cmd.Process.Kill()
				t.Fatal(err)
			}
			defer w.Close()
			cmd.Process.Signal(syscall.SIGABRT)
			code := exitCode(t, cmd.Wait())
			out := stderr.String()
			if code != exitWatchdog {
				t.Errorf("exit %d after SIGABRT, want %d\n%s", code, exitWatchdog, out)
			}
			if !logsVisible(t) {
				return
			}
			if !strings.Contains(out, tc.line) {
				t.Errorf("no line saying %q:\n%s", tc.line, out)
			}
			if dump := strings.Contains(out, "goroutine "); dump != tc.debug {
				t.Errorf("goroutine stacks logged: %v, want %v (only at debug)\n%s", dump, tc.debug, out)
			}
			if n := strings.Count(out, "\n"); !tc.debug && n != 1 {
				t.Errorf("%d lines after SIGABRT, want 1:\n%s", n, out)
			}
		})
	}
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode()
	case errors.As(err, &ee):
		t.Fatalf("killed by a signal, not exited: %v", err)
	}
	t.Fatal(err)
	return 0
}

// withoutSystemd drops the variables through which a daemon finds the
// service manager, so the test's own environment cannot leak in.
func withoutSystemd(env []string) []string {
	var out []string
	for _, e := range env {
		switch strings.SplitN(e, "=", 2)[0] {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "DBUS_SYSTEM_BUS_ADDRESS":
			continue
		}
		out = append(out, e)
	}
	return out
}

// TestExitCodesRunning runs the daemon for real in a network namespace of
// its own with one veth link, on a private system bus, as systemd would
// (NOTIFY_SOCKET, WATCHDOG_USEC): SIGTERM gives 0, SIGABRT exitWatchdog,
// and losing the bus at start exitFailed. Needs root.
func TestExitCodesRunning(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root (raw sockets, a network namespace)")
	}
	for _, tool := range []string{"unshare", "ip", "dbus-daemon"} {
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
	k := make([]byte, 64)
	for i := range k {
		k[i] = byte(i*7 + 1)
	}
	if err := os.WriteFile(key, k, 0o600); err != nil {
		t.Fatal(err)
	}
	bus := privateBus(t)

	start := func(t *testing.T, busAddr string) (*exec.Cmd, *bytes.Buffer, *net.UnixConn) {
		t.Helper()
		sock := filepath.Join(t.TempDir(), "notify")
		notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { notify.Close() })
		script := `ip link add hb0 address 02:00:00:00:00:01 type veth peer name hb0p && ip link set hb0p up && ip link set hb0 up && exec "$@"`
		cmd := exec.Command("unshare", "-n", "sh", "-c", script, "sh", binary,
			"-config", conf, "-key", key, "-node", "n1", "-state", t.TempDir())
		cmd.Env = append(withoutSystemd(os.Environ()), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=3000000", "DBUS_SYSTEM_BUS_ADDRESS="+busAddr)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, &stderr, notify
	}
	// waitFor reads notifications until one holds want; the deadline only
	// stops a hung test.
	waitFor := func(t *testing.T, cmd *exec.Cmd, notify *net.UnixConn, want string, stderr *bytes.Buffer) {
		t.Helper()
		buf := make([]byte, 4096)
		notify.SetReadDeadline(time.Now().Add(60 * time.Second))
		for {
			n, err := notify.Read(buf)
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no %s from the daemon: %v\n%s", want, err, stderr.String())
			}
			if strings.Contains(string(buf[:n]), want) {
				return
			}
		}
	}

	t.Run("SIGTERM", func(t *testing.T) {
		cmd, stderr, notify := start(t, bus)
		waitFor(t, cmd, notify, "READY=1", stderr)
		cmd.Process.Signal(syscall.SIGTERM)
		if code := exitCode(t, cmd.Wait()); code != exitOK {
			t.Errorf("exit %d after SIGTERM, want %d\n%s", code, exitOK, stderr.String())
		}
	})
	t.Run("SIGABRT", func(t *testing.T) {
		cmd, stderr, notify := start(t, bus)
		waitFor(t, cmd, notify, "READY=1", stderr)
		waitFor(t, cmd, notify, "WATCHDOG=1", stderr)
		cmd.Process.Signal(syscall.SIGABRT)
		if code := exitCode(t, cmd.Wait()); code != exitWatchdog {
			t.Errorf("exit %d after SIGABRT, want %d\n%s", code, exitWatchdog, stderr.String())
		}
		if logsVisible(t) {
			if out := stderr.String(); !strings.Contains(out, "stopped answering the watchdog") || strings.Contains(out, "goroutine ") {
				t.Errorf("want one line about the watchdog and no goroutine dump:\n%s", out)
			}
		}
	})
	t.Run("no bus", func(t *testing.T) {
		cmd, stderr, _ := start(t, "unix:path="+filepath.Join(dir, "nobus"))
		if code := exitCode(t, cmd.Wait()); code != exitFailed {
			t.Errorf("exit %d without a bus, want %d\n%s", code, exitFailed, stderr.String())
		}
	})
}

// privateBus starts a dbus-daemon that lets anyone own and call anything,
// and returns its address: the test is about exit codes, not the policy.
func privateBus(t *testing.T) string {
	t.Helper()
	// A short path: a socket's path is limited to 107 bytes.
	dir, err := os.MkdirTemp("", "noded-bus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return "unix:path=" + sock
		}
		if time.Now().After(deadline) {
			t.Fatalf("dbus-daemon did not listen on %s: %s", sock, stderr.String())
		}
	}
}

// --cluster NAME chooses the context's paths; a path given by its own
// flag still wins; a bad name is a bad command line, said clearly.
func TestClusterContext(t *testing.T) {
	if _, err := os.Stat("/etc/concord/ctxtest"); err == nil {
		t.Skip("SKIP: /etc/concord/ctxtest exists on this host")
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad name", []string{"-cluster", "Prod"}, exitUsage, `--cluster: cluster context "Prod": must start with a lowercase letter`},
		{"reserved", []string{"-cluster", "default"}, exitUsage, `cluster context "default": is reserved`},
		{"its config", []string{"-cluster", "ctxtest", "-state", dir}, exitConfig, "/etc/concord/ctxtest/cluster.conf"},
		{"config flag wins", []string{"-cluster", "ctxtest", "-config", filepath.Join(dir, "mine.conf"), "-state", dir}, exitConfig, "mine.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := run(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, stderr)
			}
			if (tc.code == exitUsage || logsVisible(t)) && !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, stderr)
			}
		})
	}
}
