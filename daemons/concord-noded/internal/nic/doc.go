// Package nic keeps this node's heartbeat NICs up and says what is wrong
// with them.
//
// The udev rule (70-concord-heartbeat.rules) keeps NetworkManager and
// systemd-networkd off heartbeat NICs, so nothing else brings them up:
// [Manager.Up] does, once, when the daemon starts. [Manager.Watch] then
// follows every change of the configured NICs (administrative state,
// carrier, operstate, name, MAC, removal) and delivers each one as an
// [Event] for the daemon's loop.
//
// Policy for a NIC that is set down while the daemon runs: it is left
// down (PolicyLeaveDown, the default), reported as admin-down with a
// reason saying so. An admin who downs a heartbeat NIC on purpose (to
// test the other link, to take a switch out) means it, and a daemon that
// undoes it would also fight any tool that does the same. A NIC the
// daemon sees for the first time, or that comes back as a new interface
// (hot-plugged, re-created, renamed into the configured name), is set up
// once, because new interfaces start down and nothing else will do it.
// PolicyKeepUp sets a downed NIC up again, at most once per ReupInterval
// for each NIC, so a tool that keeps downing it meets one retry a minute,
// each reported, not a busy loop.
//
// The decisions (which state and reason a NIC is in, whether to set it
// up, whether a change is worth reporting) are plain functions over [NIC]
// values; only list, setUp and the subscription touch netlink.
package nic
