package nodebus_test

import (
	"context"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/api/nodebus/nodebustest"
)

// Two daemons of two cluster contexts share one bus, with the same object
// path and interface under two names: a client of one sees only its own
// daemon's answers and signals.
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
	def := serve(nodebus.BusName, "[cluster]\nname = a\n")
	b := serve(nodebus.BusName+".b", "[cluster]\nname = b\n")

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

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan string, 8)
	watching := make(chan struct{})
	go func() {
		cb.WatchGroup(ctx, "g", func(sender uint16, seq uint64, payload []byte) bool {
			if string(payload) == "ready" {
				close(watching)
				return true
			}
			got <- string(payload)
			return string(payload) != "end"
		})
		close(got)
	}()
	emit := func(conn *dbus.Conn, payload string) {
		if err := conn.Emit(nodebus.ManagerPath, nodebus.ManagerIface+".GroupMessage", "g", uint16(1), uint64(1), []byte(payload)); err != nil {
			t.Fatal(err)
		}
		// The bus reads each connection in order: once it answers a
		// call, the signal before it has been routed, so what another
		// connection emits next cannot overtake it.
		if err := conn.BusObject().Call("org.freedesktop.DBus.GetId", 0).Err; err != nil {
			t.Fatal(err)
		}
	}
	// The subscription is made inside WatchGroup: emit until it is seen.
	for ready := false; !ready; {
		emit(b, "ready")
		select {
		case <-watching:
			ready = true
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the watch never started")
		}
	}
	emit(def, "from the default context")
	emit(b, "from b")
	emit(def, "from the default context")
	emit(b, "end")
	var seen []string
	for p := range got {
		seen = append(seen, p)
	}
	if len(seen) != 2 || seen[0] != "from b" || seen[1] != "end" {
		t.Errorf("b's client saw %q; want only b's messages", seen)
	}
}
