package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/clusterctx"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// API is what the commands need from concord-noded; the D-Bus client
// (nodebus.Client) implements it, tests use a stub. A change returns its
// job at once; Wait says how it ended.
type API interface {
	Status() (nodebus.Status, error)
	Config() (string, error)
	AddNode(name string, number uint16, votes uint32, links []string, attrs map[string]string) (dbus.ObjectPath, uint16, error)
	DeleteNode(name string) (dbus.ObjectPath, error)
	EditNode(name string, changes map[string]any) (dbus.ObjectPath, error)
	SetOption(key, value string) (dbus.ObjectPath, error)
	SetQuorum(key, value string) (dbus.ObjectPath, error)
	UnblockQuorum() error
	Wait(ctx context.Context, job dbus.ObjectPath) (nodebus.JobEnded, error)
	LinkStats() ([]nodebus.LinkStat, error)
}

// Env is where a command runs.
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader // answers to confirmation questions
	// Dial connects to the concord-noded that owns the bus name (that of
	// the cluster context chosen).
	Dial    func(busName string) (API, error)
	Getenv  func(string) string // nil: an empty environment
	Version string
	// GroupSocket is the path of concord-noded's process-group socket
	// (group commands); "" is the chosen cluster context's (or
	// $CONCORD_GROUP_SOCKET when set).
	GroupSocket string

	noBlock bool               // --no-block
	cluster clusterctx.Context // --cluster, else $CONCORD_CLUSTER
}

// dial connects to the chosen context's concord-noded.
func (env Env) dial() (API, error) { return env.Dial(env.cluster.BusName()) }

const usage = `Usage: concordctl [--cluster NAME] [--json] [--no-block] COMMAND

Commands:
  status [--links]                cluster view, nodes, links and quorum; with --links, per peer
                                  and link: frames in and out, drops, last heard, round-trip time
  node list                       configured nodes
  node show NAME                  one node
  node add NAME --link "IF MAC" [--link ...] [--number N] [--votes V] [--attr K=V ...]
  node delete NAME
  node edit NAME [--votes V] [--link "IF MAC" ...] [--attr K=V ...] [--rename NEW]
  group list                      the cluster's process groups: name, view, member count
  group members NAME              a group's members: node, client, pid, uid
  group watch NAME [--count N] [--timeout D] [--stats]
                                  join the group as a member and print its view changes and
                                  messages, one a line, until interrupted (--count N: N messages)
  group send NAME [--safe] [--count N] [--size BYTES] [--interval D] [TEXT]
                                  join the group, send TEXT (TEXT-0..TEXT-N-1 with --count), wait
                                  until every send completed, leave
  config show                     the replicated configuration, in cluster.conf syntax
  config set KEY VALUE            set a free-form cluster option ([options]); an empty VALUE removes it
  quorum set KEY VALUE            change a [quorum] setting on every node, e.g. two_node no
                                  (expected_votes, two_node, wait_for_all, last_man_standing,
                                  last_man_standing_window, tie_breaker; see concord.conf(5))
  quorum unblock [--yes]          force quorum on this partition after a disaster (asks to confirm)
  keygen [--file PATH] [--force]  make the cluster key (default /etc/concord/authkey;
                                  with --cluster NAME /etc/concord/NAME/authkey)
  version

Options:
  --cluster NAME
              the cluster context: talk to the concord-noded of cluster NAME on this
              host (concord-noded@NAME), not the default one; before the command.
              Default: $CONCORD_CLUSTER, else the default context
  --json      machine-readable output (stable; fields are only ever added)
  --no-block  for a change (node add/delete/edit, config set, quorum set): print the
              job's object path and return without waiting for the change
`

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Main runs concordctl with args (without the program name) and returns the exit code.
func Main(args []string, env Env) int {
	args, err := clusterFlag(args, &env)
	if err == nil {
		err = run(args, env)
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(env.Stderr, "concordctl: %v\n", explain(err, env.cluster))
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprint(env.Stderr, "Run 'concordctl help' for usage.\n")
		return 2
	}
	return 1
}

