package clusterctx

import (
	"fmt"
	"path/filepath"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// EnvVar names the environment variable whose value is a client's context
// when it is given none on its command line; unset or empty is the default
// context.
const EnvVar = "CONCORD_CLUSTER"

// MaxNameLen bounds a context's name, which becomes a path element, a bus
// name element and a systemd instance name.
const MaxNameLen = 32

// Directories of the default context. A named context has a directory of
// its name inside each of them.
const (
	ConfigDir  = "/etc/concord"
	StateRoot  = "/var/lib/concord"
	RuntimeDir = "/run/concord"
)

// groupSocketName is the process-group socket in a context's runtime
// directory.
const groupSocketName = "groups.sock"

// reserved are names that would collide with what the default context
// keeps in the same directories (/etc/concord/authkey,
// /var/lib/concord/deleted and view-seq), and "default", which would read
// as the default context while being another. Names with a dot, as the
// other files there have, are not valid anyway.
var reserved = map[string]string{
	"authkey":  "it is the default context's key file in " + ConfigDir,
	"deleted":  "it is a file of the default context in " + StateRoot,
	"view-seq": "it is a file of the default context in " + StateRoot,
	"default":  "the default context has no name: give none (or an empty one)",
}

// Context is one cluster context. The zero value is the default context.
type Context struct {
	name string
}

// Default is the default context.
var Default = Context{}

// Parse checks a context name; "" is the default context.
func Parse(name string) (Context, error) {
	if err := checkName(name); err != nil {
		return Context{}, fmt.Errorf("cluster context %q: %w", name, err)
	}
	return Context{name: name}, nil
}

// FromEnv is the context named by EnvVar in getenv (os.Getenv), the
// default when it is unset or empty.
func FromEnv(getenv func(string) string) (Context, error) {
	c, err := Parse(getenv(EnvVar))
	if err != nil {
		return Context{}, fmt.Errorf("%s: %w", EnvVar, err)
	}
	return c, nil
}

func checkName(name string) error {
	if name == "" {
		return nil
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("is %d bytes long, at most %d are allowed", len(name), MaxNameLen)
	}
	if c := name[0]; c < 'a' || c > 'z' {
		return fmt.Errorf("must start with a lowercase letter a-z, not %q", rune(c))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return fmt.Errorf("character %d is %q; only lowercase letters a-z, digits, '-' and '_' are allowed", i+1, rune(c))
		}
	}
	if why, ok := reserved[name]; ok {
		return fmt.Errorf("is reserved: %s", why)
	}
	return nil
}

// Name is the context's name, "" for the default context.
func (c Context) Name() string { return c.name }

// IsDefault reports whether c is the default context.
func (c Context) IsDefault() bool { return c.name == "" }

// String names the context for people: its name, or "default".
func (c Context) String() string {
	if c.name == "" {
		return "default"
	}
	return c.name
}

// dir is root for the default context, root/NAME for a named one.
func (c Context) dir(root string) string {
	if c.name == "" {
		return root
	}
	return filepath.Join(root, c.name)
}

// ConfigPath is concord-noded's configuration file.
func (c Context) ConfigPath() string {
	if c.name == "" {
		return config.DefaultPath
	}
	return filepath.Join(c.dir(ConfigDir), filepath.Base(config.DefaultPath))
}

// KeyPath is the cluster key file.
func (c Context) KeyPath() string {
	if c.name == "" {
		return frame.DefaultKeyPath
	}
	return filepath.Join(c.dir(ConfigDir), filepath.Base(frame.DefaultKeyPath))
}

// StateDir is concord-noded's state directory.
func (c Context) StateDir() string { return c.dir(StateRoot) }

// RuntimeDir is the directory of the context's sockets.
func (c Context) RuntimeDir() string { return c.dir(RuntimeDir) }

// GroupSocket is the path of the process-group socket.
func (c Context) GroupSocket() string { return filepath.Join(c.RuntimeDir(), groupSocketName) }

// BusName is the D-Bus name concord-noded owns: nodebus.BusName, with the
// context's name as one more element for a named context. A valid context
// name is a valid bus name element (it starts with a letter).
func (c Context) BusName() string {
	if c.name == "" {
		return nodebus.BusName
	}
	return nodebus.BusName + "." + c.name
}

// Unit is the systemd unit that runs concord-noded for the context, as
// systemctl takes it (without ".service").
func (c Context) Unit() string {
	if c.name == "" {
		return "concord-noded"
	}
	return "concord-noded@" + c.name
}

// Ctl is the concordctl command line that reaches the context, for the
// commands a message tells the admin to run.
func (c Context) Ctl() string {
	if c.name == "" {
		return "concordctl"
	}
	return "concordctl --cluster " + c.name
}
