package fenceproto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// fakeDevice is a power switch in memory.
// fakeMu guards every fakeDevice; one lock keeps the table copyable.
var fakeMu sync.Mutex

type fakeDevice struct {
	state     PowerState
	openErr   error
	statusErr error
	setErr    error
	stuck     bool // On/Off succeed but the state never changes
	offErr    error
	onErr     error
	offHangs  bool // Off blocks until its context ends
	stayOn    bool // Off succeeds but the state stays ON
	calls     []string
	plugs     []Plug
}

func (d *fakeDevice) Status(ctx context.Context) (PowerState, error) {
	fakeMu.Lock()
	defer fakeMu.Unlock()
	d.calls = append(d.calls, "status")
	return d.state, d.statusErr
}

func (d *fakeDevice) set(ctx context.Context, s PowerState, name string) error {
	fakeMu.Lock()
	defer fakeMu.Unlock()
	d.calls = append(d.calls, name)
	if d.setErr != nil {
		return d.setErr
	}
	if s == StateOff && d.offHangs {
		fakeMu.Unlock()
		<-ctx.Done()
		fakeMu.Lock()
		return ctx.Err()
	}
	if s == StateOff && d.offErr != nil {
		return d.offErr
	}
	if s == StateOn && d.onErr != nil {
		return d.onErr
	}
	if !d.stuck && !(s == StateOff && d.stayOn) {
		d.state = s
	}
	return nil
}

func (d *fakeDevice) On(ctx context.Context) error  { return d.set(ctx, StateOn, "on") }
func (d *fakeDevice) Off(ctx context.Context) error { return d.set(ctx, StateOff, "off") }
func (d *fakeDevice) Close() error                  { return nil }

// listDevice adds Lister and Rebooter.
type listDevice struct{ *fakeDevice }

func (d listDevice) List(ctx context.Context) ([]Plug, error) { return d.plugs, d.statusErr }
func (d listDevice) Reboot(ctx context.Context) error {
	fakeMu.Lock()
	defer fakeMu.Unlock()
	d.calls = append(d.calls, "cycle")
	if d.setErr != nil {
		return d.setErr
	}
	if !d.stuck {
		d.state = StateOn
	}
	return nil
}

func testAgent(d *fakeDevice, lister bool) *Agent {
	return &Agent{
		Name: "fence_test", ShortDesc: "Test agent", LongDesc: "fence_test switches a fake device.", VendorURL: "https://example.org",
		Common: []string{"ip", "ipport", "username", "password", "password_script", "plug", "method", "ssl_insecure"},
		Params: []Param{
			{Name: "ipport", Short: "u", Type: TypeInteger, Default: "443", Desc: "TCP port"},
			{Name: "systems_uri", Desc: "Systems URI"},
			{Name: "token", Secret: true, Desc: "API token"},
		},
		Open: func(ctx context.Context, o *Options) (Device, error) {
			if d.openErr != nil {
				return nil, d.openErr
			}
			if lister {
				return listDevice{d}, nil
			}
			return d, nil
		},
	}
}

func run(t *testing.T, a *Agent, args []string, stdin string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), a, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// capture runs an agent whose Open records the parsed options.
func capture(t *testing.T, args []string, stdin string) (*Options, int, string) {
	t.Helper()
	var got *Options
	a := testAgent(&fakeDevice{state: StateOn}, false)
	open := a.Open
	a.Open = func(ctx context.Context, o *Options) (Device, error) { got = o; return open(ctx, o) }
	code, _, errs := run(t, a, args, stdin)
	return got, code, errs
}

