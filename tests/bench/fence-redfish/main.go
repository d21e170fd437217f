package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/concord-ha/concord/lib/fenceproto"
	"github.com/concord-ha/concord/tests/fenceredfish/bmc"
)

const reference = "/usr/sbin/fence_redfish"

func main() {
	trials := flag.Int("n", 20, "trials per agent and action")
	testdata := flag.String("testdata", "tests/fenceredfish/testdata", "folder with the copied Python fixture")
	flag.Parse()
	if err := run(*trials, *testdata); err != nil {
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

func run(n int, testdata string) error {
	dir, err := os.MkdirTemp("", "bench-fence-redfish")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ours := filepath.Join(dir, "fence_concord_redfish")
	build := exec.Command("go", "build", "-o", ours, "github.com/concord-ha/concord/fence-agents/fence_concord_redfish")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building fence_concord_redfish: %v", err)
	}
	agents := []string{ours}
	if _, err := os.Stat(reference); err == nil {
		agents = append(agents, reference)
	} else {
		fmt.Printf("# %s missing (Debian package fence-agents): ours only\n", reference)
	}

	s := bmc.New("admin", "secret")
	if err := s.Start(); err != nil {
		return err
	}
	targets := []target{{name: "go-bmc", port: s.Port(),
		setOn: func(string) error { s.SetPower("1", true); return nil }, close: func() { s.Close() }}}
	if py, err := startPython(dir, testdata); err != nil {
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
						return fmt.Errorf("%s %s on %s: exit %d: %s", filepath.Base(agent), action, t.name, res.ExitCode, res.Stderr)
					}
					d = append(d, res.Duration)
				}
				sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
				med := d[len(d)/2]
				if len(d)%2 == 0 {
					med = (d[len(d)/2-1] + d[len(d)/2]) / 2
				}
				medians[filepath.Base(agent)+action] = med
				fmt.Printf("%-12s %-22s %-7s %9s %9s %9s\n", t.name, filepath.Base(agent), action, ms(med), ms(d[0]), ms(d[len(d)-1]))
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

// startPython runs the shared Python fixture copied into testdata.
func startPython(dir, testdata string) (target, error) {
	for _, tool := range []string{"python3", "openssl", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			return target{}, fmt.Errorf("%s missing", tool)
		}
	}
	script := filepath.Join(testdata, "redfish", "run-redfish.sh")
	if _, err := os.Stat(script); err != nil {
		return target{}, err
	}
	node := filepath.Join(dir, "node")
	os.MkdirAll(node, 0o755)
	start, err := os.ReadFile(filepath.Join(testdata, "ipmi", "dummy-node-start"))
	if err != nil {
		return target{}, err
	}
	os.WriteFile(filepath.Join(node, "start"), start, 0o755)
	h, err := bmc.NewHang() // a free port
	if err != nil {
		return target{}, err
	}
	port := h.Port()
	h.Close()
	out, err := exec.Command("sh", script, strconv.Itoa(port), node, filepath.Join(dir, "rf"), "admin", "secret").Output()
	if err != nil {
		return target{}, fmt.Errorf("run-redfish.sh: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return target{}, fmt.Errorf("run-redfish.sh printed %q", out)
	}
	return target{name: "py-fixture", port: port,
		setOn: func(agent string) error {
			res, err := fenceproto.Call(context.Background(), agent, "on", params(port), time.Minute)
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("on: exit %d: %s", res.ExitCode, res.Stderr)
			}
			return err
		},
		close: func() {
			syscall.Kill(pid, syscall.SIGTERM)
			if b, err := os.ReadFile(filepath.Join(node, "pid")); err == nil {
				if np, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && np > 1 {
					syscall.Kill(-np, syscall.SIGKILL)
				}
			}
		}}, nil
}
