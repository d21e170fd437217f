package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"syscall"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/fenceproto"
)

const (
	machinedName = "org.freedesktop.machine1"
	machinedPath = dbus.ObjectPath("/org/freedesktop/machine1")
	managerIface = "org.freedesktop.machine1.Manager"
	machineIface = "org.freedesktop.machine1.Machine"
	noSuchError  = "org.freedesktop.machine1.NoSuchMachine"
)

type machined struct {
	conn *dbus.Conn
	mgr  dbus.BusObject
}

// dialMachined connects to the system bus (or address) and checks that
// machined owns its name.
func dialMachined(ctx context.Context, address string) (*machined, error) {
	// No dbus.WithContext: it would close the connection when the
	// login-timeout context ends, right after Open.
	type dialed struct {
		conn *dbus.Conn
		err  error
	}
	ch := make(chan dialed, 1)
	go func() {
		var d dialed
		if address != "" {
			d.conn, d.err = dbus.Connect(address)
		} else {
			d.conn, d.err = dbus.ConnectSystemBus()
		}
		ch <- d
	}()
	var conn *dbus.Conn
	var err error
	select {
	case d := <-ch:
		conn, err = d.conn, d.err
	case <-ctx.Done():
		return nil, fmt.Errorf("nspawn: system bus: %v: %w", ctx.Err(), fenceproto.ErrTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("nspawn: system bus: %v: %w", err, fenceproto.ErrConnection)
	}
	var has bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, machinedName).Store(&has); err != nil {
		conn.Close()
		return nil, fmt.Errorf("nspawn: NameHasOwner %s: %w", machinedName, dbusErr(err))
	}
	if !has {
		conn.Close()
		return nil, fmt.Errorf("nspawn: %s is not on the bus: %w", machinedName, fenceproto.ErrConnection)
	}
	return &machined{conn: conn, mgr: conn.Object(machinedName, machinedPath)}, nil
}

func dbusErr(err error) error {
	var de dbus.Error
	if errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.AccessDenied" {
		return fmt.Errorf("%v: %w", err, fenceproto.ErrPrivileges)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%v: %w", err, fenceproto.ErrTimeout)
	}
	return err
}

func noSuchMachine(err error) bool {
	var de dbus.Error
	return errors.As(err, &de) && de.Name == noSuchError
}

func (m *machined) leader(ctx context.Context, name string) (int, error) {
	var path dbus.ObjectPath
	if err := m.mgr.CallWithContext(ctx, managerIface+".GetMachine", 0, name).Store(&path); err != nil {
		if noSuchMachine(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("nspawn: GetMachine %s: %w", name, dbusErr(err))
	}
	var v dbus.Variant
	err := m.conn.Object(machinedName, path).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, machineIface, "Leader").Store(&v)
	if err != nil {
		if noSuchMachine(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("nspawn: %s Leader: %w", path, dbusErr(err))
	}
	pid, ok := v.Value().(uint32)
	if !ok {
		return 0, fmt.Errorf("nspawn: %s Leader is %s, not a uint32: %w", path, v.Signature(), fenceproto.ErrStatus)
	}
	return int(pid), nil
}

// kill SIGKILLs every process of the machine, then asks machined to
// terminate it (that also stops its scope or unit).
func (m *machined) kill(ctx context.Context, name string) error {
	err := m.mgr.CallWithContext(ctx, managerIface+".KillMachine", 0, name, "all", int32(syscall.SIGKILL)).Err
	if err != nil {
		if noSuchMachine(err) {
			return nil
		}
		return fmt.Errorf("nspawn: KillMachine %s: %w", name, dbusErr(err))
	}
	if err := m.mgr.CallWithContext(ctx, managerIface+".TerminateMachine", 0, name).Err; err != nil && !noSuchMachine(err) {
		return fmt.Errorf("nspawn: TerminateMachine %s: %w", name, dbusErr(err))
	}
	return nil
}

func (m *machined) list(ctx context.Context) ([]string, error) {
	var machines []struct {
		Name, Class, Service string
		Path                 dbus.ObjectPath
	}
	if err := m.mgr.CallWithContext(ctx, managerIface+".ListMachines", 0).Store(&machines); err != nil {
		return nil, fmt.Errorf("nspawn: ListMachines: %w", dbusErr(err))
	}
	var names []string
	for _, mc := range machines {
		if mc.Class == "container" {
			names = append(names, mc.Name)
		}
	}
	sortStrings(names)
	return names, nil
}

func (m *machined) close() error { return m.conn.Close() }

func sortStrings(s []string) { sort.Strings(s) }
