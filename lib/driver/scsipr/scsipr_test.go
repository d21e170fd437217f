package scsipr

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCDBs(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"READ KEYS", PRInCDB(ReadKeys, 8192), "5e00 0000 0000 0020 0000"},
		{"READ RESERVATION", PRInCDB(ReadReservation, 0x1234), "5e01 0000 0000 0012 3400"},
		{"REGISTER", PROutCDB(Register, 0), "5f00 0000 0000 0000 1800"},
		{"RESERVE WERO", PROutCDB(Reserve, WriteExclusiveRegistrantsOnly), "5f01 0500 0000 0000 1800"},
		{"PREEMPT AND ABORT", PROutCDB(PreemptAndAbort, WriteExclusiveRegistrantsOnly), "5f05 0500 0000 0000 1800"},
		{"REGISTER AND IGNORE", PROutCDB(RegisterAndIgnoreKey, 0), "5f06 0000 0000 0000 1800"},
		{"CLEAR", PROutCDB(Clear, 0), "5f03 0000 0000 0000 1800"},
		{"WRITE(10)", Write10CDB(0x01020304, 2), "2a00 0102 0304 0000 0200"},
		{"READ(10)", Read10CDB(7, 1), "2800 0000 0007 0000 0100"},
		{"TUR", TestUnitReadyCDB(), "0000 0000 0000"},
		{"params", PROutParams(0xa1, 0x5b0f0002, false), "0000 0000 0000 00a1 0000 0000 5b0f 0002 0000 0000 0000 0000"},
		{"params aptpl", PROutParams(0, 1, true), "0000 0000 0000 0000 0000 0000 0000 0001 0000 0000 0100 0000"},
	}
	for _, tt := range tests {
		if want := unhex(t, tt.want); !bytes.Equal(tt.got, want) {
			t.Errorf("%s: got % x, want % x", tt.name, tt.got, want)
		}
	}
}

