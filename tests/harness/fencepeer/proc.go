package fencepeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Proc is a peer process in its own process group, its output in a log.
type Proc struct {
	Cmd  *exec.Cmd
	Log  string        // path of the log file
	done chan struct{} // closed on exit, so any number of waiters see it
}

// StartProc starts name with args, logging to dir/name.log.
func StartProc(dir, name string, args ...string) (*Proc, error) {
	logPath := filepath.Join(dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %v", name, err)
	}
	p := &Proc{Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); log.Close(); close(p.done) }()
	return p, nil
}

// Stop signals the process by PID and waits for it; SIGKILL after grace.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) {
	p.Cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Cmd.Process.Kill()
		<-p.done
	}
}

// WaitListen polls until something accepts on the TCP addr; it fails if
// the process exits first or nothing listens within timeout.
func (p *Proc) WaitListen(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			log, _ := os.ReadFile(p.Log)
			return fmt.Errorf("%s exited early: %v; its log:\n%s", p.Cmd.Path, p.Cmd.ProcessState, log)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s: nothing listens on %s after %v", p.Cmd.Path, addr, timeout)
}
