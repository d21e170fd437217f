package fenceproto

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func FuzzStdin(f *testing.F) {
	for _, s := range []string{
		"action=status\nip=h\nlogin=u\npasswd=\"p\"\n",
		"# c\n\naction=off\nssl_insecure=yes\npower_timeout=0.01\n",
		"action=list-status\nport=1\nnodename=n\nbogus\n=x\n",
		"action=metadata\n",
		"method=cycle\naction=reboot\npower-wait=0\n",
	} {
		f.Add(s)
	}
	a := testAgent(&fakeDevice{state: StateOn}, true)
	ps, err := buildParams(a)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		o := newOptions(ps.byName, newRedactor())
		if err := parseStdin(ps, strings.NewReader(in), o, func(string, ...any) {}); err != nil {
			return
		}
		for name, v := range o.values {
			if ps.byName[name] == nil {
				t.Fatalf("value for unknown parameter %q", name)
			}
			if ps.byName[name].typ() == TypeBoolean && v != "0" && v != "1" && o.set[name] {
				t.Fatalf("boolean %s = %q", name, v)
			}
		}
		_ = validate(ps, o, true)
		// Whole runs must not panic; cap timing-related values.
		in = strings.NewReplacer("timeout", "x", "delay", "x", "wait", "x", "sleep", "x").Replace(in)
		var out, errb bytes.Buffer
		Run(context.Background(), testAgent(&fakeDevice{state: StateOn}, true), nil, strings.NewReader(in), &out, &errb)
	})
}

func FuzzArgv(f *testing.F) {
	for _, s := range []string{
		"-o\x00status\x00-a\x00h\x00-p\x00pw",
		"--action=off\x00--ssl-insecure\x00-vvv",
		"-ostatus\x00-u8443\x00--power-timeout=0.5\x00--",
		"--password\x00x\x00-vp\x00y",
	} {
		f.Add(s)
	}
	a := testAgent(&fakeDevice{state: StateOn}, true)
	ps, err := buildParams(a)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		o := newOptions(ps.byName, newRedactor())
		secrets, err := parseArgv(ps, args, o)
		for _, s := range secrets {
			if s.index < 0 || s.index >= len(args) || s.offset > len(args[s.index]) {
				t.Fatalf("secret position %+v outside %q", s, args)
			}
		}
		if err == nil && o.Has("password") && o.Get("password") != "" {
			found := false
			for _, s := range secrets {
				if strings.Contains(args[s.index][max(s.offset, 0):], o.Get("password")) {
					found = true
				}
			}
			if !found {
				t.Fatalf("password %q not located in %q (%+v)", o.Get("password"), args, secrets)
			}
		}
	})
}

func FuzzParseMetadata(f *testing.F) {
	f.Add(`<?xml version="1.0" ?><resource-agent name="x" shortdesc="y"><longdesc>l</longdesc><vendor-url/><parameters><parameter name="ip" unique="0" required="1" obsoletes="ipaddr"><getopt mixed="-a, --ip=[ip]"/><content type="select" default="a"><option value="a"/></content><shortdesc lang="en">s</shortdesc></parameter></parameters><actions><action name="on" on_target="1" automatic="1"/></actions></resource-agent>`)
	f.Add(`<resource-agent name="z"><actions><action name="on" automatic="maybe"/></actions></resource-agent>`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMetadata([]byte(s))
		if err != nil {
			return
		}
		if m.Name == "" {
			t.Fatal("accepted metadata without a name")
		}
		m.Unfence()
		m.HostArgument()
	})
}
