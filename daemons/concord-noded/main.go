// Command concord-noded is Concord's node daemon: heartbeat links, failure
// detection, membership views, quorum, group messaging and the replicated
// cluster configuration. See concord-noded(8).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/concord-ha/concord/daemons/concord-noded/internal/busapi"
	"github.com/concord-ha/concord/daemons/concord-noded/internal/daemon"
	"github.com/concord-ha/concord/lib/api/clusterctx"
	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/sys/jlog"
	"github.com/concord-ha/concord/lib/sys/version"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// Exit codes, one per way of stopping, as concord-noded(8) lists them.
// systemctl status names 2, 6 and 70 (INVALIDARGUMENT, NOTCONFIGURED,
// SOFTWARE), which is why these numbers.
const (
	exitOK       = 0  // clean stop, also after `concordctl node delete`
	exitFailed   = 1  // failed while running, or joining found no cluster yet (systemd restarts it)
	exitUsage    = 2  // bad command line (the flag package uses 2 as well)
	exitConfig   = 6  // cannot start with the configuration, key, state or NICs given
	exitWatchdog = 70 // SIGABRT: systemd's watchdog found the event loop stuck
)

func main() {
	var o daemon.Options
	cluster := flag.String("cluster", "", "cluster context `name`: run this host's member of that cluster, with its own configuration, key, state and bus name (default: the default context)")
	flag.StringVar(&o.ConfigPath, "config", "", "cluster configuration `file` (default "+config.DefaultPath+", with --cluster NAME /etc/concord/NAME/cluster.conf)")
	flag.StringVar(&o.KeyPath, "key", "", "cluster key `file`, mode 0600 (default "+frame.DefaultKeyPath+", with --cluster NAME /etc/concord/NAME/authkey)")
	flag.StringVar(&o.StateDir, "state", "", "state `directory` for the replicated configuration (default "+clusterctx.StateRoot+", with --cluster NAME "+clusterctx.StateRoot+"/NAME)")
	flag.StringVar(&o.NodeName, "node", "", "this node's `name` in the configuration (default: host name)")
	flag.StringVar(&o.GroupSocket, "group-socket", "", "`path` of the process-group socket (default /run/concord/groups.sock, with --cluster NAME /run/concord/NAME/groups.sock; none: serve no process groups)")
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
		fmt.Println(version.String())
		return
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "concord-noded: unexpected argument %q\n", flag.Arg(0))
		os.Exit(exitUsage)
	}
	cc, err := clusterctx.Parse(*cluster)
	if err != nil {
		fmt.Fprintf(os.Stderr, "concord-noded: --cluster: %v\n", err)
		os.Exit(exitUsage)
	}
	o.Context = cc
	contextDefaults(&o, cc)
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	var logControl *jlog.Control
	o.Logger, logControl = jlog.NewControlled("concord-noded", os.Stderr, level)
	o.Version = version.String()
	onAbort(o.Logger)

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			o.Logger.Error("cannot write the CPU profile: " + err.Error())
			os.Exit(exitUsage)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	d, err := daemon.New(o)
	if err != nil {
		cannotStart(o.Logger, err)
		if errors.Is(err, daemon.ErrTryAgain) {
			os.Exit(exitFailed)
		}
		os.Exit(exitConfig)
	}
	// The bus name is taken before the loop runs, which tells systemd
	// READY=1 (once a heartbeat link works): a client that sees the unit
	// started finds the API.
	bus, err := busapi.Open(d, busapi.Options{Logger: o.Logger, LogControl: logControl, BusName: cc.BusName()})
	if err != nil {
		cannotStart(o.Logger, err)
		os.Exit(exitFailed)
	}
	defer bus.Close()
	d.SetEvents(bus)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := d.Run(ctx); err != nil {
		o.Logger.Error("stopped: " + err.Error())
		pprof.StopCPUProfile()
		os.Exit(exitFailed)
	}
}

// contextDefaults fills the paths not given on the command line with
// those of the cluster context.
func contextDefaults(o *daemon.Options, cc clusterctx.Context) {
	if o.ConfigPath == "" {
		o.ConfigPath = cc.ConfigPath()
	}
	if o.KeyPath == "" {
		o.KeyPath = cc.KeyPath()
	}
	if o.StateDir == "" {
		o.StateDir = cc.StateDir()
	}
	switch o.GroupSocket {
	case "":
		o.GroupSocket = cc.GroupSocket()
	case "none":
		o.GroupSocket = ""
	}
}

// onAbort turns SIGABRT, which systemd sends when the watchdog is not fed
// (WatchdogSignal), into one log line and exitWatchdog. Left to the Go
// runtime it would dump every goroutine into the journal and exit with 2,
// the code of a bad command line. The stacks are logged at debug level.
func onAbort(log *slog.Logger) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGABRT)
	go func() {
		<-ch
		// Logging could block behind whatever stalled the loop; the exit
		// must not.
		time.AfterFunc(2*time.Second, func() { os.Exit(exitWatchdog) })
		if wd, err := sddaemon.SdWatchdogEnabled(false); err == nil && wd > 0 {
			log.Error(fmt.Sprintf("SIGABRT from systemd: the event loop stopped answering the watchdog (WatchdogSec=%v); exiting with status %d without leaving the cluster", wd, exitWatchdog))
		} else {
			log.Error(fmt.Sprintf("SIGABRT received (no watchdog is enabled, so it was sent by hand); exiting with status %d without leaving the cluster", exitWatchdog))
		}
		if log.Enabled(context.Background(), slog.LevelDebug) {
			log.Debug("goroutines at SIGABRT", "stacks", stacks())
		}
		os.Exit(exitWatchdog)
	}()
}

// stacks returns every goroutine's stack.
func stacks() string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 16<<20 {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}
