// Package fencepeer is what the fence-agent tests and benches share: agent
// builds, the dummy node and its chassis.sh, the Python Redfish fixture and
// tgtd, each started and stopped by PID on loopback.
package fencepeer
