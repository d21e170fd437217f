package fenceproto

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ParamType is a metadata content type.
type ParamType string

// Parameter types of the fence-agent metadata.
const (
	TypeString  ParamType = "string"
	TypeInteger ParamType = "integer"
	TypeSecond  ParamType = "second"
	TypeBoolean ParamType = "boolean"
	TypeSelect  ParamType = "select"
)

// Param describes one agent parameter. An agent Param whose Name equals a
// standard one replaces it (e.g. to give "ipport" another default).
type Param struct {
	Name     string
	Aliases  []string // obsolete names, emitted as deprecated parameters
	Short    string   // getopt short letter, "" for none
	Long     string   // long option; default Name with _ -> -
	Type     ParamType
	Default  string
	Required bool
	Secret   bool // never printed or logged
	Choices  []string
	Desc     string
}

func (p *Param) long() string {
	if p.Long != "" {
		return p.Long
	}
	return strings.ReplaceAll(p.Name, "_", "-")
}

func (p *Param) typ() ParamType {
	if p.Type == "" {
		return TypeString
	}
	return p.Type
}

// metavar is the placeholder shown in getopt help, e.g. "[seconds]".
func (p *Param) metavar() string {
	if m, ok := metavars[p.Name]; ok {
		return m
	}
	if p.typ() == TypeSecond {
		return "seconds"
	}
	return p.Name
}

var metavars = map[string]string{
	"action": "action", "ip": "ip", "ipport": "port", "username": "name",
	"password": "password", "password_script": "script", "passwd_file": "file",
	"plug": "id", "debug_file": "debugfile", "method": "method",
}

// frameworkParams are used by Run itself, so every agent has them.
var frameworkParams = []Param{
	{Name: "quiet", Short: "q", Type: TypeBoolean, Desc: "Disable logging to stderr"},
	{Name: "verbose", Short: "v", Type: TypeBoolean, Desc: "Verbose mode"},
	{Name: "debug_file", Aliases: []string{"debug"}, Short: "D", Desc: "Write debug information to given file"},
	{Name: "version", Short: "V", Type: TypeBoolean, Desc: "Display version information and exit"},
	{Name: "help", Short: "h", Type: TypeBoolean, Desc: "Display help and exit"},
	{Name: "delay", Type: TypeSecond, Default: "0", Desc: "Wait X seconds before fencing is started"},
	{Name: "login_timeout", Type: TypeSecond, Default: "5", Desc: "Wait X seconds for the device to accept the login"},
	{Name: "power_timeout", Type: TypeSecond, Default: "20", Desc: "Test X seconds for status change after ON/OFF"},
	{Name: "power_wait", Type: TypeSecond, Default: "0", Desc: "Wait X seconds after issuing ON/OFF"},
	{Name: "stonith_status_sleep", Type: TypeSecond, Default: "0.05", Desc: "Sleep X seconds between status calls during a STONITH action"},
}

// commonParams are the standard parameters an agent opts into by name.
var commonParams = map[string]Param{
	"ip":              {Name: "ip", Aliases: []string{"ipaddr"}, Short: "a", Desc: "IP address or hostname of fencing device"},
	"ipport":          {Name: "ipport", Short: "u", Type: TypeInteger, Desc: "TCP/UDP port to use for connection with device"},
	"username":        {Name: "username", Aliases: []string{"login"}, Short: "l", Desc: "Login name"},
	"password":        {Name: "password", Aliases: []string{"passwd"}, Short: "p", Secret: true, Desc: "Login password or passphrase"},
	"password_script": {Name: "password_script", Aliases: []string{"passwd_script"}, Short: "S", Desc: "Script to run to retrieve password"},
	"passwd_file":     {Name: "passwd_file", Desc: "File holding the password (must be owned by root and not readable by others)"},
	"plug":            {Name: "plug", Aliases: []string{"port"}, Short: "n", Desc: "Physical plug number on device, UUID or identification of machine"},
	"method":          {Name: "method", Short: "m", Type: TypeSelect, Default: "onoff", Choices: []string{"onoff", "cycle"}, Desc: "Method to fence"},
	"ssl":             {Name: "ssl", Short: "z", Type: TypeBoolean, Desc: "Use SSL connection with verifying certificate"},
	"ssl_insecure":    {Name: "ssl_insecure", Type: TypeBoolean, Desc: "Use SSL connection without verifying certificate"},
	"ssl_secure":      {Name: "ssl_secure", Type: TypeBoolean, Desc: "Use SSL connection with verifying certificate"},
	"shell_timeout":   {Name: "shell_timeout", Type: TypeSecond, Default: "3", Desc: "Wait X seconds for cmd prompt after issuing command"},
	"retry_on":        {Name: "retry_on", Type: TypeInteger, Default: "1", Desc: "Count of attempts to retry power on"},
	"devices":         {Name: "devices", Short: "d", Desc: "List of devices to use for current operation"},
	"nodename":        {Name: "nodename", Desc: "Name of the node to be fenced"},
	"identity_file":   {Name: "identity_file", Short: "k", Desc: "Identity file (private key) for SSH"},
}

