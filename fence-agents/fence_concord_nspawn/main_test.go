package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/fenceproto"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := fenceproto.Run(context.Background(), agent(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// startProc starts a long sleep and reaps it in the background.
func startProc(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd
}

func TestMachineName(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"systemd-nspawn", "-M", "web"}, "web"},
		{[]string{"systemd-nspawn", "--machine=db", "-D", "/x/y"}, "db"},
		{[]string{"systemd-nspawn", "--machine", "m1", "--boot"}, "m1"},
		{[]string{"systemd-nspawn", "-Mweb2"}, "web2"},
		{[]string{"systemd-nspawn", "-D", "/var/lib/machines/node1/", "--boot"}, "node1"},
		{[]string{"systemd-nspawn", "--directory=/srv/c2", "-b"}, "c2"},
		{[]string{"systemd-nspawn", "-Dnode3"}, "node3"},
		{[]string{"systemd-nspawn", "--image=/imgs/vm4.raw"}, "vm4"},
		{[]string{"systemd-nspawn", "-i", "/imgs/vm5.raw"}, "vm5"},
		{[]string{"systemd-nspawn", "--boot"}, ""},
		{[]string{"systemd-nspawn", "-M"}, ""},
	}
	for _, tt := range tests {
		if got := machineName(tt.args); got != tt.want {
			t.Errorf("machineName(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestPidFile(t *testing.T) {
	dir := t.TempDir()
	leader := startProc(t, "sleep", "1000")
	os.WriteFile(filepath.Join(dir, "web.pid"), []byte(fmt.Sprintf("%d\n", leader.Process.Pid)), 0o644)
	common := []string{"-n", "web", "--backend=pid", "--pid-file=" + dir + "/{plug}.pid", "--power-timeout=10"}
	steps := []struct {
		action string
		code   int
		out    string
	}{
		{"status", 0, "Status: ON\n"},
		{"off", 0, "Success: Powered OFF\n"},
		{"status", 2, "Status: OFF\n"},
		{"off", 0, "Success: Already OFF\n"},
		{"on", 1, ""},
	}
	for _, st := range steps {
		code, out, errs := run(t, append([]string{"-o", st.action}, common...)...)
		if code != st.code || out != st.out {
			t.Errorf("%s: exit %d stdout %q stderr %q", st.action, code, out, errs)
		}
		if st.action == "on" && !strings.Contains(errs, "start_command") {
			t.Errorf("on without start_command: stderr %q", errs)
		}
	}
	// No pid file at all: off.
	if code, out, _ := run(t, "-o", "status", "-n", "none", "--backend=pid", "--pid-file="+dir+"/{plug}.pid"); code != 2 || out != "Status: OFF\n" {
		t.Errorf("missing pid file: exit %d %q", code, out)
	}
	os.WriteFile(filepath.Join(dir, "bad.pid"), []byte("junk"), 0o644)
	if code, _, errs := run(t, "-o", "status", "-n", "bad", "--backend=pid", "--pid-file="+dir+"/{plug}.pid"); code != fenceproto.ExitStatus {
		t.Errorf("bad pid file: exit %d stderr %q", code, errs)
	}
	if code, _, _ := run(t, "-o", "status", "--backend=pid"); code != fenceproto.ExitBadArgs {
		t.Errorf("no plug: exit %d", code)
	}
}

func TestStartCommand(t *testing.T) {
	dir := t.TempDir()
	start := "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > " + dir + "/{plug}.pid; test \"$PLUG\" = web"
	common := []string{"-n", "web", "--backend=pid", "--pid-file=" + dir + "/{plug}.pid", "--start-command=" + start, "--power-timeout=10"}
	code, out, errs := run(t, append([]string{"-o", "on"}, common...)...)
	if code != 0 || out != "Success: Powered ON\n" {
		t.Fatalf("on: exit %d stdout %q stderr %q", code, out, errs)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "web.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	t.Cleanup(func() {
		if pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	code, out, errs = run(t, append([]string{"-o", "reboot"}, common...)...)
	if code != 0 || out != "Success: Rebooted\n" {
		t.Fatalf("reboot: exit %d stdout %q stderr %q", code, out, errs)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "web.pid"))
	npid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if npid == pid || alive(pid) || !alive(npid) {
		t.Errorf("reboot: old leader %d alive=%v, new leader %d alive=%v", pid, alive(pid), npid, alive(npid))
	}
	pid = npid
	if code, out, _ = run(t, append([]string{"-o", "off"}, common...)...); code != 0 || alive(pid) {
		t.Errorf("off: exit %d %q, leader alive %v", code, out, alive(pid))
	}
}

// TestNspawnProcess finds the leader as the child of a process whose comm
// is systemd-nspawn (a stand-in script), by machine name.
func TestNspawnProcess(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, nspawnComm)
	os.WriteFile(script, []byte("#!/bin/sh\nsleep 1000 &\nwait\n"), 0o755)
	name := fmt.Sprintf("concordtest%d", os.Getpid())
	parent := startProc(t, script, "--machine="+name, "-D", "/nonexistent")
	var leader int
	for i := 0; i < 200 && leader == 0; i++ { // until the script forked its child
		leader = childOf(parent.Process.Pid)
		time.Sleep(10 * time.Millisecond)
	}
	if leader == 0 {
		t.Fatal("the stand-in never started its child")
	}
	t.Cleanup(func() { syscall.Kill(leader, syscall.SIGKILL) })
	_, out, _ := run(t, "-o", "list-status", "--backend=pid")
	if !strings.Contains(out, name+","+name+",ON\n") {
		t.Errorf("list-status %q lacks %s", out, name)
	}
	if code, out, errs := run(t, "-o", "off", "-n", name, "--backend=pid"); code != 0 || out != "Success: Powered OFF\n" {
		t.Fatalf("off: exit %d %q %q", code, out, errs)
	}
	if alive(leader) {
		t.Errorf("leader %d still alive", leader)
	}
}

// fakeMachined serves the part of org.freedesktop.machine1 the agent uses.
type fakeMachined struct {
	mu       sync.Mutex
	machines map[string]*exec.Cmd
	calls    []string
}

type machineEntry struct {
	Name, Class, Service string
	Path                 dbus.ObjectPath
}

func machinePath(name string) dbus.ObjectPath {
	return dbus.ObjectPath("/org/freedesktop/machine1/machine/" + name)
}

func (f *fakeMachined) GetMachine(name string) (dbus.ObjectPath, *dbus.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.machines[name]; !ok {
		return "", dbus.NewError(noSuchError, []any{"No machine " + name})
	}
	return machinePath(name), nil
}

func (f *fakeMachined) ListMachines() ([]machineEntry, *dbus.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []machineEntry{{"qemu-vm", "vm", "libvirt", machinePath("qemu_2dvm")}}
	for n := range f.machines {
		out = append(out, machineEntry{n, "container", "systemd-nspawn", machinePath(n)})
	}
	return out, nil
}

func (f *fakeMachined) KillMachine(name, who string, sig int32) *dbus.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("KillMachine %s %s %d", name, who, sig))
	cmd, ok := f.machines[name]
	if !ok {
		return dbus.NewError(noSuchError, []any{"No machine " + name})
	}
	cmd.Process.Signal(syscall.Signal(sig))
	delete(f.machines, name) // machined drops a machine whose leader died
	return nil
}

