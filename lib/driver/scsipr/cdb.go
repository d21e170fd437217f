package scsipr

import (
	"encoding/binary"
	"fmt"
)

// Operation codes.
const (
	OpTestUnitReady = 0x00
	OpRead10        = 0x28
	OpWrite10       = 0x2a
	OpPRIn          = 0x5e
	OpPROut         = 0x5f
)

// InAction is a PERSISTENT RESERVE IN service action.
type InAction byte

// PERSISTENT RESERVE IN service actions (SPC-4 6.15.1).
const (
	ReadKeys           InAction = 0x00
	ReadReservation    InAction = 0x01
	ReportCapabilities InAction = 0x02
	ReadFullStatus     InAction = 0x03
)

func (a InAction) String() string {
	switch a {
	case ReadKeys:
		return "READ KEYS"
	case ReadReservation:
		return "READ RESERVATION"
	case ReportCapabilities:
		return "REPORT CAPABILITIES"
	case ReadFullStatus:
		return "READ FULL STATUS"
	}
	return fmt.Sprintf("service action 0x%02x", byte(a))
}

// OutAction is a PERSISTENT RESERVE OUT service action.
type OutAction byte

// PERSISTENT RESERVE OUT service actions (SPC-4 6.16.1).
const (
	Register               OutAction = 0x00
	Reserve                OutAction = 0x01
	Release                OutAction = 0x02
	Clear                  OutAction = 0x03
	Preempt                OutAction = 0x04
	PreemptAndAbort        OutAction = 0x05
	RegisterAndIgnoreKey   OutAction = 0x06
	RegisterAndMove        OutAction = 0x07
	ReplaceLostReservation OutAction = 0x08
)

func (a OutAction) String() string {
	switch a {
	case Register:
		return "REGISTER"
	case Reserve:
		return "RESERVE"
	case Release:
		return "RELEASE"
	case Clear:
		return "CLEAR"
	case Preempt:
		return "PREEMPT"
	case PreemptAndAbort:
		return "PREEMPT AND ABORT"
	case RegisterAndIgnoreKey:
		return "REGISTER AND IGNORE EXISTING KEY"
	case RegisterAndMove:
		return "REGISTER AND MOVE"
	case ReplaceLostReservation:
		return "REPLACE LOST RESERVATION"
	}
	return fmt.Sprintf("service action 0x%02x", byte(a))
}

// Type is a persistent reservation type.
type Type byte

// Reservation types (SPC-4 table 208).
const (
	WriteExclusive                  Type = 1
	ExclusiveAccess                 Type = 3
	WriteExclusiveRegistrantsOnly   Type = 5
	ExclusiveAccessRegistrantsOnly  Type = 6
	WriteExclusiveAllRegistrants    Type = 7
	ExclusiveAccessAllRegistrants   Type = 8
	scopeLU                              = 0
	prOutParamLen                        = 24
	defaultAlloc                         = 8192
	aptplBit                             = 0x01
	prInHeaderLen                        = 8
	reservationDescLen                   = 16
	maxAllocLen                          = 0xffff
	readReservationWithHolderLength      = prInHeaderLen + reservationDescLen
)

// PRInCDB builds a 10-byte PERSISTENT RESERVE IN CDB.
func PRInCDB(a InAction, alloc uint16) []byte {
	c := make([]byte, 10)
	c[0] = OpPRIn
	c[1] = byte(a) & 0x1f
	binary.BigEndian.PutUint16(c[7:], alloc)
	return c
}

// PROutCDB builds a 10-byte PERSISTENT RESERVE OUT CDB for the basic
// 24-byte parameter list, LU scope.
func PROutCDB(a OutAction, t Type) []byte {
	c := make([]byte, 10)
	c[0] = OpPROut
	c[1] = byte(a) & 0x1f
	c[2] = scopeLU<<4 | byte(t)&0x0f
	binary.BigEndian.PutUint32(c[5:], prOutParamLen)
	return c
}

// PROutParams builds the basic PERSISTENT RESERVE OUT parameter list.
//
//	bytes 0-7   reservation key
//	bytes 8-15  service action reservation key
//	bytes 16-19 obsolete
//	byte 20     SPEC_I_PT(3) ALL_TG_PT(2) APTPL(0)
func PROutParams(key, saKey uint64, aptpl bool) []byte {
	p := make([]byte, prOutParamLen)
	binary.BigEndian.PutUint64(p[0:], key)
	binary.BigEndian.PutUint64(p[8:], saKey)
	if aptpl {
		p[20] = aptplBit
	}
	return p
}

// Write10CDB builds WRITE(10) for blocks blocks at lba.
func Write10CDB(lba uint32, blocks uint16) []byte {
	c := make([]byte, 10)
	c[0] = OpWrite10
	binary.BigEndian.PutUint32(c[2:], lba)
	binary.BigEndian.PutUint16(c[7:], blocks)
	return c
}

// Read10CDB builds READ(10) for blocks blocks at lba.
func Read10CDB(lba uint32, blocks uint16) []byte {
	c := Write10CDB(lba, blocks)
	c[0] = OpRead10
	return c
}

// TestUnitReadyCDB builds TEST UNIT READY.
func TestUnitReadyCDB() []byte { return make([]byte, 6) }
