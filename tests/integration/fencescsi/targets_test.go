package fencescsi

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concord-ha/concord/tests/harness/fencepeer"
)

// target is a running iSCSI target process serving one 64 MiB LUN.
type target struct {
	name string // "tgtd" or "istgt"
	url  string // iscsi://127.0.0.1:PORT/IQN/LUN
	// keepsRegistrationOnLogout: SPC behaviour (istgt). tgtd binds a
	// registration to the session that made it.
	keepsRegistrationOnLogout bool
	// preemptAbort: PREEMPT AND ABORT is supported.
	preemptAbort bool
}

func needRoot(t *testing.T, bins ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root (iSCSI targets write /var/run)")
	}
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("SKIP: %s not installed (Debian packages tgt, istgt)", b)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := fencepeer.FreeTCPPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func fixture(t *testing.T, name string, vars map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "@"+k+"@", v)
	}
	return s
}

func startTgtd(t *testing.T) *target {
	t.Helper()
	needRoot(t, "tgtd", "tgtadm")
	tg, err := fencepeer.StartTgtd(t.TempDir(), "iqn.2026-11.test.concord:fence")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tg.Stop)
	return &target{name: "tgtd", url: tg.URL}
}

func startIstgt(t *testing.T) *target {
	t.Helper()
	needRoot(t, "istgt")
	work := t.TempDir()
	f, err := os.Create(filepath.Join(work, "lun.img"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	port, ucport := freePort(t), freePort(t)
	conf := filepath.Join(work, "istgt.conf")
	os.WriteFile(filepath.Join(work, "auth.conf"), nil, 0o600)
	err = os.WriteFile(conf, []byte(fixture(t, "istgt.conf.tmpl", map[string]string{
		"WORK": work, "PORT": strconv.Itoa(port), "UCPORT": strconv.Itoa(ucport)})), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p, err := fencepeer.StartProc(work, "istgt", "-c", conf, "-D")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(syscall.SIGTERM, 5*time.Second) })
	if err := p.WaitListen(fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return &target{name: "istgt", url: fmt.Sprintf("iscsi://127.0.0.1:%d/iqn.2026-11.test.concord:fence/0", port),
		keepsRegistrationOnLogout: true, preemptAbort: true}
}

func withTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