func TestStdinGrammar(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  map[string]string // canonical name -> value
		code  int
		warns string
	}{
		{"plain", "action=status\nip=10.0.0.1\nusername=admin\npassword=pw\n",
			map[string]string{"ip": "10.0.0.1", "username": "admin", "password": "pw", "ipport": "443"}, 0, ""},
		{"aliases", "action=status\nipaddr=h\nlogin=u\npasswd=pwd1\nport=node1\n",
			map[string]string{"ip": "h", "username": "u", "password": "pwd1", "plug": "node1"}, 0, ""},
		{"long option names with dash or underscore", "action=status\nip=h\nusername=u\npassword=pwd1\nsystems-uri=/a\nssl-insecure=1\npower-timeout=3\n",
			map[string]string{"systems_uri": "/a", "ssl_insecure": "1", "power_timeout": "3"}, 0, ""},
		{"comments and blank lines", "# a comment\n\n   \naction=status\nip=h\n#ip=other\nusername=u\npassword=pwd1\n",
			map[string]string{"ip": "h"}, 0, ""},
		{"last duplicate wins", "action=status\nip=first\nip=second\nipaddr=third\nusername=u\npassword=pwd1\n",
			map[string]string{"ip": "third"}, 0, ""},
		{"whitespace and one pair of quotes", "  action=status  \nip=\"h\"\nusername=\"\"u\"\"\npassword= \"p w\" \n",
			map[string]string{"ip": "h", "username": "\"u\"", "password": "p w"}, 0, ""},
		{"value with equals sign", "action=status\nip=h\nusername=u\npassword=a=b=c\n",
			map[string]string{"password": "a=b=c"}, 0, ""},
		{"unknown name warns", "action=status\nip=h\nusername=u\npassword=pwd1\nbogus=1\n",
			map[string]string{"ip": "h"}, 0, "Ignoring unknown option 'bogus'"},
		{"nodename is silent", "action=status\nip=h\nusername=u\npassword=pwd1\nnodename=n1\n",
			map[string]string{"ip": "h"}, 0, ""},
		{"booleans true", "action=status\nip=h\nusername=u\npassword=pwd1\nssl_insecure=yes\nverbose=on\n",
			map[string]string{"ssl_insecure": "1", "verbose": "1"}, 0, ""},
		{"booleans false", "action=status\nip=h\nusername=u\npassword=pwd1\nssl_insecure=FALSE\nverbose=off\n",
			map[string]string{"ssl_insecure": "0", "verbose": "0"}, 0, ""},
		{"bad boolean ignored with warning", "action=status\nip=h\nusername=u\npassword=pwd1\nssl_insecure=maybe\n",
			map[string]string{"ssl_insecure": ""}, 0, "does not have a boolean value"},
		{"defaults", "action=status\n",
			map[string]string{"power_timeout": "20", "power_wait": "0", "login_timeout": "5", "method": "onoff", "delay": "0"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, code, errs := capture(t, nil, tt.in)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, errs)
			}
			for k, v := range tt.want {
				if got := o.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.warns == "" && strings.Contains(errs, "WARNING") {
				t.Errorf("unexpected warning: %q", errs)
			}
			if tt.warns != "" && !strings.Contains(errs, tt.warns) {
				t.Errorf("stderr %q lacks %q", errs, tt.warns)
			}
		})
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		name string
		args []string
		in   string
		want string
	}{
		{"bad integer", nil, "action=status\nipport=abc\n", "ipport"},
		{"bad seconds", nil, "action=status\npower_timeout=-1\n", "power_timeout"},
		{"bad select", nil, "action=reboot\nmethod=flip\n", "method"},
		{"bad action", nil, "action=explode\n", "Unrecognised action"},
		{"unknown long option", []string{"--nope"}, "", "unknown option --nope"},
		{"unknown short option", []string{"-Z"}, "", "unknown option -Z"},
		{"missing value", []string{"-o"}, "", "needs a value"},
		{"positional", []string{"-o", "status", "extra"}, "", "unexpected argument"},
		{"bad boolean on argv", []string{"--ssl-insecure=perhaps"}, "", "bad boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, testAgent(&fakeDevice{state: StateOn}, false), tt.args, tt.in)
			if code != ExitBadArgs {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, ExitBadArgs, out, errs)
			}
			if !strings.Contains(errs, tt.want) {
				t.Errorf("stderr %q lacks %q", errs, tt.want)
			}
		})
	}
	// A missing required parameter is a bad argument too.
	a := testAgent(&fakeDevice{state: StateOn}, false)
	a.Params = append(a.Params, Param{Name: "must", Required: true, Desc: "needed"})
	if code, _, errs := run(t, a, nil, "action=status\n"); code != ExitBadArgs || !strings.Contains(errs, "must") {
		t.Errorf("missing required: exit %d stderr %q", code, errs)
	}
	// ...but not for metadata.
	if code, _, _ := run(t, a, nil, "action=metadata\n"); code != 0 {
		t.Errorf("metadata with missing required param: exit %d", code)
	}
}

