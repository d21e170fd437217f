// Package cluster boots Concord test clusters: systemd-nspawn nodes on a
// cached Debian rootfs, joined by two host bridges per cluster, with power
// loss, freezes, link cuts and partitions to inject.
package cluster
