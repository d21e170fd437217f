package redfish

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/concord-ha/concord/lib/api/fenceproto"
)

// Auth selects how requests authenticate.
type Auth string

// Authentication methods.
const (
	AuthBasic   Auth = "basic"   // HTTP Basic on every request
	AuthSession Auth = "session" // SessionService token (X-Auth-Token)
)

// Config says where the BMC is and how to reach it.
type Config struct {
	Host       string // host or IP; "host:port" overrides Port
	Port       int    // default 443
	Username   string
	Password   string
	Auth       Auth
	Insecure   bool   // skip TLS certificate verification
	CAFile     string // PEM bundle to verify the BMC's certificate
	RedfishURI string // service root, default /redfish/v1
	SystemsURI string // the ComputerSystem; discovered when empty
	System     string // Id, Name or URI of the member to use when discovering
}

// Client talks to one BMC and one ComputerSystem.
type Client struct {
	cfg       Config
	base      string // https://host:port
	http      *http.Client
	token     string
	session   string // session URI to delete on Close
	systemURI string
	resetURI  string
	allowed   []string // ResetType@Redfish.AllowableValues, if advertised
}

// System is one member of the Systems collection.
type System struct {
	URI, ID, Name, PowerState string
}

// Dial builds the HTTPS client, opens a session if asked, and finds the
// ComputerSystem (cfg.SystemsURI, else cfg.System in the Systems collection,
// else the collection's only or first member).
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Port == 0 {
		cfg.Port = 443
	}
	if h, p, err := net.SplitHostPort(cfg.Host); err == nil {
		fmt.Sscan(p, &cfg.Port)
		cfg.Host = h
	}
	if cfg.Host == "" {
		return nil, fmt.Errorf("redfish: no host given: %w", fenceproto.ErrBadArgs)
	}
	if cfg.RedfishURI == "" {
		cfg.RedfishURI = "/redfish/v1"
	}
	if cfg.Auth == "" {
		cfg.Auth = AuthBasic
	}
	tc := &tls.Config{InsecureSkipVerify: cfg.Insecure} //nolint:gosec // the admin asked for ssl_insecure
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redfish: CA file: %v: %w", err, fenceproto.ErrBadArgs)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redfish: CA file %q holds no PEM certificate: %w", cfg.CAFile, fenceproto.ErrBadArgs)
		}
	}
	tr := &http.Transport{
		TLSClientConfig:     tc,
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2,
		ForceAttemptHTTP2:   true,
	}
	c := &Client{
		cfg:  cfg,
		base: "https://" + net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)),
		http: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	if err := c.login(ctx); err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	if err := c.findSystem(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) login(ctx context.Context) error {
	if c.cfg.Auth != AuthSession {
		return nil
	}
	var root struct {
		SessionService struct {
			ID string `json:"@odata.id"`
		}
		Links struct {
			Sessions struct {
				ID string `json:"@odata.id"`
			}
		}
	}
	sessions := strings.TrimSuffix(c.cfg.RedfishURI, "/") + "/SessionService/Sessions"
	if err := c.do(ctx, http.MethodGet, c.cfg.RedfishURI, nil, &root, nil); err == nil && root.Links.Sessions.ID != "" {
		sessions = root.Links.Sessions.ID
	} else if err != nil && !errors.Is(err, fenceproto.ErrLoginDenied) {
		return err
	}
	body := map[string]string{"UserName": c.cfg.Username, "Password": c.cfg.Password}
	var hdr http.Header
	if err := c.do(ctx, http.MethodPost, sessions, body, nil, &hdr); err != nil {
		return err
	}
	c.token = hdr.Get("X-Auth-Token")
	if c.token == "" {
		return fmt.Errorf("redfish: POST %s: no X-Auth-Token in the reply: %w", sessions, fenceproto.ErrLoginDenied)
	}
	c.session = hdr.Get("Location")
	return nil
}

func (c *Client) findSystem(ctx context.Context) error {
	c.systemURI = c.cfg.SystemsURI
	if c.systemURI == "" {
		systems, err := c.systemRefs(ctx)
		if err != nil {
			return err
		}
		if len(systems) == 0 {
			return fmt.Errorf("redfish: %s: the Systems collection is empty: %w", c.cfg.RedfishURI, fenceproto.ErrStatus)
		}
		c.systemURI = systems[0]
		if want := c.cfg.System; want != "" {
			c.systemURI = ""
			for _, s := range systems {
				if s == want || strings.TrimSuffix(s, "/")[strings.LastIndex(strings.TrimSuffix(s, "/"), "/")+1:] == want {
					c.systemURI = s
				}
			}
			if c.systemURI == "" {
				all, err := c.Systems(ctx)
				if err != nil {
					return err
				}
				for _, s := range all {
					if s.Name == want || s.ID == want {
						c.systemURI = s.URI
					}
				}
			}
			if c.systemURI == "" {
				return fmt.Errorf("redfish: no system %q in %v: %w", want, systems, fenceproto.ErrStatus)
			}
		}
	}
	sys, err := c.system(ctx, c.systemURI)
	if err != nil {
		return err
	}
	reset := sys.Actions.Reset
	c.resetURI = reset.Target
	if c.resetURI == "" {
		c.resetURI = strings.TrimSuffix(c.systemURI, "/") + "/Actions/ComputerSystem.Reset"
	}
	c.allowed = reset.Allowed
	return nil
}

type systemDoc struct {
	ID         string `json:"@odata.id"`
	Id         string //nolint:revive // Redfish property name
	Name       string
	PowerState string
	Actions    struct {
		Reset struct {
			Target  string   `json:"target"`
			Allowed []string `json:"ResetType@Redfish.AllowableValues"`
		} `json:"#ComputerSystem.Reset"`
	}
}

