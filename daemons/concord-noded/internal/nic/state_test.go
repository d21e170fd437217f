package nic

import (
	"net"
	"reflect"
	"testing"

	"github.com/concord-ha/concord/lib/api/config"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

var (
	macA = mac("02:00:00:00:00:0a")
	macB = mac("02:00:00:00:00:0b")
	macC = mac("02:00:00:00:00:0c")
)

// up is a NIC in full working order.
func up(ifindex int, name string, m net.HardwareAddr) NIC {
	return NIC{Ifindex: ifindex, Name: name, MAC: m, AdminUp: true, Carrier: true, OperState: "up"}
}

func with(n NIC, f func(*NIC)) NIC { f(&n); return n }

func TestAssess(t *testing.T) {
	hb0 := Link{Index: 0, Interface: "hb0", MAC: macA}
	tests := []struct {
		name     string
		link     Link
		nics     []NIC
		followed int
		state    State
		reason   string
	}{
		{"up", hb0, []NIC{up(2, "hb0", macA)}, 0, StateUp, ""},
		{"operstate unknown counts as up", hb0, []NIC{with(up(2, "hb0", macA), func(n *NIC) { n.OperState = "unknown" })}, 0, StateUp, ""},
		{"admin down", hb0, []NIC{with(up(2, "hb0", macA), func(n *NIC) { n.AdminUp, n.Carrier, n.OperState = false, false, "down" })}, 0,
			StateAdminDown, "administratively down"},
		{"no carrier", hb0, []NIC{with(up(2, "hb0", macA), func(n *NIC) { n.Carrier, n.OperState = false, "lowerlayerdown" })}, 0,
			StateNoCarrier, "no carrier"},
		{"no carrier, operstate not caught up", hb0, []NIC{with(up(2, "hb0", macA), func(n *NIC) { n.Carrier = false })}, 0,
			StateNoCarrier, "no carrier"},
		{"dormant", hb0, []NIC{with(up(2, "hb0", macA), func(n *NIC) { n.OperState = "dormant" })}, 0,
			StateOperDown, "operstate dormant"},
		{"testing", hb0, []NIC{with(up(2, "hb0", macA), func(n *NIC) { n.OperState = "testing" })}, 0,
			StateOperDown, "operstate testing"},
		{"carrier, operstate not caught up", hb0, []NIC{with(up(2, "hb0", macA), func(n *NIC) { n.OperState = "lowerlayerdown" })}, 0,
			StateUp, ""},
		{"missing, never seen", hb0, []NIC{up(1, "lo", nil)}, 0, StateMissing, "no interface hb0"},
		{"missing, was seen", hb0, []NIC{up(1, "lo", nil)}, 5, StateMissing, "interface hb0 was removed"},
		{"missing, MAC on another NIC", hb0, []NIC{up(3, "eth1", macA)}, 0, StateMissing, "no interface hb0; its MAC 02:00:00:00:00:0a is on eth1"},
		{"renamed", hb0, []NIC{up(5, "enp3s0", macA)}, 5, StateRenamed, "hb0 (ifindex 5) was renamed to enp3s0"},
		{"wrong MAC, on no NIC", hb0, []NIC{up(2, "hb0", macB)}, 0, StateWrongMAC,
			"hb0 has MAC 02:00:00:00:00:0b, configured 02:00:00:00:00:0a; 02:00:00:00:00:0a is on no NIC of this node"},
		{"wrong MAC, names swapped", hb0, []NIC{up(2, "hb0", macB), up(3, "hb1", macA), up(4, "hb1.7", macA)}, 0, StateWrongMAC,
			"hb0 has MAC 02:00:00:00:00:0b, configured 02:00:00:00:00:0a; 02:00:00:00:00:0a is on hb1, hb1.7"},
		{"wrong MAC and down: both said, MAC first", hb0, []NIC{with(up(2, "hb0", macB), func(n *NIC) { n.AdminUp = false })}, 0, StateWrongMAC,
			"hb0 has MAC 02:00:00:00:00:0b, configured 02:00:00:00:00:0a; 02:00:00:00:00:0a is on no NIC of this node; administratively down"},
		{"no Ethernet address", hb0, []NIC{up(2, "hb0", nil)}, 0, StateWrongMAC,
			"hb0 has MAC (none), configured 02:00:00:00:00:0a; 02:00:00:00:00:0a is on no NIC of this node"},
		{"no configured MAC: no check", Link{Interface: "hb0"}, []NIC{up(2, "hb0", macB)}, 0, StateUp, ""},
		{"same name elsewhere does not confuse", Link{Index: 1, Interface: "hb1", MAC: macB}, []NIC{up(2, "hb0", macA), up(3, "hb1", macB)}, 0, StateUp, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := assess(tt.link, tt.nics, tt.followed)
			if st.State != tt.state || st.Reason != tt.reason {
				t.Errorf("assess = %v %q, want %v %q", st.State, st.Reason, tt.state, tt.reason)
			}
			if st.Working() != (tt.state == StateUp) {
				t.Errorf("Working() = %v in state %v", st.Working(), st.State)
			}
			if tt.state != StateMissing && tt.state != StateRenamed && st.Ifindex == 0 {
				t.Errorf("Ifindex not filled in for a present NIC")
			}
		})
	}
}

func TestMACsOnNoNIC(t *testing.T) {
	links := []Link{{0, "hb0", macA}, {1, "hb1", macB}, {2, "hb2", nil}}
	tests := []struct {
		name string
		nics []NIC
		want []int
	}{
		{"all there", []NIC{up(2, "hb0", macA), up(3, "hb1", macB)}, nil},
		{"under other names still counts", []NIC{up(2, "eth0", macA), up(3, "eth1", macB)}, nil},
		{"one gone", []NIC{up(2, "hb0", macA), up(3, "hb1", macC)}, []int{1}},
		{"none", nil, []int{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for _, l := range MACsOnNoNIC(links, tt.nics) {
				got = append(got, l.Index)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("MACsOnNoNIC = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFromConfigNumbersByPosition(t *testing.T) {
	got := FromConfig([]config.Link{{Interface: "hb0", MAC: macA}, {Interface: "hb1", MAC: macB}})
	want := []Link{{0, "hb0", macA}, {1, "hb1", macB}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromConfig = %v, want %v", got, want)
	}
}

func TestStatusString(t *testing.T) {
	tests := []struct {
		st   Status
		want string
	}{
		{Status{Link: Link{Index: 0, Interface: "hb0"}, State: StateUp}, "link 0 (hb0): up"},
		{Status{Link: Link{Index: 1, Interface: "hb1"}, State: StateNoCarrier, Reason: "no carrier"},
			"link 1 (hb1): no-carrier: no carrier"},
		{Status{Link: Link{Index: 1, Interface: "hb1"}, State: StateAdminDown, Reason: "administratively down", Action: "set it up"},
			"link 1 (hb1): admin-down: administratively down; set it up"},
		{Status{State: State(99)}, "link 0 (): state(99)"},
	}
	for _, tt := range tests {
		if got := tt.st.String(); got != tt.want {
			t.Errorf("String = %q, want %q", got, tt.want)
		}
	}
	e := Event{Status: Status{Link: Link{Interface: "hb0"}, State: StateNoCarrier, Reason: "no carrier"}, Prev: Status{State: StateUp}}
	if got, want := e.String(), "link 0 (hb0): no-carrier: no carrier (was up)"; got != want {
		t.Errorf("Event.String = %q, want %q", got, want)
	}
}
