package fenceipmi

import (
	"embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The BMC's configuration, emulator commands, chassis program and node.
//
//go:embed testdata/lan.conf testdata/fencebmc.emu testdata/chassis.sh testdata/dummy-node-start
var files embed.FS

// Sim is one ipmi_sim BMC on 127.0.0.1 whose chassis power is a process
// (the node), started by chassis.sh from NodeDir/start.
type Sim struct {
	Port    int
	Dir     string // work dir: bmc/, node/ and the chassis files
	NodeDir string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Users of testdata/lan.conf.
const (
	AdminUser, AdminPass = "admin", "secret"
	OperUser, OperPass   = "oper", "opsecret"
)

// FreeUDPPort returns a loopback UDP port that was free a moment ago.
func FreeUDPPort() (int, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// StartSim starts ipmi_sim on 127.0.0.1:port with its files under dir and
// the node powered off. Stop kills what it started.
func StartSim(dir string, port int) (*Sim, error) {
	s := &Sim{Port: port, Dir: dir, NodeDir: filepath.Join(dir, "node")}
	bmc := filepath.Join(dir, "bmc")
	for _, d := range []string{s.NodeDir, filepath.Join(bmc, "state")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	write := func(name, to string, mode os.FileMode) error {
		b, err := files.ReadFile("testdata/" + name)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, mode)
	}
	chassis := filepath.Join(dir, "chassis.sh")
	emu := filepath.Join(dir, "fencebmc.emu")
	for _, f := range []struct {
		name, to string
		mode     os.FileMode
	}{{"chassis.sh", chassis, 0o755}, {"fencebmc.emu", emu, 0o644}, {"dummy-node-start", filepath.Join(s.NodeDir, "start"), 0o755}} {
		if err := write(f.name, f.to, f.mode); err != nil {
			return nil, err
		}
	}
	conf, err := files.ReadFile("testdata/lan.conf")
	if err != nil {
		return nil, err
	}
	c := strings.ReplaceAll(string(conf), "@@PORT@@", strconv.Itoa(port))
	c = strings.ReplaceAll(c, "@@CHASSIS@@", chassis+" "+s.NodeDir)
	lan := filepath.Join(bmc, "lan.conf")
	if err := os.WriteFile(lan, []byte(c), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(bmc, "ipmi_sim.log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	s.cmd = exec.Command("ipmi_sim", "-n", "-c", lan, "-f", emu, "-s", filepath.Join(bmc, "state"))
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("ipmi_sim: %v", err)
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	// ipmi_sim has bound the port once our own bind of it fails.
	for i := 0; ; i++ {
		select {
		case <-s.exited:
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("ipmi_sim on port %d exited: %s: %s", port, s.cmd.ProcessState, out)
		default:
		}
		l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			return s, nil
		}
		l.Close()
		if i > 250 {
			s.Stop()
			return nil, fmt.Errorf("ipmi_sim did not bind 127.0.0.1:%d/udp within 5 s", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartSimFreePort is StartSim on a free port, trying again with another
// port if something else binds it first.
func StartSimFreePort(dir string) (*Sim, error) {
	var last error
	for i := 0; i < 5; i++ {
		port, err := FreeUDPPort()
		if err != nil {
			return nil, err
		}
		s, err := StartSim(filepath.Join(dir, strconv.Itoa(port)), port)
		if err == nil {
			return s, nil
		}
		last = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, last
}

// Addr is the BMC's host:port.
func (s *Sim) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Alive reports whether ipmi_sim is still running.
func (s *Sim) Alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// NodeOn reports whether the node process is alive (not a zombie).
func (s *Sim) NodeOn() bool {
	pid, ok := s.nodePID()
	if !ok {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

func (s *Sim) nodePID() (int, bool) {
	b, err := os.ReadFile(filepath.Join(s.NodeDir, "pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 1
}

// Events returns the chassis actions logged so far, e.g. "power 0",
// "power 1", "reset 1", without their timestamps.
func (s *Sim) Events() []string {
	b, err := os.ReadFile(filepath.Join(s.NodeDir, "events.log"))
	if err != nil {
		return nil
	}
	var ev []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if _, rest, ok := strings.Cut(line, " "); ok {
			ev = append(ev, rest)
		}
	}
	return ev
}

// ClearEvents empties the events log.
func (s *Sim) ClearEvents() error {
	err := os.Remove(filepath.Join(s.NodeDir, "events.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Pause stops ipmi_sim (SIGSTOP) so it answers nothing; Resume undoes it.
func (s *Sim) Pause() error  { return s.cmd.Process.Signal(syscall.SIGSTOP) }
func (s *Sim) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// Stop kills the node's process group and ipmi_sim, by PID, and waits for
// ipmi_sim to exit. The files under Dir stay for the caller to remove.
func (s *Sim) Stop() {
	// Only a live dummy node: a stale pid file may name a recycled PID.
	if pid, ok := s.nodePID(); ok && s.NodeOn() {
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmd), "while :; do sleep 1; done") {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGCONT)
		s.cmd.Process.Kill()
		<-s.exited
	}
}
