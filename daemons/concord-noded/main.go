// Command concord-noded is Concord's node daemon: heartbeat links, failure
// detection, membership views, quorum, group messaging and the replicated
// cluster configuration. See concord-noded(8).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/concord-ha/concord/daemons/concord-noded/internal/busapi"
	"github.com/concord-ha/concord/daemons/concord-noded/internal/daemon"
	"github.com/concord-ha/concord/lib/sys/jlog"
)

var version = "dev"

func main() {
	var o daemon.Options
	flag.StringVar(&o.ConfigPath, "config", "/etc/concord/cluster.conf", "cluster configuration `file`")
	flag.StringVar(&o.KeyPath, "key", "/etc/concord/authkey", "cluster key `file` (mode 0600)")
	flag.StringVar(&o.StateDir, "state", "/var/lib/concord", "state `directory` for the replicated configuration")
	flag.StringVar(&o.NodeName, "node", "", "this node's `name` in the configuration (default: host name)")
	debug := flag.Bool("debug", false, "log debug messages")
	showVersion := flag.Bool("version", false, "print the version and exit")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to `file` until the daemon stops (for finding what costs CPU)")
	flag.Parse()
	// One event loop does the work; more Ps only add thread hand-offs and
	// idle spinning, which cost CPU on every node all the time.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if *showVersion {
		fmt.Println(version)
		return
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "concord-noded: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	var logControl *jlog.Control
	o.Logger, logControl = jlog.NewControlled("concord-noded", os.Stderr, level)
	o.Version = version

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			o.Logger.Error("cannot write the CPU profile: " + err.Error())
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	d, err := daemon.New(o)
	if err != nil {
		o.Logger.Error("cannot start: " + err.Error())
		os.Exit(1)
	}
	// The bus name is taken before the loop runs, which tells systemd
	// READY=1: a client that sees the unit started finds the API.
	bus, err := busapi.Open(d, busapi.Options{Logger: o.Logger, LogControl: logControl})
	if err != nil {
		o.Logger.Error("cannot start: " + err.Error())
		os.Exit(1)
	}
	defer bus.Close()
	d.SetEvents(bus)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := d.Run(ctx); err != nil {
		o.Logger.Error("stopped: " + err.Error())
		os.Exit(1)
	}
}