func TestArgvGrammar(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want map[string]string
	}{
		{"short separate", []string{"-o", "status", "-a", "h", "-l", "u", "-p", "pw", "-n", "3"},
			map[string]string{"action": "status", "ip": "h", "username": "u", "password": "pw", "plug": "3"}},
		{"short attached", []string{"-ostatus", "-ah", "-u8443"},
			map[string]string{"action": "status", "ip": "h", "ipport": "8443"}},
		{"long with =", []string{"--action=status", "--ip=h", "--systems-uri=/redfish/v1/Systems/1"},
			map[string]string{"ip": "h", "systems_uri": "/redfish/v1/Systems/1"}},
		{"long separate", []string{"--action", "status", "--username", "u"},
			map[string]string{"username": "u"}},
		{"boolean flags", []string{"-o", "status", "--ssl-insecure", "-v"},
			map[string]string{"ssl_insecure": "1", "verbose": "1"}},
		{"grouped short flags", []string{"-vqostatus"},
			map[string]string{"verbose": "1", "quiet": "1", "action": "status"}},
		{"last wins", []string{"-o", "off", "-o", "status", "-a", "x", "--ip=y"},
			map[string]string{"action": "status", "ip": "y"}},
		{"fractional seconds", []string{"-o", "status", "--power-timeout=0.5"},
			map[string]string{"power_timeout": "0.5"}},
		{"trailing --", []string{"-o", "status", "--"},
			map[string]string{"action": "status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, code, errs := capture(t, tt.args, "")
			if code != 0 {
				t.Fatalf("exit %d; stderr %q", code, errs)
			}
			for k, v := range tt.want {
				if got := o.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
	o, _, _ := capture(t, []string{"-o", "status", "--power-timeout=0.5", "-vvv"}, "")
	if d := o.Duration("power_timeout"); d.Milliseconds() != 500 {
		t.Errorf("Duration(power_timeout) = %v", d)
	}
	if o.Verbose() != 3 {
		t.Errorf("Verbose() = %d, want 3", o.Verbose())
	}
	if !o.Has("power_timeout") || o.Has("power_wait") || o.Get("power_wait") != "0" {
		t.Errorf("Has/Get of defaults wrong")
	}
	if n, err := o.Int("ipport"); n != 443 || err != nil {
		t.Errorf("Int(ipport) = %d, %v", n, err)
	}
}

func TestActions(t *testing.T) {
	login := fmt.Errorf("POST /redfish/v1/SessionService/Sessions: 401: %w", ErrLoginDenied)
	tests := []struct {
		name      string
		dev       fakeDevice
		lister    bool
		in        string
		code      int
		out       string
		calls     []string
		errSubstr string
	}{
		{"status on", fakeDevice{state: StateOn}, false, "action=status", 0, "Status: ON\n", []string{"status"}, ""},
		{"status off", fakeDevice{state: StateOff}, false, "action=status", 2, "Status: OFF\n", []string{"status"}, ""},
		{"status unknown", fakeDevice{state: StateUnknown}, false, "action=status", ExitStatus, "", []string{"status"}, "plug status"},
		{"status login denied", fakeDevice{openErr: login}, false, "action=status", ExitLoginDenied, "", nil, "401"},
		{"status connection", fakeDevice{statusErr: fmt.Errorf("dial: %w", ErrConnection)}, false, "action=status", ExitConnectionLost, "", []string{"status"}, "Connection lost"},
		{"status deadline", fakeDevice{statusErr: context.DeadlineExceeded}, false, "action=status", ExitTimedOut, "", []string{"status"}, ""},
		{"status generic", fakeDevice{statusErr: errors.New("boom")}, false, "action=status", ExitGeneric, "", []string{"status"}, "boom"},
		{"off", fakeDevice{state: StateOn}, false, "action=off", 0, "Success: Powered OFF\n", []string{"status", "off", "status"}, ""},
		{"off already", fakeDevice{state: StateOff}, false, "action=off", 0, "Success: Already OFF\n", []string{"status"}, ""},
		{"off stuck times out", fakeDevice{state: StateOn, stuck: true}, false, "action=off\npower_timeout=0.2\nstonith_status_sleep=0.01", ExitWaitingOff, "", nil, "Timed out waiting to power OFF"},
		{"off refused", fakeDevice{state: StateOn, setErr: fmt.Errorf("403: %w", ErrPrivileges)}, false, "action=off", ExitInvalidPrivileges, "", []string{"status", "off"}, "privileges"},
		{"on", fakeDevice{state: StateOff}, false, "action=on", 0, "Success: Powered ON\n", []string{"status", "on", "status"}, ""},
		{"on already", fakeDevice{state: StateOn}, false, "action=on", 0, "Success: Already ON\n", []string{"status"}, ""},
		{"on stuck", fakeDevice{state: StateOff, stuck: true}, false, "action=on\npower_timeout=0.1", ExitWaitingOn, "", nil, "power ON"},
		{"reboot default", fakeDevice{state: StateOn}, false, "", 0, "Success: Rebooted\n", []string{"status", "off", "status", "on", "status"}, ""},
		{"reboot from off", fakeDevice{state: StateOff}, false, "action=reboot", 0, "Success: Rebooted\n", []string{"status", "on", "status"}, ""},
		{"reboot cycle", fakeDevice{state: StateOn}, true, "action=reboot\nmethod=cycle", 0, "Success: Rebooted\n", []string{"status", "cycle", "status"}, ""},
		{"reboot cycle without Rebooter is onoff", fakeDevice{state: StateOn}, false, "action=reboot\nmethod=cycle", 0, "Success: Rebooted\n", []string{"status", "off", "status", "on", "status"}, ""},
		{"monitor", fakeDevice{state: StateOff}, false, "action=monitor", 0, "", []string{"status"}, ""},
		{"monitor unreachable", fakeDevice{statusErr: fmt.Errorf("x: %w", ErrConnection)}, false, "action=monitor", ExitConnectionLost, "", []string{"status"}, ""},
		{"list without plugs", fakeDevice{}, false, "action=list", 0, "N/A\n", nil, ""},
		{"list", fakeDevice{plugs: []Plug{{"1", "web", StateOn}, {"2", "db", StateOff}}}, true, "action=list", 0, "1,web\n2,db\n", nil, ""},
		{"list-status", fakeDevice{plugs: []Plug{{"1", "web", StateOn}, {"2", "db", StateOff}, {"3", "x", StateUnknown}}}, true, "action=list-status", 0, "1,web,ON\n2,db,OFF\n3,x,UNKNOWN\n", nil, ""},
		{"validate-all", fakeDevice{openErr: errors.New("must not open")}, false, "action=validate-all", 0, "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.dev
			code, out, errs := run(t, testAgent(&d, tt.lister), nil, tt.in+"\n")
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tt.code, out, errs)
			}
			if out != tt.out {
				t.Errorf("stdout %q, want %q", out, tt.out)
			}
			if tt.calls != nil && !reflect.DeepEqual(d.calls, tt.calls) {
				t.Errorf("device calls %v, want %v", d.calls, tt.calls)
			}
			if !strings.Contains(errs, tt.errSubstr) {
				t.Errorf("stderr %q lacks %q", errs, tt.errSubstr)
			}
		})
	}
}

