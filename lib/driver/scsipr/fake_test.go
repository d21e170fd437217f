package scsipr

import (
	"context"
	"encoding/binary"
	"errors"
)

// fakeLU is an in-memory logical unit with SPC persistent reservation
// rules, shared by several nexuses. It is the unit-test oracle; the real
// targets are exercised in tests/fencescsi.
type fakeLU struct {
	gen            uint32
	regs           map[string]uint64 // nexus -> key
	holder         string            // nexus holding the reservation, "" = none
	typ            Type
	noPreemptAbort bool // tgtd: PREEMPT AND ABORT is ILLEGAL REQUEST
	preemptNoop    bool // a broken target: PREEMPT answers GOOD and removes nothing
	ua             map[string]bool
	down           bool
	log            []string // service actions received, in order
	lastSense      []byte
}

func newFakeLU() *fakeLU { return &fakeLU{regs: map[string]uint64{}, ua: map[string]bool{}} }

type fakeNexus struct {
	lu   *fakeLU
	name string
}

var illegalRequest = []byte{0x70, 0, SenseIllegalRequest, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0}
var preemptedUA = []byte{0x70, 0, SenseUnitAttention, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x2a, 0x03}

func (n *fakeNexus) Do(_ context.Context, cdb, out []byte, inLen int) ([]byte, byte, []byte, error) {
	lu := n.lu
	if lu.down {
		return nil, 0, nil, errors.New("connection refused")
	}
	if lu.ua[n.name] {
		delete(lu.ua, n.name)
		return nil, StatusCheckCondition, preemptedUA, nil
	}
	switch cdb[0] {
	case OpPRIn:
		b := make([]byte, 8, inLen)
		binary.BigEndian.PutUint32(b, lu.gen)
		switch InAction(cdb[1]) {
		case ReadKeys:
			for _, k := range lu.keys() {
				b = binary.BigEndian.AppendUint64(b, k)
			}
			binary.BigEndian.PutUint32(b[4:], uint32(len(b)-8))
		case ReadReservation:
			if lu.holder != "" {
				b = binary.BigEndian.AppendUint64(b, lu.regs[lu.holder])
				b = append(b, 0, 0, 0, 0, 0, byte(lu.typ), 0, 0)
				binary.BigEndian.PutUint32(b[4:], 16)
			}
		default:
			return nil, StatusCheckCondition, illegalRequest, nil
		}
		return b[:min(len(b), inLen)], StatusGood, nil, nil
	case OpPROut:
		a := OutAction(cdb[1] & 0x1f)
		lu.log = append(lu.log, a.String())
		st := lu.prOut(n.name, a, Type(cdb[2]&0xf), binary.BigEndian.Uint64(out), binary.BigEndian.Uint64(out[8:]))
		return nil, st, lu.lastSense, nil
	case OpWrite10:
		if lu.holder != "" && lu.typ == WriteExclusiveRegistrantsOnly {
			if _, ok := lu.regs[n.name]; !ok {
				return nil, StatusReservationConflict, nil, nil
			}
		}
		return nil, StatusGood, nil, nil
	}
	return nil, StatusCheckCondition, illegalRequest, nil
}

func (lu *fakeLU) keys() []uint64 {
	var ks []uint64
	for _, name := range []string{"a", "b", "c", "a2", "b2"} {
		if k, ok := lu.regs[name]; ok {
			ks = append(ks, k)
		}
	}
	return ks
}

func (lu *fakeLU) prOut(nexus string, a OutAction, t Type, key, sa uint64) byte {
	lu.lastSense = nil
	cur, registered := lu.regs[nexus]
	switch a {
	case Register, RegisterAndIgnoreKey:
		if a == Register && (registered && key != cur || !registered && key != 0) {
			return StatusReservationConflict
		}
		if sa == 0 {
			delete(lu.regs, nexus)
			if lu.holder == nexus {
				lu.holder = ""
			}
		} else {
			lu.regs[nexus] = sa
		}
		lu.gen++
	case Reserve:
		if !registered || key != cur {
			return StatusReservationConflict
		}
		if lu.holder != "" && lu.holder != nexus {
			return StatusReservationConflict
		}
		lu.holder, lu.typ = nexus, t
	case Release:
		if !registered || key != cur {
			return StatusReservationConflict
		}
		if lu.holder == nexus {
			lu.holder = ""
		}
	case Clear:
		if !registered || key != cur {
			return StatusReservationConflict
		}
		lu.regs, lu.holder = map[string]uint64{}, ""
		lu.gen++
	case Preempt, PreemptAndAbort:
		if a == PreemptAndAbort && lu.noPreemptAbort {
			lu.lastSense = illegalRequest
			return StatusCheckCondition
		}
		if !registered || key != cur {
			return StatusReservationConflict
		}
		if lu.preemptNoop {
			return StatusGood
		}
		for n, k := range lu.regs {
			if k == sa && n != nexus {
				delete(lu.regs, n)
				lu.ua[n] = true
				if lu.holder == n {
					lu.holder, lu.typ = nexus, t
				}
			}
		}
		lu.gen++
	default:
		lu.lastSense = illegalRequest
		return StatusCheckCondition
	}
	return StatusGood
}
