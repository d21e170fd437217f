package fenceipmi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/fenceproto"
	"github.com/concord-ha/concord/lib/driver/ipmi"
)

const (
	installed   = "/usr/sbin/fence_concord_ipmi" // where Pacemaker's fencer looks for agents
	pcmkNode    = "node1"                        // the one cluster node (this host)
	fenceTarget = "ipminode"                     // the node whose power the ipmi_sim switches
)

// Directories a hand-started corosync and Pacemaker write to; whatever the
// test adds there is removed afterwards. (/dev/shm: libqb's IPC files.)
var pcmkStateDirs = []string{"/var/lib/pacemaker/cib", "/var/lib/pacemaker/pengine", "/var/lib/pacemaker/blackbox",
	"/var/lib/pacemaker/cores", "/var/lib/corosync", "/var/log/pacemaker", "/var/log/corosync", "/dev/shm"}

// TestPacemakerFencesThroughOurAgent: Debian's Pacemaker 2.1 on a one-node
// corosync cluster (started by hand on loopback, no systemd) with
// fence_concord_ipmi as a stonith resource whose target's power is an
// ipmi_sim. stonith_admin lists the agent and its metadata, and --reboot and
// --fence (off) succeed with the chassis really switched.
func TestPacemakerFencesThroughOurAgent(t *testing.T) {
	requireTools(t, "ipmi_sim", "corosync", "pacemakerd", "stonith_admin", "cibadmin", "crm_attribute", "crm_mon")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root (installs " + installed + ", runs corosync and pacemakerd)")
	}
	for _, name := range []string{"corosync", "pacemakerd", "pacemaker-fenced"} {
		if pids := procsNamed(name); len(pids) > 0 {
			t.Skipf("SKIP: %s already runs on this host (PIDs %v): not starting a second cluster", name, pids)
		}
	}
	if _, err := os.Stat("/var/lib/pacemaker/cib/cib.xml"); err == nil {
		t.Skip("SKIP: /var/lib/pacemaker/cib/cib.xml exists: this host has a cluster configuration the test must not touch")
	}
	before := map[string]bool{}
	for _, d := range pcmkStateDirs {
		for _, f := range listDir(d) {
			before[f] = true
		}
	}
	t.Cleanup(func() {
		for _, d := range pcmkStateDirs {
			for _, f := range listDir(d) {
				if !before[f] && (d != "/dev/shm" || strings.HasPrefix(filepath.Base(f), "qb-")) {
					os.RemoveAll(f)
				}
			}
		}
	})
	installAgent(t)

	s := startSim(t)
	p := params(s, variants[0])
	if res := call(t, ours, "on", p); res.ExitCode != 0 {
		t.Fatalf("power on before the test: %+v", res)
	}

	dir := t.TempDir()
	startCluster(t, dir)

	run := func(name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		return string(out), err
	}
	must := func(name string, args ...string) string {
		t.Helper()
		out, err := run(name, args...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return out
	}

	// What Pacemaker sees of the agent before any device exists.
	if out := must("stonith_admin", "--list-installed"); !slices.Contains(strings.Fields(out), "fence_concord_ipmi") {
		t.Errorf("stonith_admin --list-installed does not show fence_concord_ipmi:\n%s", out)
	}
	md, err := fenceproto.ParseMetadata([]byte(must("stonith_admin", "--metadata", "--agent", "fence_concord_ipmi")))
	if err != nil {
		t.Fatal(err)
	}
	if md.Name != "fence_concord_ipmi" || md.Param("lanplus") == nil || md.Param("cipher") == nil || md.HostArgument() != "plug" {
		t.Errorf("metadata through stonith_admin: name %q, lanplus %v, cipher %v, host argument %q",
			md.Name, md.Param("lanplus") != nil, md.Param("cipher") != nil, md.HostArgument())
	}

	must("crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update", "true")
	must("crm_attribute", "--type", "crm_config", "--name", "no-quorum-policy", "--update", "ignore")
	nv := func(name, value string) string {
		return fmt.Sprintf(`<nvpair id="fence-ipmi-%s" name="%s" value="%s"/>`, name, name, value)
	}
	prim := `<primitive id="fence-ipmi" class="stonith" type="fence_concord_ipmi"><instance_attributes id="fence-ipmi-ia">` +
		nv("ip", "127.0.0.1") + nv("ipport", strconv.Itoa(s.Port)) + nv("username", AdminUser) + nv("password", AdminPass) +
		nv("lanplus", "1") + nv("cipher", "3") + nv("pcmk_host_list", fenceTarget) + nv("pcmk_host_check", "static-list") +
		`</instance_attributes><operations><op id="fence-ipmi-monitor" name="monitor" interval="60s"/></operations></primitive>`
	must("cibadmin", "--create", "-o", "resources", "--xml-text", prim)

	// The fencer registers the device once it has read the new CIB.
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _ := run("stonith_admin", "--list-registered")
		if strings.Contains(out, "fence-ipmi") {
			break
		}
		if time.Now().After(deadline) {
			crm, _ := run("crm_mon", "-1")
			t.Fatalf("fence-ipmi never registered with the fencer:\n%s\n%s\n%s", out, crm, tail(filepath.Join(dir, "pacemaker.log"), 30))
		}
		time.Sleep(250 * time.Millisecond)
	}
	if out := must("stonith_admin", "--list", fenceTarget); !strings.Contains(out, "fence-ipmi") {
		t.Errorf("stonith_admin --list %s does not offer fence-ipmi:\n%s", fenceTarget, out)
	}

	steps := []struct {
		args   []string
		on     bool
		events []string
	}{
		{[]string{"--reboot", fenceTarget}, true, []string{"power 0", "power 1"}},
		{[]string{"--fence", fenceTarget}, false, []string{"power 0"}}, // "off": 2.1's option is --fence
		{[]string{"--reboot", fenceTarget}, true, []string{"power 1"}}, // already off: onoff only powers on
	}
	for _, st := range steps {
		s.ClearEvents()
		out, err := run("stonith_admin", append(st.args, "--timeout", "60")...)
		if err != nil {
			t.Errorf("stonith_admin %v: %v\n%s\n%s", st.args, err, out, tail(filepath.Join(dir, "pacemaker.log"), 30))
			continue
		}
		if s.Powered() != st.on || !slices.Equal(s.Events(), st.events) {
			t.Errorf("stonith_admin %v: node on=%v events %q, want on=%v events %q", st.args, s.Powered(), s.Events(), st.on, st.events)
		}
	}
	// The history keeps the latest operation per action.
	if out := must("stonith_admin", "--history", fenceTarget); !strings.Contains(out, "reboot of "+fenceTarget+" successful") || strings.Contains(out, "failed") {
		t.Errorf("fence history:\n%s", out)
	}
	// The session the library opens still agrees with what Pacemaker did.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := ipmi.Dial(ctx, simConfig(s, ipmi.LANPlus, 3))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if on, err := sess.PowerOn(ctx); err != nil || !on {
		t.Errorf("chassis power after the last reboot: on=%v, %v", on, err)
	}
}

