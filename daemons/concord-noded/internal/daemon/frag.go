package daemon

import (
	"encoding/binary"
	"errors"
)

// Config-store messages (a Raft snapshot, mostly) can be larger than one
// frame. They travel as fragments: a 6-byte header, then a chunk.
//
//	0 message id (4) | 4 index (1) | 5 count (1) | 6 chunk
//
// Loss of any fragment loses the message; Raft resends.
const (
	fragHeader = 6
	maxFrags   = 64
)

var errFrag = errors.New("bad fragment")

// fragment splits b into payloads of at most max bytes each.
func fragment(id uint32, b []byte, max int) [][]byte {
	chunk := max - fragHeader
	n := (len(b) + chunk - 1) / chunk
	if n == 0 {
		n = 1
	}
	if n > maxFrags {
		return nil
	}
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		end := min((i+1)*chunk, len(b))
		p := make([]byte, fragHeader, fragHeader+end-i*chunk)
		binary.BigEndian.PutUint32(p, id)
		p[4], p[5] = byte(i), byte(n)
		out = append(out, append(p, b[i*chunk:end]...))
	}
	return out
}

// reassembly collects the fragments of one sender's current message.
type reassembly struct {
	id    uint32
	parts [][]byte
	have  int
}

// add takes one fragment and returns the whole message once complete.
func (r *reassembly) add(p []byte) ([]byte, error) {
	if len(p) < fragHeader {
		return nil, errFrag
	}
	id, idx, n := binary.BigEndian.Uint32(p), int(p[4]), int(p[5])
	if n == 0 || n > maxFrags || idx >= n {
		return nil, errFrag
	}
	if r.parts == nil || r.id != id || len(r.parts) != n {
		*r = reassembly{id: id, parts: make([][]byte, n)}
	}
	if r.parts[idx] == nil {
		r.parts[idx] = append([]byte(nil), p[fragHeader:]...)
		r.have++
	}
	if r.have < n {
		return nil, nil
	}
	var whole []byte
	for _, c := range r.parts {
		whole = append(whole, c...)
	}
	*r = reassembly{}
	return whole, nil
}
