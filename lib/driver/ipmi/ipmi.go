package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/rmcpplus"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Interface is the IPMI LAN protocol version.
type Interface string

// Interfaces.
const (
	LANPlus Interface = "lanplus" // IPMI v2.0 RMCP+
	LAN     Interface = "lan"     // IPMI v1.5
)

// Privilege is a session privilege level.
type Privilege string

// Privilege levels, by their ipmitool names.
const (
	PrivCallback Privilege = "callback"
	PrivUser     Privilege = "user"
	PrivOperator Privilege = "operator"
	PrivAdmin    Privilege = "administrator"
)

// ParsePrivilege accepts ipmitool's names in any case, and "admin".
func ParsePrivilege(s string) (Privilege, error) {
	switch p := Privilege(strings.ToLower(strings.TrimSpace(s))); p {
	case PrivCallback, PrivUser, PrivOperator, PrivAdmin:
		return p, nil
	case "admin":
		return PrivAdmin, nil
	}
	return "", fmt.Errorf("ipmi: bad privilege level %q (want callback, user, operator or administrator)", s)
}

func (p Privilege) level() types.PrivilegeLevel {
	switch p {
	case PrivCallback:
		return types.PrivilegeLevelCallback
	case PrivUser:
		return types.PrivilegeLevelUser
	case PrivOperator:
		return types.PrivilegeLevelOperator
	}
	return types.PrivilegeLevelAdministrator
}

// AutoCipherSuites are tried in order when Config.CipherSuite is 0:
// strongest first, as ipmitool 1.8.19 prefers 17 over 3 when it is left to
// choose. Cipher suite 0 (no authentication) is never used.
var AutoCipherSuites = []int{17, 3}

// Cipher suites that work through go-ipmi v0.9.1. Others use algorithms it
// gets wrong (suite 1 and 2: it marks payloads encrypted without an
// encryption algorithm, which crashes ipmi_sim 2.0.33; suites 8 and 12:
// HMAC-MD5 integrity is rejected) or no encryption at all.
var supportedSuites = map[int]bool{3: true, 17: true}

// Defaults.
const (
	DefaultPort       = 623
	DefaultStepBudget = time.Second
	DefaultResend     = 250 * time.Millisecond
	// Commands in a session are retransmitted after this, like ipmitool's
	// 1 s: a BMC busy switching power must not get a burst of duplicates.
	cmdResend = time.Second
)

// Config describes one BMC and how to log in.
type Config struct {
	Host      string
	Port      int // DefaultPort if 0
	Username  string
	Password  string
	Interface Interface // LANPlus if empty
	// CipherSuite for lanplus: 3 or 17; 0 tries AutoCipherSuites in order.
	CipherSuite int
	Privilege   Privilege // PrivAdmin if empty
	// StepBudget bounds how long one login request may go unanswered
	// (DefaultStepBudget if 0). A BMC that answered earlier steps and then
	// ignores one is refusing the login: IPMI v1.5 BMCs drop an Activate
	// Session with a wrong password instead of answering it.
	StepBudget time.Duration
	// Resend is the first retransmission interval during login (doubling,
	// at most 2 s); DefaultResend if 0.
	Resend time.Duration
	// Debug turns on go-ipmi's packet trace, printed to stdout (secrets
	// included): never in a fence agent, whose stdout is its answer.
	Debug bool
}

func (c *Config) addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.port()))
}

func (c *Config) port() int {
	if c.Port == 0 {
		return DefaultPort
	}
	return c.Port
}

func (c *Config) suites() ([]int, error) {
	if c.CipherSuite == 0 {
		return AutoCipherSuites, nil
	}
	if !supportedSuites[c.CipherSuite] {
		return nil, fmt.Errorf("ipmi: cipher suite %d not supported (use 3 or 17)", c.CipherSuite)
	}
	return []int{c.CipherSuite}, nil
}

// Validate reports the first bad field.
func (c *Config) Validate() error {
	if c.Host == "" {
		return errors.New("ipmi: no BMC address")
	}
	if p := c.port(); p < 1 || p > 65535 {
		return fmt.Errorf("ipmi: bad port %d", p)
	}
	switch c.Interface {
	case "", LANPlus, LAN:
	default:
		return fmt.Errorf("ipmi: bad interface %q (want lanplus or lan)", c.Interface)
	}
	if c.Interface != LAN {
		if _, err := c.suites(); err != nil {
			return err
		}
	}
	if c.Privilege != "" {
		if _, err := ParsePrivilege(string(c.Privilege)); err != nil {
			return err
		}
	}
	if len(c.Username) > rmcpplus.MaxUserNameLength {
		return fmt.Errorf("ipmi: user name %q longer than %d bytes", c.Username, rmcpplus.MaxUserNameLength)
	}
	if len(c.Password) > 20 || c.Interface == LAN && len(c.Password) > 16 {
		return errors.New("ipmi: password too long (at most 20 bytes for lanplus, 16 for lan)")
	}
	return nil
}

// Session is an open IPMI session. Its methods must not be called
// concurrently.
type Session struct {
	cfg   Config
	addr  string
	c     *client.Client
	conn  *conn
	suite int // the cipher suite in use, 0 for lan
	once  sync.Once
}