func (f *fakeMachined) TerminateMachine(name string) *dbus.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "TerminateMachine "+name)
	if _, ok := f.machines[name]; !ok {
		return dbus.NewError(noSuchError, []any{"No machine " + name})
	}
	return nil
}

type fakeProps struct {
	f    *fakeMachined
	name string
}

func (p fakeProps) Get(iface, prop string) (dbus.Variant, *dbus.Error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	cmd, ok := p.f.machines[p.name]
	if !ok {
		return dbus.Variant{}, dbus.NewError(noSuchError, []any{"gone"})
	}
	if iface != machineIface || prop != "Leader" {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{prop})
	}
	return dbus.MakeVariant(uint32(cmd.Process.Pid)), nil
}

// privateBus starts a dbus-daemon on a socket in a temp dir.
func privateBus(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("SKIP: dbus-daemon missing (Debian package dbus-daemon)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=`+dir+`/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>`), 0o644)
	cmd := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address=1")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestMachined(t *testing.T) {
	addr := privateBus(t)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	f := &fakeMachined{machines: map[string]*exec.Cmd{}}
	for _, n := range []string{"web", "db"} {
		f.machines[n] = startProc(t, "sleep", "1000")
		conn.Export(fakeProps{f, n}, machinePath(n), "org.freedesktop.DBus.Properties")
	}
	conn.Export(f, machinedPath, managerIface)
	if reply, err := conn.RequestName(machinedName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName: %v %v", reply, err)
	}
	common := []string{"--dbus-address=" + addr, "--power-timeout=10"}
	steps := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"-o", "list"}, 0, "db,db\nweb,web\n"},
		{[]string{"-o", "status", "-n", "web"}, 0, "Status: ON\n"},
		{[]string{"-o", "off", "-n", "web", "--backend=machined"}, 0, "Success: Powered OFF\n"},
		{[]string{"-o", "status", "-n", "web"}, 2, "Status: OFF\n"},
		{[]string{"-o", "list-status"}, 0, "db,db,ON\n"},
		{[]string{"-o", "status", "-n", "nosuch"}, 2, "Status: OFF\n"},
		{[]string{"-o", "monitor"}, 0, ""},
	}
	for _, st := range steps {
		code, out, errs := run(t, append(st.args, common...)...)
		if code != st.code || out != st.out {
			t.Errorf("%v: exit %d stdout %q stderr %q", st.args, code, out, errs)
		}
	}
	want := []string{"KillMachine web all 9", "TerminateMachine web"}
	if fmt.Sprint(f.calls) != fmt.Sprint(want) {
		t.Errorf("machined calls %v, want %v", f.calls, want)
	}
	// backend=machined with no machined on the bus is a connection failure.
	conn.ReleaseName(machinedName)
	if code, _, errs := run(t, "-o", "status", "-n", "db", "--backend=machined", "--dbus-address="+addr); code != fenceproto.ExitConnectionLost {
		t.Errorf("machined gone: exit %d stderr %q", code, errs)
	}
}