func run(args []string, env Env) error {
	jsonOut := false
	var rest []string
	for _, a := range args {
		switch a {
		case "--json", "-j":
			jsonOut = true
		case "--no-block":
			env.noBlock = true
		default:
			rest = append(rest, a)
		}
	}
	if len(rest) == 0 {
		return usageError{"no command given"}
	}
	switch rest[0] {
	case "help", "--help", "-h":
		fmt.Fprint(env.Stdout, usage)
		return nil
	case "version", "--version":
		fmt.Fprintln(env.Stdout, env.Version)
		return nil
	case "keygen":
		return keygen(rest[1:], env)
	case "status":
		links := false
		for _, a := range rest[1:] {
			if a != "--links" {
				return usageError{fmt.Sprintf("status takes only --links, got %q", a)}
			}
			links = true
		}
		api, err := env.dial()
		if err != nil {
			return err
		}
		s, err := api.Status()
		if err != nil {
			return err
		}
		if links {
			if s.LinkStats, err = api.LinkStats(); err != nil {
				return err
			}
		}
		if jsonOut {
			return writeJSON(env.Stdout, s)
		}
		printStatus(env.Stdout, s)
		if links {
			fmt.Fprintln(env.Stdout)
			printLinkStats(env.Stdout, s.LinkStats)
		}
		return nil
	case "node":
		return nodeCmd(rest[1:], jsonOut, env)
	case "group":
		return groupCmd(rest[1:], jsonOut, env)
	case "quorum":
		if len(rest) >= 2 && rest[1] == "unblock" {
			return quorumUnblock(rest[2:], env)
		}
		if len(rest) != 4 || rest[1] != "set" {
			return usageError{"usage: concordctl quorum set KEY VALUE | quorum unblock [--yes]"}
		}
		return env.change(func(api API) (dbus.ObjectPath, error) { return api.SetQuorum(rest[2], rest[3]) },
			func() { fmt.Fprintf(env.Stdout, "set quorum %s = %s\n", rest[2], rest[3]) })
	case "config":
		if len(rest) == 4 && rest[1] == "set" {
			return env.change(func(api API) (dbus.ObjectPath, error) { return api.SetOption(rest[2], rest[3]) },
				func() { fmt.Fprintf(env.Stdout, "set option %s\n", rest[2]) })
		}
		if len(rest) != 2 || rest[1] != "show" {
			return usageError{"usage: concordctl config show | config set KEY VALUE"}
		}
		api, err := env.dial()
		if err != nil {
			return err
		}
		c, err := api.Config()
		if err != nil {
			return err
		}
		fmt.Fprint(env.Stdout, c)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", rest[0])}
}

// clusterFlag takes --cluster NAME (or --cluster=NAME) from the options
// before the command and sets env.cluster from it, else from
// $CONCORD_CLUSTER; it returns the other arguments.
func clusterFlag(args []string, env *Env) ([]string, error) {
	getenv := env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	name, given := "", false
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") { // the command: the rest is its own
			rest = append(rest, args[i:]...)
			break
		}
		switch {
		case a == "--cluster" || a == "-cluster":
			if i+1 >= len(args) {
				return nil, usageError{"--cluster needs a cluster context name"}
			}
			i++
			name, given = args[i], true
		case strings.HasPrefix(a, "--cluster="):
			name, given = strings.TrimPrefix(a, "--cluster="), true
		default:
			rest = append(rest, a)
		}
	}
	if !given {
		cc, err := clusterctx.FromEnv(getenv)
		if err != nil {
			return nil, usageError{err.Error()}
		}
		env.cluster = cc
		return rest, nil
	}
	cc, err := clusterctx.Parse(name)
	if err != nil {
		return nil, usageError{"--cluster: " + err.Error()}
	}
	env.cluster = cc
	return rest, nil
}