// TestRebootNeedsOff: reboot is Pacemaker's default fence action, so a
// reboot whose off step did not happen must never report success; the
// fencer would otherwise treat a running node as fenced.
func TestRebootNeedsOff(t *testing.T) {
	quick := "action=reboot\npower_timeout=0.2\nstonith_status_sleep=0.01\n"
	tests := []struct {
		name    string
		dev     fakeDevice
		nocheck bool
		code    int
		calls   []string
		err     string
	}{
		{"off refused", fakeDevice{state: StateOn, offErr: fmt.Errorf("403: %w", ErrPrivileges)}, false,
			ExitInvalidPrivileges, []string{"status", "off"}, "privileges"},
		{"off fails", fakeDevice{state: StateOn, offErr: errors.New("chassis control failed")}, false,
			ExitGeneric, []string{"status", "off"}, "chassis control failed"},
		{"off times out", fakeDevice{state: StateOn, offHangs: true}, false,
			ExitTimedOut, []string{"status", "off"}, ""},
		{"node stays on", fakeDevice{state: StateOn, stayOn: true}, false,
			ExitWaitingOff, nil, "Timed out waiting to power OFF"},
		{"off refused without power check", fakeDevice{state: StateOn, offErr: fmt.Errorf("x: %w", ErrConnection)}, true,
			ExitConnectionLost, []string{"off"}, "Connection lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.dev
			a := testAgent(&d, false)
			a.NoPowerCheck = tt.nocheck
			code, out, errs := run(t, a, nil, quick)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tt.code, out, errs)
			}
			if strings.Contains(out, "Success") {
				t.Errorf("stdout %q: reported success without the target off", out)
			}
			if !strings.Contains(errs, tt.err) {
				t.Errorf("stderr %q lacks %q", errs, tt.err)
			}
			fakeMu.Lock()
			defer fakeMu.Unlock()
			for _, c := range d.calls {
				if c == "on" {
					t.Errorf("device calls %v: powered on after a failed off", d.calls)
				}
			}
			if tt.calls != nil && !reflect.DeepEqual(d.calls, tt.calls) {
				t.Errorf("device calls %v, want %v", d.calls, tt.calls)
			}
		})
	}
	// Once off, the target is fenced: a failed on is reported but the
	// reboot succeeds (fencing.py does the same).
	d := fakeDevice{state: StateOn, onErr: errors.New("no power")}
	code, out, errs := run(t, testAgent(&d, false), nil, quick)
	if code != ExitOK || out != "Success: Rebooted\n" || !strings.Contains(errs, "no power") {
		t.Errorf("on fails after off: exit %d stdout %q stderr %q", code, out, errs)
	}
	// method=cycle: the device's reboot must fail the fence when it fails
	// or when the target never comes back on.
	for _, dev := range []fakeDevice{
		{state: StateOn, setErr: errors.New("cycle refused")},
		{state: StateOff, stuck: true},
	} {
		d := dev
		code, out, errs := run(t, testAgent(&d, true), nil, quick+"method=cycle\n")
		if code == ExitOK || strings.Contains(out, "Success") {
			t.Errorf("cycle %+v: exit %d stdout %q stderr %q", dev, code, out, errs)
		}
	}
}

