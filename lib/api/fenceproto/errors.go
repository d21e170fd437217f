package fenceproto

import (
	"context"
	"errors"
)

// Exit codes of the fence-agent protocol (fencing.py's EC_* values).
const (
	ExitOK                = 0
	ExitGeneric           = 1
	ExitBadArgs           = 2 // also: status reports the target OFF
	ExitLoginDenied       = 3
	ExitConnectionLost    = 4
	ExitTimedOut          = 5
	ExitWaitingOn         = 6
	ExitWaitingOff        = 7
	ExitStatus            = 8
	ExitStatusHMC         = 9
	ExitPasswordMissing   = 10
	ExitInvalidPrivileges = 11
	ExitFetchVMUUID       = 12
)

// Error is a protocol failure that carries its exit code. Devices wrap the
// sentinels below (fmt.Errorf("...: %w", fenceproto.ErrLoginDenied)) so Run
// exits with the right code.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Sentinels for Device implementations; the messages are fencing.py's.
var (
	ErrBadArgs         = &Error{ExitBadArgs, "Failed: bad arguments"}
	ErrLoginDenied     = &Error{ExitLoginDenied, "Unable to connect/login to fencing device"}
	ErrConnection      = &Error{ExitConnectionLost, "Connection lost"}
	ErrTimeout         = &Error{ExitTimedOut, "Connection timed out"}
	ErrWaitingOn       = &Error{ExitWaitingOn, "Failed: Timed out waiting to power ON"}
	ErrWaitingOff      = &Error{ExitWaitingOff, "Failed: Timed out waiting to power OFF"}
	ErrStatus          = &Error{ExitStatus, "Failed: Unable to obtain correct plug status or plug is not available"}
	ErrPasswordMissing = &Error{ExitPasswordMissing, "Failed: You have to set login password"}
	ErrPrivileges      = &Error{ExitInvalidPrivileges, "Failed: The user does not have the correct privileges to do the requested action."}
	// ErrUnsupported: the device cannot do the requested action (e.g. on
	// without a start command). It exits with the generic code 1.
	ErrUnsupported = &Error{ExitGeneric, "Failed: action not supported by this device"}
)

// ExitCode maps an error to the protocol exit code: the code of the first
// *Error in the chain, ExitTimedOut for deadline errors, else ExitGeneric.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ExitTimedOut
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return ExitTimedOut
	}
	return ExitGeneric
}
