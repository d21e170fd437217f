package confstore

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/store/atomicfile/crashfs"
)

// crashPoint is a moment of the run: the disk states a power cut then
// could leave, and how many changes had been acknowledged.
type crashPoint struct {
	op     string
	images []*crashfs.FS
	acked  int // changes acknowledged; -1: not even the bootstrap
}

// runLone handles every Ready of a lone store (its own majority), passing
// each applied result to seen, and ticks when idle until done reports true.
func runLone(s *Store, seen func(Result), done func() bool) error {
	for range 300 {
		for {
			rd, ok := s.Ready()
			if !ok {
				break
			}
			if err := s.Advance(rd); err != nil {
				return fmt.Errorf("advance: %v", err)
			}
			for _, r := range rd.Applied {
				seen(r)
			}
		}
		if done() {
			return nil
		}
		s.Tick()
	}
	return fmt.Errorf("not there after 300 ticks (%+v)", s.Status())
}

// leadLone runs a lone store until it leads with its configuration agreed.
func leadLone(s *Store) error {
	return runLone(s, func(Result) {}, func() bool { return s.Status().State == "leader" && s.st.Sealed })
}

// doLone proposes op to a lone store and runs it until op is applied:
// when the daemon would answer its caller.
func doLone(s *Store, op Op) error {
	req, err := s.Propose(op)
	if err != nil {
		return err
	}
	var result error
	applied := false
	err = runLone(s, func(r Result) {
		if r.ReqID == req {
			result, applied = r.Err, true
		}
	}, func() bool { return applied })
	if err != nil {
		return err
	}
	return result
}

// TestAcknowledgedChangesSurviveCrashes runs a lone store on a file system
// that forgets what was not synced, and at every file operation (write,
// fsync, rename, folder fsync, ...) takes every state a power cut could
// leave. Each must open, and once the store leads again it must hold every
// change acknowledged before that moment: the configuration is the one
// after the first n changes, n at least the number acknowledged.
func TestAcknowledgedChangesSurviveCrashes(t *testing.T) {
	const dir = "/var/lib/concord"
	initial := testCluster(1)
	ops := []Op{
		{Kind: SetOption, Key: "a", Value: "1"},
		{Kind: SetQuorum, Key: "last_man_standing", Value: "yes"},
		{Kind: SetOption, Key: "b", Value: "2"},
		{Kind: EditNode, Number: 1, Node: func() config.Node { n := testNode(1); n.Votes = 3; return n }()},
		{Kind: SetOption, Key: "colour", Value: ""},
		{Kind: SetOption, Key: "c", Value: "3"},
		{Kind: SetOption, Key: "d", Value: "4"},
	}
	// want[n]: the configuration after the first n changes.
	want := []*config.Cluster{cloneCluster(initial)}
	st := &state{Sealed: true, Cluster: *cloneCluster(initial)}
	st.index()
	for _, op := range ops {
		if err := st.apply(op); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		want = append(want, cloneCluster(&st.Cluster))
	}

	fsys := crashfs.New()
	acked := -1
	var points []crashPoint
	fsys.AfterOp = func(op string) {
		points = append(points, crashPoint{op: op, images: fsys.Crashes(), acked: acked})
	}
	s, err := open(fsys, dir, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.compactEvery = 3 // snapshots and new logs during the run, not only appends
	if err := s.Bootstrap(initial); err != nil {
		t.Fatal(err)
	}
	acked = 0
	if err := leadLone(s); err != nil {
		t.Fatal(err)
	}
	for i, op := range ops {
		if err := doLone(s, op); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		acked = i + 1
	}
	if !reflect.DeepEqual(s.Cluster(), want[len(ops)]) {
		t.Fatalf("the run ends with %+v, want %+v", s.Cluster(), want[len(ops)])
	}
	if s.snapIndex == 0 || s.snapIndex == 1 {
		t.Fatal("the run never compacted the log")
	}

	// The same disk state can come from many moments; check it once,
	// against the most that was acknowledged when it could occur.
	type check struct {
		img   *crashfs.FS
		acked int
		op    string
	}
	byState := map[string]*check{}
	var order []string
	for _, p := range points {
		for _, img := range p.images {
			k := stateKey(img)
			if c := byState[k]; c != nil {
				if p.acked > c.acked {
					c.acked, c.op = p.acked, p.op
				}
				continue
			}
			byState[k] = &check{img, p.acked, p.op}
			order = append(order, k)
		}
	}
	t.Logf("%d file operations, %d distinct crash states", len(points), len(order))
	failures := 0
	for _, k := range order {
		c := byState[k]
		if err := recoverAndCheck(c.img, dir, c.acked, want); err != nil {
			t.Errorf("power cut after %q (%d changes acknowledged): %v\n%s", c.op, c.acked, err, describe(c.img))
			if failures++; failures == 5 {
				t.Fatal("giving up after 5 failures")
			}
		}
	}
}

// recoverAndCheck opens the store on a crash state and checks what it holds.
func recoverAndCheck(img *crashfs.FS, dir string, acked int, want []*config.Cluster) error {
	s, err := open(img, dir, 1, nil)
	if err != nil {
		return fmt.Errorf("open: %v", err)
	}
	defer s.Close()
	if !s.Initialized() {
		if acked >= 0 {
			return fmt.Errorf("not initialized after an acknowledged bootstrap")
		}
		return nil
	}
	s.compactEvery = 3
	if err := leadLone(s); err != nil {
		return err
	}
	got := s.Cluster()
	n := slices.IndexFunc(want, func(c *config.Cluster) bool { return reflect.DeepEqual(c, got) })
	switch {
	case n < 0:
		return fmt.Errorf("holds a configuration no prefix of the changes gives: %+v", got)
	case n < acked:
		return fmt.Errorf("holds the first %d changes, lost %d acknowledged ones", n, acked-n)
	}
	// And it goes on working.
	if err := doLone(s, Op{Kind: SetOption, Key: "after", Value: "crash"}); err != nil {
		return fmt.Errorf("a change after recovery: %v", err)
	}
	return nil
}

func stateKey(img *crashfs.FS) string {
	files := img.Files()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s\x00%d\x00%s\x00", n, len(files[n]), files[n])
	}
	return b.String()
}

func describe(img *crashfs.FS) string {
	var lines []string
	for n, b := range img.Files() {
		lines = append(lines, fmt.Sprintf("  %s: %d bytes", n, len(b)))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
