package sbd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// On-disk layout, in units of the header's sector size:
//
//	sector 0        header
//	sector 1+2*s    slot s: in_use byte, node name (64 bytes, NUL padded)
//	sector 2+2*s    mailbox s: message byte, sender name (64 bytes)
//
// Header, multi-byte fields big-endian:
//
//	0  magic "SBD_SBD_"   8  version (2)   9  number of slots (255)
//	12 sector size        16 watchdog timeout (s)   20 allocate timeout (s)
//	24 loop timeout (s)   28 msgwait timeout (s)
//	32 minor version (1)  33 UUID (16 bytes)
const (
	Magic       = "SBD_SBD_"
	Version     = 2
	MinorVer    = 1
	MaxSlots    = 255
	NameLen     = 64
	headerLen   = 49
	entryLen    = 1 + NameLen
	minSector   = 512
	maxSector   = 65536
	maxTimeoutS = 1 << 20
)

// Header is the device header.
type Header struct {
	Version, MinorVersion byte
	Slots                 int
	SectorSize            int
	Watchdog, Allocate    time.Duration
	Loop, MsgWait         time.Duration
	UUID                  [16]byte
}

// DefaultHeader has sbd's defaults: watchdog 5 s, allocate 2 s, loop 1 s,
// msgwait twice the watchdog.
func DefaultHeader() Header {
	return Header{Version: Version, MinorVersion: MinorVer, Slots: MaxSlots, SectorSize: minSector,
		Watchdog: 5 * time.Second, Allocate: 2 * time.Second, Loop: time.Second, MsgWait: 10 * time.Second}
}

// ParseHeader decodes the header at the start of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < headerLen {
		return Header{}, fmt.Errorf("sbd: header: %d bytes, need %d", len(b), headerLen)
	}
	if string(b[:8]) != Magic {
		return Header{}, fmt.Errorf("sbd: header: bad magic %q (not an SBD device)", b[:8])
	}
	h := Header{Version: b[8], Slots: int(b[9]), MinorVersion: b[32]}
	if h.Version != Version {
		return Header{}, fmt.Errorf("sbd: header: version %d, only %d is supported", h.Version, Version)
	}
	be := binary.BigEndian
	ss := be.Uint32(b[12:])
	if ss < minSector || ss > maxSector || ss&(ss-1) != 0 {
		return Header{}, fmt.Errorf("sbd: header: bad sector size %d", ss)
	}
	h.SectorSize = int(ss)
	if h.Slots == 0 {
		return Header{}, fmt.Errorf("sbd: header: no slots")
	}
	dur := func(off int, name string) (time.Duration, error) {
		v := be.Uint32(b[off:])
		if v > maxTimeoutS {
			return 0, fmt.Errorf("sbd: header: %s timeout %d s out of range", name, v)
		}
		return time.Duration(v) * time.Second, nil
	}
	var err error
	if h.Watchdog, err = dur(16, "watchdog"); err != nil {
		return Header{}, err
	}
	if h.Allocate, err = dur(20, "allocate"); err != nil {
		return Header{}, err
	}
	if h.Loop, err = dur(24, "loop"); err != nil {
		return Header{}, err
	}
	if h.MsgWait, err = dur(28, "msgwait"); err != nil {
		return Header{}, err
	}
	copy(h.UUID[:], b[33:49])
	return h, nil
}

// Marshal encodes the header into one sector.
func (h Header) Marshal() ([]byte, error) {
	if h.SectorSize < minSector || h.SectorSize > maxSector || h.SectorSize&(h.SectorSize-1) != 0 {
		return nil, fmt.Errorf("sbd: bad sector size %d", h.SectorSize)
	}
	if h.Slots < 1 || h.Slots > MaxSlots {
		return nil, fmt.Errorf("sbd: bad number of slots %d", h.Slots)
	}
	b := make([]byte, h.SectorSize)
	copy(b, Magic)
	b[8], b[9] = Version, byte(h.Slots)
	be := binary.BigEndian
	be.PutUint32(b[12:], uint32(h.SectorSize))
	for i, d := range []time.Duration{h.Watchdog, h.Allocate, h.Loop, h.MsgWait} {
		s := d.Round(time.Second) / time.Second
		if s < 0 || s > maxTimeoutS {
			return nil, fmt.Errorf("sbd: timeout %v out of range", d)
		}
		be.PutUint32(b[16+4*i:], uint32(s))
	}
	b[32] = h.MinorVersion
	copy(b[33:], h.UUID[:])
	return b, nil
}

// Size is the number of bytes the layout occupies.
func (h Header) Size() int64 { return int64(1+2*h.Slots) * int64(h.SectorSize) }

func (h Header) slotOffset(s int) int64 { return int64(1+2*s) * int64(h.SectorSize) }
func (h Header) mboxOffset(s int) int64 { return int64(2+2*s) * int64(h.SectorSize) }

// Message is a mailbox command.
type Message byte

// Messages, as sbd defines them.
const (
	MsgClear     Message = 0x00
	MsgTest      Message = 0x01
	MsgReset     Message = 0x02
	MsgOff       Message = 0x03
	MsgExit      Message = 0x04
	MsgCrashdump Message = 0x05
)

var msgNames = []string{"clear", "test", "reset", "off", "exit", "crashdump"}

func (m Message) String() string {
	if int(m) < len(msgNames) {
		return msgNames[m]
	}
	return fmt.Sprintf("unknown(0x%02x)", byte(m))
}

// ParseMessage maps sbd's message names ("reset", "off", ...) to codes.
func ParseMessage(s string) (Message, error) {
	for i, n := range msgNames {
		if n == s {
			return Message(i), nil
		}
	}
	return 0, fmt.Errorf("sbd: unknown message %q (want one of %v)", s, msgNames)
}

// Slot is one node slot.
type Slot struct {
	Index int
	InUse bool
	Name  string
}

// Mailbox is one slot's message area.
type Mailbox struct {
	Msg  Message
	From string
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// parseEntry decodes a slot or mailbox: one byte, then a NUL-padded name.
func parseEntry(b []byte) (byte, string, error) {
	if len(b) < entryLen {
		return 0, "", fmt.Errorf("sbd: entry of %d bytes, need %d", len(b), entryLen)
	}
	return b[0], cstring(b[1:entryLen]), nil
}

func marshalEntry(sector int, first byte, name string) ([]byte, error) {
	if len(name) >= NameLen {
		return nil, fmt.Errorf("sbd: name %q longer than %d bytes", name, NameLen-1)
	}
	b := make([]byte, sector)
	b[0] = first
	copy(b[1:], name)
	return b, nil
}
