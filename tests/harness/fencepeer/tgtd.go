package fencepeer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Tgtd is Debian's tgtd serving one 64 MiB LUN 1 on 127.0.0.1, with its
// own control port so it never touches the system's tgtd.
type Tgtd struct {
	URL  string // iscsi://127.0.0.1:PORT/IQN/1
	cp   string // tgtadm -C number
	proc *Proc
}

// StartTgtd starts tgtd (as root) with the LUN image and log under dir
// and the target iqn.
func StartTgtd(dir, iqn string) (*Tgtd, error) {
	img := filepath.Join(dir, "lun.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		return nil, err
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		return nil, err
	}
	port, err := FreeTCPPort()
	if err != nil {
		return nil, err
	}
	cp, err := controlPort()
	if err != nil {
		return nil, err
	}
	p, err := StartProc(dir, "tgtd", "-f", "-C", cp, "--iscsi", fmt.Sprintf("portal=127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	t := &Tgtd{URL: fmt.Sprintf("iscsi://127.0.0.1:%d/%s/1", port, iqn), cp: cp, proc: p}
	if err := p.WaitListen(fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second); err != nil {
		t.Stop()
		return nil, err
	}
	for _, args := range [][]string{
		{"--mode", "target", "--op", "new", "--tid", "1", "--targetname", iqn},
		{"--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", "1", "--backing-store", img},
		{"--mode", "target", "--op", "bind", "--tid", "1", "--initiator-address", "ALL"},
	} {
		if out, err := exec.Command("tgtadm", append([]string{"-C", cp, "--lld", "iscsi"}, args...)...).CombinedOutput(); err != nil {
			t.Stop()
			return nil, fmt.Errorf("tgtadm %v: %v: %s", args, err, out)
		}
	}
	return t, nil
}

// controlPort picks tgtd's -C number (its management socket suffix, at
// most 32767) with no socket of that number present.
func controlPort() (string, error) {
	for i := 0; i < 1000; i++ {
		n := strconv.Itoa(20000 + (os.Getpid()+i)%12000)
		if _, err := os.Stat("/var/run/tgtd/socket." + n); os.IsNotExist(err) {
			return n, nil
		}
	}
	return "", fmt.Errorf("no free tgtd control port number")
}

// Stop deletes the target and ends tgtd, by PID, and removes its sockets.
func (t *Tgtd) Stop() {
	exec.Command("tgtadm", "-C", t.cp, "--lld", "iscsi", "--mode", "target", "--op", "delete", "--force", "--tid", "1").Run()
	exec.Command("tgtadm", "-C", t.cp, "--op", "delete", "--mode", "system").Run()
	// tgtd ignores SIGTERM; the system delete above normally ends it.
	t.proc.Stop(syscall.SIGKILL, 5*time.Second)
	sock := "/var/run/tgtd/socket." + t.cp
	os.Remove(sock)
	os.Remove(sock + ".lock")
}
