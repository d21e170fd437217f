package ticker

import (
	"sort"
	"sync"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	const period = 30 * time.Millisecond
	// base is a multiple of 30 ms.
	at := func(ms, us int64) time.Time { return time.UnixMicro(1_699_999_999_980_000 + ms*1000 + us) }
	tests := []struct {
		name string
		now  time.Time
		want time.Duration
	}{
		{"on a boundary: the next", at(0, 0), 30 * time.Millisecond},
		{"a little late", at(0, 50), 30*time.Millisecond - 50*time.Microsecond},
		{"mid-period", at(10, 0), 20 * time.Millisecond},
		{"5 ms to go is too soon: the one after", at(25, 0), 35 * time.Millisecond},
		{"clock stepped back 1 µs", at(0, -1), 30*time.Millisecond + time.Microsecond},
		{"before 1970", time.UnixMicro(-5), 30*time.Millisecond + 5*time.Microsecond},
	}
	for _, tt := range tests {
		got := Until(tt.now, period)
		if got != tt.want {
			t.Errorf("%s: Until = %v, want %v", tt.name, got, tt.want)
		}
		if next := tt.now.Add(got); next.UnixNano()%int64(period) != 0 {
			t.Errorf("%s: Until ends off a boundary, at %d µs", tt.name, next.UnixMicro())
		}
	}
}

func TestNewBadPeriod(t *testing.T) {
	for _, p := range []time.Duration{0, -time.Second} {
		if _, err := New(p); err == nil {
			t.Errorf("New(%v) succeeded", p)
		}
	}
}

// Ticks come, on the boundaries: a scheduler can make one late, not early,
// so most must be within a small part of the period after a boundary.
func TestTicksOnBoundaries(t *testing.T) {
	const period = 100 * time.Millisecond
	tk, err := New(period)
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Stop()
	var late []time.Duration
	timeout := time.After(10 * time.Second)
	for len(late) < 9 {
		select {
		case now := <-tk.C:
			late = append(late, time.Duration(now.UnixNano()%int64(period)))
		case <-timeout:
			t.Fatalf("%d ticks in 10 s at a period of %v", len(late), period)
		}
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	if med := late[len(late)/2]; med > period/4 {
		t.Errorf("median tick %v after its boundary, want on it (all: %v)", med, late)
	}
}

func TestStop(t *testing.T) {
	tk, err := New(10 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	<-tk.C
	tk.Stop()
	tk.Stop() // twice is fine
	select {  // at most one tick was already buffered
	case <-tk.C:
	default:
	}
	select {
	case <-tk.C:
		t.Fatal("a tick after Stop")
	case <-time.After(50 * time.Millisecond):
	}
}

// A wall clock stepped back an hour (or forward a day) between ticks
// changes the phase of the next tick, never how long it takes to come.
func TestClockStepDelaysNothing(t *testing.T) {
	const period = 50 * time.Millisecond
	var mu sync.Mutex
	offset := time.Duration(0)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(offset)
	}
	tk, err := newTicker(period, now)
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Stop()
	<-tk.C
	for _, step := range []time.Duration{-time.Hour, 24 * time.Hour, -time.Minute - 7*time.Millisecond} {
		mu.Lock()
		offset += step
		mu.Unlock()
		start := time.Now()
		for range 3 {
			select {
			case <-tk.C:
			case <-time.After(5 * time.Second):
				t.Fatalf("no tick within 5 s after the clock stepped %v", step)
			}
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("3 ticks took %v after the clock stepped %v", took, step)
		}
	}
}

func TestOffBoundary(t *testing.T) {
	const period = 40 * time.Millisecond
	at := func(us int64) time.Time { return time.UnixMicro(1_700_000_000_000_000 + us) } // a boundary
	tests := []struct {
		now  time.Time
		want bool
	}{
		{at(0), false},
		{at(4999), false},
		{at(5000), true}, // an eighth of the period late
		{at(39_999), true},
		{at(40_000), false},
		{time.UnixMicro(-1), true}, // before 1970: 1 µs before a boundary
	}
	for _, tt := range tests {
		if got := offBoundary(tt.now, period); got != tt.want {
			t.Errorf("offBoundary(%d µs past a boundary) = %v, want %v", tt.now.UnixMicro()%40_000, got, tt.want)
		}
	}
}

// A wall clock stepped by part of a period moves the ticks onto its new
// boundaries.
func TestClockStepMovesThePhase(t *testing.T) {
	const period = 50 * time.Millisecond
	var mu sync.Mutex
	offset := time.Duration(0)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(offset)
	}
	tk, err := newTicker(period, now)
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Stop()
	<-tk.C
	mu.Lock()
	offset = 23 * time.Millisecond
	mu.Unlock()
	for range 3 { // the phase moves at the first tick after the step
		<-tk.C
	}
	var late []time.Duration
	for range 9 {
		select {
		case at := <-tk.C:
			late = append(late, time.Duration(at.UnixNano()%int64(period)))
		case <-time.After(5 * time.Second):
			t.Fatal("no tick within 5 s")
		}
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	if med := late[len(late)/2]; med > period/4 {
		t.Errorf("median tick %v after a boundary of the stepped clock, want on it (all: %v)", med, late)
	}
}
