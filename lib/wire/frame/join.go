package frame

import "encoding/binary"

// A node that has only the cluster key and its own name joins by asking
// the members for the configuration; doc.go draws both payloads. The
// request comes from sender 0, a node that is not a member yet, so every
// frame of the exchange is still sealed with the cluster key: only a node
// with the key can ask, and only members with it can answer.

// MaxJoinName is the longest node name a JoinRequest carries, as the
// configuration allows.
const MaxJoinName = 64

// JoinRequest asks the members of a cluster for its configuration.
type JoinRequest struct {
	RequestID uint64 // random; the answer carries it back
	Name      string // the asking node's name: 1..MaxJoinName of [A-Za-z0-9_.-]
}

// joinRequestHeader is the length of a JoinRequest before the name.
const joinRequestHeader = 10

// Encode returns the payload of r; it fails for a name the decoder would
// refuse.
func (r JoinRequest) Encode() ([]byte, error) {
	if err := checkJoinName(r.Name); err != nil {
		return nil, err
	}
	b := make([]byte, joinRequestHeader, joinRequestHeader+len(r.Name))
	b[0] = 0 // version
	b[1] = byte(len(r.Name))
	binary.BigEndian.PutUint64(b[2:], r.RequestID)
	return append(b, r.Name...), nil
}

// DecodeJoinRequest parses a JoinRequest payload.
func DecodeJoinRequest(b []byte) (JoinRequest, error) {
	if len(b) < joinRequestHeader {
		return JoinRequest{}, malformed("join request of %d bytes, shorter than its %d-byte header", len(b), joinRequestHeader)
	}
	if b[0] != 0 {
		return JoinRequest{}, malformed("join request version %d, want 0", b[0])
	}
	if n := int(b[1]); len(b) != joinRequestHeader+n {
		return JoinRequest{}, malformed("join request of %d bytes for a name of %d", len(b), n)
	}
	r := JoinRequest{RequestID: binary.BigEndian.Uint64(b[2:]), Name: string(b[joinRequestHeader:])}
	if err := checkJoinName(r.Name); err != nil {
		return JoinRequest{}, err
	}
	return r, nil
}

// checkJoinName refuses what no configuration can hold as a node name,
// so a name from the wire is safe to log.
func checkJoinName(s string) error {
	if len(s) == 0 || len(s) > MaxJoinName {
		return malformed("join request name of %d bytes, want 1..%d", len(s), MaxJoinName)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return malformed("join request name with byte %#x at %d, want A-Z a-z 0-9 _ . -", c, i)
		}
	}
	return nil
}

// JoinConfig answers a JoinRequest: the member's replicated configuration
// at Index, as JSON (lib/api/config's form). It travels as fragments of
// KindJoinConfig, to the asker alone.
type JoinConfig struct {
	RequestID uint64 // the request's
	Index     uint64 // the store's applied index behind Config; never 0
	Config    []byte // the configuration's JSON; not empty
}

// joinConfigHeader is the length of a JoinConfig before the configuration.
const joinConfigHeader = 17

// Encode returns the message of c, to be fragmented.
func (c JoinConfig) Encode() []byte {
	b := make([]byte, joinConfigHeader, joinConfigHeader+len(c.Config))
	b[0] = 0 // version
	binary.BigEndian.PutUint64(b[1:], c.RequestID)
	binary.BigEndian.PutUint64(b[9:], c.Index)
	return append(b, c.Config...)
}

// DecodeJoinConfig parses a reassembled JoinConfig; Config shares b's
// memory. It checks the framing only: the configuration is the caller's
// to parse and validate.
func DecodeJoinConfig(b []byte) (JoinConfig, error) {
	if len(b) <= joinConfigHeader {
		return JoinConfig{}, malformed("join configuration of %d bytes, want more than its %d-byte header", len(b), joinConfigHeader)
	}
	if b[0] != 0 {
		return JoinConfig{}, malformed("join configuration version %d, want 0", b[0])
	}
	c := JoinConfig{RequestID: binary.BigEndian.Uint64(b[1:]), Index: binary.BigEndian.Uint64(b[9:]),
		Config: b[joinConfigHeader:]}
	if c.Index == 0 {
		return JoinConfig{}, malformed("join configuration at index 0")
	}
	return c, nil
}
