package daemon

import (
	"testing"

	"github.com/concord-ha/concord/lib/wire/frame"
)

// A sender that restarts numbers its fragmented messages from 1 again: a
// message of its previous life, cut off by the restart, must not lend its
// fragments to one of the new life.
func TestReassemblyIsPerLife(t *testing.T) {
	c := testConfig(t, 2)
	h := &hub{ports: map[int][]*memPort{}, cut: map[string]bool{}, txCut: map[string]bool{}}
	var ports []Port
	for i, l := range c.Node(1).Links {
		ports = append(ports, h.port(i, l.MAC))
	}
	d, err := NewWith(Options{NodeName: "n1", StateDir: t.TempDir()}, c, testKey, ports)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := frame.Fragment(1, []byte("old life, cut short"), 16)
	fresh, _ := frame.Fragment(1, []byte("new life, complete"), 16)
	if len(old) != len(fresh) {
		t.Fatalf("the test needs messages of as many fragments: %d and %d", len(old), len(fresh))
	}
	hdr := func(inc uint64) frame.Header {
		return frame.Header{Sender: 2, Kind: frame.KindMembershipFrag, Incarnation: inc}
	}
	if w := d.reassemble(0, hdr(100), old[0]); w != nil {
		t.Fatalf("complete after one fragment: %q", w)
	}
	var got []byte
	for _, f := range fresh[1:] {
		got = d.reassemble(0, hdr(200), f)
	}
	if got != nil {
		t.Fatalf("the new life's message completed with the old life's first fragment: %q", got)
	}
	if got = d.reassemble(0, hdr(200), fresh[0]); string(got) != "new life, complete" {
		t.Fatalf("reassembled %q", got)
	}
}
