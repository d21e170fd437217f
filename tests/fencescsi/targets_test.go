package fencescsi

import (
	"bufio"
	"context"
	"fmt"
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

// target is a running iSCSI target process serving one 64 MiB LUN.
type target struct {
	name string // "tgtd" or "istgt"
	url  string // iscsi://127.0.0.1:PORT/IQN/LUN
	// keepsRegistrationOnLogout: SPC behaviour (istgt). tgtd binds a
	// registration to the session that made it.
	keepsRegistrationOnLogout bool
	// preemptAbort: PREEMPT AND ABORT is supported.
	preemptAbort bool
}

func needRoot(t *testing.T, bins ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root (iSCSI targets write /var/run)")
	}
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("SKIP: %s not installed (Debian packages tgt, istgt)", b)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func fixture(t *testing.T, name string, vars map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "@"+k+"@", v)
	}
	return s
}

// waitListen polls until something accepts on addr or the process exits.
func waitListen(t *testing.T, addr string, p *proc) {
	cmd, done := p.cmd, p.done
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			log, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited early: %v; its log:\n%s", cmd.Path, cmd.ProcessState, log)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: nothing listens on %s after 10 s", cmd.Path, addr)
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startProc(t *testing.T, work string, name string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(work, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	// done is closed on exit, so any number of waiters see it.
	done := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(done) }()
	return &proc{cmd, done, logPath}
}

// stopProc signals the process by PID and waits; SIGKILL after 5 s.
func stopProc(p *proc, sig syscall.Signal) {
	cmd, done := p.cmd, p.done
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// controlPort picks tgtd's -C number (its management socket suffix, at most
// 32767) with no socket of that number present.
func controlPort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 1000; i++ {
		n := 20000 + (os.Getpid()+i)%12000
		if _, err := os.Stat("/var/run/tgtd/socket." + strconv.Itoa(n)); os.IsNotExist(err) {
			return n
		}
	}
	t.Fatal("no free tgtd control port number")
	return 0
}

func makeLUN(t *testing.T, work string) {
	t.Helper()
	f, err := os.Create(filepath.Join(work, "lun.img"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func startTgtd(t *testing.T) *target {
	t.Helper()
	needRoot(t, "tgtd", "tgtadm")
	work := t.TempDir()
	makeLUN(t, work)
	port := freePort(t)
	cp := strconv.Itoa(controlPort(t))
	sock := "/var/run/tgtd/socket." + cp
	p := startProc(t, work, "tgtd", "-f", "-C", cp, "--iscsi", fmt.Sprintf("portal=127.0.0.1:%d", port))
	t.Cleanup(func() {
		exec.Command("tgtadm", "-C", cp, "--lld", "iscsi", "--mode", "target", "--op", "delete", "--force", "--tid", "1").Run()
		exec.Command("tgtadm", "-C", cp, "--op", "delete", "--mode", "system").Run()
		// tgtd ignores SIGTERM; the system delete above normally ends it.
		stopProc(p, syscall.SIGKILL)
		os.Remove(sock)
		os.Remove(sock + ".lock")
	})
	waitListen(t, fmt.Sprintf("127.0.0.1:%d", port), p)
	sc := bufio.NewScanner(strings.NewReader(fixture(t, "tgtd-target.txt", map[string]string{"WORK": work, "CPORT": cp})))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out, err := exec.Command("tgtadm", append([]string{"-C", cp}, strings.Fields(line)...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tgtadm %s: %v: %s", line, err, out)
		}
	}
	return &target{name: "tgtd", url: fmt.Sprintf("iscsi://127.0.0.1:%d/iqn.2026-11.test.concord:fence/1", port)}
}

func startIstgt(t *testing.T) *target {
	t.Helper()
	needRoot(t, "istgt")
	work := t.TempDir()
	makeLUN(t, work)
	port, ucport := freePort(t), freePort(t)
	conf := filepath.Join(work, "istgt.conf")
	os.WriteFile(filepath.Join(work, "auth.conf"), nil, 0o600)
	err := os.WriteFile(conf, []byte(fixture(t, "istgt.conf.tmpl", map[string]string{
		"WORK": work, "PORT": strconv.Itoa(port), "UCPORT": strconv.Itoa(ucport)})), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, work, "istgt", "-c", conf, "-D")
	t.Cleanup(func() { stopProc(p, syscall.SIGTERM) })
	waitListen(t, fmt.Sprintf("127.0.0.1:%d", port), p)
	return &target{name: "istgt", url: fmt.Sprintf("iscsi://127.0.0.1:%d/iqn.2026-11.test.concord:fence/0", port),
		keepsRegistrationOnLogout: true, preemptAbort: true}
}

func withTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
