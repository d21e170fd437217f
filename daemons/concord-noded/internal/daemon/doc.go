// Package daemon is concord-noded's event loop. One goroutine owns the
// membership core, the quorum tracker, link health, the configuration in
// force, the jobs and the status, and selects over frames from the links,
// ticks, requests and config-store events. Its neighbours do their own
// work and talk to it only through channels: the config-store runner
// (storerun), the D-Bus adapter (busapi, which reaches the loop through the
// methods in api.go and hears from it through Events), the heartbeat NIC
// manager (nic, whose changes come as events; see nics.go), and the link
// readers.
package daemon
