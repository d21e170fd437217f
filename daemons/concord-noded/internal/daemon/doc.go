// Package noded is concord-noded: one event loop that owns the daemon's state
// and drives the membership core, the replicated configuration store, the
// heartbeat links and the D-Bus API.
package daemon
