package fenceipmi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/driver/ipmi"
	"github.com/concord-ha/concord/tests/harness/fencepeer"
)

func simConfig(s *Sim, iface ipmi.Interface, suite int) ipmi.Config {
	return ipmi.Config{Host: "127.0.0.1", Port: s.Port, Username: AdminUser, Password: AdminPass,
		Interface: iface, CipherSuite: suite}
}

var interfaces = []struct {
	name  string
	iface ipmi.Interface
	suite int
}{
	{"lanplus-C3", ipmi.LANPlus, 3},
	{"lanplus-auto", ipmi.LANPlus, 0},
	{"lan", ipmi.LAN, 0},
}

// TestLibraryPower switches the node through every chassis control and
// checks both the BMC's answer and the node process.
func TestLibraryPower(t *testing.T) {
	for _, tc := range interfaces {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sess, err := ipmi.Dial(ctx, simConfig(s, tc.iface, tc.suite))
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if tc.iface == ipmi.LANPlus && sess.CipherSuite() != 3 {
				t.Errorf("cipher suite in use = %d, want 3 (ipmi_sim has no 17)", sess.CipherSuite())
			}
			steps := []struct {
				ctl    ipmi.Control
				on     bool
				events []string
			}{
				{ipmi.PowerOn, true, []string{"power 1"}},
				{ipmi.PowerOff, false, []string{"power 0"}},
				{ipmi.PowerOn, true, []string{"power 1"}},
				{ipmi.HardReset, true, []string{"reset 1"}},
				{ipmi.SoftOff, true, []string{"shutdown 1"}},
			}
			for _, st := range steps {
				s.ClearEvents()
				if err := sess.Chassis(ctx, st.ctl); err != nil {
					t.Fatalf("%v: %v", st.ctl, err)
				}
				on, err := sess.PowerOn(ctx)
				if err != nil {
					t.Fatalf("status after %v: %v", st.ctl, err)
				}
				// Soft off only asks the node: the dummy node dies on SIGTERM,
				// so the state after it is not asserted.
				if st.ctl != ipmi.SoftOff {
					if on != st.on || s.Powered() != st.on {
						t.Errorf("after %v: BMC says on=%v, node alive=%v, want %v", st.ctl, on, s.Powered(), st.on)
					}
				}
				if got := s.Events(); strings.Join(got, ",") != strings.Join(st.events, ",") {
					t.Errorf("after %v: events %q, want %q", st.ctl, got, st.events)
				}
			}
		})
	}
}

// TestLibraryFailures: each failure has its class and says what went wrong.
func TestLibraryFailures(t *testing.T) {
	s := startSim(t)
	closed, err := fencepeer.FreeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mod    func(*ipmi.Config)
		class  error
		detail string
	}{
		{"lanplus wrong password", func(c *ipmi.Config) { c.Password = "wrong" }, ipmi.ErrLoginDenied, "wrong password"},
		{"lan wrong password", func(c *ipmi.Config) { c.Interface, c.Password = ipmi.LAN, "wrong" }, ipmi.ErrLoginDenied, "wrong password"},
		{"lanplus unknown user", func(c *ipmi.Config) { c.Username = "nobody" }, ipmi.ErrLoginDenied, "unknown user"},
		{"lanplus cipher 17", func(c *ipmi.Config) { c.CipherSuite = 17 }, ipmi.ErrLoginDenied, "cipher suite 17"},
		{"lan privilege over limit", func(c *ipmi.Config) {
			c.Interface, c.Username, c.Password = ipmi.LAN, OperUser, OperPass
		}, ipmi.ErrLoginDenied, "privilege level exceeds"},
		{"lanplus closed port", func(c *ipmi.Config) { c.Port = closed }, ipmi.ErrUnreachable, "no IPMI service"},
		{"lan closed port", func(c *ipmi.Config) { c.Interface, c.Port = ipmi.LAN, closed }, ipmi.ErrUnreachable, "no IPMI service"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := simConfig(s, ipmi.LANPlus, 3)
			tc.mod(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sess, err := ipmi.Dial(ctx, cfg)
			if err == nil {
				sess.Close()
				t.Fatal("login succeeded")
			}
			var oe *ipmi.OpError
			if !errors.As(err, &oe) || !errors.Is(err, tc.class) {
				t.Fatalf("error %v: want class %v", err, tc.class)
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("error %q does not say %q", err, tc.detail)
			}
			t.Logf("%v", err)
		})
	}
}

// TestLibrarySilentBMC: a BMC that answers nothing (ipmi_sim stopped) is a
// timeout after the step budget, not a hang.
func TestLibrarySilentBMC(t *testing.T) {
	for _, tc := range interfaces {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t)
			if err := s.Pause(); err != nil {
				t.Fatal(err)
			}
			defer s.Resume()
			cfg := simConfig(s, tc.iface, tc.suite)
			cfg.StepBudget = 300 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sess, err := ipmi.Dial(ctx, cfg)
			if err == nil {
				sess.Close()
				t.Fatal("login to a stopped BMC succeeded")
			}
			if !errors.Is(err, ipmi.ErrTimeout) || !strings.Contains(err.Error(), "no answer from BMC within 300ms") {
				t.Errorf("error %v: want ErrTimeout naming the budget", err)
			}
		})
	}
}

// TestLibraryContextCancel: cancelling the caller's context ends a login
// to a silent BMC at once, whatever the budget.
func TestLibraryContextCancel(t *testing.T) {
	s := startSim(t)
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	defer s.Resume()
	cfg := simConfig(s, ipmi.LANPlus, 3)
	cfg.StepBudget = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		sess, err := ipmi.Dial(ctx, cfg)
		if err == nil {
			sess.Close()
		}
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, ipmi.ErrTimeout) {
			t.Errorf("cancelled login: %v, want ErrTimeout", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Dial ignored the cancelled context")
	}
}
