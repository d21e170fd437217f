// Package redfish is a small Redfish client for power fencing: service
// discovery, Basic or session authentication, ComputerSystem PowerState and
// the ComputerSystem.Reset action, plus the fence-agent definition built on it.
package redfish
