// Command fence-ipmi times fence_concord_ipmi against Debian's fence_ipmilan
// and ipmitool on one ipmi_sim BMC (lanplus, cipher suite 3) and prints a
// table of medians, minima and maxima. Run by `make bench`.
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
	"time"

	"github.com/concord-ha/concord/lib/api/fenceproto"
	"github.com/concord-ha/concord/lib/driver/ipmi"
	"github.com/concord-ha/concord/tests/harness/fencepeer"
	"github.com/concord-ha/concord/tests/integration/fenceipmi"
)

const reference = "/usr/sbin/fence_ipmilan"

func main() {
	n := flag.Int("n", 20, "trials per row")
	slow := flag.Int("slow", 3, "trials for rows where fence_ipmilan takes 8-20 s per run")
	flag.Parse()
	if err := run(*n, *slow); err != nil {
		fmt.Fprintln(os.Stderr, "fence-ipmi bench:", err)
		os.Exit(1)
	}
}

type row struct {
	name  string
	n     int
	setup func() error // untimed, before each trial
	trial func() (time.Duration, error)
}

func run(n, slow int) error {
	for _, tool := range []string{"ipmi_sim", "ipmitool", reference} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Printf("# SKIP fence-ipmi bench: %s missing (Debian packages openipmi, ipmitool, fence-agents)\n", tool)
			return nil
		}
	}
	dir, err := os.MkdirTemp("", "bench-fence-ipmi")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ours, err := fencepeer.Build(dir, "fence_concord_ipmi")
	if err != nil {
		return err
	}
	s, err := fenceipmi.StartSimFreePort(filepath.Join(dir, "sim"))
	if err != nil {
		return err
	}
	defer s.Stop()
	closed, err := fencepeer.FreeUDPPort()
	if err != nil {
		return err
	}
	os.Setenv("PYTHONWARNINGS", "ignore")

	base := map[string]string{"ip": "127.0.0.1", "ipport": strconv.Itoa(s.Port), "username": fenceipmi.AdminUser,
		"password": fenceipmi.AdminPass, "lanplus": "1", "cipher": "3"}
	with := func(kv ...string) map[string]string {
		p := map[string]string{}
		for k, v := range base {
			p[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p[kv[i]] = kv[i+1]
		}
		return p
	}
	// agent runs one action and checks the exit code it must give.
	agent := func(path, action string, p map[string]string, exit int) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			res, err := fenceproto.Call(context.Background(), path, action, p, 90*time.Second)
			if err != nil {
				return 0, err
			}
			if res.ExitCode != exit {
				return 0, fmt.Errorf("%s %s: exit %d, want %d: %s", filepath.Base(path), action, res.ExitCode, exit, res.Stderr)
			}
			return res.Duration, nil
		}
	}
	powerOn := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		sess, err := ipmi.Dial(ctx, ipmi.Config{Host: "127.0.0.1", Port: s.Port, Username: fenceipmi.AdminUser,
			Password: fenceipmi.AdminPass, CipherSuite: 3})
		if err != nil {
			return err
		}
		defer sess.Close()
		if err := sess.Chassis(ctx, ipmi.PowerOn); err != nil {
			return err
		}
		if !s.Powered() {
			return fmt.Errorf("node not on after power on")
		}
		return nil
	}
	offVerified := func(path string, p map[string]string) func() (time.Duration, error) {
		f := agent(path, "off", p, 0)
		return func() (time.Duration, error) {
			d, err := f()
			if err == nil && s.Powered() {
				err = fmt.Errorf("%s off: node still on", filepath.Base(path))
			}
			return d, err
		}
	}
	ipmitool := func() (time.Duration, error) {
		t := time.Now()
		out, err := exec.Command("ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", strconv.Itoa(s.Port),
			"-U", fenceipmi.AdminUser, "-P", fenceipmi.AdminPass, "chassis", "power", "status").CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("ipmitool: %v: %s", err, out)
		}
		return time.Since(t), nil
	}
	pause := func() error { return s.Pause() }
	rows := []row{
		{"ours status", n, nil, agent(ours, "status", base, 2)},
		{"fence_ipmilan status", n, nil, agent(reference, "status", base, 2)},
		{"ipmitool chassis power status", n, nil, ipmitool},
		{"ours off (verified by status polling)", n, powerOn, offVerified(ours, base)},
		{"fence_ipmilan off (default power_wait=2)", n, powerOn, offVerified(reference, base)},
		{"fence_ipmilan off power_wait=0", n, powerOn, offVerified(reference, with("power_wait", "0"))},
		{"ours wrong password (lanplus)", n, nil, agent(ours, "status", with("password", "badpass"), fenceproto.ExitLoginDenied)},
		{"fence_ipmilan wrong password (lanplus)", n, nil, agent(reference, "status", with("password", "badpass"), 1)},
		{"ours wrong password (lan)", n, nil, agent(ours, "status", with("password", "badpass", "lanplus", "0"), fenceproto.ExitLoginDenied)},
		{"fence_ipmilan wrong password (lan)", slow, nil, agent(reference, "status", with("password", "badpass", "lanplus", "0"), 1)},
		{"ours dead BMC (closed port)", n, nil, agent(ours, "status", with("ipport", strconv.Itoa(closed)), fenceproto.ExitConnectionLost)},
		{"fence_ipmilan dead BMC (closed port)", slow, nil, agent(reference, "status", with("ipport", strconv.Itoa(closed)), 1)},
		{"ours silent BMC (ipmi_sim stopped)", n, pause, agent(ours, "status", base, fenceproto.ExitTimedOut)},
		{"fence_ipmilan silent BMC (ipmi_sim stopped)", slow, pause, agent(reference, "status", base, 1)},
		{"ours -o metadata", n, nil, agent(ours, "metadata", nil, 0)},
		{"fence_ipmilan -o metadata", n, nil, agent(reference, "metadata", nil, 0)},
	}
	fmt.Printf("# fence-ipmi bench: ipmi_sim on %s, lanplus -C 3, wall time per process run\n", s.Addr())
	fmt.Printf("%-46s %6s %10s %10s %10s\n", "case", "trials", "median", "min", "max")
	for _, r := range rows {
		var ds []time.Duration
		for i := 0; i < r.n; i++ {
			if r.setup != nil {
				if err := r.setup(); err != nil {
					return fmt.Errorf("%s: setup: %v", r.name, err)
				}
			}
			d, err := r.trial()
			if r.setup != nil && s.Alive() {
				s.Resume()
			}
			if err != nil {
				return fmt.Errorf("%s: %v", r.name, err)
			}
			ds = append(ds, d)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		fmt.Printf("%-46s %6d %10s %10s %10s\n", r.name, len(ds), ms(ds[len(ds)/2]), ms(ds[0]), ms(ds[len(ds)-1]))
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
