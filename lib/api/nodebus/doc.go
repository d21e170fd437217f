// Package nodebus holds the D-Bus API of concord-noded: names, the interface
// XML that is its source of truth, the status types, and a client.
package nodebus
