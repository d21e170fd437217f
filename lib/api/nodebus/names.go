package nodebus

import (
	"fmt"

	"github.com/godbus/dbus/v5"
)

// Names of the version-1 API. The digit in them changes only for incompatible changes.
const (
	BusName       = "org.concordha.node1"
	ManagerPath   = dbus.ObjectPath("/org/concordha/node1")
	ManagerIface  = "org.concordha.node1.Manager"
	NodeIface     = "org.concordha.node1.Node"
	nodePathStart = "/org/concordha/node1/node/"
)

// Errors the daemon returns, besides the standard InvalidArgs and AccessDenied.
const (
	ErrNoSuchNode     = "org.concordha.node1.NoSuchNode"
	ErrConfigConflict = "org.concordha.node1.ConfigConflict"
	ErrNoLeader       = "org.concordha.node1.NoLeader"
	ErrTimeout        = "org.concordha.node1.Timeout"
	ErrQueueFull      = "org.concordha.node1.QueueFull" // send again a little later
	ErrStopping       = "org.concordha.node1.Stopping"  // the daemon is stopping
	ErrFailed         = "org.concordha.node1.Failed"    // a job failed for a reason without a name of its own
	ErrInvalidArgs    = "org.freedesktop.DBus.Error.InvalidArgs"
	ErrAccessDenied   = "org.freedesktop.DBus.Error.AccessDenied"
)

// NodePath is the object path of the node with the given number.
func NodePath(number uint16) dbus.ObjectPath {
	return dbus.ObjectPath(fmt.Sprintf("%s%d", nodePathStart, number))
}