// TestValidateAll: validate-all exits 1 naming what is missing or wrong,
// as fencing.py does, checks what the actions check, and never opens the
// device.
func TestValidateAll(t *testing.T) {
	newAgent := func() (*Agent, *int) {
		opened := 0
		a := testAgent(&fakeDevice{state: StateOn}, false)
		a.Params = append(a.Params, Param{Name: "must", Required: true, Desc: "needed"})
		a.Open = func(ctx context.Context, o *Options) (Device, error) {
			opened++
			return &fakeDevice{state: StateOn}, nil
		}
		a.Check = func(o *Options) error {
			if o.Get("ip") == "" {
				return fmt.Errorf("%w: no ip", ErrBadArgs)
			}
			if !o.HasPassword() {
				return ErrPasswordMissing
			}
			return nil
		}
		return a, &opened
	}
	tests := []struct {
		name, in string
		code     int
		msg      string
	}{
		{"all given", "must=1\nip=h\npassword=pw\n", 0, ""},
		{"password_script is a password", "must=1\nip=h\npassword_script=exit 3\n", 0, ""},
		{"required missing", "ip=h\npassword=pw\n", 1, "required parameter must"},
		{"required empty", "must=\nip=h\npassword=pw\n", 1, "required parameter must"},
		{"bad value", "must=1\nip=h\npassword=pw\nipport=x\n", 1, "ipport"},
		{"check: no ip", "must=1\npassword=pw\n", 1, "no ip"},
		{"check: no password", "must=1\nip=h\n", 1, "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, opened := newAgent()
			code, out, errs := run(t, a, nil, "action=validate-all\n"+tt.in)
			if code != tt.code || out != "" {
				t.Errorf("exit %d stdout %q stderr %q, want exit %d", code, out, errs, tt.code)
			}
			if tt.code != 0 && (!strings.Contains(errs, tt.msg) || !strings.Contains(errs, "validate-all failed")) {
				t.Errorf("stderr %q lacks %q", errs, tt.msg)
			}
			if *opened != 0 {
				t.Error("validate-all opened the device")
			}
			// The actions refuse what validate-all refuses, before Open.
			code, _, errs = run(t, a, nil, "action=status\n"+tt.in)
			if (code == 0) != (tt.code == 0) || !strings.Contains(errs, tt.msg) {
				t.Errorf("status: exit %d stderr %q", code, errs)
			}
			if tt.code != 0 && *opened != 0 {
				t.Error("status opened the device with a bad configuration")
			}
		})
	}
	a, _ := newAgent()
	if code, _, _ := run(t, a, nil, "action=status\nmust=1\nip=h\n"); code != ExitPasswordMissing {
		t.Errorf("status without password: exit %d, want %d", code, ExitPasswordMissing)
	}
	if code, _, errs := run(t, a, nil, "action=metadata\n"); code != 0 {
		t.Errorf("metadata ran the check: exit %d stderr %q", code, errs)
	}
}

