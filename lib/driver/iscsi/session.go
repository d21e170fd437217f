package iscsi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// Config describes one initiator's session with one target.
type Config struct {
	Addr          string // host:port of the target portal
	Target        string // target IQN
	InitiatorName string // our IQN: with ISID, the PR I_T nexus
	ISID          [6]byte
	LUN           uint64
	// Logf, if set, receives one line per notable event (NOP-In, async
	// messages, renegotiated values).
	Logf func(format string, args ...any)
}

// ISIDRandom builds a random-format ISID (T=10b) from a 24-bit number and a
// 16-bit qualifier, the same layout libiscsi's iscsi_set_isid_random uses.
func ISIDRandom(n uint32, qualifier uint16) [6]byte {
	return [6]byte{0x80, byte(n >> 16), byte(n >> 8), byte(n), byte(qualifier >> 8), byte(qualifier)}
}

// ISIDFromName derives a stable ISID from an initiator name, so that a
// reconnect is the same I_T nexus (the hash iscsi-pr.c uses).
func ISIDFromName(name string) [6]byte {
	var h uint32
	for i := 0; i < len(name); i++ {
		h = h*31 + uint32(name[i])
	}
	return ISIDRandom(h&0xffffff, 0)
}

// Params are the operational values in force after login.
type Params struct {
	MaxRecvDataSegmentLength int // target's: bound of each PDU we send
	MaxBurstLength           int
	FirstBurstLength         int
	InitialR2T               bool
	ImmediateData            bool
}

// ourMaxRecv is the data segment size we accept from the target.
const ourMaxRecv = 262144

// LoginError is a login rejected by the target (status class not 0).
type LoginError struct {
	Class, Detail byte
}

func (e *LoginError) Error() string {
	msg := "unknown"
	switch uint16(e.Class)<<8 | uint16(e.Detail) {
	case 0x0101, 0x0102:
		msg = "target moved (redirect not followed)"
	case 0x0200:
		msg = "initiator error"
	case 0x0201:
		msg = "authentication failure"
	case 0x0202:
		msg = "authorization failure"
	case 0x0203:
		msg = "target not found"
	case 0x0204:
		msg = "target removed"
	case 0x0205:
		msg = "unsupported version"
	case 0x0206:
		msg = "too many connections"
	case 0x0207:
		msg = "missing parameter"
	case 0x0208:
		msg = "cannot include connection in session"
	case 0x0209:
		msg = "session type not supported"
	case 0x020a:
		msg = "session does not exist"
	case 0x020b:
		msg = "invalid request during login"
	case 0x0300:
		msg = "target error"
	case 0x0301:
		msg = "service unavailable"
	case 0x0302:
		msg = "out of resources"
	}
	return fmt.Sprintf("login rejected: status 0x%02x%02x (%s)", e.Class, e.Detail, msg)
}

// Session is one logged-in connection. Commands are serialized: Do may be
// called from several goroutines but runs one task at a time.
type Session struct {
	cfg    Config
	conn   net.Conn
	params Params

	mu        sync.Mutex
	itt       uint32
	cmdSN     uint32
	expStatSN uint32
	maxCmdSN  uint32
	closed    bool
}

// ErrClosed is returned by Do after Logout or Close.
var ErrClosed = errors.New("iscsi: session closed")

// Dial connects and logs in. The context bounds the TCP connect and login.
func Dial(ctx context.Context, cfg Config) (*Session, error) {
	if cfg.InitiatorName == "" || cfg.Target == "" || cfg.Addr == "" {
		return nil, errors.New("iscsi: Config needs Addr, Target and InitiatorName")
	}
	if cfg.ISID == ([6]byte{}) {
		cfg.ISID = ISIDFromName(cfg.InitiatorName)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("iscsi: %s: %w", cfg.Addr, err)
	}
	s := &Session{cfg: cfg, conn: c, cmdSN: 1}
	stop := s.watch(ctx)
	err = s.login()
	stop()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("iscsi: %s target %s as %s: %w", cfg.Addr, cfg.Target, cfg.InitiatorName, ctxErr(ctx, err))
	}
	return s, nil
}

