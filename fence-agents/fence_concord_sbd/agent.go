package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/concord-ha/concord/lib/api/fenceproto"
	"github.com/concord-ha/concord/lib/driver/sbd"
)

func agent() *fenceproto.Agent {
	return &fenceproto.Agent{
		Name:      "fence_concord_sbd",
		ShortDesc: "Fence agent for sbd poison pills (Concord)",
		LongDesc: "fence_concord_sbd writes a poison pill into the target node's slot on one to three SBD " +
			"devices (the layout of ClusterLabs sbd, made by `sbd create`): off writes \"off\", reboot writes " +
			"\"reset\", on writes \"clear\". It then waits the header's msgwait, after which the target has " +
			"either obeyed or been reset by its watchdog. Status reads the slot: clear or test is ON, reset, " +
			"off or crashdump is OFF.",
		Common:       []string{"devices", "plug"},
		NoPowerCheck: true,
		Params: []fenceproto.Param{
			{Name: "devices", Short: "d", Required: true, Desc: "SBD block devices, comma-separated (at most 3)"},
			{Name: "power_timeout", Type: fenceproto.TypeSecond, Default: "30", Desc: "Test X seconds for status change after ON/OFF; must exceed msgwait"},
		},
		Open:  open,
		Check: check,
	}
}

// paths lists the devices parameter's paths.
func paths(o *fenceproto.Options) []string {
	var ps []string
	for _, p := range strings.Split(o.Get("devices"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			ps = append(ps, p)
		}
	}
	return ps
}

// check: one to three devices, and the node's name for every action that
// acts on one node (validate-all included: Pacemaker validates with a
// stand-in node name, as fencing.py requires one).
func check(o *fenceproto.Options) error {
	switch n := len(paths(o)); {
	case n == 0:
		return fmt.Errorf("%w: no SBD devices given (devices)", fenceproto.ErrBadArgs)
	case n > 3:
		return fmt.Errorf("%w: %d SBD devices, at most 3", fenceproto.ErrBadArgs, n)
	}
	switch o.Get("action") {
	case "list", "list-status", "monitor":
	default:
		if o.Get("plug") == "" {
			return fmt.Errorf("%w: plug (node name) is required", fenceproto.ErrBadArgs)
		}
	}
	return nil
}

type device struct {
	o     *fenceproto.Options
	disks []*sbd.Disk
	plug  string
	from  string
}

func open(_ context.Context, o *fenceproto.Options) (fenceproto.Device, error) {
	d := &device{o: o, plug: o.Get("plug")}
	for _, p := range paths(o) {
		disk, err := sbd.OpenDisk(p)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.disks = append(d.disks, disk)
	}
	if len(d.disks) == 0 {
		return nil, fmt.Errorf("%w: no SBD devices given", fenceproto.ErrBadArgs)
	}
	h, err := os.Hostname()
	if err != nil {
		h = "unknown"
	}
	d.from = h
	if w := d.disks[0].Header().MsgWait; o.Duration("power_timeout") <= w {
		o.Logf("power_timeout %v does not exceed msgwait %v", o.Duration("power_timeout"), w)
	}
	return d, nil
}

func (d *device) needPlug() error {
	if d.plug == "" {
		return fmt.Errorf("%w: plug (node name) is required", fenceproto.ErrBadArgs)
	}
	return nil
}

func state(m sbd.Message) fenceproto.PowerState {
	switch m {
	case sbd.MsgReset, sbd.MsgOff, sbd.MsgCrashdump:
		return fenceproto.StateOff
	}
	return fenceproto.StateOn
}

// Status is OFF if any disk holds a pill for the node, ON if a readable
// disk holds none.
func (d *device) Status(context.Context) (fenceproto.PowerState, error) {
	if err := d.needPlug(); err != nil {
		return fenceproto.StateUnknown, err
	}
	st := fenceproto.StateUnknown
	var errs []error
	for _, disk := range d.disks {
		s, err := disk.FindSlot(d.plug)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m, err := disk.Mailbox(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if state(m.Msg) == fenceproto.StateOff {
			return fenceproto.StateOff, nil
		}
		st = fenceproto.StateOn
	}
	if st == fenceproto.StateUnknown {
		return st, fmt.Errorf("%w: %w", fenceproto.ErrStatus, errors.Join(errs...))
	}
	return st, nil
}

func (d *device) send(ctx context.Context, m sbd.Message) error {
	if err := d.needPlug(); err != nil {
		return err
	}
	d.o.Logf("writing %s for %q, then waiting msgwait", m, d.plug)
	return sbd.Send(ctx, d.disks, d.plug, m, d.from)
}

// Off writes the off pill; within a reboot it writes reset instead.
func (d *device) Off(ctx context.Context) error {
	if d.o.Get("action") == "reboot" {
		return d.send(ctx, sbd.MsgReset)
	}
	return d.send(ctx, sbd.MsgOff)
}

// On clears the slot. Within a reboot the node comes back by itself and
// clears its own slot, so there is nothing to do.
func (d *device) On(ctx context.Context) error {
	if d.o.Get("action") == "reboot" {
		return nil
	}
	if err := d.needPlug(); err != nil {
		return err
	}
	var errs []error
	for _, disk := range d.disks {
		if err := disk.Message(d.plug, sbd.MsgClear, d.from); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs)*2 >= len(d.disks) {
		return errors.Join(errs...)
	}
	return nil
}

// List reports the nodes with slots on the first device.
func (d *device) List(context.Context) ([]fenceproto.Plug, error) {
	slots, err := d.disks[0].Slots()
	if err != nil {
		return nil, err
	}
	var out []fenceproto.Plug
	for _, s := range slots {
		p := fenceproto.Plug{ID: s.Name, State: fenceproto.StateUnknown}
		if m, err := d.disks[0].Mailbox(s.Index); err == nil {
			p.State = state(m.Msg)
		}
		out = append(out, p)
	}
	return out, nil
}

func (d *device) Close() error {
	var errs []error
	for _, disk := range d.disks {
		errs = append(errs, disk.Close())
	}
	d.disks = nil
	return errors.Join(errs...)
}
