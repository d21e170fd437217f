package iscsi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Opcodes (RFC 7143 section 11.1.1.1).
const (
	OpNOPOut      = 0x00
	OpSCSICommand = 0x01
	OpTaskMgmt    = 0x02
	OpLoginReq    = 0x03
	OpTextReq     = 0x04
	OpDataOut     = 0x05
	OpLogoutReq   = 0x06
	OpNOPIn       = 0x20
	OpSCSIResp    = 0x21
	OpTaskResp    = 0x22
	OpLoginResp   = 0x23
	OpTextResp    = 0x24
	OpDataIn      = 0x25
	OpLogoutResp  = 0x26
	OpR2T         = 0x31
	OpAsync       = 0x32
	OpReject      = 0x3f
)

// BHSLen is the size of the basic header segment.
const BHSLen = 48

// maxDataSegment is the largest data segment the 24-bit length can express.
const maxDataSegment = 1<<24 - 1

// reservedTag is the "no task" value of ITT and TTT.
const reservedTag = 0xffffffff

// PDU is one iSCSI protocol data unit. The header is kept as raw bytes and
// read through accessors, so unknown opcodes pass through untouched.
//
//	byte 0      .I|opcode(6)
//	byte 1      F|opcode-specific flags
//	byte 4      TotalAHSLength (4-byte words)
//	bytes 5-7   DataSegmentLength
//	bytes 8-15  LUN or opcode-specific
//	bytes 16-19 Initiator Task Tag
//	bytes 20-47 opcode-specific
type PDU struct {
	BHS  [BHSLen]byte
	AHS  []byte
	Data []byte
}

// Opcode returns the opcode without the immediate bit.
func (p *PDU) Opcode() byte { return p.BHS[0] & 0x3f }

// Flags returns byte 1.
func (p *PDU) Flags() byte { return p.BHS[1] }

// Final reports the F bit.
func (p *PDU) Final() bool { return p.BHS[1]&0x80 != 0 }

// ITT returns the initiator task tag.
func (p *PDU) ITT() uint32 { return p.u32(16) }

// TTT returns the target transfer tag (NOP-In, Data-In, R2T).
func (p *PDU) TTT() uint32 { return p.u32(20) }

// StatSN returns bytes 24-27 (StatSN in target PDUs).
func (p *PDU) StatSN() uint32 { return p.u32(24) }

// ExpCmdSN returns bytes 28-31 in target PDUs.
func (p *PDU) ExpCmdSN() uint32 { return p.u32(28) }

// MaxCmdSN returns bytes 32-35 in target PDUs.
func (p *PDU) MaxCmdSN() uint32 { return p.u32(32) }

func (p *PDU) u32(off int) uint32 { return binary.BigEndian.Uint32(p.BHS[off:]) }

func (p *PDU) put32(off int, v uint32) { binary.BigEndian.PutUint32(p.BHS[off:], v) }

func (p *PDU) setDataLen(n int) {
	p.BHS[5], p.BHS[6], p.BHS[7] = byte(n>>16), byte(n>>8), byte(n)
}

func pad4(n int) int { return (n + 3) &^ 3 }

// Marshal encodes the PDU with padding, computing both length fields.
func (p *PDU) Marshal() ([]byte, error) {
	if len(p.AHS)%4 != 0 || len(p.AHS) > 255*4 {
		return nil, fmt.Errorf("iscsi: AHS length %d not a multiple of 4 up to 1020", len(p.AHS))
	}
	if len(p.Data) > maxDataSegment {
		return nil, fmt.Errorf("iscsi: data segment of %d bytes is too long", len(p.Data))
	}
	p.BHS[4] = byte(len(p.AHS) / 4)
	p.setDataLen(len(p.Data))
	b := make([]byte, 0, BHSLen+len(p.AHS)+pad4(len(p.Data)))
	b = append(b, p.BHS[:]...)
	b = append(b, p.AHS...)
	b = append(b, p.Data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b, nil
}

// ErrDataTooLong: a PDU announced more data than the reader accepts.
var ErrDataTooLong = errors.New("iscsi: data segment longer than negotiated")

// ReadPDU reads one PDU (no digests). maxData bounds the data segment so a
// hostile or broken peer cannot make us allocate 16 MiB per PDU.
func ReadPDU(r io.Reader, maxData int) (*PDU, error) {
	p := &PDU{}
	if _, err := io.ReadFull(r, p.BHS[:]); err != nil {
		return nil, err
	}
	ahs := int(p.BHS[4]) * 4
	dlen := int(p.BHS[5])<<16 | int(p.BHS[6])<<8 | int(p.BHS[7])
	if dlen > maxData {
		return nil, fmt.Errorf("%w: opcode 0x%02x carries %d bytes, limit %d", ErrDataTooLong, p.Opcode(), dlen, maxData)
	}
	if ahs > 0 {
		p.AHS = make([]byte, ahs)
		if _, err := io.ReadFull(r, p.AHS); err != nil {
			return nil, unexpected(err)
		}
	}
	if dlen > 0 {
		buf := make([]byte, pad4(dlen))
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, unexpected(err)
		}
		p.Data = buf[:dlen]
	}
	return p, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ParsePDU decodes one PDU from b and returns the bytes after it.
func ParsePDU(b []byte, maxData int) (*PDU, []byte, error) {
	r := &sliceReader{b: b}
	p, err := ReadPDU(r, maxData)
	if err != nil {
		return nil, b, err
	}
	return p, r.b, nil
}

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// opName names opcodes in errors and logs.
func opName(op byte) string {
	switch op {
	case OpNOPIn:
		return "NOP-In"
	case OpSCSIResp:
		return "SCSI Response"
	case OpTaskResp:
		return "Task Management Response"
	case OpLoginResp:
		return "Login Response"
	case OpTextResp:
		return "Text Response"
	case OpDataIn:
		return "Data-In"
	case OpLogoutResp:
		return "Logout Response"
	case OpR2T:
		return "R2T"
	case OpAsync:
		return "Async Message"
	case OpReject:
		return "Reject"
	}
	return fmt.Sprintf("opcode 0x%02x", op)
}