func TestFabric(t *testing.T) {
	d := &fakeDevice{state: StateOn}
	a := testAgent(d, false)
	a.Fabric, a.Unfence = true, true
	if code, out, _ := run(t, a, nil, "ip=h\n"); code != 0 || out != "Success: Powered OFF\n" {
		t.Errorf("default action: exit %d stdout %q, want off", code, out)
	}
	if code, out, _ := run(t, a, []string{"-o", "enable"}, ""); code != 0 || out != "Success: Powered ON\n" {
		t.Errorf("enable: exit %d stdout %q", code, out)
	}
	if code, _, errs := run(t, a, []string{"-o", "reboot"}, ""); code != ExitBadArgs {
		t.Errorf("reboot on fabric agent: exit %d stderr %q", code, errs)
	}
	_, md, _ := run(t, a, []string{"-o", "metadata"}, "")
	m, err := ParseMetadata([]byte(md))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Unfence() || !m.UnfenceOnTarget() || m.Action("reboot") != nil || m.Param("action").Content.Default != "off" {
		t.Errorf("fabric metadata wrong: %+v", m.Actions)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	const pw = "S3cr3t-pw"
	d := &fakeDevice{state: StateOn, setErr: fmt.Errorf("login with %s refused: %w", pw, ErrLoginDenied)}
	a := testAgent(d, false)
	a.Open = func(ctx context.Context, o *Options) (Device, error) {
		p, _ := o.Password()
		o.Logf("using password %s and token %s", p, o.Get("token"))
		return d, nil
	}
	for _, in := range []struct {
		args  []string
		stdin string
	}{
		{nil, "action=off\nverbose=1\npassword=" + pw + "\ntoken=tok-" + pw + "\n"},
		{[]string{"-o", "off", "-v", "-p", pw, "--token=tok-" + pw}, ""},
		{[]string{"-o", "off", "-v", "-p" + pw}, ""},
	} {
		code, out, errs := run(t, a, in.args, in.stdin)
		if code != ExitLoginDenied {
			t.Errorf("exit %d, want %d", code, ExitLoginDenied)
		}
		if strings.Contains(out+errs, pw) {
			t.Errorf("secret printed: stdout %q stderr %q", out, errs)
		}
		if !strings.Contains(errs, "[set]") {
			t.Errorf("stderr %q: expected the redacted marker", errs)
		}
	}
	// A one-letter password must not mangle the protocol lines on stdout.
	d2 := &fakeDevice{state: StateOn}
	if code, out, _ := run(t, testAgent(d2, false), nil, "action=off\npassword=P\n"); code != 0 || out != "Success: Powered OFF\n" {
		t.Errorf("short password: exit %d stdout %q", code, out)
	}
	// Main blanks secrets in argv; check the offsets parseArgv reports.
	ps, _ := buildParams(a)
	args := []string{"-o", "off", "-p", pw, "--password=" + pw, "-vp" + pw, "--token", pw}
	secrets, err := parseArgv(ps, args, newOptions(ps.byName, newRedactor()))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([][]byte, len(args))
	for i, s := range args {
		buf[i] = []byte(s)
	}
	for _, s := range secrets {
		for j := s.offset; j < len(buf[s.index]); j++ {
			buf[s.index][j] = 'x'
		}
	}
	if joined := string(bytes.Join(buf, []byte(" "))); strings.Contains(joined, pw) || !strings.Contains(joined, "--password=") {
		t.Errorf("argv after blanking: %q", joined)
	}
}

func TestPasswordSources(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "pw")
	os.WriteFile(good, []byte("from-file\nsecond line\n"), 0o600)
	loose := filepath.Join(dir, "loose")
	os.WriteFile(loose, []byte("x\n"), 0o644)
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"password", "password=direct\npassword_script=echo no", "direct", false},
		{"script", "password_script=printf 'from-script\\nmore'", "from-script", false},
		{"file", "passwd_file=" + good, "from-file", false},
		{"file readable by others", "passwd_file=" + loose, "", true},
		{"missing", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "file" && os.Geteuid() != 0 {
				t.Skip("SKIP: passwd_file must be owned by root; test not running as root")
			}
			o, _, _ := capture(t, nil, "action=status\n"+tt.in+"\n")
			got, err := o.Password()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Password() = %q, %v", got, err)
			}
		})
	}
}

