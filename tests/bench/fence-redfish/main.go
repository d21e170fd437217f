package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/concord-ha/concord/lib/api/fenceproto"
	"github.com/concord-ha/concord/tests/harness/fencepeer"
	"github.com/concord-ha/concord/tests/harness/redfishbmc"
)

const reference = "/usr/sbin/fence_redfish"

func main() {
	trials := flag.Int("n", 20, "trials per agent and action")
	flag.Parse()
	if err := run(*trials); err != nil {
		fmt.Fprintln(os.Stderr, "fence-redfish bench:", err)
		os.Exit(1)
	}
}

type target struct {
	name  string
	port  int
	setOn func(agent string) error // power on before an off trial (untimed)
	close func()
}

func run(n int) error {
	dir, err := os.MkdirTemp("", "bench-fence-redfish")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ours, err := fencepeer.Build(dir, "fence_concord_redfish")
	if err != nil {
		return err
	}
	agents := []string{ours}
	if _, err := os.Stat(reference); err == nil {
		agents = append(agents, reference)
	} else {
		fmt.Printf("# %s missing (Debian package fence-agents): ours only\n", reference)
	}

	s := redfishbmc.New("admin", "secret")
	if err := s.Start(); err != nil {
		return err
	}
	targets := []target{{name: "go-bmc", port: s.Port(),
		setOn: func(string) error { s.SetPower("1", true); return nil }, close: func() { s.Close() }}}
	if py, err := startPython(filepath.Join(dir, "py")); err != nil {
		fmt.Printf("# python fixture skipped: %v\n", err)
	} else {
		targets = append(targets, py)
	}
	defer func() {
		for _, t := range targets {
			t.close()
		}
	}()

	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("# %d trials each; wall time from process start to exit, key=value on stdin; loadavg %s", n, load)
	fmt.Printf("%-12s %-22s %-7s %9s %9s %9s\n", "fixture", "agent", "action", "median", "min", "max")
	for _, t := range targets {
		medians := map[string]time.Duration{}
		for _, action := range []string{"status", "off"} {
			for _, agent := range agents {
				var d []time.Duration
				failed := 0
				for i := 0; i < n; i++ {
					if action == "off" || i == 0 {
						if err := t.setOn(ours); err != nil {
							return err
						}
					}
					res, err := fenceproto.Call(context.Background(), agent, action, params(t.port), time.Minute)
					if err != nil {
						return err
					}
					if res.ExitCode != 0 {
						// A failed trial is reported, not timed; the run goes on.
						failed++
						fmt.Fprintf(os.Stderr, "%s %s on %s: exit %d: %s", filepath.Base(agent), action, t.name, res.ExitCode, res.Stderr)
						continue
					}
					d = append(d, res.Duration)
				}
				if len(d) == 0 {
					fmt.Printf("%-12s %-22s %-7s all %d trials failed\n", t.name, filepath.Base(agent), action, n)
					continue
				}
				sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
				med := d[len(d)/2]
				if len(d)%2 == 0 {
					med = (d[len(d)/2-1] + d[len(d)/2]) / 2
				}
				medians[filepath.Base(agent)+action] = med
				note := ""
				if failed > 0 {
					note = fmt.Sprintf("  (%d of %d trials failed)", failed, n)
				}
				fmt.Printf("%-12s %-22s %-7s %9s %9s %9s%s\n", t.name, filepath.Base(agent), action, ms(med), ms(d[0]), ms(d[len(d)-1]), note)
			}
			if r, ok := medians["fence_redfish"+action]; ok {
				fmt.Printf("%-12s %-22s %-7s %8.1fx\n", t.name, "speed-up (median)", action, float64(r)/float64(medians["fence_concord_redfish"+action]))
			}
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

func params(port int) map[string]string {
	return map[string]string{"ip": "127.0.0.1", "ipport": strconv.Itoa(port), "username": "admin",
		"password": "secret", "ssl_insecure": "1"}
}

// startPython runs the shared Python fixture.
func startPython(dir string) (target, error) {
	r, err := fencepeer.StartRedfish(dir, "admin", "secret")
	if err != nil {
		return target{}, err
	}
	return target{name: "py-fixture", port: r.Port,
		setOn: func(agent string) error {
			res, err := fenceproto.Call(context.Background(), agent, "on", params(r.Port), time.Minute)
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("on: exit %d: %s", res.ExitCode, res.Stderr)
			}
			return err
		},
		close: r.Stop}, nil
}
