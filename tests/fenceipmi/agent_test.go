package fenceipmi

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/fenceproto"
)

const reference = "/usr/sbin/fence_ipmilan"

var ours string // fence_concord_ipmi built for this test run

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fenceipmi")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ours = filepath.Join(dir, "fence_concord_ipmi")
	goBin := filepath.Join(goroot(), "bin", "go")
	cmd := exec.Command(goBin, "build", "-o", ours, "github.com/concord-ha/concord/fence-agents/fence_concord_ipmi")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building fence_concord_ipmi:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func goroot() string {
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return "/usr/local/go"
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

func params(s *Sim, v variant, extra ...string) map[string]string {
	p := map[string]string{"ip": "127.0.0.1", "ipport": strconv.Itoa(s.Port),
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
func waitNode(t *testing.T, s *Sim, on bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.NodeOn() != on {
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
				s := startSim(t)
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
					if s.NodeOn() != st.on {
						t.Errorf("%s: node on=%v, want %v", where, s.NodeOn(), st.on)
					}
					if got := s.Events(); !slices.Equal(got, st.events) {
						t.Errorf("%s: chassis events %q, want %q", where, got, st.events)
					}
				}
			})
		}
	}
}

// TestCommandLineMode: the getopt form fence_ipmilan users type.
func TestCommandLineMode(t *testing.T) {
	requireTools(t, "ipmi_sim")
	s := startSim(t)
	base := []string{"--lanplus", "-C", "3", "-a", "127.0.0.1", "-u", strconv.Itoa(s.Port), "-l", AdminUser}
	pw := []string{"-p", AdminPass}
	cases := []struct {
		args   []string
		stdout string
		exit   int
	}{
		{append(pw, "-o", "status"), "Status: OFF", 2},
		{append(pw, "-o", "on"), "Success: Powered ON", 0},
		{append(pw, "-o", "reboot", "-m", "cycle"), "Success: Rebooted", 0},
		{append(pw, "-o", "off", "-L", "operator"), "Success: Powered OFF", 0},
		{[]string{"-S", "echo " + AdminPass, "-o", "status"}, "Status: OFF", 2},
	}
	for _, tc := range cases {
		args := append(slices.Clone(base), tc.args...)
		cmd := exec.Command(ours, args...)
		out, err := cmd.Output()
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
				refEvents, refOn := s.Events(), s.NodeOn()
				// Undo, then do the same with ours.
				undo := map[string]string{"on": "off", "off": "on"}[tc.ours]
				call(t, ours, undo, params(s, v))
				s.ClearEvents()
				res := call(t, ours, tc.ours, params(s, v))
				if res.ExitCode != 0 {
					t.Fatalf("ours %s: exit %d: %s", tc.ours, res.ExitCode, res.Stderr)
				}
				if got := s.Events(); !slices.Equal(got, refEvents) || !slices.Equal(got, tc.events) || s.NodeOn() != refOn {
					t.Errorf("events ours %q (on=%v), ipmitool %q (on=%v), want %q", got, s.NodeOn(), refEvents, refOn, tc.events)
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
