package nic

import (
	"strings"
	"testing"
	"time"
)

func down(n NIC) NIC {
	n.AdminUp, n.Carrier, n.OperState = false, false, "down"
	return n
}

// TestStepSetsUp runs one link through a sequence of kernel views and
// checks, at each, whether the step sets the NIC up and what it says.
func TestStepSetsUp(t *testing.T) {
	hb0 := Link{Index: 0, Interface: "hb0", MAC: macA}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	type look struct {
		nics  []NIC
		after time.Duration // since t0
		setUp bool
		state State
		note  string // a substring the reason must hold, or "" for none of the notes
	}
	tests := []struct {
		name   string
		policy Policy
		looks  []look
	}{
		{"down at first sight is set up", PolicyLeaveDown, []look{
			{[]NIC{down(up(2, "hb0", macA))}, 0, true, StateAdminDown, ""},
			{[]NIC{up(2, "hb0", macA)}, 0, false, StateUp, ""},
		}},
		{"up at first sight is left alone", PolicyLeaveDown, []look{
			{[]NIC{up(2, "hb0", macA)}, 0, false, StateUp, ""},
		}},
		{"a failed set-up is not retried while nothing changes", PolicyLeaveDown, []look{
			{[]NIC{down(up(2, "hb0", macA))}, 0, true, StateAdminDown, ""},
			{[]NIC{down(up(2, "hb0", macA))}, 0, false, StateAdminDown, ""},
			{[]NIC{down(up(2, "hb0", macA)), up(3, "eth0", macB)}, time.Hour, false, StateAdminDown, ""},
		}},
		{"set down while watched: left down under LeaveDown", PolicyLeaveDown, []look{
			{[]NIC{up(2, "hb0", macA)}, 0, false, StateUp, ""},
			{[]NIC{down(up(2, "hb0", macA))}, 0, false, StateAdminDown, "set down while concord-noded runs; left down (ip link set hb0 up)"},
			{[]NIC{down(up(2, "hb0", macA)), up(3, "eth0", macB)}, time.Hour, false, StateAdminDown, "left down"},
			{[]NIC{up(2, "hb0", macA)}, time.Hour, false, StateUp, ""},
		}},
		{"set down while watched: set up again under KeepUp, once a minute", PolicyKeepUp, []look{
			{[]NIC{up(2, "hb0", macA)}, 0, false, StateUp, ""},
			{[]NIC{down(up(2, "hb0", macA))}, 0, true, StateAdminDown, ""},
			{[]NIC{up(2, "hb0", macA)}, time.Second, false, StateUp, ""},
			{[]NIC{down(up(2, "hb0", macA))}, 2 * time.Second, false, StateAdminDown, "set down again within 1m0s of the last re-up; left down"},
			{[]NIC{up(2, "hb0", macA)}, 3 * time.Second, false, StateUp, ""},
			{[]NIC{down(up(2, "hb0", macA))}, time.Minute, true, StateAdminDown, ""},
		}},
		{"re-created down is set up, under either policy", PolicyLeaveDown, []look{
			{[]NIC{up(2, "hb0", macA)}, 0, false, StateUp, ""},
			{nil, 0, false, StateMissing, ""},
			{[]NIC{down(up(7, "hb0", macA))}, 0, true, StateAdminDown, ""},
		}},
		{"downed then replaced by a new NIC: the new one is set up", PolicyLeaveDown, []look{
			{[]NIC{up(2, "hb0", macA)}, 0, false, StateUp, ""},
			{[]NIC{down(up(2, "hb0", macA))}, 0, false, StateAdminDown, "left down"},
			{[]NIC{down(up(2, "old", macA)), down(up(8, "hb0", macA))}, 0, true, StateAdminDown, ""},
		}},
		{"renamed away and back is the same NIC: not set up", PolicyLeaveDown, []look{
			{[]NIC{up(2, "hb0", macA)}, 0, false, StateUp, ""},
			{[]NIC{down(up(2, "hb0", macA))}, 0, false, StateAdminDown, "left down"},
			{[]NIC{down(up(2, "x", macA))}, 0, false, StateRenamed, ""},
			{[]NIC{down(up(2, "hb0", macA))}, 0, false, StateAdminDown, "left down"},
		}},
		{"wrong MAC does not stop the set-up", PolicyLeaveDown, []look{
			{[]NIC{down(up(2, "hb0", macB))}, 0, true, StateWrongMAC, "administratively down"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr track
			for i, lk := range tt.looks {
				st, setUp := tr.step(hb0, lk.nics, tt.policy, t0.Add(lk.after))
				if setUp != lk.setUp || st.State != lk.state {
					t.Fatalf("look %d: setUp %v, state %v (%q); want %v, %v", i, setUp, st.State, st.Reason, lk.setUp, lk.state)
				}
				if lk.note != "" && !strings.Contains(st.Reason, lk.note) {
					t.Fatalf("look %d: reason %q does not say %q", i, st.Reason, lk.note)
				}
				if lk.note == "" && strings.Contains(st.Reason, "left down") {
					t.Fatalf("look %d: reason %q says left down", i, st.Reason)
				}
				tr.status = st
			}
		})
	}
}

func TestSame(t *testing.T) {
	a := Status{State: StateNoCarrier, Reason: "no carrier", Ifindex: 2, OperState: "down"}
	if b := a; !same(a, b) {
		t.Error("equal statuses differ")
	}
	for name, f := range map[string]func(*Status){
		"state":   func(s *Status) { s.State = StateUp },
		"reason":  func(s *Status) { s.Reason = "no carrier; set down while concord-noded runs" },
		"ifindex": func(s *Status) { s.Ifindex = 3 },
	} {
		b := a
		f(&b)
		if same(a, b) {
			t.Errorf("a change of %s is not a change", name)
		}
	}
}

func TestNewChecksLinks(t *testing.T) {
	tests := []struct {
		name   string
		links  []Link
		policy Policy
		want   string
	}{
		{"fine", []Link{{0, "hb0", macA}, {1, "hb1", macB}}, PolicyLeaveDown, ""},
		{"no links is fine too", nil, PolicyKeepUp, ""},
		{"no name", []Link{{0, "hb0", macA}, {1, "", macB}}, PolicyLeaveDown, "nic: link 1 has no interface name"},
		{"a name twice", []Link{{0, "hb0", macA}, {1, "hb0", macB}}, PolicyLeaveDown, "nic: link 0 and link 1 both name interface hb0"},
		{"unknown policy", []Link{{0, "hb0", macA}}, Policy(7), "nic: unknown policy 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.links, Options{Policy: tt.policy})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("New: %q, want %q", got, tt.want)
			}
		})
	}
}