// status dials concord-noded and reads its status.
func status(env Env) (nodebus.Status, error) {
	api, err := env.dial()
	if err != nil {
		return nodebus.Status{}, err
	}
	return api.Status()
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func keygen(args []string, env Env) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("file", env.cluster.KeyPath(), "")
	force := fs.Bool("force", false, "")
	if err := fs.Parse(args); err != nil {
		return usageError{"keygen: " + err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("keygen: unexpected argument %q", fs.Arg(0))}
	}
	if *path == env.cluster.KeyPath() && !env.cluster.IsDefault() {
		// A new context's directory is made here, as private as the
		// package's /etc/concord.
		if err := os.MkdirAll(filepath.Dir(*path), 0o700); err != nil {
			return fmt.Errorf("cluster key: %w", err)
		}
	}
	if err := frame.GenerateKey(*path, *force); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote a new cluster key to %s (mode 0600); copy it to every node\n", *path)
	return nil
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func parseAttrs(kvs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Sprintf("--attr %q: want NAME=VALUE", kv)}
		}
		m[k] = v
	}
	return m, nil
}

// positionals parses flags that may come before, between or after the
// positional arguments, and returns the positionals.
func positionals(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{fs.Name() + ": " + err.Error()}
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	return pos, nil
}

// flagArgs parses flags around the one positional argument, a node name.
func flagArgs(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := positionals(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", usageError{fmt.Sprintf("want exactly one node name, got %d", len(pos))}
	}
	return pos[0], nil
}

func nodeCmd(args []string, jsonOut bool, env Env) error {
	if len(args) == 0 {
		return usageError{"node: want list, show, add, delete or edit"}
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("node "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var links, attrs multi
	number := fs.Uint("number", 0, "")
	votes := fs.Uint("votes", 0, "")
	rename := fs.String("rename", "", "")
	fs.Var(&links, "link", "")
	fs.Var(&attrs, "attr", "")
	switch verb {
	case "list":
		if len(args) > 0 {
			return usageError{"node list takes no arguments"}
		}
		s, err := status(env)
		if err != nil {
			return err
		}
		if jsonOut {
			return writeJSON(env.Stdout, s.Nodes)
		}
		printNodes(env.Stdout, s.Nodes)
		return nil
	case "show":
		if len(args) != 1 {
			return usageError{"usage: concordctl node show NAME"}
		}
		s, err := status(env)
		if err != nil {
			return err
		}
		for _, n := range s.Nodes {
			if n.Name == args[0] {
				if jsonOut {
					return writeJSON(env.Stdout, n)
				}
				printNode(env.Stdout, n)
				return nil
			}
		}
		return fmt.Errorf("no node named %q", args[0])
	case "add":
		name, err := flagArgs(fs, args)
		if err != nil {
			return err
		}
		if len(links) == 0 {
			return usageError{"node add: at least one --link \"IFNAME MAC\" is needed"}
		}
		if *number > 65535 {
			return usageError{fmt.Sprintf("--number %d: must be 1..65535", *number)}
		}
		if *votes > 1<<31 {
			return usageError{fmt.Sprintf("--votes %d: too large", *votes)}
		}
		am, err := parseAttrs(attrs)
		if err != nil {
			return err
		}
		var num uint16
		return env.change(func(api API) (job dbus.ObjectPath, err error) {
			job, num, err = api.AddNode(name, uint16(*number), uint32(*votes), links, am)
			return job, err
		}, func() {
			fmt.Fprintf(env.Stdout, "added node %s as number %d\n", name, num)
			joinSteps(env.Stdout, name, links, env.Version, env.cluster)
		})
	case "delete":
		if len(args) != 1 {
			return usageError{"usage: concordctl node delete NAME"}
		}
		return env.change(func(api API) (dbus.ObjectPath, error) { return api.DeleteNode(args[0]) },
			func() { fmt.Fprintf(env.Stdout, "deleted node %s\n", args[0]) })
	case "edit":
		name, err := flagArgs(fs, args)
		if err != nil {
			return err
		}
		changes := map[string]any{}
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "votes":
				changes["votes"] = uint32(*votes)
			case "rename":
				changes["name"] = *rename
			case "link":
				changes["links"] = []string(links)
			case "attr":
				changes["attributes"] = nil
			}
		})
		if _, ok := changes["attributes"]; ok {
			if changes["attributes"], err = parseAttrs(attrs); err != nil {
				return err
			}
		}
		if _, ok := changes["number"]; ok || *number != 0 {
			return usageError{"node edit: a node's number cannot change; delete and add it"}
		}
		if len(changes) == 0 {
			return usageError{"node edit: nothing to change (use --votes, --link, --attr or --rename)"}
		}
		return env.change(func(api API) (dbus.ObjectPath, error) { return api.EditNode(name, changes) },
			func() { fmt.Fprintf(env.Stdout, "edited node %s\n", name) })
	}
	return usageError{fmt.Sprintf("node: unknown verb %q", verb)}
}

