package nic

import (
	"bytes"
	"fmt"
	"net"
	"strings"

	"github.com/concord-ha/concord/lib/api/config"
)

// Link is one configured heartbeat link of this node.
type Link struct {
	Index     int              // link number: position in the node's link list
	Interface string           // configured interface name, e.g. "hb0"
	MAC       net.HardwareAddr // configured MAC; nil skips the MAC check
}

// FromConfig numbers a node's configured links by their position.
func FromConfig(links []config.Link) []Link {
	out := make([]Link, len(links))
	for i, l := range links {
		out[i] = Link{Index: i, Interface: l.Interface, MAC: l.MAC}
	}
	return out
}

// NIC is what the kernel says about one network interface.
type NIC struct {
	Ifindex   int
	Name      string
	MAC       net.HardwareAddr
	AdminUp   bool   // IFF_UP: set up by someone
	Carrier   bool   // IFF_LOWER_UP: the physical (or veth peer) link is there
	OperState string // RFC 2863 operstate as the kernel names it: "up", "down", "unknown", ...
}

// State sums up a configured link, worst first.
type State int

const (
	StateUnknown   State = iota // not looked at yet
	StateMissing                // no interface of that name
	StateRenamed                // the interface seen under that name now has another name
	StateWrongMAC               // the interface's MAC is not the configured one
	StateAdminDown              // administratively down
	StateNoCarrier              // up, but no carrier (cable, switch port, veth peer)
	StateOperDown               // carrier, but the driver says dormant, testing or notpresent
	StateUp                     // up, with carrier: frames can flow
)

var stateNames = [...]string{"unknown", "missing", "renamed", "wrong-mac", "admin-down", "no-carrier", "oper-down", "up"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return stateNames[s]
}

// Status is a configured link's state as the daemon reports it.
type Status struct {
	Link
	State  State
	Reason string // every problem found, "; "-separated; "" when up
	Action string // what this package did about it, if anything, e.g. "set it up"

	// What the kernel says about the interface named Link.Interface
	// (zero when there is none).
	Ifindex   int
	HWAddr    net.HardwareAddr
	AdminUp   bool
	Carrier   bool
	OperState string
}

// Working reports whether frames can flow on the link.
func (s Status) Working() bool { return s.State == StateUp }

// String is a log line: "link 0 (hb0): no-carrier: no carrier".
func (s Status) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "link %d (%s): %s", s.Index, s.Interface, s.State)
	if s.Reason != "" {
		b.WriteString(": " + s.Reason)
	}
	if s.Action != "" {
		b.WriteString("; " + s.Action)
	}
	return b.String()
}

// same reports whether two statuses say the same thing to an admin.
func same(a, b Status) bool {
	return a.State == b.State && a.Reason == b.Reason && a.Ifindex == b.Ifindex
}

// assess works out a configured link's state from the interfaces of this
// node. followed is the ifindex last seen under the link's name (0 if
// none), which tells a rename or a removal from an interface that never
// was there.
func assess(l Link, nics []NIC, followed int) Status {
	st := Status{Link: l}
	n := byName(nics, l.Interface)
	if n == nil {
		if f := byIndex(nics, followed); followed != 0 && f != nil {
			st.State = StateRenamed
			st.Reason = fmt.Sprintf("%s (ifindex %d) was renamed to %s", l.Interface, followed, f.Name)
			return st
		}
		st.State = StateMissing
		if followed != 0 {
			st.Reason = fmt.Sprintf("interface %s was removed", l.Interface)
		} else {
			st.Reason = fmt.Sprintf("no interface %s", l.Interface)
		}
		if where := Holders(nics, l.MAC); where != "" {
			st.Reason += fmt.Sprintf("; its MAC %s is on %s", l.MAC, where)
		}
		return st
	}
	st.Ifindex, st.HWAddr, st.AdminUp, st.Carrier, st.OperState = n.Ifindex, n.MAC, n.AdminUp, n.Carrier, n.OperState

	var problems []string
	problem := func(s State, reason string) {
		if st.State == StateUnknown {
			st.State = s
		}
		problems = append(problems, reason)
	}
	if l.MAC != nil && !bytes.Equal(n.MAC, l.MAC) {
		r := fmt.Sprintf("%s has MAC %s, configured %s", l.Interface, macText(n.MAC), l.MAC)
		if where := Holders(nics, l.MAC); where != "" {
			r += fmt.Sprintf("; %s is on %s", l.MAC, where)
		} else {
			r += fmt.Sprintf("; %s is on no NIC of this node", l.MAC)
		}
		problem(StateWrongMAC, r)
	}
	switch {
	case !n.AdminUp:
		problem(StateAdminDown, "administratively down")
	case !n.Carrier:
		problem(StateNoCarrier, "no carrier")
	case n.OperState == "dormant" || n.OperState == "testing" || n.OperState == "notpresent":
		// Carrier is the kernel's flag of the moment; operstate follows
		// it a little later (linkwatch), so "down" or "lowerlayerdown"
		// next to a carrier is that lag, and a reason that said so would
		// flap with every carrier change. Only the states a driver sets
		// on purpose count. "unknown" is what drivers without operstate
		// support say while they carry frames.
		problem(StateOperDown, fmt.Sprintf("operstate %s", n.OperState))
	}
	if st.State == StateUnknown {
		st.State = StateUp
	}
	st.Reason = strings.Join(problems, "; ")
	return st
}

// MACsOnNoNIC returns the configured links whose MAC is on no interface
// of this node: the configuration names a NIC this node does not have,
// or a MAC was mistyped.
func MACsOnNoNIC(links []Link, nics []NIC) []Link {
	var out []Link
	for _, l := range links {
		if l.MAC != nil && Holders(nics, l.MAC) == "" {
			out = append(out, l)
		}
	}
	return out
}

func byName(nics []NIC, name string) *NIC {
	for i := range nics {
		if nics[i].Name == name {
			return &nics[i]
		}
	}
	return nil
}

func byIndex(nics []NIC, ifindex int) *NIC {
	for i := range nics {
		if nics[i].Ifindex == ifindex {
			return &nics[i]
		}
	}
	return nil
}

// holders names the interfaces that have mac, comma-separated (VLANs,
// bonds and bridges share their lower NIC's MAC), or "".
// Holders names the NICs that have MAC mac, joined by ", "; "" for none.
func Holders(nics []NIC, mac net.HardwareAddr) string {
	if mac == nil {
		return ""
	}
	var names []string
	for _, n := range nics {
		if bytes.Equal(n.MAC, mac) {
			names = append(names, n.Name)
		}
	}
	return strings.Join(names, ", ")
}

func macText(m net.HardwareAddr) string {
	if len(m) == 0 {
		return "(none)"
	}
	return m.String()
}
