package watchdog

import (
	"sync"
	"time"
)

// Device is a running watchdog timer.
type Device interface {
	// KeepAlive restarts the countdown.
	KeepAlive() error
	// SetTimeout sets the countdown and returns what the driver chose.
	SetTimeout(d time.Duration) (time.Duration, error)
	// Timeout returns the current countdown.
	Timeout() (time.Duration, error)
	// Close disarms the watchdog (magic close) and releases it. A process
	// that must be reset by the watchdog stops calling KeepAlive and never
	// calls Close.
	Close() error
}

// Counter is a Device for tests: it counts keep-alives, remembers the
// last one, and reports expiry against the clock (time.Now, so it runs
// inside testing/synctest bubbles).
type Counter struct {
	mu         sync.Mutex
	timeout    time.Duration
	keepAlives int
	last       time.Time
	closed     bool
	// Fail, if set, is returned by KeepAlive (a broken driver).
	Fail error
}

// NewCounter returns an armed counting device with the given timeout.
func NewCounter(timeout time.Duration) *Counter {
	return &Counter{timeout: timeout, last: time.Now()}
}

// KeepAlive implements Device.
func (c *Counter) KeepAlive() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Fail != nil {
		return c.Fail
	}
	if c.closed {
		return errClosed
	}
	c.keepAlives++
	c.last = time.Now()
	return nil
}

// SetTimeout implements Device; whole seconds, as drivers take them.
func (c *Counter) SetTimeout(d time.Duration) (time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timeout = d.Round(time.Second)
	c.last = time.Now()
	return c.timeout, nil
}

// Timeout implements Device.
func (c *Counter) Timeout() (time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timeout, nil
}

// Close implements Device (a magic close: the counter stops expiring).
func (c *Counter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// KeepAlives returns how many keep-alives arrived.
func (c *Counter) KeepAlives() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keepAlives
}

// Expired reports whether the machine would have been reset by now: armed,
// and no keep-alive within the timeout.
func (c *Counter) Expired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed && time.Since(c.last) > c.timeout
}

// Closed reports a magic close.
func (c *Counter) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
