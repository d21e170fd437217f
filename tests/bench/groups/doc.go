// Command groups benchmarks group messaging on a 3-node nspawn cluster:
// today Debian's Corosync 3.1.7 CPG (the anchor for Concord's process
// groups, issue 10), driven by groupbench, a small C client of ours
// (client/). Every member counts its deliveries from its first to its
// last, checks each sender's sequence and hashes the total delivery
// order; the bench fails if any check fails or the members' hashes
// differ. It prints a table of messages/s per member at 64 B, 1 KiB and
// 16 KiB with one and with three senders, and the median latency of
// paced 1 KiB messages, over several runs. `make bench` runs it.
//
// The client measures through client/backend.h; client/backend_concord.c
// is the stub for Concord's process groups, not built until libconcord
// exists.
package main