// Params returns the negotiated operational values.
func (s *Session) Params() Params { return s.params }

// Config returns the session's configuration.
func (s *Session) Config() Config { return s.cfg }

// watch makes ctx cancellation interrupt blocking I/O on the connection.
func (s *Session) watch(ctx context.Context) (stop func()) {
	if dl, ok := ctx.Deadline(); ok {
		s.conn.SetDeadline(dl)
	}
	unwatch := context.AfterFunc(ctx, func() { s.conn.SetDeadline(time.Unix(1, 0)) })
	return func() {
		unwatch()
		s.conn.SetDeadline(time.Time{})
	}
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	// The connection deadline is the context's, and may fire first.
	if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

func (s *Session) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

func (s *Session) send(p *PDU) error {
	b, err := p.Marshal()
	if err != nil {
		return err
	}
	_, err = s.conn.Write(b)
	return err
}

func (s *Session) recv() (*PDU, error) {
	p, err := ReadPDU(s.conn, ourMaxRecv)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// noteStatus advances ExpStatSN and MaxCmdSN from a status-bearing PDU.
func (s *Session) noteStatus(p *PDU, hasStatus bool) {
	if hasStatus {
		if sn := p.StatSN() + 1; int32(sn-s.expStatSN) > 0 {
			s.expStatSN = sn
		}
	}
	if m := p.MaxCmdSN(); int32(m-s.maxCmdSN) > 0 || s.maxCmdSN == 0 {
		s.maxCmdSN = m
	}
}

func (s *Session) nextITT() uint32 {
	s.itt++
	if s.itt == reservedTag {
		s.itt = 1
	}
	return s.itt
}

// login runs security negotiation (AuthMethod=None) then operational
// negotiation, ending in full feature phase.
func (s *Session) login() error {
	itt := s.nextITT()
	sec := []KV{
		{"InitiatorName", s.cfg.InitiatorName},
		{"SessionType", "Normal"},
		{"TargetName", s.cfg.Target},
		{"AuthMethod", "None"},
	}
	got, err := s.loginStage(itt, 0, 1, sec)
	if err != nil {
		return err
	}
	if v := lookup(got, "AuthMethod"); v != "" && v != "None" {
		return fmt.Errorf("target requires AuthMethod=%s; only None is supported", v)
	}
	op := []KV{
		{"HeaderDigest", "None"},
		{"DataDigest", "None"},
		{"MaxRecvDataSegmentLength", strconv.Itoa(ourMaxRecv)},
		{"InitialR2T", "Yes"},
		{"ImmediateData", "Yes"},
		{"FirstBurstLength", "262144"},
		{"MaxBurstLength", "262144"},
		{"MaxConnections", "1"},
		{"DefaultTime2Wait", "0"},
		{"DefaultTime2Retain", "0"},
		{"MaxOutstandingR2T", "1"},
		{"DataPDUInOrder", "Yes"},
		{"DataSequenceInOrder", "Yes"},
		{"ErrorRecoveryLevel", "0"},
	}
	got, err = s.loginStage(itt, 1, 3, op)
	if err != nil {
		return err
	}
	return s.applyParams(got)
}

// loginStage sends keys in stage csg asking to move to nsg, and keeps
// sending empty requests until the target agrees to transit. It returns all
// keys the target sent in this stage.
func (s *Session) loginStage(itt uint32, csg, nsg byte, keys []KV) ([]KV, error) {
	var got []KV
	data := EncodeText(keys)
	for round := 0; ; round++ {
		if round > 8 {
			return nil, fmt.Errorf("stage %d: target did not transit after %d rounds", csg, round)
		}
		req := &PDU{Data: data}
		req.BHS[0] = 0x40 | OpLoginReq
		req.BHS[1] = 0x80 | csg<<2 | nsg
		copy(req.BHS[8:14], s.cfg.ISID[:])
		req.put32(16, itt)
		req.put32(24, s.cmdSN)
		req.put32(28, s.expStatSN)
		if err := s.send(req); err != nil {
			return nil, err
		}
		data = nil
		var text []byte
		var resp *PDU
		for {
			p, err := s.recv()
			if err != nil {
				return nil, fmt.Errorf("reading login response: %w", err)
			}
			if p.Opcode() == OpReject {
				return nil, fmt.Errorf("login PDU rejected, reason 0x%02x", p.BHS[2])
			}
			if p.Opcode() != OpLoginResp {
				return nil, fmt.Errorf("got %s during login", opName(p.Opcode()))
			}
			if p.BHS[36] != 0 {
				return nil, &LoginError{p.BHS[36], p.BHS[37]}
			}
			s.expStatSN = p.StatSN() + 1
			s.maxCmdSN = p.MaxCmdSN()
			text = append(text, p.Data...)
			if p.Flags()&0x40 == 0 { // C bit clear: text complete
				resp = p
				break
			}
			// C bit: acknowledge with an empty request, same stage.
			ack := &PDU{}
			ack.BHS[0] = 0x40 | OpLoginReq
			ack.BHS[1] = csg << 2
			copy(ack.BHS[8:14], s.cfg.ISID[:])
			ack.put32(16, itt)
			ack.put32(24, s.cmdSN)
			ack.put32(28, s.expStatSN)
			if err := s.send(ack); err != nil {
				return nil, err
			}
		}
		kvs, err := ParseText(text)
		if err != nil {
			return nil, err
		}
		got = append(got, kvs...)
		if rcsg := (resp.Flags() >> 2) & 3; rcsg != csg {
			return nil, fmt.Errorf("login response in stage %d, expected %d", rcsg, csg)
		}
		if resp.Flags()&0x80 != 0 {
			if rnsg := resp.Flags() & 3; rnsg != nsg {
				return nil, fmt.Errorf("target moved to stage %d, expected %d", rnsg, nsg)
			}
			if nsg == 3 {
				s.cmdSN = resp.ExpCmdSN()
			}
			return got, nil
		}
	}
}

func lookup(kvs []KV, key string) string {
	v := ""
	for _, kv := range kvs {
		if kv.Key == key {
			v = kv.Value
		}
	}
	return v
}

// applyParams combines our offer with the target's answers (RFC 7143 13.x:
// InitialR2T is OR, ImmediateData is AND, burst lengths are the minimum).
func (s *Session) applyParams(got []KV) error {
	p := Params{
		MaxRecvDataSegmentLength: 8192, // default when the target declares none
		MaxBurstLength:           262144,
		FirstBurstLength:         65536,
		InitialR2T:               true,
		ImmediateData:            true,
	}
	num := func(key string, dst *int) error {
		v := lookup(got, key)
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 512 || n > maxDataSegment {
			return fmt.Errorf("target sent bad %s=%q", key, v)
		}
		*dst = n
		return nil
	}
	if err := num("MaxRecvDataSegmentLength", &p.MaxRecvDataSegmentLength); err != nil {
		return err
	}
	if err := num("MaxBurstLength", &p.MaxBurstLength); err != nil {
		return err
	}
	if err := num("FirstBurstLength", &p.FirstBurstLength); err != nil {
		return err
	}
	p.MaxBurstLength = min(p.MaxBurstLength, 262144)
	p.FirstBurstLength = min(p.FirstBurstLength, 262144, p.MaxBurstLength)
	if v := lookup(got, "ImmediateData"); v == "No" {
		p.ImmediateData = false
	}
	for _, k := range []string{"HeaderDigest", "DataDigest"} {
		if v := lookup(got, k); v != "" && v != "None" {
			return fmt.Errorf("target insists on %s=%s; only None is supported", k, v)
		}
	}
	s.params = p
	s.logf("iscsi: logged in to %s (%s): MaxRecvDataSegmentLength=%d FirstBurstLength=%d ImmediateData=%v",
		s.cfg.Target, s.cfg.Addr, p.MaxRecvDataSegmentLength, p.FirstBurstLength, p.ImmediateData)
	return nil
}

// Do runs one SCSI command (the scsipr Transport contract). err is set only
// for transport failures; SCSI status and sense come back as values.
func (s *Session) Do(ctx context.Context, cdb []byte, dataOut []byte, dataInLen int) ([]byte, byte, []byte, error) {
	if len(cdb) == 0 || len(cdb) > 16 {
		return nil, 0, nil, fmt.Errorf("iscsi: CDB of %d bytes (1-16 supported)", len(cdb))
	}
	if len(dataOut) > 0 && dataInLen > 0 {
		return nil, 0, nil, errors.New("iscsi: bidirectional commands are not supported")
	}
	if dataInLen < 0 || dataInLen > 1<<24 {
		return nil, 0, nil, fmt.Errorf("iscsi: data-in length %d out of range", dataInLen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, 0, nil, ErrClosed
	}
	stop := s.watch(ctx)
	in, st, sense, err := s.do(cdb, dataOut, dataInLen)
	stop()
	if err != nil {
		// A half-done task leaves the connection out of step: drop it.
		s.closed = true
		s.conn.Close()
		return nil, 0, nil, fmt.Errorf("iscsi: %s: CDB 0x%02x: %w", s.cfg.Addr, cdb[0], ctxErr(ctx, err))
	}
	return in, st, sense, nil
}

func (s *Session) do(cdb, dataOut []byte, dataInLen int) ([]byte, byte, []byte, error) {
	itt := s.nextITT()
	lun := encodeLUN(s.cfg.LUN)
	cmd := &PDU{}
	cmd.BHS[0] = OpSCSICommand
	cmd.BHS[1] = 0x80 | 0x01 // F, simple task attribute
	if dataInLen > 0 {
		cmd.BHS[1] |= 0x40
	}
	if len(dataOut) > 0 {
		cmd.BHS[1] |= 0x20
	}
	copy(cmd.BHS[8:16], lun[:])
	cmd.put32(16, itt)
	cmd.put32(20, uint32(max(dataInLen, len(dataOut))))
	cmd.put32(24, s.cmdSN)
	cmd.put32(28, s.expStatSN)
	copy(cmd.BHS[32:48], cdb)
	sent := 0
	if len(dataOut) > 0 && s.params.ImmediateData {
		sent = min(len(dataOut), s.params.FirstBurstLength, s.params.MaxRecvDataSegmentLength)
		cmd.Data = dataOut[:sent]
	}
	if err := s.send(cmd); err != nil {
		return nil, 0, nil, err
	}
	s.cmdSN++
	var in []byte
	if dataInLen > 0 {
		in = make([]byte, 0, dataInLen)
	}
	got := 0 // highest byte received in Data-In
	for {
		p, err := s.recv()
		if err != nil {
			return nil, 0, nil, err
		}
		switch p.Opcode() {
		case OpNOPIn:
			if err := s.nopIn(p); err != nil {
				return nil, 0, nil, err
			}
			continue
		case OpAsync:
			s.noteStatus(p, true)
			s.logf("iscsi: %s: async message event %d", s.cfg.Target, p.BHS[36])
			if p.BHS[36] == 1 || p.BHS[36] == 2 || p.BHS[36] == 3 {
				return nil, 0, nil, fmt.Errorf("target is dropping the session (async event %d)", p.BHS[36])
			}
			continue
		case OpReject:
			s.noteStatus(p, true)
			return nil, 0, nil, fmt.Errorf("command rejected, reason 0x%02x", p.BHS[2])
		}
		if p.ITT() != itt {
			return nil, 0, nil, fmt.Errorf("%s for task 0x%x while waiting for 0x%x", opName(p.Opcode()), p.ITT(), itt)
		}
		switch p.Opcode() {
		case OpDataIn:
			off := int(p.u32(40))
			end := off + len(p.Data)
			if off < 0 || end > dataInLen {
				return nil, 0, nil, fmt.Errorf("Data-In at offset %d length %d exceeds the %d bytes asked for", off, len(p.Data), dataInLen)
			}
			if end > len(in) {
				in = in[:end]
			}
			copy(in[off:], p.Data)
			got = max(got, end)
			if p.Flags()&0x01 != 0 { // S: status in this PDU
				s.noteStatus(p, true)
				return in[:got], p.BHS[3], nil, nil
			}
			s.noteStatus(p, false)
		case OpR2T:
			s.noteStatus(p, false)
			if err := s.dataOut(p, lun, dataOut); err != nil {
				return nil, 0, nil, err
			}
		case OpSCSIResp:
			s.noteStatus(p, true)
			if p.BHS[2] != 0 {
				return nil, 0, nil, fmt.Errorf("target failure, response 0x%02x", p.BHS[2])
			}
			var sense []byte
			if len(p.Data) >= 2 {
				n := int(p.Data[0])<<8 | int(p.Data[1])
				if n > len(p.Data)-2 {
					return nil, 0, nil, fmt.Errorf("sense length %d exceeds the %d-byte data segment", n, len(p.Data))
				}
				sense = append([]byte(nil), p.Data[2:2+n]...)
			}
			return in[:got], p.BHS[3], sense, nil
		default:
			return nil, 0, nil, fmt.Errorf("unexpected %s during a command", opName(p.Opcode()))
		}
	}
}

// dataOut answers an R2T with Data-Out PDUs no larger than the target takes.
func (s *Session) dataOut(r2t *PDU, lun [8]byte, data []byte) error {
	off := int(r2t.u32(40))
	want := int(r2t.u32(44))
	if off < 0 || want <= 0 || off+want > len(data) {
		return fmt.Errorf("R2T for offset %d length %d outside the %d bytes to send", off, want, len(data))
	}
	var dataSN uint32
	for want > 0 {
		n := min(want, s.params.MaxRecvDataSegmentLength)
		p := &PDU{Data: data[off : off+n]}
		p.BHS[0] = OpDataOut
		if n == want {
			p.BHS[1] = 0x80
		}
		copy(p.BHS[8:16], lun[:])
		p.put32(16, r2t.ITT())
		p.put32(20, r2t.TTT())
		p.put32(28, s.expStatSN)
		p.put32(36, dataSN)
		p.put32(40, uint32(off))
		if err := s.send(p); err != nil {
			return err
		}
		dataSN++
		off += n
		want -= n
	}
	return nil
}

// nopIn answers a target ping (TTT set) with a NOP-Out echoing it.
func (s *Session) nopIn(p *PDU) error {
	if p.TTT() == reservedTag {
		s.noteStatus(p, p.ITT() != reservedTag)
		return nil
	}
	s.noteStatus(p, false)
	out := &PDU{Data: p.Data}
	out.BHS[0] = 0x40 | OpNOPOut
	out.BHS[1] = 0x80
	copy(out.BHS[8:16], p.BHS[8:16])
	out.put32(16, reservedTag)
	out.put32(20, p.TTT())
	out.put32(24, s.cmdSN)
	out.put32(28, s.expStatSN)
	return s.send(out)
}

// Logout closes the session cleanly (reason 0: close the session) and the
// connection. The registration of a PR key may die with the session on
// some targets (tgtd), so callers that fence keep sessions open.
func (s *Session) Logout(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	defer s.conn.Close()
	stop := s.watch(ctx)
	defer stop()
	req := &PDU{}
	req.BHS[0] = 0x40 | OpLogoutReq
	req.BHS[1] = 0x80
	req.put32(16, s.nextITT())
	req.put32(24, s.cmdSN)
	req.put32(28, s.expStatSN)
	if err := s.send(req); err != nil {
		return fmt.Errorf("iscsi: %s: logout: %w", s.cfg.Addr, err)
	}
	for {
		p, err := s.recv()
		if err != nil {
			return fmt.Errorf("iscsi: %s: logout: %w", s.cfg.Addr, ctxErr(ctx, err))
		}
		switch p.Opcode() {
		case OpNOPIn, OpAsync:
			continue
		case OpLogoutResp:
			if p.BHS[2] != 0 {
				return fmt.Errorf("iscsi: %s: logout refused, response %d", s.cfg.Addr, p.BHS[2])
			}
			return nil
		default:
			return fmt.Errorf("iscsi: %s: unexpected %s during logout", s.cfg.Addr, opName(p.Opcode()))
		}
	}
}

// Close drops the connection without logging out.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.conn.Close()
}
