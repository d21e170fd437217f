//go:build !linux

package ticker

import (
	"sync"
	"time"
)

// start uses a time.Timer re-armed for each boundary.
func (t *Ticker) start() error {
	done := make(chan struct{})
	tm := time.NewTimer(Until(t.now(), t.period))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-tm.C:
				now := t.now()
				tm.Reset(Until(now, t.period))
				t.send(now)
			}
		}
	}()
	var once sync.Once
	t.stop = func() { once.Do(func() { tm.Stop(); close(done); wg.Wait() }) }
	return nil
}
