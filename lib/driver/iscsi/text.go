package iscsi

import (
	"fmt"
	"strings"
)

// KV is one text key=value pair, in the order received.
type KV struct{ Key, Value string }

// ParseText splits a text data segment: NUL-terminated key=value pairs
// (RFC 7143 section 6). A trailing unterminated pair is accepted, since the
// C bit may split a pair across PDUs and the caller joins segments first.
func ParseText(b []byte) ([]KV, error) {
	var out []KV
	for len(b) > 0 {
		s := b
		end := len(b)
		for i, c := range b {
			if c == 0 {
				end = i
				break
			}
		}
		s = b[:end]
		if end < len(b) {
			b = b[end+1:]
		} else {
			b = nil
		}
		if len(s) == 0 {
			continue // padding NULs
		}
		k, v, ok := strings.Cut(string(s), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("iscsi: bad text pair %q", s)
		}
		out = append(out, KV{k, v})
	}
	return out, nil
}

// EncodeText joins pairs as key=value\0.
func EncodeText(kvs []KV) []byte {
	var b []byte
	for _, kv := range kvs {
		b = append(b, kv.Key...)
		b = append(b, '=')
		b = append(b, kv.Value...)
		b = append(b, 0)
	}
	return b
}
