package redfish

import (
	"context"
	"fmt"

	"github.com/concord-ha/concord/lib/api/fenceproto"
)

// Agent is the fence_concord_redfish definition.
func Agent() *fenceproto.Agent {
	return &fenceproto.Agent{
		Name:      "fence_concord_redfish",
		ShortDesc: "Fence agent for Redfish BMCs",
		LongDesc: "fence_concord_redfish switches a server's power through its BMC's Redfish API " +
			"(ComputerSystem.Reset: On, ForceOff, ForceRestart) over HTTPS, with HTTP Basic or " +
			"SessionService authentication, and checks PowerState after each action.",
		VendorURL: "https://www.dmtf.org/standards/redfish",
		Common:    []string{"ip", "username", "password", "password_script", "plug", "method", "ssl", "ssl_insecure", "ssl_secure"},
		Params: []fenceproto.Param{
			{Name: "ipport", Short: "u", Type: fenceproto.TypeInteger, Default: "443", Desc: "TCP port of the BMC's HTTPS service"},
			{Name: "username", Aliases: []string{"login"}, Short: "l", Required: true, Desc: "Login name"},
			{Name: "redfish_uri", Default: "/redfish/v1", Desc: "Base or starting Redfish URI"},
			{Name: "systems_uri", Desc: "Redfish Systems resource URI, i.e. /redfish/v1/Systems/System.Embedded.1 (discovered when unset)"},
			{Name: "auth", Type: fenceproto.TypeSelect, Default: "basic", Choices: []string{"basic", "session"}, Desc: "Authentication: HTTP Basic on every request, or a SessionService token"},
			{Name: "ssl_ca_file", Desc: "PEM file of CA certificates to verify the BMC's certificate"},
			{Name: "off_reset_type", Type: fenceproto.TypeSelect, Default: "ForceOff", Choices: []string{"ForceOff", "GracefulShutdown"}, Desc: "ResetType used for off (fencing needs ForceOff)"},
		},
		Open:  Open,
		Check: Check,
	}
}

// Check: the BMC's address and a password source (username is Required).
func Check(o *fenceproto.Options) error {
	if o.Get("ip") == "" {
		return fmt.Errorf("%w: no ip (the BMC's address)", fenceproto.ErrBadArgs)
	}
	if !o.HasPassword() {
		return fmt.Errorf("%w: no password or password_script", fenceproto.ErrPasswordMissing)
	}
	return nil
}

// Open dials the BMC named by the agent options.
func Open(ctx context.Context, o *fenceproto.Options) (fenceproto.Device, error) {
	pw, err := o.Password()
	if err != nil {
		return nil, err
	}
	port, err := o.Int("ipport")
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, fenceproto.ErrBadArgs)
	}
	cfg := Config{
		Host: o.Get("ip"), Port: port, Username: o.Get("username"), Password: pw,
		Auth: Auth(o.Get("auth")), Insecure: o.Bool("ssl_insecure"), CAFile: o.Get("ssl_ca_file"),
		RedfishURI: o.Get("redfish_uri"), SystemsURI: o.Get("systems_uri"), System: o.Get("plug"),
	}
	c, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	o.Logf("system %s", c.SystemURI())
	return &device{c: c, offType: o.Get("off_reset_type"), log: o.Logf}, nil
}

type device struct {
	c       *Client
	offType string
	log     func(string, ...any)
}

// State maps a Redfish PowerState: anything but Off draws power, so it
// counts as on (PoweringOff is not off yet).
func State(ps string) fenceproto.PowerState {
	switch ps {
	case "Off":
		return fenceproto.StateOff
	case "On", "PoweringOn", "PoweringOff", "Paused":
		return fenceproto.StateOn
	}
	return fenceproto.StateUnknown
}

func (d *device) Status(ctx context.Context) (fenceproto.PowerState, error) {
	ps, err := d.c.PowerState(ctx)
	if err != nil {
		return fenceproto.StateUnknown, err
	}
	d.log("PowerState %s", ps)
	return State(ps), nil
}

func (d *device) On(ctx context.Context) error  { return d.c.Reset(ctx, "On") }
func (d *device) Off(ctx context.Context) error { return d.c.Reset(ctx, d.offType) }

// Reboot is method=cycle: ForceRestart, else PowerCycle, if advertised.
func (d *device) Reboot(ctx context.Context) error {
	for _, t := range []string{"ForceRestart", "PowerCycle"} {
		if d.c.Allows(t) {
			return d.c.Reset(ctx, t)
		}
	}
	return fmt.Errorf("redfish: %s allows neither ForceRestart nor PowerCycle: %w", d.c.SystemURI(), fenceproto.ErrUnsupported)
}

func (d *device) List(ctx context.Context) ([]fenceproto.Plug, error) {
	systems, err := d.c.Systems(ctx)
	if err != nil {
		return nil, err
	}
	plugs := make([]fenceproto.Plug, 0, len(systems))
	for _, s := range systems {
		plugs = append(plugs, fenceproto.Plug{ID: s.ID, Alias: s.Name, State: State(s.PowerState)})
	}
	return plugs, nil
}

func (d *device) Monitor(ctx context.Context) error {
	_, err := d.c.PowerState(ctx)
	return err
}

func (d *device) Close() error { return d.c.Close() }
