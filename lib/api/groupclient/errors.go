package groupclient

import (
	"errors"
	"fmt"

	"github.com/concord-ha/concord/lib/api/groupwire"
)

// Sentinels, one per groupwire.Code: errors.Is(err, ErrNotMember) tells an
// *Error with that code, from the daemon or from this package's own check
// of the same rule.
var (
	ErrInvalid     = errors.New("invalid request")
	ErrBadName     = errors.New("bad name")
	ErrNotMember   = errors.New("not a member")
	ErrAlready     = errors.New("already a member")
	ErrTooLarge    = errors.New("payload too large")
	ErrWouldBlock  = errors.New("would block")
	ErrNoTx        = errors.New("no transaction")
	ErrDenied      = errors.New("denied")
	ErrBadVersion  = errors.New("no protocol version in common")
	ErrUnavailable = errors.New("unavailable")
	ErrNotFound    = errors.New("not found")
)

var sentinels = [...]error{groupwire.Invalid: ErrInvalid, groupwire.BadName: ErrBadName,
	groupwire.NotMember: ErrNotMember, groupwire.Already: ErrAlready, groupwire.TooLarge: ErrTooLarge,
	groupwire.WouldBlock: ErrWouldBlock, groupwire.NoTx: ErrNoTx, groupwire.Denied: ErrDenied,
	groupwire.BadVersion: ErrBadVersion, groupwire.Unavailable: ErrUnavailable, groupwire.NotFound: ErrNotFound}

// Session errors: the session is over, and every later call returns the
// same error.
var (
	// ErrClosed: Close was called.
	ErrClosed = errors.New("groupclient: session closed")
	// ErrDisconnected: the daemon closed the session (it stopped, or
	// dropped this client).
	ErrDisconnected = errors.New("groupclient: concord-noded closed the session")
	// ErrProtocol: the daemon sent something the protocol does not allow;
	// the error says what, and wraps groupwire.ErrMalformed when a record
	// did not decode.
	ErrProtocol = errors.New("groupclient: protocol error")
)

// Error is a request refused, by the daemon (with its text) or by this
// package before sending (the same codes for the same rules).
type Error struct {
	Op   string // the request: "join", "send", ...
	Code groupwire.Code
	Text string
}

func (e *Error) Error() string {
	s := "groupclient: " + e.Op + ": " + e.Code.String()
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Unwrap returns the code's sentinel.
func (e *Error) Unwrap() error {
	if int(e.Code) < len(sentinels) {
		return sentinels[e.Code]
	}
	return nil
}

func codeError(op string, code groupwire.Code, format string, args ...any) *Error {
	return &Error{Op: op, Code: code, Text: fmt.Sprintf(format, args...)}
}

func protocolError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}
