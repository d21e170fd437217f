// Package bmc is a small in-memory Redfish BMC for fence-agent tests and
// benchmarks: HTTPS on loopback, Basic and session auth, Systems with
// PowerState and ComputerSystem.Reset, and knobs for slow or stuck devices.
package redfishbmc
