package fenceipmi

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/fenceproto"
	"github.com/concord-ha/concord/tests/harness/fencepeer"
)

const reference = "/usr/sbin/fence_ipmilan"

var (
	agent = fencepeer.Agent{Name: "fence_concord_ipmi"}
	ours  string // its binary, built for this test run
)

func TestMain(m *testing.M) {
	ours = agent.MustBuild()
	agent.Main(m)
}

func requireReference(t *testing.T) {
	t.Helper()
	requireTools(t, "ipmi_sim", "ipmitool", reference)
}

// variant is one way of reaching the BMC; both agents take the same params.
type variant struct {
	name   string
	params map[string]string
}

// Always give fence_ipmilan a cipher suite: without one ipmitool waits
// ~14 s for a Get Channel Cipher Suites answer that ipmi_sim never sends.
var variants = []variant{
	{"lanplus-C3", map[string]string{"lanplus": "1", "cipher": "3"}},
	{"lan", map[string]string{}},
}

// peer is a BMC whose chassis is a node process: an ipmi_sim or a GoBMC.
type peer interface {
	Events() []string
	ClearEvents() error
	Powered() bool
	Addr() string
}

func params(s peer, v variant, extra ...string) map[string]string {
	_, port, _ := net.SplitHostPort(s.Addr())
	p := map[string]string{"ip": "127.0.0.1", "ipport": port,
		"username": AdminUser, "password": AdminPass}
	for k, val := range v.params {
		p[k] = val
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(p, extra[i])
		} else {
			p[extra[i]] = extra[i+1]
		}
	}
	return p
}

func call(t *testing.T, agent, action string, p map[string]string) fenceproto.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := fenceproto.Call(ctx, agent, action, p, 0)
	if err != nil {
		t.Fatalf("%s %s: %v", filepath.Base(agent), action, err)
	}
	return res
}

