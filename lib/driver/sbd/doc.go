// Package sbd reads and writes ClusterLabs SBD's shared-disk layout (header,
// 255 node slots, one mailbox per slot) to send poison pills, and runs the
// self-fencing watcher that stops feeding the watchdog when one arrives.
package sbd
