// Package ipmi switches chassis power through a BMC over IPMI v2.0 RMCP+
// (lanplus) or IPMI v1.5 (lan): a thin layer over github.com/bougou/go-ipmi
// that owns the UDP socket, so every exchange has a hard deadline, and that
// turns failures into a few classes a fence agent can act on.
package ipmi
