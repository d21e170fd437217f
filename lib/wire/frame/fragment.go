package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A message larger than one frame's payload (a Raft snapshot, a large view
// install) travels as fragments, each the payload of its own frame of the
// message's kind: a header, then the next chunk of the message.
//
//	0 message id (4) | 4 index (1) | 5 count (1) | 6 chunk (0..size-6)
//
// The id tells one message of a sender from the next; index counts from 0
// to count-1. There is no retransmission: losing any fragment loses the
// message, and its protocol (Raft, membership) resends.
const (
	FragHeaderLen = 6
	MaxFragments  = 64
)

// ErrMalformed is wrapped by every error that a fragment or notice decoder
// returns: an authentic frame whose payload does not parse.
var ErrMalformed = errors.New("frame: malformed payload")

// ErrTooLarge is returned by Fragment for a message that needs more than
// MaxFragments fragments.
var ErrTooLarge = errors.New("frame: message needs more than 64 fragments")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// FragHeader is the header of one fragment.
type FragHeader struct {
	ID    uint32
	Index uint8 // 0 .. Count-1
	Count uint8 // 1 .. MaxFragments
}

// Fragment splits msg into fragment payloads of at most size bytes each, all
// with the given message id. An empty message is one fragment with an
// empty chunk.
func Fragment(id uint32, msg []byte, size int) ([][]byte, error) {
	if size <= FragHeaderLen || size > MaxPayload {
		return nil, fmt.Errorf("frame: fragment size %d: want %d..%d", size, FragHeaderLen+1, MaxPayload)
	}
	chunk := size - FragHeaderLen
	n := max(1, (len(msg)+chunk-1)/chunk)
	if n > MaxFragments {
		return nil, fmt.Errorf("%w: %d bytes in chunks of %d", ErrTooLarge, len(msg), chunk)
	}
	out := make([][]byte, 0, n)
	for i := range n {
		part := msg[min(i*chunk, len(msg)):min((i+1)*chunk, len(msg))]
		p := make([]byte, FragHeaderLen, FragHeaderLen+len(part))
		binary.BigEndian.PutUint32(p, id)
		p[4], p[5] = byte(i), byte(n)
		out = append(out, append(p, part...))
	}
	return out, nil
}

// ParseFragment splits a fragment payload into its header and chunk.
func ParseFragment(p []byte) (FragHeader, []byte, error) {
	if len(p) < FragHeaderLen {
		return FragHeader{}, nil, malformed("fragment of %d bytes, shorter than its %d-byte header", len(p), FragHeaderLen)
	}
	h := FragHeader{ID: binary.BigEndian.Uint32(p), Index: p[4], Count: p[5]}
	switch {
	case h.Count == 0:
		return h, nil, malformed("fragment count 0")
	case h.Count > MaxFragments:
		return h, nil, malformed("fragment count %d, more than %d", h.Count, MaxFragments)
	case h.Index >= h.Count:
		return h, nil, malformed("fragment index %d of %d", h.Index, h.Count)
	}
	return h, p[FragHeaderLen:], nil
}

// Reassembly collects the fragments of one sender's messages of one kind.
// It holds one message at a time: a fragment of another message (another
// id or count) drops what was collected, as the earlier message can no
// longer complete in order. The zero value is ready to use.
type Reassembly struct {
	id    uint32
	parts [][]byte
	have  int
	size  int
}

// Add takes one fragment payload. It returns the whole message once every
// fragment of it was added (an empty message is a non-nil empty slice),
// nil while fragments are missing, and an error wrapping ErrMalformed for
// a payload that is no fragment. A duplicate fragment is ignored.
func (r *Reassembly) Add(p []byte) ([]byte, error) {
	h, chunk, err := ParseFragment(p)
	if err != nil {
		return nil, err
	}
	if r.parts == nil || r.id != h.ID || len(r.parts) != int(h.Count) {
		*r = Reassembly{id: h.ID, parts: make([][]byte, h.Count)}
	}
	if r.parts[h.Index] == nil {
		r.parts[h.Index] = append(make([]byte, 0, len(chunk)), chunk...)
		r.have++
		r.size += len(chunk)
	}
	if r.have < len(r.parts) {
		return nil, nil
	}
	whole := make([]byte, 0, r.size)
	for _, c := range r.parts {
		whole = append(whole, c...)
	}
	*r = Reassembly{}
	return whole, nil
}
