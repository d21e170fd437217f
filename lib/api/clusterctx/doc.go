// Package clusterctx maps a cluster context, the name of one of the
// clusters this host is a member of, to everything that depends on it:
// concord-noded's configuration file, key, state and runtime directories,
// its D-Bus name and its socket paths. The default context has no name and
// keeps the paths of a host in a single cluster.
package clusterctx
