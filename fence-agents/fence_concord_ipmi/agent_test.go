package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/api/fenceproto"
	"github.com/concord-ha/concord/lib/driver/ipmi"
)

// closedPort is a loopback UDP port nobody listens on, so a valid
// configuration ends in "connection refused" without leaving the host.
func closedPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
}

func TestConfigThroughRun(t *testing.T) {
	port := closedPort(t)
	base := "action=status\nip=127.0.0.1\nipport=" + port + "\nusername=admin\npassword=secret\n"
	cases := []struct {
		name  string
		stdin string
		exit  int
		msg   string
	}{
		{"lan", base, fenceproto.ExitConnectionLost, "BMC unreachable"},
		{"lanplus cipher 3", base + "lanplus=1\ncipher=3\n", fenceproto.ExitConnectionLost, "BMC unreachable"},
		{"lanplus auto", base + "lanplus=1\n", fenceproto.ExitConnectionLost, "BMC unreachable"},
		{"ipmitool_timeout alias", base + "ipmitool_timeout=2\n", fenceproto.ExitConnectionLost, "BMC unreachable"},
		{"port_as_ip", strings.Replace(base, "ip=127.0.0.1", "plug=127.0.0.1\nport_as_ip=1", 1), fenceproto.ExitConnectionLost, "BMC unreachable"},
		{"no ip", strings.Replace(base, "ip=127.0.0.1\n", "", 1), fenceproto.ExitBadArgs, "no ip"},
		{"port_as_ip without plug", strings.Replace(base, "ip=127.0.0.1", "port_as_ip=1", 1), fenceproto.ExitBadArgs, "no plug with port_as_ip"},
		{"cipher 0", base + "lanplus=1\ncipher=0\n", fenceproto.ExitBadArgs, "cipher 0 (no authentication) is refused"},
		{"cipher 2", base + "lanplus=1\ncipher=2\n", fenceproto.ExitBadArgs, "cipher suite 2 not supported"},
		{"cipher word", base + "lanplus=1\ncipher=aes\n", fenceproto.ExitBadArgs, `cipher "aes" is not a number`},
		{"long password on lan", strings.Replace(base, "secret", "seventeen-chars-x", 1), fenceproto.ExitBadArgs, "password too long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			code := fenceproto.Run(context.Background(), agent(), nil, strings.NewReader(tc.stdin), &out, &errw)
			if code != tc.exit || !strings.Contains(errw.String(), tc.msg) {
				t.Errorf("exit %d stderr %q; want exit %d and %q", code, errw.String(), tc.exit, tc.msg)
			}
		})
	}
}

func TestProtoErr(t *testing.T) {
	cases := []struct {
		class error
		code  int
	}{
		{ipmi.ErrLoginDenied, fenceproto.ExitLoginDenied},
		{ipmi.ErrUnreachable, fenceproto.ExitConnectionLost},
		{ipmi.ErrTimeout, fenceproto.ExitTimedOut},
		{ipmi.ErrPrivilege, fenceproto.ExitInvalidPrivileges},
		{ipmi.ErrProtocol, fenceproto.ExitGeneric},
	}
	for _, tc := range cases {
		err := protoErr(&ipmi.OpError{Op: "login", Addr: "bmc:623", Class: tc.class})
		if got := fenceproto.ExitCode(err); got != tc.code || !errors.Is(err, tc.class) {
			t.Errorf("%v: exit %d, want %d (class kept: %v)", tc.class, got, tc.code, errors.Is(err, tc.class))
		}
	}
	if protoErr(nil) != nil {
		t.Error("protoErr(nil) != nil")
	}
}
