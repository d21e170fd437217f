package cluster

import (
	"context"
	"fmt"
	"time"
)

// Eventually polls cond every 50 ms until it returns true or ctx ends; the
// error then carries cond's last reason.
func Eventually(ctx context.Context, cond func() (ok bool, reason string)) error {
	return Poll(ctx, 50*time.Millisecond, cond)
}

// Poll is Eventually with a chosen interval.
func Poll(ctx context.Context, interval time.Duration, cond func() (ok bool, reason string)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up (%v): %s", ctx.Err(), why)
		case <-t.C:
		}
	}
}
