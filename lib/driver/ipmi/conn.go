package ipmi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// conn is the UDP socket under go-ipmi. go-ipmi writes one request, sets a
// read deadline and reads until its reply matches; conn retransmits the
// request on its own schedule while go-ipmi waits, gives up on a request
// after a silence budget (so a login step the BMC ignores fails at once
// instead of after go-ipmi's retries), wakes a blocked read when the
// caller's context ends, and drops datagrams go-ipmi would panic on.
type conn struct {
	raw *net.UDPConn

	mu         sync.Mutex
	last       []byte    // the request being waited for
	sentAt     time.Time // first transmission of last
	nextResend time.Time
	interval   time.Duration
	deadline   time.Time // go-ipmi's read deadline
	stop       bool      // interrupted by the caller's context

	// Set by Session between operations, read under mu.
	budget  time.Duration // silence allowed per request; 0 = up to the deadline
	resend  time.Duration // first retransmission interval
	answers int           // datagrams passed up
	status  byte          // non-zero RMCP+ status seen during login
}

// maxResend caps the doubling retransmission interval.
const maxResend = 2 * time.Second

var errInterrupted = errors.New("interrupted: context done")

// silentError: the BMC left one request unanswered for the whole budget.
// It is not a net.Error timeout, so go-ipmi stops at once instead of retrying.
type silentError struct{ after time.Duration }

func (e *silentError) Error() string { return fmt.Sprintf("no answer within %v", e.after) }

// timeoutError is go-ipmi's read deadline passing; go-ipmi checks for it
// with a type assertion to net.Error.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

var _ net.Conn = (*conn)(nil)
var _ net.Error = timeoutError{}

func (c *conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.last = append(c.last[:0], b...)
	c.sentAt = time.Now()
	c.interval = c.resend
	c.nextResend = c.sentAt.Add(c.interval)
	c.mu.Unlock()
	return c.raw.Write(b)
}

func (c *conn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		if c.stop {
			c.mu.Unlock()
			return 0, errInterrupted
		}
		limit, silent := c.deadline, false
		if c.budget > 0 && !c.sentAt.IsZero() {
			if b := c.sentAt.Add(c.budget); limit.IsZero() || b.Before(limit) {
				limit, silent = b, true
			}
		}
		wake := limit
		if c.interval > 0 && len(c.last) > 0 && (wake.IsZero() || c.nextResend.Before(wake)) {
			wake = c.nextResend
		}
		err := c.raw.SetReadDeadline(wake)
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
		n, err := c.raw.Read(p)
		if err == nil {
			if !plausible(p[:n]) {
				continue
			}
			c.mu.Lock()
			c.answers++
			if st, ok := setupStatus(p[:n]); ok && st != 0 {
				c.status = st
			}
			c.mu.Unlock()
			return n, nil
		}
		if !isTimeout(err) {
			return 0, err
		}
		now := time.Now()
		c.mu.Lock()
		switch {
		case c.stop:
			c.mu.Unlock()
			return 0, errInterrupted
		case !limit.IsZero() && !now.Before(limit):
			c.mu.Unlock()
			if silent {
				return 0, &silentError{after: c.budget}
			}
			return 0, timeoutError{}
		case len(c.last) > 0 && !now.Before(c.nextResend):
			pkt := c.last
			c.interval = min(2*c.interval, maxResend)
			c.nextResend = now.Add(c.interval)
			c.mu.Unlock()
			// A lost retransmission is like a lost reply: keep waiting.
			_, _ = c.raw.Write(pkt)
		default:
			c.mu.Unlock()
		}
	}
}

// SetReadDeadline records go-ipmi's deadline; Read applies it.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *conn) SetDeadline(t time.Time) error      { return c.SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return nil }
func (c *conn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *conn) Close() error                       { return c.raw.Close() }

// interrupt wakes a blocked Read and makes every Read fail until arm.
func (c *conn) interrupt() {
	c.mu.Lock()
	c.stop = true
	_ = c.raw.SetReadDeadline(time.Unix(1, 0))
	c.mu.Unlock()
}

// arm prepares for one operation with the given silence budget.
func (c *conn) arm(budget time.Duration) {
	c.mu.Lock()
	c.stop = false
	c.budget = budget
	c.sentAt = time.Time{}
	c.last = c.last[:0]
	c.mu.Unlock()
}

func (c *conn) facts() (answers int, status byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answers, c.status
}

// dialer hands go-ipmi our conn instead of letting it dial its own socket.
type dialer struct{ c *conn }

func (d dialer) Dial(network, addr string) (net.Conn, error) { return d.c, nil }

// RMCP and session header layout (IPMI v2.0 §13.6, §13.8):
//
//	0  RMCP: version 06, reserved, sequence ff, class 07 (IPMI)
//	4  auth type: 00..05 IPMI v1.5, 06 RMCP+
//	RMCP+ (auth type 06):
//	5  payload type: bit 7 encrypted, bit 6 authenticated, bits 0-5 type
//	   (type 02 = OEM explicit: 4 bytes IANA + 2 bytes OEM payload ID follow)
//	6  session ID (4), sequence (4), payload length (2, little endian)
//	16 payload
const (
	rmcpPlus               = 0x06
	payloadOEM             = 0x02
	payloadOpenSessionResp = 0x11
	payloadRAKP2           = 0x13
	payloadRAKP4           = 0x15
	payloadIPMI            = 0x00
)

// session20Payload returns the payload type byte and the payload of an
// RMCP+ datagram.
func session20Payload(b []byte) (ptype byte, payload []byte, ok bool) {
	if len(b) < 16 || b[0] != 0x06 || b[3]&0x1f != 0x07 || b[4] != rmcpPlus {
		return 0, nil, false
	}
	ptype = b[5]
	off := 6
	if ptype&0x3f == payloadOEM {
		off += 6
	}
	if len(b) < off+10 {
		return 0, nil, false
	}
	n := int(binary.LittleEndian.Uint16(b[off+8:]))
	off += 10
	if n > len(b)-off {
		return 0, nil, false
	}
	return ptype, b[off : off+n], true
}

// setupStatus returns the RMCP+ status code of an Open Session Response or
// RAKP Message 2 or 4. ipmi_sim answers an unsupported cipher suite with only
// the message tag and status, which go-ipmi fails to unpack, and go-ipmi
// flattens the errors of its login steps into text; the status read here
// lets the error name the cause.
func setupStatus(b []byte) (byte, bool) {
	ptype, payload, ok := session20Payload(b)
	if !ok || len(payload) < 2 {
		return 0, false
	}
	switch ptype & 0x3f {
	case payloadOpenSessionResp, payloadRAKP2, payloadRAKP4:
		return payload[1], true
	}
	return 0, false
}

// plausible rejects encrypted RMCP+ payloads that go-ipmi's AES-CBC decoder
// would panic on (shorter than IV plus one block, or not whole blocks). Only
// AES suites are allowed, so every encrypted payload must pass this.
func plausible(b []byte) bool {
	ptype, payload, ok := session20Payload(b)
	if !ok || ptype&0x80 == 0 {
		return true
	}
	return len(payload) >= 32 && len(payload)%16 == 0
}
