package fenceipmi

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/driver/ipmi"
)

// startGoBMC starts the suite-17 peer, skipping loudly unless ipmitool
// (an independent client) can use suite 17 against it.
func startGoBMC(t *testing.T) *GoBMC {
	t.Helper()
	requireTools(t, "ipmitool")
	g, err := StartGoBMC(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	out, err := exec.Command("ipmitool", "-I", "lanplus", "-C", "17", "-H", "127.0.0.1", "-p", strconv.Itoa(g.Port),
		"-U", AdminUser, "-P", AdminPass, "chassis", "power", "status").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "Chassis Power is off" {
		t.Skipf("SKIP: ipmitool -C 17 does not work against go-ipmi's server, so it is no independent suite-17 peer: %v: %s", err, out)
	}
	return g
}

// TestCipherSuite17: against a BMC that offers suite 17, the library uses it
// when asked and prefers it when left to choose, and power switches.
func TestCipherSuite17(t *testing.T) {
	for _, suite := range []int{17, 0} {
		t.Run("cipher"+strconv.Itoa(suite), func(t *testing.T) {
			g := startGoBMC(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sess, err := ipmi.Dial(ctx, ipmi.Config{Host: "127.0.0.1", Port: g.Port, Username: AdminUser, Password: AdminPass,
				CipherSuite: suite})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if sess.CipherSuite() != 17 {
				t.Errorf("suite in use %d, want 17", sess.CipherSuite())
			}
			for _, st := range []struct {
				c      ipmi.Control
				on     bool
				events string
			}{{ipmi.PowerOn, true, "power 1"}, {ipmi.PowerCyc, true, "power 0,power 1"}, {ipmi.PowerOff, false, "power 0"}} {
				g.ClearEvents()
				if err := sess.Chassis(ctx, st.c); err != nil {
					t.Fatal(err)
				}
				on, err := sess.PowerOn(ctx)
				if err != nil || on != st.on || g.Powered() != st.on || strings.Join(g.Events(), ",") != st.events {
					t.Errorf("after %v: BMC on=%v (%v), node on=%v, events %q; want on=%v events %q", st.c, on, err, g.Powered(), g.Events(), st.on, st.events)
				}
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		g := startGoBMC(t)
		_, err := ipmi.Dial(context.Background(), ipmi.Config{Host: "127.0.0.1", Port: g.Port, Username: AdminUser,
			Password: "badpass", CipherSuite: 17})
		if err == nil || !strings.Contains(err.Error(), "login denied") {
			t.Errorf("wrong password at suite 17: %v", err)
		}
	})
}

// TestAgentsAgreeCipher17: the agreement sequence at -C 17, ours and
// fence_ipmilan, against the suite-17 peer.
func TestAgentsAgreeCipher17(t *testing.T) {
	requireReference(t)
	v := variant{"lanplus-C17", map[string]string{"lanplus": "1", "cipher": "17"}}
	for _, agent := range []string{ours, reference} {
		t.Run(filepath.Base(agent), func(t *testing.T) {
			runSequence(t, startGoBMC(t), agent, v)
		})
	}
}
