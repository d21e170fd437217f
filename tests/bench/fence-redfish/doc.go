// Command fence-redfish times fence_concord_redfish against Debian's
// fence_redfish: 20 trials each of status and off, against the in-process
// Go BMC and, when python3 is present, the shared Python fixture.
package main