// Dial opens a session, failing when ctx ends. Errors are *OpError.
func Dial(ctx context.Context, cfg Config) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interface == "" {
		cfg.Interface = LANPlus
	}
	if cfg.Privilege == "" {
		cfg.Privilege = PrivAdmin
	}
	cfg.Privilege, _ = ParsePrivilege(string(cfg.Privilege))
	if cfg.StepBudget <= 0 {
		cfg.StepBudget = DefaultStepBudget
	}
	if cfg.Resend <= 0 {
		cfg.Resend = DefaultResend
	}
	s := &Session{cfg: cfg, addr: cfg.addr()}
	raddr, err := resolve(ctx, cfg.Host, cfg.port())
	if err != nil {
		return nil, &OpError{Op: "login", Addr: s.addr, Class: ErrUnreachable, Detail: err.Error(), Err: err}
	}
	raw, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return nil, &OpError{Op: "login", Addr: s.addr, Class: ErrUnreachable, Detail: err.Error(), Err: err}
	}
	s.conn = &conn{raw: raw, resend: cfg.Resend}
	suites := []int{0}
	if cfg.Interface == LANPlus {
		suites, _ = cfg.suites()
	}
	var last error
	var facts loginFacts
	for _, suite := range suites {
		err := s.login(ctx, suite)
		if err == nil {
			return s, nil
		}
		answers, status := s.conn.facts()
		facts = loginFacts{answers: answers, rmcpState: status, suite: suite, lan: cfg.Interface == LAN, ctxErr: ctx.Err()}
		last = err
		// Try the next suite only if the BMC refused this one.
		if !suiteRefused(status) || ctx.Err() != nil {
			break
		}
	}
	raw.Close()
	return nil, classifyLogin(s.addr, last, facts)
}

func resolve(ctx context.Context, host string, port int) (*net.UDPAddr, error) {
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %v", host, err)
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[0].Unmap(), uint16(port))), nil
}

// login runs one go-ipmi Connect with a fresh client (go-ipmi keeps
// half-built session state in the client, so a client is not reused).
func (s *Session) login(ctx context.Context, suite int) error {
	c, err := client.NewClient(s.cfg.Host, s.cfg.port(), s.cfg.Username, s.cfg.Password)
	if err != nil {
		return err
	}
	// go-ipmi's own per-attempt timeout and retries are replaced by conn's
	// schedule: one attempt, bounded by ctx and the step budget.
	c.WithUDPProxy(dialer{s.conn}).WithRetry(0).WithTimeout(time.Minute).WithDebug(s.cfg.Debug)
	c.WithMaxPrivilegeLevel(s.cfg.Privilege.level())
	if s.cfg.Interface == LAN {
		c.WithInterface(client.InterfaceLan)
	} else {
		c.WithInterface(client.InterfaceLanplus)
		c.WithCipherSuiteID(types.CipherSuiteID(suite))
	}
	s.conn.mu.Lock()
	s.conn.status, s.conn.answers = 0, 0
	s.conn.mu.Unlock()
	release := s.begin(ctx, s.cfg.StepBudget, s.cfg.Resend)
	err = c.Connect(ctx)
	release()
	if err != nil {
		return err
	}
	s.c, s.suite = c, suite
	return nil
}

// begin arms conn for one operation and wakes it when ctx ends.
func (s *Session) begin(ctx context.Context, budget, resend time.Duration) (release func()) {
	s.conn.mu.Lock()
	s.conn.resend = resend
	s.conn.mu.Unlock()
	s.conn.arm(budget)
	stop := context.AfterFunc(ctx, s.conn.interrupt)
	return func() { stop() }
}

// CipherSuite is the cipher suite in use (0 for lan).
func (s *Session) CipherSuite() int { return s.suite }

// Addr is the BMC's host:port.
func (s *Session) Addr() string { return s.addr }

// PowerOn reports whether chassis power is on (Get Chassis Status).
func (s *Session) PowerOn(ctx context.Context) (bool, error) {
	release := s.begin(ctx, 0, cmdResend)
	defer release()
	res, err := s.c.GetChassisStatus(ctx)
	if err != nil {
		return false, classifyCmd("chassis power status", s.addr, err)
	}
	return res.PowerIsOn, nil
}

// Control is a Chassis Control action.
type Control int

// Chassis Control actions (IPMI v2.0 §28.3).
const (
	PowerOff  Control = Control(chassis.ChassisControlPowerDown)
	PowerOn   Control = Control(chassis.ChassisControlPowerUp)
	PowerCyc  Control = Control(chassis.ChassisControlPowerCycle)
	HardReset Control = Control(chassis.ChassisControlHardReset)
	SoftOff   Control = Control(chassis.ChassisControlSoftShutdown)
)

func (a Control) String() string {
	switch a {
	case PowerOff:
		return "off"
	case PowerOn:
		return "on"
	case PowerCyc:
		return "cycle"
	case HardReset:
		return "reset"
	case SoftOff:
		return "soft"
	}
	return fmt.Sprintf("control(%d)", int(a))
}

// Chassis sends a Chassis Control command. It returns once the BMC
// accepted it; whether power really changed is for the caller to check.
func (s *Session) Chassis(ctx context.Context, a Control) error {
	release := s.begin(ctx, 0, cmdResend)
	defer release()
	if _, err := s.c.ChassisControl(ctx, chassis.ChassisControl(a)); err != nil {
		return classifyCmd("chassis power "+a.String(), s.addr, err)
	}
	return nil
}

// Close ends the session (Close Session, at most 500 ms) and the socket.
func (s *Session) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		release := s.begin(ctx, 0, s.cfg.Resend)
		// Best effort: the BMC times the session out anyway.
		_ = s.c.Close(ctx)
		release()
		cancel()
		s.conn.Close()
	})
	return nil
}
