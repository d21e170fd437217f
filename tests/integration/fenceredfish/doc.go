// Package fenceredfish tests fence_concord_redfish against a fake Redfish BMC
// and the shared Python fixture, with Debian's fence_redfish as the reference.
package fenceredfish
