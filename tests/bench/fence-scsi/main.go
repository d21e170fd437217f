package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/concord-ha/concord/lib/driver/iscsi"
	"github.com/concord-ha/concord/lib/driver/scsipr"
	"github.com/concord-ha/concord/tests/harness/fencepeer"
)

const (
	targetIQN = "iqn.2026-11.test.concord:bench"
	iqnA      = "iqn.2026-11.test.concord:node-a"
	iqnB      = "iqn.2026-11.test.concord:node-b"
	keyA      = 0xa1
	keyB      = 0xb1
)

func main() {
	n := flag.Int("n", 20, "trials per measurement")
	peers := flag.String("peers", "../shared/fencing-peers/scsi", "folder with iscsi-pr.c, sg-persist-iscsi.c and build.sh, relative to the repository root where make bench runs")
	flag.Parse()
	if err := run(*n, *peers); err != nil {
		fmt.Fprintln(os.Stderr, "fence-scsi bench:", err)
		os.Exit(1)
	}
}

type row struct {
	what, impl string
	d          []time.Duration
}

func (r row) String() string {
	s := append([]time.Duration(nil), r.d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return fmt.Sprintf("| %s | %s | - | - | - | 0 |", r.what, r.impl)
	}
	return fmt.Sprintf("| %s | %s | %v | %v | %v | %d |", r.what, r.impl, med(s), s[0], s[len(s)-1], len(s))
}

func med(s []time.Duration) time.Duration {
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func run(n int, peers string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (tgtd)")
	}
	dir, err := os.MkdirTemp("", "bench-fence-scsi")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tgtd, err := fencepeer.StartTgtd(dir, targetIQN)
	if err != nil {
		return err
	}
	defer tgtd.Stop()
	url := tgtd.URL
	ours, err := fencepeer.Build(dir, "fence_concord_scsi")
	if err != nil {
		return err
	}
	havePeers := true
	if out, err := exec.Command("sh", filepath.Join(peers, "build.sh"), dir).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "libiscsi helpers not built (need libiscsi-dev, gcc): %v: %s\n", err, out)
		havePeers = false
	}
	ctx := context.Background()
	u, err := iscsi.ParseURL(url)
	if err != nil {
		return err
	}
	dial := func(iqn string) (*scsipr.Device, *iscsi.Session, error) {
		s, err := iscsi.Dial(ctx, iscsi.Config{Addr: u.Addr, Target: u.Target, LUN: u.LUN, InitiatorName: iqn})
		if err != nil {
			return nil, nil, err
		}
		return &scsipr.Device{Name: iqn, T: s}, s, nil
	}
	a, sa, err := dial(iqnA)
	if err != nil {
		return err
	}
	defer sa.Logout(ctx)
	b, sb, err := dial(iqnB)
	if err != nil {
		return err
	}
	defer sb.Logout(ctx)
	fa := &scsipr.Fencer{Devices: []*scsipr.Device{a}}
	fb := &scsipr.Fencer{Devices: []*scsipr.Device{b}}
	if err := fa.Unfence(ctx, keyA); err != nil {
		return err
	}
	if err := fb.Unfence(ctx, keyB); err != nil {
		return err
	}
	var rows []row

	// Round trips on open sessions.
	pre := row{what: "PR OUT PREEMPT, open session", impl: "lib/iscsi + lib/scsipr"}
	keys := row{what: "PR IN READ KEYS, open session", impl: "lib/iscsi + lib/scsipr"}
	for i := 0; i < n; i++ {
		if err := b.Out(ctx, scsipr.RegisterAndIgnoreKey, 0, 0, keyB, false); err != nil {
			return err
		}
		t0 := time.Now()
		err := a.Out(ctx, scsipr.Preempt, scsipr.WriteExclusiveRegistrantsOnly, keyA, keyB, false)
		pre.d = append(pre.d, time.Since(t0))
		if err != nil {
			return err
		}
		t0 = time.Now()
		if _, err := a.ReadKeys(ctx); err != nil {
			return err
		}
		keys.d = append(keys.d, time.Since(t0))
		b.TestUnitReady(ctx) // drain the unit attention (retried inside)
	}
	rows = append(rows, pre, keys)
	if havePeers {
		p, k, err := libiscsiRoundTrips(filepath.Join(dir, "iscsi-pr"), url, n)
		if err != nil {
			return err
		}
		rows = append(rows, p, k)
	}

	// Whole processes: what a fencing daemon pays per action.
	common := []string{"devices=" + url, "key=b1", "local_node=node-a", "key_file=" + filepath.Join(dir, "key"),
		"cluster_name=bench", "initiator_name=" + iqnA + "-agent"}
	os.WriteFile(filepath.Join(dir, "key"), []byte("a1\n"), 0o600)
	off := row{what: "off (remove victim key), whole process", impl: "fence_concord_scsi"}
	st := row{what: "status (READ KEYS), whole process", impl: "fence_concord_scsi"}
	for i := 0; i < n; i++ {
		if err := b.Out(ctx, scsipr.RegisterAndIgnoreKey, 0, 0, keyB, false); err != nil {
			return err
		}
		d, err := timeCmd(exec.Command(ours), append([]string{"action=off"}, common...))
		if err != nil {
			return fmt.Errorf("fence_concord_scsi off: %v", err)
		}
		off.d = append(off.d, d)
		d, err = timeCmd(exec.Command(ours), append([]string{"action=status"}, common...))
		if err != nil && !strings.Contains(err.Error(), "exit status 2") {
			return fmt.Errorf("fence_concord_scsi status: %v", err)
		}
		st.d = append(st.d, d)
		b.TestUnitReady(ctx)
	}
	rows = append(rows, off, st)
	if havePeers {
		sg := filepath.Join(dir, "sg-persist-iscsi")
		off := row{what: "off (one PREEMPT), whole process", impl: "sg-persist-iscsi -o -A --abort-as-preempt (libiscsi)"}
		refused := 0
		st := row{what: "status (READ KEYS), whole process", impl: "sg-persist-iscsi -i -k (libiscsi)"}
		for i := 0; i < n; i++ {
			if err := b.Out(ctx, scsipr.RegisterAndIgnoreKey, 0, 0, keyB, false); err != nil {
				return err
			}
			// A fresh tgtd session is unregistered: register A's key there
			// first (untimed), as fence_scsi's "on" would have.
			d, err := timeCmd(exec.Command(sg, "--iqn", iqnA, "--url", url, "--abort-as-preempt", "-n", "-o", "-A", "-T", "5", "-K", "a1", "-S", "b1"), nil)
			off.d = append(off.d, d)
			if err != nil {
				// Exit 24, RESERVATION CONFLICT: tgtd dropped A's
				// registration with the session that made it, so a
				// process per command cannot fence here.
				refused++
			}
			d, err = timeCmd(exec.Command(sg, "--iqn", iqnA, "--url", url, "-n", "-i", "-k"), nil)
			if err != nil {
				return fmt.Errorf("sg-persist-iscsi -i -k: %v", err)
			}
			st.d = append(st.d, d)
			b.TestUnitReady(ctx)
			a.Out(ctx, scsipr.Preempt, scsipr.WriteExclusiveRegistrantsOnly, keyA, keyB, false)
		}
		if refused > 0 {
			off.impl += fmt.Sprintf(", refused %d/%d: RESERVATION CONFLICT", refused, n)
		}
		rows = append(rows, off, st)
	}
	fmt.Printf("fence-scsi bench: tgtd %s, %d trials each (wall time)\n\n", url, n)
	fmt.Println("| measurement | implementation | median | min | max | n |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
	return nil
}

