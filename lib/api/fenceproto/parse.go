package fenceproto

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
)

// paramSet is an agent's full parameter table.
type paramSet struct {
	list   []*Param          // canonical params, metadata order
	byName map[string]*Param // canonical name -> param
	lookup map[string]string // any accepted stdin name -> canonical name
	longs  map[string]string // long option -> canonical name
	shorts map[byte]string   // short letter -> canonical name
}

// buildParams merges the action, the agent's params, its chosen common
// params and the framework params; agent params override by name.
func buildParams(a *Agent) (*paramSet, error) {
	def := "reboot"
	if a.Fabric {
		def = "off"
	}
	action := Param{Name: "action", Short: "o", Default: def, Required: true, Desc: "Fencing action"}
	var all []Param
	all = append(all, action)
	seen := map[string]bool{"action": true}
	own := map[string]bool{}
	for _, p := range a.Params {
		own[p.Name] = true
	}
	addCommon := func(n string) error {
		if n == "debug" {
			n = "debug_file"
		}
		if seen[n] || own[n] {
			return nil
		}
		p, ok := commonParams[n]
		if !ok {
			for _, f := range frameworkParams {
				if f.Name == n {
					return nil
				}
			}
			return fmt.Errorf("agent %s: unknown common parameter %q", a.Name, n)
		}
		seen[n] = true
		all = append(all, p)
		return nil
	}
	var common []string
	common = append(common, a.Common...)
	for _, n := range a.Common {
		if n == "password" {
			common = append(common, "passwd_file")
		}
	}
	for _, n := range common {
		if err := addCommon(n); err != nil {
			return nil, err
		}
	}
	for _, p := range a.Params {
		if seen[p.Name] {
			return nil, fmt.Errorf("agent %s: parameter %q defined twice", a.Name, p.Name)
		}
		seen[p.Name] = true
		all = append(all, p)
	}
	for _, p := range frameworkParams {
		if !seen[p.Name] {
			seen[p.Name] = true
			all = append(all, p)
		}
	}
	// Metadata order: action, then sorted agent/common params, then framework.
	fw := map[string]bool{}
	for _, p := range frameworkParams {
		fw[p.Name] = true
	}
	mid := all[1:]
	sort.SliceStable(mid, func(i, j int) bool {
		if fw[mid[i].Name] != fw[mid[j].Name] {
			return !fw[mid[i].Name]
		}
		if fw[mid[i].Name] {
			return false
		}
		return mid[i].Name < mid[j].Name
	})
	ps := &paramSet{byName: map[string]*Param{}, lookup: map[string]string{}, longs: map[string]string{}, shorts: map[byte]string{}}
	for i := range all {
		p := &all[i]
		ps.list = append(ps.list, p)
		ps.byName[p.Name] = p
		names := append([]string{p.Name, p.long()}, p.Aliases...)
		for _, n := range names {
			ps.lookup[strings.ReplaceAll(n, "-", "_")] = p.Name
		}
		if _, dup := ps.longs[p.long()]; dup {
			return nil, fmt.Errorf("agent %s: long option --%s used twice", a.Name, p.long())
		}
		ps.longs[p.long()] = p.Name
		if p.Short != "" {
			if len(p.Short) != 1 {
				return nil, fmt.Errorf("agent %s: parameter %q: short option %q is not one letter", a.Name, p.Name, p.Short)
			}
			if _, dup := ps.shorts[p.Short[0]]; dup {
				return nil, fmt.Errorf("agent %s: short option -%s used twice", a.Name, p.Short)
			}
			ps.shorts[p.Short[0]] = p.Name
		}
	}
	return ps, nil
}

// resolve maps a stdin name (param name, alias or long option, with - or _)
// to the canonical name.
func (ps *paramSet) resolve(name string) (string, bool) {
	n, ok := ps.lookup[strings.ReplaceAll(name, "-", "_")]
	return n, ok
}

