package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Failure classes. Every error from this package wraps exactly one of them.
var (
	// ErrLoginDenied: the BMC answered but refused the session (user,
	// password, privilege level or cipher suite).
	ErrLoginDenied = errors.New("login denied")
	// ErrUnreachable: no IPMI service at the address (ICMP port or host
	// unreachable, bad address).
	ErrUnreachable = errors.New("BMC unreachable")
	// ErrTimeout: the BMC did not answer in time.
	ErrTimeout = errors.New("BMC timed out")
	// ErrPrivilege: the session's privilege level is too low for a command.
	ErrPrivilege = errors.New("insufficient privilege")
	// ErrProtocol: the BMC answered with an error or something unexpected.
	ErrProtocol = errors.New("IPMI error")
)

// OpError describes a failed operation on one BMC.
type OpError struct {
	Op     string // "login", "chassis power status", ...
	Addr   string // host:port
	Class  error  // one of the Err* classes
	Detail string // what happened, in words
	Err    error  // the underlying error, if any
}

func (e *OpError) Error() string {
	s := fmt.Sprintf("ipmi %s %s: %v", e.Op, e.Addr, e.Class)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap exposes both the class and the cause to errors.Is and errors.As.
func (e *OpError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Class}
	}
	return []error{e.Class, e.Err}
}

// loginFacts is what the socket saw during a login attempt.
type loginFacts struct {
	answers   int   // datagrams from the BMC
	rmcpState byte  // non-zero RMCP+ status of a login message
	suite     int   // cipher suite that was tried last, -1 for lan
	lan       bool  // IPMI v1.5
	ctxErr    error // the caller's context error, if any
}

// classifyLogin turns a failed go-ipmi Connect into an OpError.
func classifyLogin(addr string, err error, f loginFacts) *OpError {
	e := &OpError{Op: "login", Addr: addr, Err: err}
	var (
		rse  *types.RmcpStatusError
		re   *types.ResponseError
		sil  *silentError
		errn syscall.Errno
	)
	switch {
	case errors.As(err, &errn) && (errn == syscall.ECONNREFUSED || errn == syscall.EHOSTUNREACH || errn == syscall.ENETUNREACH):
		e.Class, e.Detail = ErrUnreachable, fmt.Sprintf("no IPMI service on %s/udp (%v)", addr, errn)
	case errors.Is(err, client.ErrRAKPAuthentication) || strings.Contains(err.Error(), client.ErrRAKPAuthentication.Error()):
		// go-ipmi's Connect20 formats its per-suite errors with %v, so
		// errors.Is cannot see this one: the text is all that is left.
		e.Class, e.Detail = ErrLoginDenied, "wrong password (RAKP authentication code mismatch)"
	case errors.As(err, &rse):
		e.Class, e.Detail = ErrLoginDenied, rmcpDetail(byte(rse.StatusCode()), f.suite)
	case f.rmcpState != 0:
		e.Class, e.Detail = ErrLoginDenied, rmcpDetail(f.rmcpState, f.suite)
	case errors.As(err, &re):
		e.Class = ErrLoginDenied
		switch re.CompletionCode() {
		case 0x81, 0x82:
			e.Detail = fmt.Sprintf("user refused (completion code %#02x)", uint8(re.CompletionCode()))
		case 0x86:
			e.Detail = "requested privilege level exceeds the user's or channel's limit"
		default:
			e.Detail = fmt.Sprintf("session activation refused (completion code %#02x)", uint8(re.CompletionCode()))
		}
	case errors.As(err, &sil):
		if f.answers > 0 {
			// IPMI v1.5 BMCs drop an Activate Session whose auth code is wrong.
			e.Class, e.Detail = ErrLoginDenied, fmt.Sprintf("BMC answered, then ignored the authenticated request for %v: wrong password?", sil.after)
		} else {
			e.Class, e.Detail = ErrTimeout, fmt.Sprintf("no answer from BMC within %v", sil.after)
		}
	case f.ctxErr != nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		e.Class = ErrTimeout
		if f.answers > 0 {
			e.Detail = "login did not complete in time"
		} else {
			e.Detail = "no answer from BMC"
		}
	default:
		e.Class, e.Detail = ErrProtocol, "session activation failed"
	}
	return e
}

// suiteRefused: the RMCP+ status says the BMC does not do this cipher
// suite (invalid or no matching algorithm).
func suiteRefused(code byte) bool {
	switch code {
	case 0x04, 0x05, 0x06, 0x07, 0x10, 0x11:
		return true
	}
	return false
}

func rmcpDetail(code byte, suite int) string {
	s := fmt.Sprintf("RMCP+ status %#02x (%s)", code, types.RmcpStatusCode(code))
	if suiteRefused(code) {
		return fmt.Sprintf("BMC does not accept cipher suite %d: %s", suite, s)
	}
	switch code {
	case 0x0d:
		return "unknown user: " + s
	case 0x09, 0x12:
		return "privilege level refused: " + s
	}
	return s
}

// classifyCmd turns a failed command inside a session into an OpError.
func classifyCmd(op, addr string, err error) *OpError {
	e := &OpError{Op: op, Addr: addr, Err: err}
	var (
		re   *types.ResponseError
		errn syscall.Errno
	)
	switch {
	case errors.As(err, &re) && re.CompletionCode() == 0xd4:
		e.Class, e.Detail = ErrPrivilege, "BMC refused the command at this session's privilege level (completion code 0xd4)"
	case errors.As(err, &re):
		e.Class, e.Detail = ErrProtocol, fmt.Sprintf("completion code %#02x", uint8(re.CompletionCode()))
	case errors.As(err, &errn) && (errn == syscall.ECONNREFUSED || errn == syscall.EHOSTUNREACH || errn == syscall.ENETUNREACH):
		e.Class, e.Detail = ErrUnreachable, errn.Error()
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err) || errors.Is(err, errInterrupted):
		e.Class, e.Detail = ErrTimeout, "no answer from BMC"
	case errors.Is(err, context.Canceled):
		e.Class, e.Detail = ErrTimeout, "cancelled"
	default:
		e.Class, e.Detail = ErrProtocol, "unexpected answer"
	}
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
