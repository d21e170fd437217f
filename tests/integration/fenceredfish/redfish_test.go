package fenceredfish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/fenceproto"
	"github.com/concord-ha/concord/tests/harness/fencepeer"
	"github.com/concord-ha/concord/tests/harness/redfishbmc"
)

const reference = "/usr/sbin/fence_redfish"

var (
	agent = fencepeer.Agent{Name: "fence_concord_redfish"}
	ours  string // its binary, built for this test run
)

func TestMain(m *testing.M) {
	ours = agent.MustBuild()
	agent.Main(m)
}

// agents returns ours and, if installed, the reference.
func agents(t *testing.T) []string {
	list := []string{ours}
	if _, err := os.Stat(reference); err == nil {
		list = append(list, reference)
	} else {
		t.Logf("SKIP reference half: %s missing (Debian package fence-agents)", reference)
	}
	return list
}

func startBMC(t *testing.T, names ...string) *redfishbmc.Server {
	t.Helper()
	s := redfishbmc.New("admin", "s3cret-pw", names...)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func params(port int, extra ...string) map[string]string {
	p := map[string]string{"ip": "127.0.0.1", "ipport": strconv.Itoa(port), "username": "admin",
		"password": "s3cret-pw", "ssl_insecure": "1"}
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
	res, err := fenceproto.Call(context.Background(), agent, action, p, 60*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v (stderr %q)", filepath.Base(agent), action, err, res.Stderr)
	}
	return res
}

// TestActionsMatchReference runs the same action sequence with both agents
// against fresh BMCs: same stdout, exit codes, ResetTypes and end state.
func TestActionsMatchReference(t *testing.T) {
	steps := []struct {
		action string
		code   int
		out    string
		power  bool
	}{
		{"status", 0, "Status: ON\n", true},
		{"off", 0, "Success: Powered OFF\n", false},
		{"status", 2, "Status: OFF\n", false},
		{"off", 0, "Success: Already OFF\n", false},
		{"on", 0, "Success: Powered ON\n", true},
		{"on", 0, "Success: Already ON\n", true},
		{"reboot", 0, "Success: Rebooted\n", true},
		{"monitor", 0, "", true},
	}
	wantResets := []string{"1 ForceOff", "1 On", "1 ForceOff", "1 On"}
	for _, agent := range agents(t) {
		t.Run(filepath.Base(agent), func(t *testing.T) {
			s := startBMC(t)
			for _, st := range steps {
				res := call(t, agent, st.action, params(s.Port()))
				if res.ExitCode != st.code || res.Stdout != st.out {
					t.Errorf("%s: exit %d stdout %q, want %d %q (stderr %q)", st.action, res.ExitCode, res.Stdout, st.code, st.out, res.Stderr)
				}
				if s.Power("1") != st.power {
					t.Errorf("after %s: power on = %v, want %v", st.action, s.Power("1"), st.power)
				}
				if strings.Contains(res.Stdout+res.Stderr, "s3cret-pw") {
					t.Errorf("%s: password in output", st.action)
				}
			}
			if got := s.Resets(); !reflect.DeepEqual(got, wantResets) {
				t.Errorf("ResetTypes %v, want %v", got, wantResets)
			}
		})
	}
}

func TestArgvModeMatchesReference(t *testing.T) {
	for _, agent := range agents(t) {
		t.Run(filepath.Base(agent), func(t *testing.T) {
			s := startBMC(t)
			for _, c := range []struct {
				args []string
				code int
				out  string
			}{
				{[]string{"-o", "status"}, 0, "Status: ON\n"},
				{[]string{"-o", "off"}, 0, "Success: Powered OFF\n"},
				{[]string{"--action=status"}, 2, "Status: OFF\n"},
			} {
				args := append([]string{"-a", "127.0.0.1", "-u", strconv.Itoa(s.Port()), "-l", "admin", "-p", "s3cret-pw", "--ssl-insecure"}, c.args...)
				cmd := exec.Command(agent, args...)
				cmd.Env = append(os.Environ(), "PYTHONWARNINGS=ignore")
				out, err := cmd.Output()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if code != c.code || string(out) != c.out {
					t.Errorf("%v: exit %d stdout %q, want %d %q", c.args, code, out, c.code, c.out)
				}
			}
		})
	}
}

// TestPacemakerStdin sends what Pacemaker sends for a fence_redfish device
// (nodename, the port alias, fence_redfish's own option spellings).
func TestPacemakerStdin(t *testing.T) {
	s := startBMC(t, "node-a", "node-b")
	p := params(s.Port(), "nodename", "node-b", "port", "2", "ssl", "1", "ssl_secure", "0", "redfish-uri", "/redfish/v1", "pcmk_ignored", "")
	res := call(t, ours, "off", p)
	if res.ExitCode != 0 || res.Stdout != "Success: Powered OFF\n" || strings.Contains(res.Stderr, "WARNING") {
		t.Errorf("exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	if !s.Power("1") || s.Power("2") {
		t.Errorf("port=2 switched the wrong system: %v", s.Resets())
	}
}

func TestSessionAuth(t *testing.T) {
	s := startBMC(t)
	for _, action := range []string{"status", "off", "on"} {
		res := call(t, ours, action, params(s.Port(), "auth", "session"))
		if res.ExitCode != 0 {
			t.Fatalf("%s: exit %d stderr %q", action, res.ExitCode, res.Stderr)
		}
	}
	_, basic, token, open := s.Stats()
	if basic != 0 || token == 0 || open != 0 {
		t.Errorf("basic %d token %d open sessions %d: want only token auth and every session deleted", basic, token, open)
	}
	res := call(t, ours, "status", params(s.Port(), "auth", "session", "password", "wrong-pw"))
	if res.ExitCode != fenceproto.ExitLoginDenied {
		t.Errorf("bad session login: exit %d stderr %q", res.ExitCode, res.Stderr)
	}
}

func TestRebootCycle(t *testing.T) {
	s := startBMC(t)
	res := call(t, ours, "reboot", params(s.Port(), "method", "cycle"))
	if res.ExitCode != 0 || res.Stdout != "Success: Rebooted\n" {
		t.Fatalf("exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	if got := s.Resets(); !reflect.DeepEqual(got, []string{"1 ForceRestart"}) {
		t.Errorf("ResetTypes %v", got)
	}
}

func TestGracefulOff(t *testing.T) {
	s := startBMC(t)
	res := call(t, ours, "off", params(s.Port(), "off_reset_type", "GracefulShutdown"))
	if res.ExitCode != 0 || !reflect.DeepEqual(s.Resets(), []string{"1 GracefulShutdown"}) {
		t.Fatalf("exit %d resets %v stderr %q", res.ExitCode, s.Resets(), res.Stderr)
	}
}

// TestPowerLag: the BMC reports PoweringOff/PoweringOn for a while; the
// agent polls until the final state.
func TestPowerLag(t *testing.T) {
	s := startBMC(t)
	s.Lag = 400 * time.Millisecond
	for _, c := range []struct{ action, out string }{{"off", "Success: Powered OFF\n"}, {"on", "Success: Powered ON\n"}} {
		res := call(t, ours, c.action, params(s.Port()))
		if res.ExitCode != 0 || res.Stdout != c.out {
			t.Errorf("%s: exit %d stdout %q stderr %q", c.action, res.ExitCode, res.Stdout, res.Stderr)
		}
	}
	if res := call(t, ours, "status", params(s.Port())); res.State != fenceproto.StateOn {
		t.Errorf("final state %v", res.State)
	}
}

func TestStuckPowerFails(t *testing.T) {
	s := startBMC(t)
	s.Stuck = true
	res := call(t, ours, "off", params(s.Port(), "power_timeout", "1"))
	if res.ExitCode != fenceproto.ExitWaitingOff || !strings.Contains(res.Stderr, "Timed out waiting to power OFF") {
		t.Errorf("exit %d stderr %q", res.ExitCode, res.Stderr)
	}
}

func TestBadCredentials(t *testing.T) {
	s := startBMC(t)
	for _, agent := range agents(t) {
		res := call(t, agent, "off", params(s.Port(), "password", "wrong-pw"))
		if agent == ours {
			if res.ExitCode != fenceproto.ExitLoginDenied || !strings.Contains(res.Stderr, "401") {
				t.Errorf("ours: exit %d stderr %q", res.ExitCode, res.Stderr)
			}
			if strings.Contains(res.Stderr, "wrong-pw") {
				t.Errorf("password in stderr %q", res.Stderr)
			}
		} else {
			// fence_redfish 4.12 does not check HTTP codes: a traceback, exit 1.
			if res.ExitCode == 0 {
				t.Errorf("reference: exit 0 with a wrong password")
			}
			t.Logf("reference: exit %d in %v, last stderr line %q", res.ExitCode, res.Duration.Round(time.Millisecond), lastLine(res.Stderr))
		}
		if !s.Power("1") || len(s.Resets()) != 0 {
			t.Errorf("%s: the BMC acted on a bad login", filepath.Base(agent))
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestSlowAndDeadEndpoints: every failure ends within the agent's own
// timeouts (the outer 60 s Call timeout never fires) with the right code.
func TestSlowAndDeadEndpoints(t *testing.T) {
	slow := startBMC(t)
	slow.SetDelay(3 * time.Second)
	hang, err := redfishbmc.NewHang()
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	closed := closedPort(t)
	cases := []struct {
		name   string
		port   int
		extra  []string
		action string
		code   int
	}{
		{"slow BMC, login_timeout 1", slow.Port(), []string{"login_timeout", "1"}, "status", fenceproto.ExitTimedOut},
		{"hung BMC status", hang.Port(), []string{"login_timeout", "1"}, "status", fenceproto.ExitTimedOut},
		{"hung BMC off", hang.Port(), []string{"login_timeout", "0.5"}, "off", fenceproto.ExitTimedOut},
		{"closed port", closed, nil, "off", fenceproto.ExitConnectionLost},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := call(t, ours, c.action, params(c.port, c.extra...))
			if res.ExitCode != c.code {
				t.Errorf("exit %d, want %d; stderr %q", res.ExitCode, c.code, res.Stderr)
			}
			t.Logf("ours: exit %d after %v: %s", res.ExitCode, res.Duration.Round(time.Millisecond), lastLine(res.Stderr))
		})
	}
	// Once the login is done, a BMC that turns slow is bounded by power_timeout.
	t.Run("BMC slows down after login", func(t *testing.T) {
		s := startBMC(t)
		s.SetDelay(0)
		go func() {
			time.Sleep(300 * time.Millisecond)
			s.SetDelay(10 * time.Second)
		}()
		res := call(t, ours, "off", params(s.Port(), "power_timeout", "1", "power_wait", "0.5"))
		if res.ExitCode == 0 {
			t.Errorf("exit 0 against a BMC that stopped answering; stdout %q", res.Stdout)
		}
		t.Logf("ours: exit %d after %v", res.ExitCode, res.Duration.Round(time.Millisecond))
	})
	if _, err := os.Stat(reference); err == nil {
		t.Run("reference against a hung BMC", func(t *testing.T) {
			res, err := fenceproto.Call(context.Background(), reference, "status", params(hang.Port(), "login_timeout", "1"), 5*time.Second)
			t.Logf("reference: err %v exit %d after %v (fence_redfish 4.12 sets no HTTP timeout)", err, res.ExitCode, res.Duration.Round(time.Millisecond))
		})
		t.Run("reference against a closed port", func(t *testing.T) {
			res := call(t, reference, "status", params(closed))
			if res.ExitCode == 0 {
				t.Errorf("reference: exit 0")
			}
			t.Logf("reference: exit %d after %v: %s", res.ExitCode, res.Duration.Round(time.Millisecond), lastLine(res.Stderr))
		})
	}
}

func closedPort(t *testing.T) int {
	h, err := redfishbmc.NewHang()
	if err != nil {
		t.Fatal(err)
	}
	p := h.Port()
	h.Close()
	return p
}

func TestVerifiedTLS(t *testing.T) {
	s := startBMC(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := s.WriteCert(ca); err != nil {
		t.Fatal(err)
	}
	res := call(t, ours, "status", params(s.Port(), "ssl_insecure", "", "ssl_ca_file", ca))
	if res.ExitCode != 0 {
		t.Errorf("with ssl_ca_file: exit %d stderr %q", res.ExitCode, res.Stderr)
	}
	res = call(t, ours, "status", params(s.Port(), "ssl_insecure", ""))
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "certificate") {
		t.Errorf("unverified certificate accepted: exit %d stderr %q", res.ExitCode, res.Stderr)
	}
}

func TestMultipleSystems(t *testing.T) {
	s := startBMC(t, "node-a", "node-b")
	s.SetPower("2", false)
	res := call(t, ours, "list", params(s.Port()))
	if res.Stdout != "1,node-a\n2,node-b\n" {
		t.Errorf("list: %q", res.Stdout)
	}
	res = call(t, ours, "list-status", params(s.Port()))
	if res.Stdout != "1,node-a,ON\n2,node-b,OFF\n" || len(res.Plugs) != 2 || res.Plugs[1].State != fenceproto.StateOff {
		t.Errorf("list-status: %q %+v", res.Stdout, res.Plugs)
	}
	for _, plug := range []string{"node-a", "1"} {
		s.SetPower("1", true)
		res = call(t, ours, "off", params(s.Port(), "plug", plug))
		if res.ExitCode != 0 || s.Power("1") || s.Power("2") {
			t.Errorf("plug %s off: exit %d power %v/%v", plug, res.ExitCode, s.Power("1"), s.Power("2"))
		}
	}
	res = call(t, ours, "on", params(s.Port(), "systems_uri", "/redfish/v1/Systems/2"))
	if res.ExitCode != 0 || !s.Power("2") {
		t.Errorf("systems_uri on: exit %d", res.ExitCode)
	}
	if res = call(t, ours, "status", params(s.Port(), "plug", "node-z")); res.ExitCode == 0 {
		t.Errorf("unknown plug: exit 0")
	}
}

// TestSecretNotInProcessTitle checks /proc/PID/cmdline of a running agent
// given the password on the command line.
func TestSecretNotInProcessTitle(t *testing.T) {
	s := startBMC(t)
	s.SetDelay(2 * time.Second)
	cmd := exec.Command(ours, "-a", "127.0.0.1", "-u", strconv.Itoa(s.Port()), "-l", "admin", "-p", "s3cret-pw", "--ssl-insecure", "-o", "status")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	path := fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)
	// Wait (bounded) until the agent has reached the BMC, i.e. has started.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r, _, _, _ := s.Stats(); r > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cret-pw") || !strings.Contains(string(b), "-o") {
		t.Errorf("cmdline %q", strings.ReplaceAll(string(b), "\x00", " "))
	}
}

func TestMetadataValidates(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("SKIP: xmllint missing (Debian package libxml2-utils)")
	}
	const rng = "/usr/share/cluster/relaxng/metadata.rng"
	if _, err := os.Stat(rng); err != nil {
		t.Skipf("SKIP: %s missing (Debian package fence-agents)", rng)
	}
	m, err := fenceproto.Metadata(context.Background(), ours)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ip", "ipport", "username", "password", "systems_uri", "redfish_uri", "ssl_insecure", "plug", "auth"} {
		if m.Param(n) == nil {
			t.Errorf("parameter %s missing", n)
		}
	}
	out, err := exec.Command(ours, "-o", "metadata").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "md.xml")
	os.WriteFile(f, out, 0o644)
	if b, err := exec.Command(xmllint, "--noout", "--relaxng", rng, f).CombinedOutput(); err != nil {
		t.Errorf("%v\n%s", err, b)
	}
}
