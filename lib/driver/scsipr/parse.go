package scsipr

import (
	"encoding/binary"
	"fmt"
)

// Keys is the READ KEYS answer.
type Keys struct {
	Generation uint32
	Keys       []uint64
	// Truncated: the target had more keys than the allocation length held.
	Truncated bool
}

// Has reports whether k is registered.
func (k Keys) Has(key uint64) bool {
	for _, x := range k.Keys {
		if x == key {
			return true
		}
	}
	return false
}

// ParseReadKeys decodes READ KEYS parameter data:
//
//	bytes 0-3 PRgeneration, bytes 4-7 additional length, then 8-byte keys.
func ParseReadKeys(b []byte) (Keys, error) {
	if len(b) < prInHeaderLen {
		return Keys{}, fmt.Errorf("READ KEYS: %d bytes, need at least 8", len(b))
	}
	k := Keys{Generation: binary.BigEndian.Uint32(b)}
	n := binary.BigEndian.Uint32(b[4:])
	if n%8 != 0 {
		return Keys{}, fmt.Errorf("READ KEYS: additional length %d is not a multiple of 8", n)
	}
	body := b[prInHeaderLen:]
	if uint64(n) > uint64(len(body)) {
		k.Truncated = true
	} else {
		body = body[:n]
	}
	for len(body) >= 8 {
		k.Keys = append(k.Keys, binary.BigEndian.Uint64(body))
		body = body[8:]
	}
	return k, nil
}

// Reservation is the READ RESERVATION answer.
type Reservation struct {
	Generation uint32
	Held       bool
	Key        uint64
	Scope      byte
	Type       Type
}

// ParseReadReservation decodes READ RESERVATION parameter data: the 8-byte
// header, then (if additional length is 16) key, 4 obsolete bytes, a
// reserved byte and scope/type.
func ParseReadReservation(b []byte) (Reservation, error) {
	if len(b) < prInHeaderLen {
		return Reservation{}, fmt.Errorf("READ RESERVATION: %d bytes, need at least 8", len(b))
	}
	r := Reservation{Generation: binary.BigEndian.Uint32(b)}
	switch n := binary.BigEndian.Uint32(b[4:]); n {
	case 0:
		return r, nil
	case reservationDescLen:
		if len(b) < readReservationWithHolderLength {
			return Reservation{}, fmt.Errorf("READ RESERVATION: %d bytes, descriptor needs %d", len(b), readReservationWithHolderLength)
		}
		r.Held = true
		r.Key = binary.BigEndian.Uint64(b[8:])
		r.Scope = b[21] >> 4
		r.Type = Type(b[21] & 0x0f)
		return r, nil
	default:
		return Reservation{}, fmt.Errorf("READ RESERVATION: additional length %d, want 0 or 16", n)
	}
}