func printStatus(w io.Writer, s nodebus.Status) {
	q := "NOT quorate"
	if s.Quorum.Quorate {
		q = "quorate"
	}
	fmt.Fprintf(w, "Cluster:  %s (id %d)\n", s.Cluster.Name, s.Cluster.ID)
	fmt.Fprintf(w, "Node:     %s (%d), %s\n", s.LocalName, s.LocalNode, s.State)
	fmt.Fprintf(w, "View:     %d, coordinator %d, members %s\n", s.View.Seq, s.View.Coordinator, joinNums(s.View.Members))
	fmt.Fprintf(w, "Quorum:   %s: %d of %d votes, quorum %d (%s)\n", q, s.Quorum.TotalVotes, s.Quorum.ExpectedVotes, s.Quorum.Quorum, s.Quorum.Reason)
	switch {
	case s.Config.Leader != 0:
		fmt.Fprintf(w, "Config:   leader node %d, change %d applied here\n", s.Config.Leader, s.Config.Index)
	case s.Config.Index != 0:
		fmt.Fprintf(w, "Config:   no leader known (changes wait for one), change %d applied here\n", s.Config.Index)
	case s.Waiting != "":
		fmt.Fprintf(w, "Config:   not running yet: neither joined nor bootstrapped until a heartbeat link works\n")
	default:
		fmt.Fprintf(w, "Config:   not running yet (joining or bootstrapping the replicated configuration)\n")
	}
	if s.Heartbeats != "" {
		fmt.Fprintf(w, "Links:    heartbeats %s\n", s.Heartbeats)
	}
	for _, l := range s.LocalLinks {
		if l.State != "up" {
			fmt.Fprintf(w, "NIC:      link %d (%s) %s: %s\n", l.Index, l.Interface, l.State, l.Reason)
		}
	}
	if s.Waiting != "" {
		fmt.Fprintf(w, "Waiting:  for %s\n", s.Waiting)
	}
	printWarnings(w, s)
	fmt.Fprintln(w)
	printNodes(w, s.Nodes)
}

func joinNums(ns []uint16) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func printNodes(w io.Writer, ns []nodebus.NodeInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NUMBER\tNAME\tSTATE\tVOTES\tLINKS")
	for _, n := range ns {
		var ls []string
		for _, l := range n.Links {
			ls = append(ls, fmt.Sprintf("%s:%s", l.Interface, l.State))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", n.Number, n.Name, n.State, n.Votes, strings.Join(ls, " "))
	}
	tw.Flush()
}

func printNode(w io.Writer, n nodebus.NodeInfo) {
	fmt.Fprintf(w, "Name:    %s\nNumber:  %d\nUUID:    %s\nState:   %s\nVotes:   %d\nIn view: %v\n", n.Name, n.Number, n.UUID, n.State, n.Votes, n.InView)
	for _, l := range n.Links {
		fmt.Fprintf(w, "Link %d:  %s %s %s\n", l.Index, l.Interface, l.MAC, l.State)
	}
	keys := make([]string, 0, len(n.Attrs))
	for k := range n.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "Attr:    %s=%s\n", k, n.Attrs[k])
	}
}

// DialBus connects to the concord-noded that owns busName on the system bus.
func DialBus(busName string) (API, error) {
	c, err := nodebus.DialName(busName)
	if err != nil {
		return nil, err
	}
	return c, nil
}
