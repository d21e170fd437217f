// Package fenceipmi tests lib/ipmi and fence_concord_ipmi against OpenIPMI's
// ipmi_sim on loopback, with Debian's fence_ipmilan and ipmitool as references.
package fenceipmi
