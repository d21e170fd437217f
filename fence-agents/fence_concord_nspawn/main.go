package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/concord-ha/concord/lib/api/fenceproto"
)

func agent() *fenceproto.Agent {
	return &fenceproto.Agent{
		Name:      "fence_concord_nspawn",
		ShortDesc: "Fence agent for systemd-nspawn containers",
		LongDesc: "fence_concord_nspawn powers a systemd-nspawn container off by killing every process in it, " +
			"through systemd-machined (org.freedesktop.machine1 KillMachine and TerminateMachine) where it runs, " +
			"else by sending SIGKILL to the container's leader PID (from pid_file or the systemd-nspawn process). " +
			"The plug is the machine name. Status is on while the leader process lives. " +
			"On runs start_command; without it, on is not supported.",
		VendorURL: "https://www.freedesktop.org/software/systemd/man/systemd-nspawn.html",
		Common:    []string{"plug"},
		Params: []fenceproto.Param{
			{Name: "backend", Type: fenceproto.TypeSelect, Default: "auto", Choices: []string{"auto", "machined", "pid"},
				Desc: "How to find and kill the container: machined, its leader pid, or machined when it is on the bus"},
			{Name: "pid_file", Desc: "File holding the container's leader PID (or its systemd-nspawn PID); {plug} is replaced by the machine name"},
			{Name: "start_command", Desc: "Shell command that starts the container for on (must detach); {plug} and $PLUG are the machine name"},
			{Name: "dbus_address", Desc: "D-Bus address of the system bus (default: the standard system bus)"},
		},
		Open:  open,
		Check: check,
	}
}

// check: the machine name, for every action on one machine.
func check(o *fenceproto.Options) error {
	name := o.Get("plug")
	switch a := o.Get("action"); {
	case name == "" && a != "list" && a != "list-status" && a != "monitor":
		return fmt.Errorf("nspawn: plug (the machine name) is required: %w", fenceproto.ErrBadArgs)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("nspawn: bad machine name %q: %w", name, fenceproto.ErrBadArgs)
	}
	return nil
}

func main() { fenceproto.Main(agent()) }

// backend switches one container.
type backend interface {
	leader(ctx context.Context, name string) (int, error) // 0: not running
	kill(ctx context.Context, name string) error
	list(ctx context.Context) ([]string, error)
	close() error
}

type device struct {
	b     backend
	name  string
	start string
	log   func(string, ...any)
}

func open(ctx context.Context, o *fenceproto.Options) (fenceproto.Device, error) {
	d := &device{name: o.Get("plug"), start: o.Get("start_command"), log: o.Logf}
	mode := o.Get("backend")
	if mode == "auto" || mode == "machined" {
		m, err := dialMachined(ctx, o.Get("dbus_address"))
		switch {
		case err == nil:
			d.b = m
			o.Logf("backend machined")
			return d, nil
		case mode == "machined":
			return nil, err
		}
		o.Logf("machined not usable (%v); using leader pids", err)
	}
	d.b = &pidBackend{pidFile: o.Get("pid_file")}
	return d, nil
}

func (d *device) Status(ctx context.Context) (fenceproto.PowerState, error) {
	pid, err := d.b.leader(ctx, d.name)
	if err != nil {
		return fenceproto.StateUnknown, err
	}
	d.log("machine %s leader %d", d.name, pid)
	if pid > 0 && alive(pid) {
		return fenceproto.StateOn, nil
	}
	return fenceproto.StateOff, nil
}

func (d *device) Off(ctx context.Context) error { return d.b.kill(ctx, d.name) }

func (d *device) On(ctx context.Context) error {
	if d.start == "" {
		return fmt.Errorf("nspawn: machine %s: on needs start_command: %w", d.name, fenceproto.ErrUnsupported)
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", strings.ReplaceAll(d.start, "{plug}", d.name))
	cmd.Env = append(os.Environ(), "PLUG="+d.name)
	// No pipes: a detached container must not keep us waiting for EOF.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nspawn: machine %s: start_command: %v", d.name, err)
	}
	return nil
}

func (d *device) List(ctx context.Context) ([]fenceproto.Plug, error) {
	names, err := d.b.list(ctx)
	if err != nil {
		return nil, err
	}
	plugs := make([]fenceproto.Plug, 0, len(names))
	for _, n := range names {
		st := fenceproto.StateUnknown
		if pid, err := d.b.leader(ctx, n); err == nil {
			st = fenceproto.StateOff
			if pid > 0 && alive(pid) {
				st = fenceproto.StateOn
			}
		}
		plugs = append(plugs, fenceproto.Plug{ID: n, Alias: n, State: st})
	}
	return plugs, nil
}

func (d *device) Monitor(ctx context.Context) error {
	_, err := d.b.list(ctx)
	return err
}

func (d *device) Close() error { return d.b.close() }