// installAgent puts the freshly built agent where the fencer looks,
// keeping any installed one to put back.
func installAgent(t *testing.T) {
	t.Helper()
	backup := ""
	if _, err := os.Stat(installed); err == nil {
		backup = installed + ".concord-test-backup"
		if err := os.Rename(installed, backup); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		os.Remove(installed)
		if backup != "" {
			os.Rename(backup, installed)
		}
	})
	b, err := os.ReadFile(ours)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(installed, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// startCluster starts corosync (one node on 127.0.0.1, knet) and pacemakerd
// in the foreground as our children; cleanup stops them by PID.
func startCluster(t *testing.T, dir string) {
	t.Helper()
	conf := filepath.Join(dir, "corosync.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`totem {
	version: 2
	cluster_name: concord-ipmi-test
	transport: knet
	crypto_cipher: none
	crypto_hash: none
}
logging {
	to_stderr: no
	to_syslog: no
	to_logfile: yes
	logfile: %s/corosync.log
	timestamp: on
}
quorum {
	provider: corosync_votequorum
}
nodelist {
	node {
		name: %s
		nodeid: 1
		ring0_addr: 127.0.0.1
	}
}
`, dir, pcmkNode)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	corosync := daemon(t, dir, "corosync", nil, "corosync", "-f", "-c", conf)
	// corosync is ready when its quorum service answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if out, err := exec.Command("corosync-quorumtool", "-s").CombinedOutput(); err == nil && bytes.Contains(out, []byte("Quorate:          Yes")) {
			break
		}
		if time.Now().After(deadline) || !corosync.alive() {
			t.Fatalf("corosync not quorate:\n%s", tail(filepath.Join(dir, "corosync.log"), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	env := []string{"PCMK_logfile=" + filepath.Join(dir, "pacemaker.log"), "PCMK_blackbox=no"}
	pcmk := daemon(t, dir, "pacemakerd", env, "pacemakerd", "-f")
	deadline = time.Now().Add(60 * time.Second)
	for {
		// The CIB manager and fencer answer once pacemakerd has started them.
		out, err := exec.Command("stonith_admin", "--list-registered").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || !pcmk.alive() {
			t.Fatalf("fencer not up: %v %s\n%s", err, out, tail(filepath.Join(dir, "pacemaker.log"), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// daemon starts a foreground daemon. Cleanup sends SIGTERM, waits up to
// 60 s, then SIGKILLs it and any children it left (found by parent PID).
func daemon(t *testing.T, dir, name string, env []string, argv ...string) *proc {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); out.Close(); close(p.done) }()
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		children := childrenOf(pid)
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			t.Errorf("%s (PID %d) ignored SIGTERM for 60 s: killed", name, pid)
			cmd.Process.Kill()
			<-p.done
		}
		for _, c := range children {
			if isChildAlive(c) {
				syscall.Kill(c, syscall.SIGKILL)
			}
		}
	})
	return p
}

// childrenOf lists the PIDs whose parent is pid.
func childrenOf(pid int) []int {
	var kids []int
	for _, f := range listDir("/proc") {
		n, err := strconv.Atoi(filepath.Base(f))
		if err != nil {
			continue
		}
		if ppid, ok := parentPID(n); ok && ppid == pid {
			kids = append(kids, n)
		}
	}
	return kids
}

func parentPID(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// isChildAlive: the PID still exists and belongs to a pacemaker daemon
// (guards against a recycled PID).
func isChildAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(b, []byte("pacemaker"))
}

func procsNamed(name string) []int {
	var pids []int
	for _, f := range listDir("/proc") {
		n, err := strconv.Atoi(filepath.Base(f))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(f, "comm"))
		if err == nil && strings.TrimSpace(string(b)) == name {
			pids = append(pids, n)
		}
	}
	return pids
}

func listDir(d string) []string {
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil
	}
	out := make([]string, len(ents))
	for i, e := range ents {
		out[i] = filepath.Join(d, e.Name())
	}
	return out
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil && !errors.Is(err, io.EOF) {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
