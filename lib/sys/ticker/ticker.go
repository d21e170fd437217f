package ticker

import (
	"fmt"
	"time"
)

// Ticker sends the time on C at each boundary of its period. Like a
// time.Ticker it drops ticks for a slow receiver, and a boundary less than
// a quarter period after the previous tick is skipped, so ticks are never
// much closer than the period, nor further apart than 1.25 periods, even
// when the wall clock steps: only the phase is taken from it.
type Ticker struct {
	C      <-chan time.Time
	c      chan time.Time
	period time.Duration
	stop   func()
	now    func() time.Time // the wall clock; tests step it
}

// New returns a running Ticker; period must be positive.
func New(period time.Duration) (*Ticker, error) {
	return newTicker(period, time.Now)
}

func newTicker(period time.Duration, now func() time.Time) (*Ticker, error) {
	if period <= 0 {
		return nil, errPeriod(period)
	}
	c := make(chan time.Time, 1)
	t := &Ticker{C: c, c: c, period: period, now: now}
	if err := t.start(); err != nil {
		return nil, err
	}
	return t, nil
}

// Stop stops the Ticker; no tick is sent after it returns.
func (t *Ticker) Stop() { t.stop() }

func (t *Ticker) send(now time.Time) {
	select {
	case t.c <- now:
	default:
	}
}

func errPeriod(p time.Duration) error { return fmt.Errorf("ticker: period %v is not positive", p) }

// Until is how long from now to the next boundary of period on the wall
// clock, skipping one less than a quarter period away.
func Until(now time.Time, period time.Duration) time.Duration {
	rem := time.Duration(now.UnixNano() % int64(period))
	if rem < 0 {
		rem += period
	}
	d := period - rem
	if d < period/4 {
		d += period
	}
	return d
}

// offBoundary reports whether a tick at now is far enough from the
// boundary before it, an eighth of the period or more, to re-arm a
// periodic timer: a step or a slew of the wall clock, or a tick that came
// late. A periodic timer re-armed only then keeps ticks at least 7/8 of a
// period apart.
func offBoundary(now time.Time, period time.Duration) bool {
	late := time.Duration(now.UnixNano() % int64(period))
	if late < 0 {
		late += period
	}
	return late >= period/8
}