// parseStdin reads key=value lines into o. Warnings go to warn.
func parseStdin(ps *paramSet, r io.Reader, o *Options, warn func(string, ...any)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, _ := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		value = unquote(strings.TrimSpace(value))
		canon, ok := ps.resolve(name)
		if !ok {
			if name == "nodename" {
				continue // Pacemaker always sends it
			}
			warn("Parse error: Ignoring unknown option '%s'", name)
			continue
		}
		p := ps.byName[canon]
		if p.typ() == TypeBoolean {
			b, ok := parseBool(value)
			if !ok {
				warn("Parse error: Ignoring option '%s' because it does not have a boolean value", name)
				continue
			}
			if b {
				value = "1"
			} else {
				value = "0"
			}
			if canon == "verbose" {
				o.verbose = 0
				if b {
					o.verbose = 1
				}
			}
		}
		o.put(canon, value)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading stdin: %v", err)
	}
	return nil
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// secretArg locates a secret value inside argv, so Main can blank it.
type secretArg struct{ index, offset int }

// parseArgv parses getopt-style arguments into o. It returns where secret
// values sit in args.
func parseArgv(ps *paramSet, args []string, o *Options) ([]secretArg, error) {
	var secrets []secretArg
	set := func(canon, value string, i, off int) error {
		p := ps.byName[canon]
		if p.Secret {
			secrets = append(secrets, secretArg{i, off})
		}
		o.put(canon, value)
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return secrets, fmt.Errorf("unexpected argument %q", args[i+1])
			}
			return secrets, nil
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			canon, ok := ps.longs[name]
			if !ok {
				return secrets, fmt.Errorf("unknown option --%s", name)
			}
			p := ps.byName[canon]
			if p.typ() == TypeBoolean {
				v := "1"
				if hasValue {
					b, ok := parseBool(value)
					if !ok {
						return secrets, fmt.Errorf("option --%s: bad boolean %q", name, value)
					}
					if !b {
						v = "0"
					}
				}
				if canon == "verbose" {
					o.verbose++
				}
				set(canon, v, i, -1)
				continue
			}
			if hasValue {
				set(canon, value, i, len(name)+3)
				continue
			}
			if i+1 >= len(args) {
				return secrets, fmt.Errorf("option --%s needs a value", name)
			}
			i++
			set(canon, args[i], i, 0)
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				canon, ok := ps.shorts[a[j]]
				if !ok {
					return secrets, fmt.Errorf("unknown option -%c", a[j])
				}
				if ps.byName[canon].typ() == TypeBoolean {
					if canon == "verbose" {
						o.verbose++
					}
					set(canon, "1", i, -1)
					continue
				}
				if j+1 < len(a) {
					set(canon, a[j+1:], i, j+1)
				} else {
					if i+1 >= len(args) {
						return secrets, fmt.Errorf("option -%c needs a value", a[j])
					}
					i++
					set(canon, args[i], i, 0)
				}
				break
			}
		default:
			return secrets, fmt.Errorf("unexpected argument %q", a)
		}
	}
	return secrets, nil
}

// validate checks required parameters and typed values.
func validate(ps *paramSet, o *Options, needRequired bool) error {
	for _, p := range ps.list {
		v, has := o.values[p.Name]
		if needRequired && p.Required && (!has || v == "") {
			return fmt.Errorf("required parameter %s (--%s) is missing", p.Name, p.long())
		}
		if !has {
			continue
		}
		switch p.typ() {
		case TypeInteger:
			if _, err := o.Int(p.Name); err != nil {
				return err
			}
		case TypeSecond:
			if _, err := parseSeconds(v); err != nil {
				return fmt.Errorf("parameter %s: %v", p.Name, err)
			}
		case TypeBoolean:
			if _, ok := parseBool(v); !ok {
				return fmt.Errorf("parameter %s: bad boolean %q", p.Name, v)
			}
		case TypeSelect:
			ok := false
			for _, c := range p.Choices {
				if v == c {
					ok = true
				}
			}
			if !ok {
				return fmt.Errorf("parameter %s: %q is not one of %s", p.Name, v, strings.Join(p.Choices, ", "))
			}
		}
	}
	return nil
}
