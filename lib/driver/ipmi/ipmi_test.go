package ipmi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

func TestValidate(t *testing.T) {
	ok := Config{Host: "bmc1", Username: "admin", Password: "secret"}
	cases := []struct {
		name string
		mod  func(*Config)
		err  string
	}{
		{"defaults", func(*Config) {}, ""},
		{"lan", func(c *Config) { c.Interface = LAN }, ""},
		{"suite 17", func(c *Config) { c.CipherSuite = 17 }, ""},
		{"no host", func(c *Config) { c.Host = "" }, "no BMC address"},
		{"port", func(c *Config) { c.Port = 70000 }, "bad port 70000"},
		{"interface", func(c *Config) { c.Interface = "serial" }, `bad interface "serial"`},
		{"suite 2", func(c *Config) { c.CipherSuite = 2 }, "cipher suite 2 not supported"},
		{"suite ignored for lan", func(c *Config) { c.Interface, c.CipherSuite = LAN, 2 }, ""},
		{"privilege", func(c *Config) { c.Privilege = "root" }, `bad privilege level "root"`},
		{"user name", func(c *Config) { c.Username = strings.Repeat("u", 17) }, "longer than 16"},
		{"lan password", func(c *Config) { c.Interface, c.Password = LAN, strings.Repeat("p", 17) }, "password too long"},
		{"lanplus password 20", func(c *Config) { c.Password = strings.Repeat("p", 20) }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Validate = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestParsePrivilege(t *testing.T) {
	for in, want := range map[string]Privilege{"ADMINISTRATOR": PrivAdmin, "admin": PrivAdmin, " operator": PrivOperator, "User": PrivUser, "callback": PrivCallback, "oem": ""} {
		got, err := ParsePrivilege(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ParsePrivilege(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestClassifyLogin(t *testing.T) {
	rakp := fmt.Errorf("connect20 failed, errs: \n%v", fmt.Errorf("rakp1: %w", client.ErrRAKPAuthentication))
	cases := []struct {
		name   string
		err    error
		facts  loginFacts
		class  error
		detail string
	}{
		{"refused", fmt.Errorf("read: %w", syscall.ECONNREFUSED), loginFacts{}, ErrUnreachable, "no IPMI service"},
		{"rakp flattened to text", rakp, loginFacts{answers: 3}, ErrLoginDenied, "wrong password"},
		{"rmcp status error", fmt.Errorf("x: %w", types.NewRmcpStatusError(0x0d)), loginFacts{answers: 3}, ErrLoginDenied, "unknown user"},
		{"sniffed cipher refusal", errors.New("unpack failed"), loginFacts{answers: 2, rmcpState: 0x04, suite: 17}, ErrLoginDenied, "cipher suite 17"},
		{"privilege", fmt.Errorf("x: %w", types.NewResponseError(0x86, "")), loginFacts{answers: 3}, ErrLoginDenied, "privilege level exceeds"},
		{"silent after answers", fmt.Errorf("x: %w", &silentError{}), loginFacts{answers: 2, lan: true}, ErrLoginDenied, "wrong password?"},
		{"silent from the start", fmt.Errorf("x: %w", &silentError{}), loginFacts{}, ErrTimeout, "no answer from BMC"},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), loginFacts{}, ErrTimeout, "no answer"},
		{"other", errors.New("bad checksum"), loginFacts{answers: 1}, ErrProtocol, "session activation failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := classifyLogin("bmc:623", tc.err, tc.facts)
			if !errors.Is(e, tc.class) || !errors.Is(e, tc.err) || !strings.Contains(e.Error(), tc.detail) {
				t.Errorf("classifyLogin = %v; want class %v, detail %q, cause kept", e, tc.class, tc.detail)
			}
		})
	}
}

func TestClassifyCmd(t *testing.T) {
	cases := []struct {
		err   error
		class error
	}{
		{types.NewResponseError(0xd4, ""), ErrPrivilege},
		{types.NewResponseError(0xc1, ""), ErrProtocol},
		{errInterrupted, ErrTimeout},
		{timeoutError{}, ErrTimeout},
		{syscall.ECONNREFUSED, ErrUnreachable},
	}
	for _, tc := range cases {
		if e := classifyCmd("chassis power off", "bmc:623", fmt.Errorf("x: %w", tc.err)); !errors.Is(e, tc.class) {
			t.Errorf("classifyCmd(%v) = %v, want %v", tc.err, e, tc.class)
		}
	}
}
