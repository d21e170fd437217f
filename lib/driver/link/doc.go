// Package link sends and receives Concord frames on one dedicated
// heartbeat NIC through an AF_PACKET socket, and tracks which links to
// which peers are alive.
package link
