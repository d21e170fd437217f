package nodebus

import (
	_ "embed"
	"encoding/xml"
	"fmt"

	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"
)

// InterfaceXML is the API's source of truth, installed as
// /usr/share/dbus-1/interfaces/org.concordha.node1.xml.
//
//go:embed org.concordha.node1.xml
var InterfaceXML []byte

// Interfaces parses InterfaceXML.
func Interfaces() (map[string]introspect.Interface, error) {
	var n introspect.Node
	if err := xml.Unmarshal(InterfaceXML, &n); err != nil {
		return nil, fmt.Errorf("nodebus: interface XML: %w", err)
	}
	m := make(map[string]introspect.Interface, len(n.Interfaces))
	for _, i := range n.Interfaces {
		m[i.Name] = i
	}
	return m, nil
}

// ObjectXML is the introspection data of an object that implements iface
// (may be "") and has the given child nodes.
func ObjectXML(iface string, children ...string) (string, error) {
	ifs, err := Interfaces()
	if err != nil {
		return "", err
	}
	n := introspect.Node{Interfaces: []introspect.Interface{introspect.IntrospectData, prop.IntrospectData,
		{Name: "org.freedesktop.DBus.Peer", Methods: []introspect.Method{{Name: "Ping"},
			{Name: "GetMachineId", Args: []introspect.Arg{{Name: "machine_uuid", Type: "s", Direction: "out"}}}}}}}
	if iface != "" {
		i, ok := ifs[iface]
		if !ok {
			return "", fmt.Errorf("nodebus: no interface %q in the interface XML", iface)
		}
		n.Interfaces = append(n.Interfaces, i)
	}
	for _, c := range children {
		n.Children = append(n.Children, introspect.Node{Name: c})
	}
	b, err := xml.MarshalIndent(n, "", " ")
	if err != nil {
		return "", err
	}
	return introspect.IntrospectDeclarationString + string(b), nil
}
