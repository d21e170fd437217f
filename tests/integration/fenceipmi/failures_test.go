package fenceipmi

import (
	"strconv"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/api/fenceproto"
	"github.com/concord-ha/concord/tests/harness/fencepeer"
)

// TestFailuresClear: a wrong password, a refused cipher suite and a closed
// port fail with the protocol's exit code for the class and a message that
// names the cause. fence_ipmilan's answer (exit 1, a generic message) is
// checked where it comes fast; its closed-port and lan wrong-password cases
// take 8-20 s and are left to the benchmark.
func TestFailuresClear(t *testing.T) {
	requireTools(t, "ipmi_sim")
	s := startSim(t)
	closed, err := fencepeer.FreeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	lanplus := variants[0]
	lan := variants[1]
	cases := []struct {
		name     string
		params   map[string]string
		exit     int
		message  string
		refExit  int    // 0: reference not run
		refStder string // substring of fence_ipmilan's stderr
	}{
		{"lanplus wrong password", params(s, lanplus, "password", "badpass"), fenceproto.ExitLoginDenied,
			"ERROR: Unable to connect/login to fencing device: ipmi login " + s.Addr() + ": login denied: wrong password",
			1, "Unable to obtain correct plug status"},
		{"lan wrong password", params(s, lan, "password", "badpass"), fenceproto.ExitLoginDenied,
			"ERROR: Unable to connect/login to fencing device: ipmi login " + s.Addr() + ": login denied: BMC answered, then ignored", 0, ""},
		{"cipher 17 refused", params(s, lanplus, "cipher", "17"), fenceproto.ExitLoginDenied,
			"login denied: BMC does not accept cipher suite 17: RMCP+ status 0x04 (Invalid authentication algorithm)",
			1, "Unable to obtain correct plug status"},
		{"unknown user", params(s, lanplus, "username", "nobody"), fenceproto.ExitLoginDenied,
			"login denied: unknown user", 0, ""},
		{"lanplus closed port", params(s, lanplus, "ipport", strconv.Itoa(closed)), fenceproto.ExitConnectionLost,
			"ERROR: Connection lost: ipmi login 127.0.0.1:" + strconv.Itoa(closed) + ": BMC unreachable: no IPMI service", 0, ""},
		{"lan closed port", params(s, lan, "ipport", strconv.Itoa(closed)), fenceproto.ExitConnectionLost,
			"BMC unreachable: no IPMI service", 0, ""},
		{"cipher 0 refused by us", params(s, lanplus, "cipher", "0"), fenceproto.ExitBadArgs, "cipher 0 (no authentication) is refused", 0, ""},
		{"privilege too low to switch", params(s, lanplus, "privlvl", "user"), fenceproto.ExitInvalidPrivileges,
			"insufficient privilege", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			action := "status"
			if strings.HasPrefix(tc.name, "privilege") {
				action = "off"
				call(t, ours, "on", params(s, lanplus))
			}
			res := call(t, ours, action, tc.params)
			if res.ExitCode != tc.exit || !strings.Contains(res.Stderr, tc.message) {
				t.Errorf("ours: exit %d stderr %q, want exit %d and %q", res.ExitCode, res.Stderr, tc.exit, tc.message)
			}
			if strings.Contains(res.Stdout+res.Stderr, "badpass") || strings.Contains(res.Stdout+res.Stderr, AdminPass) {
				t.Errorf("password printed: %q %q", res.Stdout, res.Stderr)
			}
			if tc.refExit == 0 {
				return
			}
			requireReference(t)
			ref := call(t, reference, action, tc.params)
			if ref.ExitCode != tc.refExit || !strings.Contains(ref.Stderr, tc.refStder) {
				t.Errorf("fence_ipmilan: exit %d stderr %q, want exit %d and %q", ref.ExitCode, ref.Stderr, tc.refExit, tc.refStder)
			}
		})
	}
}