// Options holds parsed and defaulted parameter values by canonical name.
type Options struct {
	params  map[string]*Param
	values  map[string]string
	set     map[string]bool
	verbose int
	log     func(format string, args ...any)
	redact  *redactor
}

func newOptions(params map[string]*Param, r *redactor) *Options {
	o := &Options{params: params, values: map[string]string{}, set: map[string]bool{}, redact: r}
	for n, p := range params {
		if p.Default != "" {
			o.values[n] = p.Default
		}
	}
	return o
}

func (o *Options) put(name, value string) {
	o.values[name] = value
	o.set[name] = true
	if p := o.params[name]; p != nil && p.Secret && o.redact != nil {
		o.redact.add(value)
	}
}

// Get returns the value of name: given or default, "" if neither.
func (o *Options) Get(name string) string { return o.values[name] }

// Has reports whether name was given by the caller (defaults do not count).
func (o *Options) Has(name string) bool { return o.set[name] }

// Bool reports whether name holds a true boolean (1/yes/on/true).
func (o *Options) Bool(name string) bool {
	b, ok := parseBool(o.values[name])
	return ok && b
}

// Int returns name as an integer.
func (o *Options) Int(name string) (int, error) {
	v := o.values[name]
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("parameter %s: bad integer %q", name, v)
	}
	return n, nil
}

// Duration returns an integer or "second" parameter, in seconds (fractions
// allowed), as a duration; 0 if unset or malformed (Run validates first).
func (o *Options) Duration(name string) time.Duration {
	d, _ := parseSeconds(o.values[name])
	return d
}

// Logf writes a line to stderr in verbose mode, with secrets redacted.
func (o *Options) Logf(format string, args ...any) {
	if o.verbose > 0 && o.log != nil {
		o.log(format, args...)
	}
}

// Verbose is the verbosity level (number of -v, or 1 for verbose=1).
func (o *Options) Verbose() int { return o.verbose }

// Password returns the password from password, else the first line printed
// by password_script, else the first line of passwd_file, which must be a
// regular file owned by root and not accessible to group or others.
func (o *Options) Password() (string, error) {
	if o.Has("password") {
		return o.values["password"], nil
	}
	if s := o.values["password_script"]; s != "" {
		ctx, cancel := context.WithTimeout(context.Background(), o.timeoutOr("login_timeout", 5*time.Second))
		defer cancel()
		out, err := exec.CommandContext(ctx, "/bin/sh", "-c", s).Output()
		if err != nil {
			return "", fmt.Errorf("password_script %q: %v", s, err)
		}
		pw := firstLine(string(out))
		o.redact.add(pw)
		return pw, nil
	}
	if f := o.values["passwd_file"]; f != "" {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("passwd_file: %v", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !fi.Mode().IsRegular() || !ok || st.Uid != 0 || fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("passwd_file %q: must be a regular file owned by root with mode 0600 or stricter", f)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("passwd_file: %v", err)
		}
		pw := firstLine(string(b))
		o.redact.add(pw)
		return pw, nil
	}
	return "", ErrPasswordMissing
}

// HasPassword reports whether a password source is given (password,
// password_script or passwd_file), without reading it.
func (o *Options) HasPassword() bool {
	return o.Has("password") || o.values["password_script"] != "" || o.values["passwd_file"] != ""
}

func (o *Options) timeoutOr(name string, def time.Duration) time.Duration {
	if d := o.Duration(name); d > 0 {
		return d
	}
	return def
}

func firstLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	if sc.Scan() {
		return strings.TrimRight(sc.Text(), "\r")
	}
	return ""
}

func parseBool(v string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "yes", "on", "true":
		return true, true
	case "0", "no", "off", "false":
		return false, true
	}
	return false, false
}

func parseSeconds(v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 || f > 1e7 || f != f {
		return 0, fmt.Errorf("bad number of seconds %q", v)
	}
	return time.Duration(f * float64(time.Second)), nil
}
