package scsipr

import (
	"errors"
	"fmt"
)

// SCSI status codes (SAM-5).
const (
	StatusGood                = 0x00
	StatusCheckCondition      = 0x02
	StatusBusy                = 0x08
	StatusReservationConflict = 0x18
	StatusTaskSetFull         = 0x28
	StatusTaskAborted         = 0x40
)

// Sense keys.
const (
	SenseNoSense        = 0x0
	SenseNotReady       = 0x2
	SenseMediumError    = 0x3
	SenseHardwareError  = 0x4
	SenseIllegalRequest = 0x5
	SenseUnitAttention  = 0x6
	SenseDataProtect    = 0x7
	SenseAbortedCommand = 0xb
)

// Sense is the decoded part of sense data that decisions depend on.
type Sense struct {
	Key, ASC, ASCQ byte
}

// ParseSense decodes fixed (0x70/0x71) or descriptor (0x72/0x73) sense data.
func ParseSense(b []byte) (Sense, error) {
	if len(b) < 1 {
		return Sense{}, errors.New("sense: empty")
	}
	switch b[0] & 0x7f {
	case 0x70, 0x71:
		if len(b) < 3 {
			return Sense{}, fmt.Errorf("sense: fixed format in %d bytes", len(b))
		}
		s := Sense{Key: b[2] & 0x0f}
		// ASC/ASCQ are present only if the additional length reaches them.
		if len(b) >= 14 && len(b) >= 8 && int(b[7]) >= 6 {
			s.ASC, s.ASCQ = b[12], b[13]
		}
		return s, nil
	case 0x72, 0x73:
		if len(b) < 4 {
			return Sense{}, fmt.Errorf("sense: descriptor format in %d bytes", len(b))
		}
		return Sense{Key: b[1] & 0x0f, ASC: b[2], ASCQ: b[3]}, nil
	}
	return Sense{}, fmt.Errorf("sense: response code 0x%02x", b[0]&0x7f)
}

var senseKeyNames = [16]string{
	"NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR",
	"ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC",
	"COPY ABORTED", "ABORTED COMMAND", "0xc", "VOLUME OVERFLOW", "MISCOMPARE", "0xf",
}

var ascNames = map[uint16]string{
	0x2000: "INVALID COMMAND OPERATION CODE",
	0x2400: "INVALID FIELD IN CDB",
	0x2600: "INVALID FIELD IN PARAMETER LIST",
	0x2500: "LOGICAL UNIT NOT SUPPORTED",
	0x2900: "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED",
	0x2a03: "RESERVATIONS PREEMPTED",
	0x2a04: "RESERVATIONS RELEASED",
	0x2a05: "REGISTRATIONS PREEMPTED",
	0x3f0e: "REPORTED LUNS DATA HAS CHANGED",
	0x5502: "INSUFFICIENT REGISTRATION RESOURCES",
}

func (s Sense) String() string {
	out := senseKeyNames[s.Key&0x0f]
	if n, ok := ascNames[uint16(s.ASC)<<8|uint16(s.ASCQ)]; ok {
		out += ", " + n
	}
	return fmt.Sprintf("%s (%02x/%02x)", out, s.ASC, s.ASCQ)
}

// CommandError is a command that completed with a status other than GOOD.
type CommandError struct {
	Command  string
	Status   byte
	Sense    Sense
	HasSense bool
}

func (e *CommandError) Error() string {
	switch e.Status {
	case StatusReservationConflict:
		return e.Command + ": RESERVATION CONFLICT"
	case StatusCheckCondition:
		if e.HasSense {
			return fmt.Sprintf("%s: CHECK CONDITION: %s", e.Command, e.Sense)
		}
		return e.Command + ": CHECK CONDITION without sense data"
	case StatusBusy:
		return e.Command + ": BUSY"
	case StatusTaskSetFull:
		return e.Command + ": TASK SET FULL"
	case StatusTaskAborted:
		return e.Command + ": TASK ABORTED"
	}
	return fmt.Sprintf("%s: status 0x%02x", e.Command, e.Status)
}

// IsReservationConflict reports a RESERVATION CONFLICT status.
func IsReservationConflict(err error) bool {
	var ce *CommandError
	return errors.As(err, &ce) && ce.Status == StatusReservationConflict
}

// IsSenseKey reports a CHECK CONDITION with the given sense key.
func IsSenseKey(err error, key byte) bool {
	var ce *CommandError
	return errors.As(err, &ce) && ce.Status == StatusCheckCondition && ce.HasSense && ce.Sense.Key == key
}

// checkStatus turns a status and sense buffer into nil or a *CommandError.
func checkStatus(cmd string, status byte, sense []byte) error {
	if status == StatusGood {
		return nil
	}
	e := &CommandError{Command: cmd, Status: status}
	if status == StatusCheckCondition && len(sense) > 0 {
		if s, err := ParseSense(sense); err == nil {
			e.Sense, e.HasSense = s, true
		}
	}
	return e
}
