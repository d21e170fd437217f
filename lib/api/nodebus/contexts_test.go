package nodebus_test

import (
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/api/nodebus/nodebustest"
)

// Two daemons of two cluster contexts share one bus, with the same object
// path and interface under two names: a client of one sees only its own
// daemon's answers.
func TestTwoContextsOnOneBus(t *testing.T) {
	addr := nodebustest.Bus(t)
	serve := func(name, config string) *dbus.Conn {
		conn := nodebustest.Conn(t, addr)
		table := map[string]any{"GetConfig": func() (string, *dbus.Error) { return config, nil }}
		if err := conn.ExportMethodTable(table, nodebus.ManagerPath, nodebus.ManagerIface); err != nil {
			t.Fatal(err)
		}
		if r, err := conn.RequestName(name, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
			t.Fatalf("own %s: %v %v", name, r, err)
		}
		return conn
	}
	serve(nodebus.BusName, "[cluster]\nname = a\n")
	serve(nodebus.BusName+".b", "[cluster]\nname = b\n")

	cb := nodebus.NewClientName(nodebustest.Conn(t, addr), nodebus.BusName+".b")
	cd := nodebus.NewClient(nodebustest.Conn(t, addr))
	for _, tc := range []struct {
		c    *nodebus.Client
		want string
	}{{cb, "[cluster]\nname = b\n"}, {cd, "[cluster]\nname = a\n"}} {
		if got, err := tc.c.Config(); err != nil || got != tc.want {
			t.Errorf("Config() = %q, %v; want %q", got, err, tc.want)
		}
	}
}