// waitNode waits (bounded) for the node to reach the wanted power state:
// ipmi_sim powers a cycled chassis back on about 1 s after answering.
func waitNode(t *testing.T, s peer, on bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Powered() != on {
		if time.Now().After(deadline) {
			t.Fatalf("node power on=%v never reached; events %q", on, s.Events())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type step struct {
	action string
	extra  []string
	stdout string
	exit   int
	state  fenceproto.PowerState // for status
	on     bool                  // node afterwards
	events []string
}

var sequence = []step{
	{"status", nil, "Status: OFF", 2, fenceproto.StateOff, false, nil},
	{"on", nil, "Success: Powered ON", 0, 0, true, []string{"power 1"}},
	{"status", nil, "Status: ON", 0, fenceproto.StateOn, true, nil},
	{"on", nil, "Success: Already ON", 0, 0, true, nil},
	{"off", nil, "Success: Powered OFF", 0, 0, false, []string{"power 0"}},
	{"off", nil, "Success: Already OFF", 0, 0, false, nil},
	{"monitor", nil, "", 0, 0, false, nil},
	{"reboot", nil, "Success: Rebooted", 0, 0, true, []string{"power 1"}},
	{"reboot", nil, "Success: Rebooted", 0, 0, true, []string{"power 0", "power 1"}},
	{"reboot", []string{"method", "cycle"}, "Success: Rebooted", 0, 0, true, []string{"power 0", "power 1"}},
	{"off", nil, "Success: Powered OFF", 0, 0, false, []string{"power 0"}},
}

// TestAgentsAgree runs the same sequence through fence_concord_ipmi and
// fence_ipmilan (each against its own fresh ipmi_sim), in stdin mode through
// fenceproto.Call as Pacemaker would, and checks output, exit code, typed
// result, node power and the BMC's chassis actions after every step.
func TestAgentsAgree(t *testing.T) {
	requireReference(t)
	for _, v := range variants {
		for _, agent := range []string{ours, reference} {
			t.Run(v.name+"/"+filepath.Base(agent), func(t *testing.T) {
				runSequence(t, startSim(t), agent, v)
			})
		}
	}
}

// runSequence runs sequence through one agent and checks every step.
func runSequence(t *testing.T, s peer, agent string, v variant) {
	var extra []string
	if agent == reference {
		extra = []string{"power_wait", "0"} // its default 2 s only slows the test
	}
	for i, st := range sequence {
		s.ClearEvents()
		res := call(t, agent, st.action, params(s, v, append(extra, st.extra...)...))
		if st.on {
			waitNode(t, s, true)
		}
		where := fmt.Sprintf("step %d %s %v", i, st.action, st.extra)
		if got := strings.TrimSpace(res.Stdout); got != st.stdout {
			t.Errorf("%s: stdout %q, want %q (stderr %q)", where, got, st.stdout, res.Stderr)
		}
		if res.ExitCode != st.exit {
			t.Errorf("%s: exit %d, want %d (stderr %q)", where, res.ExitCode, st.exit, res.Stderr)
		}
		if st.action == "status" && res.State != st.state {
			t.Errorf("%s: typed state %v, want %v", where, res.State, st.state)
		}
		if s.Powered() != st.on {
			t.Errorf("%s: node on=%v, want %v", where, s.Powered(), st.on)
		}
		if got := s.Events(); !slices.Equal(got, st.events) {
			t.Errorf("%s: chassis events %q, want %q", where, got, st.events)
		}
	}
}

// TestCommandLineMode: the getopt form fence_ipmilan users type.
func TestCommandLineMode(t *testing.T) {
	requireTools(t, "ipmi_sim")
	s := startSim(t)
	port := strconv.Itoa(s.Port)
	login := func(extra ...string) []string {
		return append([]string{"--lanplus", "-C", "3", "-a", "127.0.0.1", "-u", port, "-l", AdminUser, "-p", AdminPass}, extra...)
	}
	cases := []struct {
		args   []string
		stdout string
		exit   int
	}{
		{login("-o", "status"), "Status: OFF", 2},
		{login("-o", "on"), "Success: Powered ON", 0},
		{login("-o", "reboot", "-m", "cycle"), "Success: Rebooted", 0},
		{login("-o", "off", "-L", "operator"), "Success: Powered OFF", 0},
		{[]string{"-P", "-C", "3", "-a", "127.0.0.1", "-u", port, "-l", AdminUser, "-S", "echo " + AdminPass, "-o", "status"}, "Status: OFF", 2},
		{[]string{"--lanplus", "-C", "3", "--port-as-ip", "-n", "127.0.0.1", "-u", port, "-l", AdminUser, "-p", AdminPass, "-o", "status"}, "Status: OFF", 2},
	}
	for _, tc := range cases {
		out, err := exec.Command(ours, tc.args...).Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != tc.stdout || code != tc.exit {
			t.Errorf("%v: %q exit %d, want %q exit %d", tc.args, got, code, tc.stdout, tc.exit)
		}
	}
}

// TestSoftOff: off_method=soft asks the OS to shut down (the simulated node
// gets SIGTERM), and the agent reports off only once the chassis is off.
func TestSoftOff(t *testing.T) {
	requireTools(t, "ipmi_sim")
	s := startSim(t)
	v := variants[0]
	if res := call(t, ours, "on", params(s, v)); res.ExitCode != 0 {
		t.Fatalf("on: exit %d: %s", res.ExitCode, res.Stderr)
	}
	waitNode(t, s, true)
	s.ClearEvents()
	res := call(t, ours, "off", params(s, v, "off_method", "soft"))
	if res.ExitCode != 0 || strings.TrimSpace(res.Stdout) != "Success: Powered OFF" {
		t.Fatalf("soft off: exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	if s.Powered() {
		t.Fatal("the node still runs after a soft off reported success")
	}
	if got := s.Events(); !slices.Contains(got, "shutdown 1") || slices.Contains(got, "power 0") {
		t.Errorf("chassis events %q: want a soft shutdown and no hard power-off", got)
	}
	if res := call(t, ours, "off", params(s, v, "off_method", "gentle")); res.ExitCode == 0 {
		t.Error("off_method=gentle was accepted")
	}
}

// TestIpmitoolSameChassisActions: ipmitool's chassis commands and ours make
// the BMC do the same things.
func TestIpmitoolSameChassisActions(t *testing.T) {
	requireTools(t, "ipmi_sim", "ipmitool")
	cases := []struct {
		ipmitool, ours string
		extra          []string
		events         []string
	}{
		{"on", "on", nil, []string{"power 1"}},
		{"off", "off", nil, []string{"power 0"}},
	}
	for _, v := range variants {
		for _, tc := range cases {
			t.Run(v.name+"/"+tc.ours, func(t *testing.T) {
				s := startSim(t)
				iface := "lan"
				args := []string{}
				if v.params["lanplus"] == "1" {
					iface = "lanplus"
					args = append(args, "-C", "3")
				}
				if tc.ours == "off" {
					call(t, ours, "on", params(s, v))
				}
				s.ClearEvents()
				args = append([]string{"-I", iface, "-H", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", AdminUser, "-P", AdminPass}, args...)
				out, err := exec.Command("ipmitool", append(args, "chassis", "power", tc.ipmitool)...).CombinedOutput()
				if err != nil {
					t.Fatalf("ipmitool: %v: %s", err, out)
				}
				refEvents, refOn := s.Events(), s.Powered()
				// Undo, then do the same with ours.
				undo := map[string]string{"on": "off", "off": "on"}[tc.ours]
				call(t, ours, undo, params(s, v))
				s.ClearEvents()
				res := call(t, ours, tc.ours, params(s, v))
				if res.ExitCode != 0 {
					t.Fatalf("ours %s: exit %d: %s", tc.ours, res.ExitCode, res.Stderr)
				}
				if got := s.Events(); !slices.Equal(got, refEvents) || !slices.Equal(got, tc.events) || s.Powered() != refOn {
					t.Errorf("events ours %q (on=%v), ipmitool %q (on=%v), want %q", got, s.Powered(), refEvents, refOn, tc.events)
				}
				// Status agrees with ipmitool's.
				out, err = exec.Command("ipmitool", append(args, "chassis", "power", "status")...).Output()
				if err != nil {
					t.Fatal(err)
				}
				st := call(t, ours, "status", params(s, v))
				want := map[fenceproto.PowerState]string{fenceproto.StateOn: "Chassis Power is on", fenceproto.StateOff: "Chassis Power is off"}[st.State]
				if strings.TrimSpace(string(out)) != want {
					t.Errorf("ipmitool says %q, ours %v", strings.TrimSpace(string(out)), st.State)
				}
			})
		}
	}
}

// TestMetadataLikeFenceIpmilan: the parameters a fence_ipmilan configuration
// uses exist in ours with the same types and defaults (read through
// fenceproto.Metadata, which runs each agent with action=metadata).
func TestMetadataLikeFenceIpmilan(t *testing.T) {
	requireTools(t, reference)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ourMD, err := fenceproto.Metadata(ctx, ours)
	if err != nil {
		t.Fatal(err)
	}
	refMD, err := fenceproto.Metadata(ctx, reference)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ip", "ipaddr", "ipport", "username", "login", "password", "passwd", "password_script",
		"lanplus", "cipher", "privlvl", "method", "plug", "port", "port_as_ip", "ipmitool_timeout",
		"power_timeout", "power_wait", "login_timeout", "delay", "verbose", "debug_file"} {
		o, r := ourMD.Param(name), refMD.Param(name)
		switch {
		case r == nil:
			t.Errorf("fence_ipmilan has no %q: list out of date", name)
		case o == nil:
			t.Errorf("ours lacks %q", name)
		case o.Content.Type != r.Content.Type && !(name == "ipmitool_timeout"):
			t.Errorf("%s: type %q, fence_ipmilan %q", name, o.Content.Type, r.Content.Type)
		case (name == "ipport" || name == "privlvl" || name == "method" || name == "lanplus") && o.Content.Default != r.Content.Default:
			t.Errorf("%s: default %q, fence_ipmilan %q", name, o.Content.Default, r.Content.Default)
		}
	}
	if ourMD.HostArgument() != refMD.HostArgument() {
		t.Errorf("host argument %q, fence_ipmilan %q", ourMD.HostArgument(), refMD.HostArgument())
	}
	for _, a := range []string{"on", "off", "reboot", "status", "monitor", "metadata", "validate-all"} {
		if ourMD.Action(a) == nil {
			t.Errorf("ours lacks action %q", a)
		}
	}
}
