// Command groups benchmarks group messaging on 3-node nspawn clusters:
// Concord's process groups (libconcord) beside Debian's Corosync 3.1.7
// CPG, the anchor of issue 10, both driven by groupbench, a small C client
// of ours (client/) built once per system against the same driver code.
// Both clusters are up together and every case runs on one then the other,
// so both see the same machine. Every member counts its deliveries from
// its first to its last, checks each sender's sequence and hashes the
// total delivery order; the bench fails if any check fails or the members'
// hashes differ, on either system. It prints one table, Concord's figures
// beside Corosync's with the ratio of the medians: messages/s per member
// at 64 B, 1 KiB and 16 KiB with one and with three senders, the latency
// of paced 1 KiB messages, the daemons' CPU, and their idle cost (CPU and
// RSS with no client, and with one member per node in a group and no
// traffic). -cpuprofile writes node1's concord-noded CPU profile.
// `make bench` runs it.
package main
