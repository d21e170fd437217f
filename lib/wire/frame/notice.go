package frame

import "encoding/binary"

// The notices are small payloads of their own frame kinds; doc.go draws
// their layouts.

// Probe asks whether a cluster with replicated state already runs (from a
// node without state, to everyone) or answers it (to the asker alone).
type Probe struct {
	HasState bool
}

// ProbeLen is the length of a Probe payload.
const ProbeLen = 1

// Encode returns the payload of p.
func (p Probe) Encode() []byte {
	if p.HasState {
		return []byte{1}
	}
	return []byte{0}
}

// DecodeProbe parses a Probe payload.
func DecodeProbe(b []byte) (Probe, error) {
	if len(b) != ProbeLen {
		return Probe{}, malformed("probe of %d bytes, want %d", len(b), ProbeLen)
	}
	if b[0] > 1 {
		return Probe{}, malformed("probe with state flag %d, want 0 or 1", b[0])
	}
	return Probe{HasState: b[0] == 1}, nil
}

// NotMember tells node Node that the sender's configuration, at index
// ConfigIndex, does not include it.
type NotMember struct {
	Node        uint16
	ConfigIndex uint64
}

// NotMemberLen is the length of a NotMember payload.
const NotMemberLen = 10

// Encode returns the payload of n.
func (n NotMember) Encode() []byte {
	b := make([]byte, NotMemberLen)
	binary.BigEndian.PutUint16(b, n.Node)
	binary.BigEndian.PutUint64(b[2:], n.ConfigIndex)
	return b
}

// DecodeNotMember parses a NotMember payload.
func DecodeNotMember(b []byte) (NotMember, error) {
	if len(b) != NotMemberLen {
		return NotMember{}, malformed("not-member notice of %d bytes, want %d", len(b), NotMemberLen)
	}
	return NotMember{Node: binary.BigEndian.Uint16(b), ConfigIndex: binary.BigEndian.Uint64(b[2:])}, nil
}

// StateLost tells the configuration leader that the sender lost its
// replicated state.
type StateLost struct{}

// StateLostLen is the length of a StateLost payload.
const StateLostLen = 1

// Encode returns the payload of s.
func (StateLost) Encode() []byte { return []byte{0} }

// DecodeStateLost parses a StateLost payload.
func DecodeStateLost(b []byte) (StateLost, error) {
	if len(b) != StateLostLen {
		return StateLost{}, malformed("state-lost notice of %d bytes, want %d", len(b), StateLostLen)
	}
	if b[0] != 0 {
		return StateLost{}, malformed("state-lost notice version %d, want 0", b[0])
	}
	return StateLost{}, nil
}
