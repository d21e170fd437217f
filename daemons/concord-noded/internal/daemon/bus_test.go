package daemon

import (
	"reflect"
	"sort"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

// The interface XML is the API's source of truth: every method it lists
// is a method of the exported Go object with the same D-Bus signature, and
// every property it lists is exported with its type.
func TestBusImplementsTheInterfaceXML(t *testing.T) {
	ifs, err := nodebus.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	mgr := reflect.TypeOf(&manager{})
	for _, m := range ifs[nodebus.ManagerIface].Methods {
		gm, ok := mgr.MethodByName(m.Name)
		if !ok {
			t.Errorf("%s.%s is in the XML but not implemented", nodebus.ManagerIface, m.Name)
			continue
		}
		var in, out string
		for _, a := range m.Args {
			if a.Direction == "out" {
				out += a.Type
			} else {
				in += a.Type
			}
		}
		var gin, gout string
		for i := 1; i < gm.Type.NumIn(); i++ { // 0 is the receiver
			if at := gm.Type.In(i); at != reflect.TypeOf(dbus.Sender("")) {
				gin += dbus.SignatureOfType(at).String()
			}
		}
		for i := 0; i < gm.Type.NumOut(); i++ {
			if at := gm.Type.Out(i); at != reflect.TypeOf(&dbus.Error{}) {
				gout += dbus.SignatureOfType(at).String()
			}
		}
		if in != gin || out != gout {
			t.Errorf("%s: XML (%s)→(%s), Go (%s)→(%s)", m.Name, in, out, gin, gout)
		}
	}
	check := func(iface string, props map[string]any) {
		var want, got []string
		for _, p := range ifs[iface].Properties {
			want = append(want, p.Name+" "+p.Type)
		}
		for name, v := range props {
			got = append(got, name+" "+dbus.SignatureOf(v).String())
		}
		sort.Strings(want)
		sort.Strings(got)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s properties: XML %v, exported %v", iface, want, got)
		}
	}
	mp := map[string]any{}
	for name, p := range managerProps(nodebus.Status{})[nodebus.ManagerIface] {
		mp[name] = p.Value
	}
	check(nodebus.ManagerIface, mp)
	np := map[string]any{}
	for name, p := range nodeProps(nodebus.NodeInfo{})[nodebus.NodeIface] {
		np[name] = p.Value
	}
	check(nodebus.NodeIface, np)
}
