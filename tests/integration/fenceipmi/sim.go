package fenceipmi

import (
	"embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/concord-ha/concord/tests/harness/fencepeer"
)

// The BMC's configuration and emulator commands.
//
//go:embed testdata/lan.conf testdata/fencebmc.emu
var files embed.FS

// Sim is one ipmi_sim BMC on 127.0.0.1 whose chassis power is a process
// (the node), switched by chassis.sh.
type Sim struct {
	fencepeer.Node
	Port   int
	Dir    string // work dir: bmc/, node/ and the chassis files
	cmd    *exec.Cmd
	exited chan struct{}
}

// Users of testdata/lan.conf.
const (
	AdminUser, AdminPass = "admin", "secret"
	OperUser, OperPass   = "oper", "opsecret"
)

// StartSim starts ipmi_sim on 127.0.0.1:port with its files under dir and
// the node powered off. Stop kills what it started.
func StartSim(dir string, port int) (*Sim, error) {
	s := &Sim{Port: port, Dir: dir}
	bmc := filepath.Join(dir, "bmc")
	if err := os.MkdirAll(filepath.Join(bmc, "state"), 0o755); err != nil {
		return nil, err
	}
	var err error
	if s.Node, err = fencepeer.NewNode(filepath.Join(dir, "node")); err != nil {
		return nil, err
	}
	chassis, err := fencepeer.Chassis(dir)
	if err != nil {
		return nil, err
	}
	emuConf, err := files.ReadFile("testdata/fencebmc.emu")
	if err != nil {
		return nil, err
	}
	emu := filepath.Join(dir, "fencebmc.emu")
	if err := os.WriteFile(emu, emuConf, 0o644); err != nil {
		return nil, err
	}
	conf, err := files.ReadFile("testdata/lan.conf")
	if err != nil {
		return nil, err
	}
	c := strings.ReplaceAll(string(conf), "@@PORT@@", strconv.Itoa(port))
	c = strings.ReplaceAll(c, "@@CHASSIS@@", chassis+" "+s.Node.Dir)
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
		port, err := fencepeer.FreeUDPPort()
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

// Pause stops ipmi_sim (SIGSTOP) so it answers nothing; Resume undoes it.
func (s *Sim) Pause() error  { return s.cmd.Process.Signal(syscall.SIGSTOP) }
func (s *Sim) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// Stop kills the node's process group and ipmi_sim, by PID, and waits for
// ipmi_sim to exit. The files under Dir stay for the caller to remove.
func (s *Sim) Stop() {
	s.Node.Kill()
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGCONT)
		s.cmd.Process.Kill()
		<-s.exited
	}
}
