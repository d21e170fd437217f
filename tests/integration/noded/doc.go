// Package noded holds the integration tests of concord-noded on a real
// cluster of systemd-nspawn nodes, installed from the .deb.
package noded
