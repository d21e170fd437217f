package link

import (
	"fmt"
	"reflect"
	"testing"
)

// Steps of a Health scenario. Exactly one of the fields beside want is used.
type hstep struct {
	heard   *[3]uint64 // peer, link, tick
	carrier *[2]int    // link, up (0/1)
	forget  *uint16
	tick    *uint64
	want    []Change // changes returned by tick
	up      [][2]int // (peer, link) pairs whose State must be true after the step; others false
}

func heard(peer, link, tick uint64) hstep { return hstep{heard: &[3]uint64{peer, link, tick}} }
func carrier(link int, up bool) hstep {
	v := 0
	if up {
		v = 1
	}
	return hstep{carrier: &[2]int{link, v}}
}
func forget(peer uint16) hstep { return hstep{forget: &peer} }
func tick(t uint64, up [][2]int, want ...Change) hstep {
	return hstep{tick: &t, want: want, up: up}
}
func upc(peer uint16, link uint8) Change {
	return Change{Peer: peer, Link: link, Up: true, Reason: Heard}
}
func downc(peer uint16, link uint8, r Reason) Change {
	return Change{Peer: peer, Link: link, Up: false, Reason: r}
}

func TestHealth(t *testing.T) {
	const dead = 3
	tests := []struct {
		name  string
		steps []hstep
	}{
		{"nothing heard", []hstep{tick(1, nil)}},
		{"heard then up at next tick", []hstep{
			heard(2, 0, 1),
			tick(1, [][2]int{{2, 0}}, upc(2, 0)),
			tick(2, [][2]int{{2, 0}}),
		}},
		{"down after more than dead ticks", []hstep{
			heard(2, 0, 10),
			tick(10, [][2]int{{2, 0}}, upc(2, 0)),
			tick(13, [][2]int{{2, 0}}), // exactly dead ticks of silence: still up
			tick(14, nil, downc(2, 0, Silent)),
			tick(15, nil),
		}},
		{"steady heartbeat stays up", []hstep{
			heard(2, 0, 1), tick(1, [][2]int{{2, 0}}, upc(2, 0)),
			heard(2, 0, 3), tick(4, [][2]int{{2, 0}}),
			heard(2, 0, 6), tick(7, [][2]int{{2, 0}}),
			tick(9, [][2]int{{2, 0}}),
			tick(10, nil, downc(2, 0, Silent)),
		}},
		{"late heard with older tick keeps newest", []hstep{
			heard(2, 0, 10), heard(2, 0, 5),
			tick(13, [][2]int{{2, 0}}, upc(2, 0)),
		}},
		{"frame older than dead-time is not up", []hstep{
			heard(2, 0, 1),
			tick(10, nil),
		}},
		{"comes back", []hstep{
			heard(2, 0, 1), tick(1, [][2]int{{2, 0}}, upc(2, 0)),
			tick(5, nil, downc(2, 0, Silent)),
			heard(2, 0, 6), tick(6, [][2]int{{2, 0}}, upc(2, 0)),
		}},
		{"links and peers independent, ordered", []hstep{
			heard(3, 1, 1), heard(2, 1, 1), heard(3, 0, 1), heard(2, 0, 1),
			tick(1, [][2]int{{2, 0}, {2, 1}, {3, 0}, {3, 1}}, upc(2, 0), upc(2, 1), upc(3, 0), upc(3, 1)),
			heard(2, 1, 4), heard(3, 0, 4),
			tick(5, [][2]int{{2, 1}, {3, 0}}, downc(2, 0, Silent), downc(3, 1, Silent)),
		}},
		{"carrier loss downs every peer on the link", []hstep{
			heard(2, 0, 1), heard(3, 0, 1), heard(2, 1, 1),
			tick(1, [][2]int{{2, 0}, {3, 0}, {2, 1}}, upc(2, 0), upc(2, 1), upc(3, 0)),
			carrier(0, false),
			tick(2, [][2]int{{2, 1}}, downc(2, 0, NoCarrier), downc(3, 0, NoCarrier)),
			heard(2, 0, 2), // stale carrier news: a frame still does not bring it up
			tick(3, [][2]int{{2, 1}}),
			carrier(0, true),
			tick(3, [][2]int{{2, 0}, {2, 1}}, upc(2, 0)), // heard at 2, within dead-time
		}},
		{"carrier back needs a new frame", []hstep{
			heard(2, 0, 1), tick(1, [][2]int{{2, 0}}, upc(2, 0)),
			carrier(0, false), carrier(0, true),
			tick(2, nil, downc(2, 0, Silent)),
			heard(2, 0, 3), tick(3, [][2]int{{2, 0}}, upc(2, 0)),
		}},
		{"forget", []hstep{
			heard(2, 0, 1), heard(3, 0, 1),
			tick(1, [][2]int{{2, 0}, {3, 0}}, upc(2, 0), upc(3, 0)),
			forget(2),
			tick(9, nil, downc(3, 0, Silent)),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealth(dead)
			for i, st := range tt.steps {
				switch {
				case st.heard != nil:
					h.Heard(uint16(st.heard[0]), uint8(st.heard[1]), st.heard[2])
				case st.carrier != nil:
					h.SetCarrier(uint8(st.carrier[0]), st.carrier[1] == 1)
				case st.forget != nil:
					h.Forget(*st.forget)
				case st.tick != nil:
					got := h.Tick(*st.tick)
					if !reflect.DeepEqual(got, st.want) {
						t.Fatalf("step %d: Tick(%d) = %v, want %v", i, *st.tick, got, st.want)
					}
					up := map[[2]int]bool{}
					for _, pl := range st.up {
						up[pl] = true
					}
					for peer := 0; peer < 5; peer++ {
						for link := 0; link < 3; link++ {
							if got, want := h.State(uint16(peer), uint8(link)), up[[2]int{peer, link}]; got != want {
								t.Fatalf("step %d: State(%d, %d) = %v, want %v", i, peer, link, got, want)
							}
						}
					}
				}
			}
		})
	}
}

func TestReasonString(t *testing.T) {
	for r, want := range map[Reason]string{Heard: "heard", Silent: "silent", NoCarrier: "no carrier", 0: "unknown"} {
		if got := fmt.Sprint(r); got != want {
			t.Errorf("Reason(%d) = %q, want %q", r, got, want)
		}
	}
}

func TestMulticastGroup(t *testing.T) {
	g := MulticastGroup(0x0c0ffee1)
	if g.String() != "03:43:43:0f:fe:e1" {
		t.Fatalf("MulticastGroup = %s", g)
	}
	if g[0]&1 == 0 || g[0]&2 == 0 {
		t.Fatalf("%s is not a locally administered multicast address", g)
	}
}

func TestLastHeard(t *testing.T) {
	h := NewHealth(3)
	if _, ok := h.LastHeard(2, 0); ok {
		t.Fatal("a path never heard has a last tick")
	}
	h.Heard(2, 0, 5)
	h.Heard(2, 0, 9)
	h.SetCarrier(0, false) // the time of the newest frame stays known
	if tick, ok := h.LastHeard(2, 0); !ok || tick != 9 {
		t.Fatalf("LastHeard = %d, %v; want 9, true", tick, ok)
	}
	if _, ok := h.LastHeard(2, 1); ok {
		t.Fatal("another link of the peer has a last tick")
	}
	h.Forget(2)
	if _, ok := h.LastHeard(2, 0); ok {
		t.Fatal("a forgotten peer has a last tick")
	}
}
