package scsipr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// sgIOHdr mirrors struct sg_io_hdr from <scsi/sg.h> on 64-bit Linux
// (88 bytes); the pointer fields are filled in by the ioctl caller.
//
//	0  interface_id 'S'   4 dxfer_direction   8 cmd_len   9 mx_sb_len
//	10 iovec_count        12 dxfer_len        16 dxferp   24 cmdp
//	32 sbp                40 timeout (ms)     44 flags    48 pack_id
//	56 usr_ptr            64 status           65 masked_status
//	66 msg_status         67 sb_len_wr        68 host_status
//	70 driver_status      72 resid            76 duration 80 info
const sgIOHdrLen = 88

// Data transfer directions.
const (
	sgDxferNone    = -1
	sgDxferToDev   = -2
	sgDxferFromDev = -3
)

// sgRequest is the Go side of one SG_IO call before pointers are set.
type sgRequest struct {
	direction int32
	cmdLen    uint8
	senseMax  uint8
	dataLen   uint32
	timeout   time.Duration
}

func newSGRequest(cdb, dataOut []byte, dataInLen int, senseMax int, timeout time.Duration) (sgRequest, error) {
	if len(cdb) == 0 || len(cdb) > 16 {
		return sgRequest{}, fmt.Errorf("CDB of %d bytes (1-16 supported)", len(cdb))
	}
	if len(dataOut) > 0 && dataInLen > 0 {
		return sgRequest{}, errors.New("bidirectional commands are not supported")
	}
	r := sgRequest{direction: sgDxferNone, cmdLen: uint8(len(cdb)), senseMax: uint8(senseMax), timeout: timeout}
	switch {
	case len(dataOut) > 0:
		r.direction, r.dataLen = sgDxferToDev, uint32(len(dataOut))
	case dataInLen > 0:
		r.direction, r.dataLen = sgDxferFromDev, uint32(dataInLen)
	}
	return r, nil
}

// marshal lays the request out as sg_io_hdr with the given addresses.
func (r sgRequest) marshal(data, cmd, sense uintptr) [sgIOHdrLen]byte {
	var h [sgIOHdrLen]byte
	le := binary.NativeEndian
	le.PutUint32(h[0:], 'S')
	le.PutUint32(h[4:], uint32(r.direction))
	h[8] = r.cmdLen
	h[9] = r.senseMax
	le.PutUint32(h[12:], r.dataLen)
	le.PutUint64(h[16:], uint64(data))
	le.PutUint64(h[24:], uint64(cmd))
	le.PutUint64(h[32:], uint64(sense))
	ms := r.timeout.Milliseconds()
	if ms <= 0 || ms > 0xffffffff {
		ms = 0xffffffff
	}
	le.PutUint32(h[40:], uint32(ms))
	return h
}

// sgResult is what the kernel wrote back.
type sgResult struct {
	status       byte
	senseLen     int
	hostStatus   uint16
	driverStatus uint16
	resid        int32
}

func parseSGResult(h []byte) sgResult {
	le := binary.NativeEndian
	return sgResult{
		status:       h[64],
		senseLen:     int(h[67]),
		hostStatus:   le.Uint16(h[68:]),
		driverStatus: le.Uint16(h[70:]),
		resid:        int32(le.Uint32(h[72:])),
	}
}

// check reports host and driver errors, which mean the command did not
// reach the device or did not complete there.
func (r sgResult) check() error {
	const driverSense = 0x08 // DRIVER_SENSE only says sense data is present
	if r.hostStatus != 0 {
		return fmt.Errorf("SG_IO host status 0x%02x (%s)", r.hostStatus, hostStatusName(r.hostStatus))
	}
	if r.driverStatus&^driverSense != 0 {
		return fmt.Errorf("SG_IO driver status 0x%02x", r.driverStatus)
	}
	return nil
}

func hostStatusName(s uint16) string {
	switch s {
	case 0x01:
		return "no connect"
	case 0x02:
		return "bus busy"
	case 0x03:
		return "timed out"
	case 0x04:
		return "bad target"
	case 0x05:
		return "aborted"
	case 0x0e:
		return "transport disrupted"
	case 0x0f:
		return "transport failfast"
	case 0x11:
		return "transport marginal"
	}
	return "unknown"
}
