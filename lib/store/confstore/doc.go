// Package confstore keeps the cluster configuration replicated through raft
// and durable on disk, driven from the daemon's single event loop.
package confstore
