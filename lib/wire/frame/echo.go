package frame

import "encoding/binary"

// Echo measures a link's round-trip time: a node sends a request to one
// peer on one link, and the peer sends it back at once as a reply on the
// link it came in on. The stamp is the requester's own clock; the replier
// copies it without reading it, so the clocks of the two nodes need not
// agree. doc.go draws the layout.
type Echo struct {
	Reply bool
	Stamp uint64
}

// EchoLen is the length of an Echo payload.
const EchoLen = 9

// Echo types, the payload's first byte.
const (
	echoRequest = 0
	echoReply   = 1
)

// Encode returns the payload of e.
func (e Echo) Encode() []byte {
	b := make([]byte, EchoLen)
	if e.Reply {
		b[0] = echoReply
	}
	binary.BigEndian.PutUint64(b[1:], e.Stamp)
	return b
}

// DecodeEcho parses an Echo payload.
func DecodeEcho(b []byte) (Echo, error) {
	if len(b) != EchoLen {
		return Echo{}, malformed("echo of %d bytes, want %d", len(b), EchoLen)
	}
	if b[0] > echoReply {
		return Echo{}, malformed("echo of type %d, want 0 (request) or 1 (reply)", b[0])
	}
	return Echo{Reply: b[0] == echoReply, Stamp: binary.BigEndian.Uint64(b[1:])}, nil
}
