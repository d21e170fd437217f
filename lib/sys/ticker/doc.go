// Package ticker delivers ticks on the wall clock's boundaries of a period
// (every 30 ms at :00.000, :00.030, ...), for a daemon that must wake
// dozens of times a second and otherwise cost nothing.
//
// Two things make it cheaper than a time.Ticker. Ticks on shared
// boundaries line up with those of other nodes whose clocks are
// synchronised, so frames sent at a tick arrive while the receiver is
// awake for its own tick, the way systemd coalesces timers. And on Linux
// the tick comes from a timerfd that the Go runtime's network poller waits
// on: no Go timer is pending, so the runtime's monitor thread, which wakes
// for every timer, sleeps.
package ticker
