package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/concord-ha/concord/lib/api/fenceproto"
	"github.com/concord-ha/concord/lib/driver/ipmi"
)

func agent() *fenceproto.Agent {
	return &fenceproto.Agent{
		Name:      "fence_concord_ipmi",
		ShortDesc: "Fence agent for IPMI over LAN (Concord)",
		LongDesc: "fence_concord_ipmi switches a machine's chassis power through its BMC over IPMI LAN, " +
			"IPMI v2.0 RMCP+ with lanplus or IPMI v1.5 otherwise, as fence_ipmilan does, but speaks IPMI " +
			"itself instead of running ipmitool. Every exchange has a hard deadline: a wrong password, a " +
			"refused cipher suite or a closed port fail at once, a silent BMC after ipmi_timeout. With " +
			"lanplus and no cipher, suites 17 and 3 are tried in that order; cipher suite 0 is never used. " +
			"method=cycle sends Chassis Control power cycle, method=onoff (default) powers off, checks, " +
			"powers on and checks.",
		Common: []string{"ip", "username", "password", "password_script", "method"},
		Params: []fenceproto.Param{
			{Name: "ipport", Short: "u", Type: fenceproto.TypeInteger, Default: "623", Desc: "UDP port of the BMC"},
			{Name: "lanplus", Short: "P", Type: fenceproto.TypeBoolean, Default: "0", Desc: "Use Lanplus (IPMI v2.0 RMCP+) to improve security of connection"},
			{Name: "cipher", Short: "C", Desc: "Cipher suite to use with lanplus: 3 or 17 (as ipmitool -C). Default: 17, else 3"},
			{Name: "privlvl", Short: "L", Type: fenceproto.TypeSelect, Default: "administrator",
				Choices: []string{"callback", "user", "operator", "administrator"}, Desc: "Privilege level on IPMI device"},
			{Name: "plug", Aliases: []string{"port"}, Short: "n",
				Desc: "IP address or hostname of fencing device (together with --port-as-ip)"},
			{Name: "port_as_ip", Type: fenceproto.TypeBoolean, Default: "0",
				Desc: "Make \"--plug\" the BMC's address, so one device fences several hosts (pcmk_host_map to BMC addresses)"},
			{Name: "ipmi_timeout", Aliases: []string{"ipmitool_timeout"}, Type: fenceproto.TypeSecond, Default: "1",
				Desc: "Seconds one login request may go unanswered (it is retransmitted meanwhile)"},
			{Name: "off_method", Type: fenceproto.TypeSelect, Default: "hard", Choices: []string{"hard", "soft"},
				Desc: "How off (and method=onoff reboot) powers down: hard cuts power at once; soft asks the OS to shut down " +
					"(Chassis Control soft shutdown, ACPI) and the agent waits up to power_timeout for the chassis to go off. " +
					"A hung node may never shut down softly: use soft for planned work, not as the fencing method"},
		},
		Open:  open,
		Check: check,
	}
}

// check is config without reading password_script or passwd_file.
func check(o *fenceproto.Options) error {
	_, err := settings(o, false)
	return err
}

func config(o *fenceproto.Options) (ipmi.Config, error) { return settings(o, true) }

// settings builds the session's configuration; read says whether a
// password from password_script or passwd_file is fetched (and checked).
// Like fence_ipmilan, no user name or password is needed: a BMC may allow
// anonymous logins.
func settings(o *fenceproto.Options, read bool) (ipmi.Config, error) {
	cfg := ipmi.Config{Host: o.Get("ip"), Username: o.Get("username"), Interface: ipmi.LAN}
	if o.Bool("port_as_ip") {
		cfg.Host = o.Get("plug")
	}
	if cfg.Host == "" {
		return cfg, fmt.Errorf("%w: no ip (the BMC's address), or no plug with port_as_ip", fenceproto.ErrBadArgs)
	}
	port, err := o.Int("ipport")
	if err != nil || port < 1 || port > 65535 {
		return cfg, fmt.Errorf("%w: ipport %q", fenceproto.ErrBadArgs, o.Get("ipport"))
	}
	cfg.Port = port
	if o.Bool("lanplus") {
		cfg.Interface = ipmi.LANPlus
	}
	if c := strings.TrimSpace(o.Get("cipher")); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil {
			return cfg, fmt.Errorf("%w: cipher %q is not a number", fenceproto.ErrBadArgs, c)
		}
		cfg.CipherSuite = n
		if n == 0 {
			return cfg, fmt.Errorf("%w: cipher 0 (no authentication) is refused", fenceproto.ErrBadArgs)
		}
	}
	p, err := ipmi.ParsePrivilege(o.Get("privlvl"))
	if err != nil {
		return cfg, fmt.Errorf("%w: %v", fenceproto.ErrBadArgs, err)
	}
	cfg.Privilege = p
	cfg.StepBudget = o.Duration("ipmi_timeout")
	if o.Has("password") || read && o.HasPassword() {
		pw, err := o.Password()
		if err != nil {
			return cfg, err
		}
		cfg.Password = pw
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %v", fenceproto.ErrBadArgs, err)
	}
	return cfg, nil
}

type device struct {
	o *fenceproto.Options
	s *ipmi.Session
}

func open(ctx context.Context, o *fenceproto.Options) (fenceproto.Device, error) {
	cfg, err := config(o)
	if err != nil {
		return nil, err
	}
	o.Logf("login %s:%d interface %s cipher %d privilege %s user %q", cfg.Host, cfg.Port, cfg.Interface, cfg.CipherSuite, cfg.Privilege, cfg.Username)
	s, err := ipmi.Dial(ctx, cfg)
	if err != nil {
		return nil, protoErr(err)
	}
	if s.CipherSuite() != 0 {
		o.Logf("session open, cipher suite %d", s.CipherSuite())
	}
	return &device{o: o, s: s}, nil
}

// protoErr maps lib/ipmi's failure classes to the protocol's exit codes.
func protoErr(err error) error {
	var class *fenceproto.Error
	switch {
	case errors.Is(err, ipmi.ErrLoginDenied):
		class = fenceproto.ErrLoginDenied
	case errors.Is(err, ipmi.ErrUnreachable):
		class = fenceproto.ErrConnection
	case errors.Is(err, ipmi.ErrTimeout):
		class = fenceproto.ErrTimeout
	case errors.Is(err, ipmi.ErrPrivilege):
		class = fenceproto.ErrPrivileges
	default:
		return err
	}
	return fmt.Errorf("%w: %w", class, err)
}

func (d *device) Status(ctx context.Context) (fenceproto.PowerState, error) {
	on, err := d.s.PowerOn(ctx)
	if err != nil {
		return fenceproto.StateUnknown, protoErr(err)
	}
	if on {
		return fenceproto.StateOn, nil
	}
	return fenceproto.StateOff, nil
}

func (d *device) control(ctx context.Context, c ipmi.Control) error {
	d.o.Logf("chassis power %v", c)
	return protoErr(d.s.Chassis(ctx, c))
}

func (d *device) On(ctx context.Context) error { return d.control(ctx, ipmi.PowerOn) }
func (d *device) Off(ctx context.Context) error {
	if d.o.Get("off_method") == "soft" {
		return d.control(ctx, ipmi.SoftOff)
	}
	return d.control(ctx, ipmi.PowerOff)
}
func (d *device) Reboot(ctx context.Context) error { return d.control(ctx, ipmi.PowerCyc) }
func (d *device) Close() error                     { return d.s.Close() }

var (
	_ fenceproto.Device   = (*device)(nil)
	_ fenceproto.Rebooter = (*device)(nil)
)
