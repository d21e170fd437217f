// Package concordtest runs Concord on the nspawn test cluster: it writes
// cluster.conf and the key into every node, starts concord-noded with
// systemctl, and reads status back through concordctl and busctl.
package concordtest