func timeCmd(cmd *exec.Cmd, stdin []string) (time.Duration, error) {
	if stdin != nil {
		cmd.Stdin = strings.NewReader(strings.Join(stdin, "\n") + "\n")
	}
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%v: %s", err, out)
	}
	return d, nil
}

var usRe = regexp.MustCompile(`^(\S+) (\S+) -> (.*)\[(\d+) us\]`)

// libiscsiRoundTrips runs iscsi-pr with the same sequence and reads the
// per-command times it prints.
func libiscsiRoundTrips(bin, url string, n int) (row, row, error) {
	var script strings.Builder
	fmt.Fprintf(&script, "connect A %s-lib\nconnect B %s-lib\nA register-ignore 0xa2\nB register-ignore 0xb2\nA reserve 0xa2 5\n", iqnA, iqnB)
	for i := 0; i < n; i++ {
		script.WriteString("B register-ignore 0xb2\nA preempt 0xa2 0xb2 5\nA keys\nB tur\n")
	}
	script.WriteString("A clear 0xa2\n")
	cmd := exec.Command(bin, url)
	cmd.Stdin = strings.NewReader(script.String())
	out, err := cmd.Output()
	if err != nil {
		return row{}, row{}, fmt.Errorf("iscsi-pr: %v", err)
	}
	pre := row{what: "PR OUT PREEMPT, open session", impl: "libiscsi iscsi-pr"}
	keys := row{what: "PR IN READ KEYS, open session", impl: "libiscsi iscsi-pr"}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		m := usRe.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != "A" {
			continue
		}
		us, _ := strconv.Atoi(m[4])
		d := time.Duration(us) * time.Microsecond
		switch {
		case m[2] == "preempt" && strings.HasPrefix(m[3], "GOOD"):
			pre.d = append(pre.d, d)
		case m[2] == "keys" && strings.HasPrefix(m[3], "GOOD"):
			keys.d = append(keys.d, d)
		}
	}
	if len(pre.d) != n {
		return row{}, row{}, fmt.Errorf("iscsi-pr: %d of %d preempts succeeded:\n%s", len(pre.d), n, out)
	}
	return pre, keys, nil
}