func TestHelpVersionManpage(t *testing.T) {
	a := testAgent(&fakeDevice{}, false)
	code, out, _ := run(t, a, []string{"-h"}, "")
	if code != 0 || !strings.Contains(out, "-a, --ip=[ip]") {
		t.Errorf("-h: exit %d %q", code, out)
	}
	code, out, _ = run(t, a, []string{"-o", "manpage"}, "")
	for _, want := range []string{".TH FENCE_TEST 8", ".SH NAME", `fence_test \- Test agent`, ".SH PARAMETERS", `\-a, \-\-ip=[ip]`, ".SH ACTIONS", ".SH STDIN PARAMETERS"} {
		if !strings.Contains(out, want) {
			t.Errorf("manpage lacks %q", want)
		}
	}
	if code != 0 {
		t.Errorf("manpage exit %d", code)
	}
	if code, out, _ = run(t, a, []string{"-V"}, ""); code != 0 || out == "" {
		t.Errorf("-V: exit %d %q", code, out)
	}
}

func TestBadAgentDefinition(t *testing.T) {
	a := testAgent(&fakeDevice{}, false)
	a.Common = append(a.Common, "no_such_common")
	if code, _, errs := run(t, a, []string{"-o", "metadata"}, ""); code != ExitGeneric || !strings.Contains(errs, "no_such_common") {
		t.Errorf("exit %d stderr %q", code, errs)
	}
	a = testAgent(&fakeDevice{}, false)
	a.Params = append(a.Params, Param{Name: "other", Short: "a"})
	if code, _, errs := run(t, a, []string{"-o", "metadata"}, ""); code != ExitGeneric || !strings.Contains(errs, "-a") {
		t.Errorf("exit %d stderr %q", code, errs)
	}
}