func (c *Client) system(ctx context.Context, uri string) (*systemDoc, error) {
	var s systemDoc
	if err := c.do(ctx, http.MethodGet, uri, nil, &s, nil); err != nil {
		return nil, err
	}
	return &s, nil
}

func (c *Client) systemRefs(ctx context.Context) ([]string, error) {
	var root struct {
		Systems struct {
			ID string `json:"@odata.id"`
		}
	}
	if err := c.do(ctx, http.MethodGet, c.cfg.RedfishURI, nil, &root, nil); err != nil {
		return nil, err
	}
	if root.Systems.ID == "" {
		return nil, fmt.Errorf("redfish: service root %s has no Systems link: %w", c.cfg.RedfishURI, fenceproto.ErrStatus)
	}
	var coll struct {
		Members []struct {
			ID string `json:"@odata.id"`
		}
	}
	if err := c.do(ctx, http.MethodGet, root.Systems.ID, nil, &coll, nil); err != nil {
		return nil, err
	}
	refs := make([]string, 0, len(coll.Members))
	for _, m := range coll.Members {
		refs = append(refs, m.ID)
	}
	return refs, nil
}

// Systems lists every ComputerSystem with its power state.
func (c *Client) Systems(ctx context.Context) ([]System, error) {
	refs, err := c.systemRefs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]System, 0, len(refs))
	for _, r := range refs {
		s, err := c.system(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, System{URI: r, ID: s.Id, Name: s.Name, PowerState: s.PowerState})
	}
	return out, nil
}

// SystemURI is the ComputerSystem this client acts on.
func (c *Client) SystemURI() string { return c.systemURI }

// PowerState returns the system's PowerState ("On", "Off", "PoweringOn", ...).
func (c *Client) PowerState(ctx context.Context) (string, error) {
	s, err := c.system(ctx, c.systemURI)
	if err != nil {
		return "", err
	}
	if s.PowerState == "" {
		return "", fmt.Errorf("redfish: %s has no PowerState: %w", c.systemURI, fenceproto.ErrStatus)
	}
	return s.PowerState, nil
}

// Allows reports whether the BMC advertises resetType (true when it lists none).
func (c *Client) Allows(resetType string) bool {
	if len(c.allowed) == 0 {
		return true
	}
	for _, a := range c.allowed {
		if a == resetType {
			return true
		}
	}
	return false
}

// Reset posts ComputerSystem.Reset with resetType (On, ForceOff, ...).
func (c *Client) Reset(ctx context.Context, resetType string) error {
	return c.do(ctx, http.MethodPost, c.resetURI, map[string]string{"ResetType": resetType}, nil, nil)
}

// Close deletes the session, if any, and drops idle connections.
func (c *Client) Close() error {
	var err error
	if c.session != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = c.do(ctx, http.MethodDelete, c.session, nil, nil, nil)
		cancel()
		c.session = ""
	}
	c.http.CloseIdleConnections()
	return err
}

// do sends one request; body and out are JSON. Errors wrap fenceproto's
// sentinels: 401 login denied, 403 privileges, network failures
// connection lost, deadlines timed out.
func (c *Client) do(ctx context.Context, method, uri string, body, out any, hdr *http.Header) error {
	u := uri
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		if !strings.HasPrefix(u, "/") {
			u = "/" + u
		}
		u = c.base + u
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("redfish: %s %s: %v", method, uri, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("redfish: %s %s: %v: %w", method, uri, err, fenceproto.ErrBadArgs)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	} else {
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	resp, err := c.http.Do(req)
	if err != nil && method == http.MethodGet && ctx.Err() == nil {
		// BMCs drop kept-alive connections under load; a read is safe to
		// send once more on a fresh one.
		c.http.CloseIdleConnections()
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
			resp, err = c.http.Do(req.Clone(ctx))
		}
	}
	if err != nil {
		return fmt.Errorf("redfish: %s %s: %w", method, uri, netError(ctx, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("redfish: %s %s: reading reply: %w", method, uri, netError(ctx, err))
	}
	if hdr != nil {
		*hdr = resp.Header
	}
	if resp.StatusCode/100 != 2 {
		msg := resp.Status
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			msg += ": " + e.Error.Message
		}
		var sentinel error
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			sentinel = fenceproto.ErrLoginDenied
		case http.StatusForbidden:
			sentinel = fenceproto.ErrPrivileges
		case http.StatusNotFound:
			sentinel = fenceproto.ErrStatus
		default:
			return fmt.Errorf("redfish: %s %s: %s", method, uri, msg)
		}
		return fmt.Errorf("redfish: %s %s: %s: %w", method, uri, msg, sentinel)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("redfish: %s %s: bad JSON: %v", method, uri, err)
		}
	}
	return nil
}

// netError classifies a transport error.
func netError(ctx context.Context, err error) error {
	var ne net.Error
	var ue *url.Error
	switch {
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%v: %w", unwrapURL(err), fenceproto.ErrTimeout)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%v: %w", unwrapURL(err), fenceproto.ErrTimeout)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Errorf("%v: %w", unwrapURL(err), fenceproto.ErrConnection)
	case errors.As(err, &ue):
		var ce *tls.CertificateVerificationError
		if errors.As(err, &ce) {
			return fmt.Errorf("%v (use ssl_insecure or ca_file)", ue.Err)
		}
		var oe *net.OpError
		if errors.As(err, &oe) {
			return fmt.Errorf("%v: %w", ue.Err, fenceproto.ErrConnection)
		}
		return ue.Err
	}
	return err
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
