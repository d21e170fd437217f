package cluster

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func TestNamesFitInterfaceNames(t *testing.T) {
	tag := newTag()
	if !tagRE.MatchString(tag) || len(tag) != 8 {
		t.Fatalf("tag %q: want %q + 6 base-36 digits", tag, namePrefix)
	}
	if newTag() == tag {
		t.Errorf("two clusters of one process share tag %s", tag)
	}
	for _, name := range []string{
		fmt.Sprintf("%sb%d", tag, 7),        // bridge of the last link
		fmt.Sprintf("%sn%dh%d", tag, 32, 7), // host veth of the last node's last link
	} {
		if len(name) > 15 {
			t.Errorf("interface name %q is %d bytes; Linux allows 15", name, len(name))
		}
	}
}

func TestMedianBoot(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		boot []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{5 * ms}, 5 * ms},
		{[]time.Duration{9 * ms, 1 * ms, 5 * ms}, 5 * ms},
		{[]time.Duration{4 * ms, 1 * ms, 3 * ms, 2 * ms}, 3 * ms},
	} {
		if got := (Timings{Boot: tc.boot}).MedianBoot(); got != tc.want {
			t.Errorf("MedianBoot(%v) = %v, want %v", tc.boot, got, tc.want)
		}
	}
}

func TestDead(t *testing.T) {
	for _, tc := range []struct {
		pid  int
		want bool
	}{
		{os.Getpid(), false},
		{0, true},
		{1 << 30, true}, // above pid_max
	} {
		if got := Dead(tc.pid); got != tc.want {
			t.Errorf("Dead(%d) = %v, want %v", tc.pid, got, tc.want)
		}
	}
}

func TestCLIEnvRunsCleanupsNewestFirst(t *testing.T) {
	var order []int
	e := &CLIEnv{W: os.Stderr}
	for i := 1; i <= 3; i++ {
		e.Cleanup(func() { order = append(order, i) })
	}
	e.Close()
	e.Close()
	if fmt.Sprint(order) != "[3 2 1]" {
		t.Errorf("cleanups ran as %v, want [3 2 1] once", order)
	}
	if e.Failed() {
		t.Error("Failed before Fail")
	}
	e.Fail()
	if !e.Failed() {
		t.Error("not Failed after Fail")
	}
}