func TestParseReadKeys(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Keys
		wantErr string
	}{
		{"none", "0000 0005 0000 0000", Keys{Generation: 5}, ""},
		{"two", "0000 0002 0000 0010 0000 0000 0000 00a1 0000 0000 0000 00b1", Keys{Generation: 2, Keys: []uint64{0xa1, 0xb1}}, ""},
		{"truncated", "0000 0002 0000 0018 0000 0000 0000 00a1", Keys{Generation: 2, Keys: []uint64{0xa1}, Truncated: true}, ""},
		{"trailing junk ignored", "0000 0001 0000 0008 0000 0000 0000 00a1 ffff", Keys{Generation: 1, Keys: []uint64{0xa1}}, ""},
		{"short", "0000 0001 0000", Keys{}, "need at least 8"},
		{"odd length", "0000 0001 0000 0007 0000 0000 0000 00", Keys{}, "multiple of 8"},
	}
	for _, tt := range tests {
		got, err := ParseReadKeys(unhex(t, tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.Generation != tt.want.Generation || !slices.Equal(got.Keys, tt.want.Keys) || got.Truncated != tt.want.Truncated {
			t.Errorf("%s: got %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestParseReadReservation(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Reservation
		wantErr string
	}{
		{"none", "0000 0003 0000 0000", Reservation{Generation: 3}, ""},
		{"held", "0000 0002 0000 0010 0000 0000 0000 00a1 0000 0000 0005 0000", Reservation{Generation: 2, Held: true, Key: 0xa1, Type: WriteExclusiveRegistrantsOnly}, ""},
		{"short descriptor", "0000 0002 0000 0010 0000 0000 0000 00a1", Reservation{}, "descriptor needs 24"},
		{"bad length", "0000 0002 0000 0008 0000 0000 0000 00a1", Reservation{}, "want 0 or 16"},
		{"short", "00", Reservation{}, "need at least 8"},
	}
	for _, tt := range tests {
		got, err := ParseReadReservation(unhex(t, tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestParseSense(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Sense
		str  string
		err  bool
	}{
		{"fixed illegal request", "7000 0500 0000 000a 0000 0000 2400", Sense{SenseIllegalRequest, 0x24, 0}, "ILLEGAL REQUEST, INVALID FIELD IN CDB (24/00)", false},
		{"fixed preempted", "7000 0600 0000 000a 0000 0000 2a03", Sense{SenseUnitAttention, 0x2a, 3}, "UNIT ATTENTION, RESERVATIONS PREEMPTED (2a/03)", false},
		{"fixed without ASC", "f000 06", Sense{Key: SenseUnitAttention}, "UNIT ATTENTION (00/00)", false},
		{"descriptor", "7206 2a05 0000 0000", Sense{SenseUnitAttention, 0x2a, 5}, "UNIT ATTENTION, REGISTRATIONS PREEMPTED (2a/05)", false},
		{"bad code", "0102 0304", Sense{}, "", true},
		{"empty", "", Sense{}, "", true},
	}
	for _, tt := range tests {
		got, err := ParseSense(unhex(t, tt.in))
		if (err != nil) != tt.err || got != tt.want || (!tt.err && got.String() != tt.str) {
			t.Errorf("%s: got %+v %q, %v; want %+v %q", tt.name, got, got.String(), err, tt.want, tt.str)
		}
	}
}

func TestKeys(t *testing.T) {
	// Values printed by fence_scsi's own formulas (python3, hashlib.md5).
	tests := []struct {
		name string
		got  func() (uint64, error)
		want string
	}{
		{"id 1", func() (uint64, error) { return KeyFromID("concord", 1) }, "5b0f0001"},
		{"id 2", func() (uint64, error) { return KeyFromID("concord", 2) }, "5b0f0002"},
		{"id 12", func() (uint64, error) { return KeyFromID("mycluster", 12) }, "6c9d0012"},
		{"id 10000", func() (uint64, error) { return KeyFromID("mycluster", 10000) }, "6c9d10000"},
		{"hash node1", func() (uint64, error) { return KeyFromHash("concord", "node1") }, "5b0f1645"},
		{"hash node2", func() (uint64, error) { return KeyFromHash("concord", "node2") }, "5b0f7888"},
		{"parse 0x", func() (uint64, error) { return ParseKey("0xA1") }, "a1"},
		{"parse leading zeros", func() (uint64, error) { return ParseKey("00b1") }, "b1"},
	}
	for _, tt := range tests {
		k, err := tt.got()
		if err != nil || FormatKey(k) != tt.want {
			t.Errorf("%s: got %s, %v; want %s", tt.name, FormatKey(k), err, tt.want)
		}
	}
	for _, bad := range []string{"", "0", "0x", "xyz", "12345678901234567", "-1"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
	if _, err := KeyFromID("", 1); err == nil {
		t.Error("KeyFromID without cluster name succeeded")
	}
	if _, err := KeyFromID("c", 0); err == nil {
		t.Error("KeyFromID with node id 0 succeeded")
	}
}

type cluster struct {
	lu     *fakeLU
	fencer map[string]*Fencer
	logs   []string
}

func newCluster(tgtd bool) *cluster {
	c := &cluster{lu: newFakeLU(), fencer: map[string]*Fencer{}}
	c.lu.noPreemptAbort = tgtd
	for _, n := range []string{"a", "b", "c"} {
		d := &Device{Name: "lu", T: &fakeNexus{c.lu, n}}
		c.fencer[n] = &Fencer{Devices: []*Device{d}, Logf: func(f string, args ...any) {
			c.logs = append(c.logs, n+": "+fmt.Sprintf(f, args...))
		}}
	}
	return c
}

func (c *cluster) writes(n string) bool {
	_, st, _, _ := (&fakeNexus{c.lu, n}).Do(context.Background(), Write10CDB(0, 1), make([]byte, 512), 0)
	return st == StatusGood
}

func TestFencer(t *testing.T) {
	ctx := context.Background()
	for _, tgtd := range []bool{false, true} {
		c := newCluster(tgtd)
		a, b := c.fencer["a"], c.fencer["b"]
		for _, step := range []struct {
			name string
			err  error
		}{
			{"unfence a", a.Unfence(ctx, 0xa1)},
			{"unfence b", b.Unfence(ctx, 0xb1)},
			{"unfence b again", b.Unfence(ctx, 0xb1)},
		} {
			if step.err != nil {
				t.Fatalf("tgtd=%v %s: %v", tgtd, step.name, step.err)
			}
		}
		if c.lu.holder != "a" || !c.writes("a") || !c.writes("b") || c.writes("c") {
			t.Fatalf("tgtd=%v: after unfence holder=%q writes a=%v b=%v c=%v", tgtd, c.lu.holder, c.writes("a"), c.writes("b"), c.writes("c"))
		}
		if err := a.Fence(ctx, 0xa1, 0xb1); err != nil {
			t.Fatalf("tgtd=%v fence: %v", tgtd, err)
		}
		c.writes("b") // drains the unit attention
		if c.writes("b") || !c.writes("a") {
			t.Errorf("tgtd=%v: after fence b writes=%v a writes=%v", tgtd, c.writes("b"), c.writes("a"))
		}
		on, err := a.Registered(ctx, 0xb1)
		if on || err != nil {
			t.Errorf("tgtd=%v: status after fence: %v, %v", tgtd, on, err)
		}
		if err := a.Fence(ctx, 0xa1, 0xb1); err != nil {
			t.Errorf("tgtd=%v: fencing twice: %v", tgtd, err)
		}
		fellBack := slices.ContainsFunc(c.logs, func(s string) bool { return strings.Contains(s, "falling back to PREEMPT") })
		if fellBack != tgtd {
			t.Errorf("tgtd=%v: fallback logged=%v; logs %q", tgtd, fellBack, c.logs)
		}
		if err := b.Unfence(ctx, 0xb1); err != nil || !c.writes("b") {
			t.Errorf("tgtd=%v: unfence after fence: %v, writes=%v", tgtd, err, c.writes("b"))
		}
		if err := a.Fence(ctx, 0xa1, 0xa1); !errors.Is(err, ErrSelfFence) {
			t.Errorf("tgtd=%v: self fence: %v", tgtd, err)
		}
	}
}

func TestFenceVictimHoldsReservation(t *testing.T) {
	ctx := context.Background()
	c := newCluster(false)
	if err := c.fencer["b"].Unfence(ctx, 0xb1); err != nil {
		t.Fatal(err)
	}
	if err := c.fencer["a"].Unfence(ctx, 0xa1); err != nil {
		t.Fatal(err)
	}
	if err := c.fencer["a"].Fence(ctx, 0xa1, 0xb1); err != nil {
		t.Fatal(err)
	}
	c.writes("b") // drains the unit attention
	if c.lu.holder != "a" || c.writes("b") {
		t.Errorf("holder %q, b still writes", c.lu.holder)
	}
}

func TestFenceReregistersLostNexus(t *testing.T) {
	ctx := context.Background()
	c := newCluster(true)
	a := c.fencer["a"]
	if err := a.Unfence(ctx, 0xa1); err != nil {
		t.Fatal(err)
	}
	if err := c.fencer["b"].Unfence(ctx, 0xb1); err != nil {
		t.Fatal(err)
	}
	// tgtd after relogin: our nexus lost its registration; a stale one with
	// the same key lingers on a dead session.
	c.lu.regs["a2"] = c.lu.regs["a"]
	delete(c.lu.regs, "a")
	c.lu.holder = "a2"
	if err := a.Fence(ctx, 0xa1, 0xb1); err != nil {
		t.Fatal(err)
	}
	c.writes("b") // drains the unit attention
	if _, ok := c.lu.regs["a"]; !ok || c.writes("b") {
		t.Errorf("registrations %v after fence", c.lu.regs)
	}
}

func TestUnfenceDoesNotReregister(t *testing.T) {
	// istgt 0.4 writes a re-registration into another initiator's entry, so
	// a registered nexus must not register again.
	ctx := context.Background()
	c := newCluster(false)
	for _, n := range []string{"a", "b"} {
		if err := c.fencer[n].Unfence(ctx, map[string]uint64{"a": 0xa1, "b": 0xb1}[n]); err != nil {
			t.Fatal(err)
		}
	}
	c.lu.log = nil
	for _, n := range []string{"a", "b"} {
		if err := c.fencer[n].Unfence(ctx, map[string]uint64{"a": 0xa1, "b": 0xb1}[n]); err != nil {
			t.Fatal(err)
		}
	}
	if slices.ContainsFunc(c.lu.log, func(s string) bool { return strings.HasPrefix(s, "REGISTER") }) {
		t.Errorf("second unfence sent %q", c.lu.log)
	}
}

func TestDeviceErrors(t *testing.T) {
	ctx := context.Background()
	c := newCluster(false)
	c.lu.down = true
	err := c.fencer["a"].Unfence(ctx, 0xa1)
	if err == nil || !strings.Contains(err.Error(), "device lu") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable: %v", err)
	}
	_, err = c.fencer["a"].Registered(ctx, 0xa1)
	if err == nil {
		t.Error("status on an unreachable device succeeded")
	}
}

// TestFenceChecksKeyGone: a target that answers PREEMPT with GOOD but
// still lists the victim's key has not fenced it; the victim can still
// write, so the fence must fail.
func TestFenceChecksKeyGone(t *testing.T) {
	ctx := context.Background()
	for _, tgtd := range []bool{false, true} {
		c := newCluster(tgtd)
		if err := c.fencer["a"].Unfence(ctx, 0xa1); err != nil {
			t.Fatal(err)
		}
		if err := c.fencer["b"].Unfence(ctx, 0xb1); err != nil {
			t.Fatal(err)
		}
		c.lu.preemptNoop = true
		err := c.fencer["a"].Fence(ctx, 0xa1, 0xb1)
		if err == nil || !strings.Contains(err.Error(), "still registered") || !strings.Contains(err.Error(), "b1") {
			t.Errorf("tgtd=%v: fence with a PREEMPT that removed nothing: %v", tgtd, err)
		}
		if !slices.ContainsFunc(c.lu.log, func(s string) bool { return strings.HasPrefix(s, "PREEMPT") }) {
			t.Errorf("tgtd=%v: no PREEMPT sent: %q", tgtd, c.lu.log)
		}
		if !c.writes("b") {
			t.Fatal("the fake target fenced b after all")
		}
		if on, err := c.fencer["a"].Registered(ctx, 0xb1); !on || err != nil {
			t.Errorf("tgtd=%v: status of b: %v, %v", tgtd, on, err)
		}
	}
}

// TestUnfenceStaleNexus: a target that dropped our registration at logout
// (tgtd) may still list our key on the dead session's nexus. READ KEYS then
// shows the key, yet our nexus cannot write; unfence must register it.
func TestUnfenceStaleNexus(t *testing.T) {
	ctx := context.Background()
	for _, staleHolds := range []bool{true, false} {
		c := newCluster(true)
		a := c.fencer["a"]
		first, second := "a", "b"
		if !staleHolds {
			first, second = "b", "a"
		}
		for _, n := range []string{first, second} {
			if err := c.fencer[n].Unfence(ctx, map[string]uint64{"a": 0xa1, "b": 0xb1}[n]); err != nil {
				t.Fatal(err)
			}
		}
		// Relogin: a's registration moves to a dead nexus, a2.
		c.lu.regs["a2"] = c.lu.regs["a"]
		delete(c.lu.regs, "a")
		if c.lu.holder == "a" {
			c.lu.holder = "a2"
		}
		if c.writes("a") {
			t.Fatal("a writes without registration")
		}
		if ok, err := a.NexusRegistered(ctx, 0xa1); ok || err != nil {
			t.Errorf("stale holds=%v: NexusRegistered before unfence: %v, %v", staleHolds, ok, err)
		}
		if on, _ := a.Registered(ctx, 0xa1); !on {
			t.Errorf("stale holds=%v: key not listed: the test does not set up a stale nexus", staleHolds)
		}
		if err := a.Unfence(ctx, 0xa1); err != nil {
			t.Fatalf("stale holds=%v: unfence: %v", staleHolds, err)
		}
		if c.lu.regs["a"] != 0xa1 || !c.writes("a") {
			t.Errorf("stale holds=%v: after unfence registrations %v, a writes %v", staleHolds, c.lu.regs, c.writes("a"))
		}
		if ok, err := a.NexusRegistered(ctx, 0xa1); !ok || err != nil {
			t.Errorf("stale holds=%v: NexusRegistered after unfence: %v, %v", staleHolds, ok, err)
		}
		if c.lu.holder != "a2" && c.lu.holder != "b" {
			t.Errorf("stale holds=%v: holder %q; unfence must not move the reservation", staleHolds, c.lu.holder)
		}
	}
}
