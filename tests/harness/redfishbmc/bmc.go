package redfishbmc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Server is a fake BMC with one or more ComputerSystems.
type Server struct {
	User, Password string
	// Delay is added before every reply (a slow BMC).
	Delay time.Duration
	// Lag is how long a power change shows PoweringOn/PoweringOff.
	Lag time.Duration
	// Stuck makes resets succeed without changing the power state.
	Stuck bool

	mu       sync.Mutex
	systems  []*system
	sessions map[string]string // token -> session URI
	nextSess int
	resets   []string // "ID ResetType"
	requests int
	basic    int
	token    int

	ln      net.Listener
	srv     *http.Server
	certPEM []byte
}

type system struct {
	id, name string
	on       bool
	changeAt time.Time
}

// New returns a BMC whose systems are named by names (Ids "1", "2", ...),
// all powered on. Start it with Start.
func New(user, password string, names ...string) *Server {
	if len(names) == 0 {
		names = []string{"fencenode"}
	}
	s := &Server{User: user, Password: password, sessions: map[string]string{}}
	for i, n := range names {
		s.systems = append(s.systems, &system{id: fmt.Sprint(i + 1), name: n, on: true})
	}
	return s
}

// Start serves HTTPS on 127.0.0.1 with a fresh self-signed certificate.
func (s *Server) Start() error {
	cert, certPEM, err := selfSigned()
	if err != nil {
		return err
	}
	s.certPEM = certPEM
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	s.srv.SetKeepAlivesEnabled(true)
	go s.srv.Serve(s.ln)
	return nil
}

// Port is the TCP port the BMC listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// WriteCert writes the BMC's certificate (PEM) to path.
func (s *Server) WriteCert(path string) error { return os.WriteFile(path, s.certPEM, 0o644) }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// SetDelay changes Delay while serving.
func (s *Server) SetDelay(d time.Duration) { s.mu.Lock(); s.Delay = d; s.mu.Unlock() }

// SetPower sets a system's power at once.
func (s *Server) SetPower(id string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sys := range s.systems {
		if sys.id == id {
			sys.on, sys.changeAt = on, time.Time{}
		}
	}
}

// Power reports whether system id is on (transitions count as done).
func (s *Server) Power(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sys := range s.systems {
		if sys.id == id {
			return sys.on
		}
	}
	return false
}

// Resets returns the ResetTypes posted so far, as "ID ResetType".
func (s *Server) Resets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.resets...)
}

// Stats returns counts of requests, Basic-authenticated requests,
// token-authenticated requests and sessions still open.
func (s *Server) Stats() (requests, basic, token, openSessions int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.basic, s.token, len(s.sessions)
}

// ResetLog clears the reset log and counters.
func (s *Server) ResetLog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resets, s.requests, s.basic, s.token = nil, 0, 0, 0
}

func (sys *system) powerState(now time.Time) string {
	if now.Before(sys.changeAt) {
		if sys.on {
			return "PoweringOn"
		}
		return "PoweringOff"
	}
	if sys.on {
		return "On"
	}
	return "Off"
}

func send(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}

func errBody(msg string) any {
	return map[string]any{"error": map[string]any{"code": "Base.1.0.GeneralError", "message": msg}}
}

const root = "/redfish/v1"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	delay := s.Delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case p == "/redfish" && r.Method == http.MethodGet:
		send(w, 200, map[string]any{"v1": root + "/"})
		return
	case p == root && r.Method == http.MethodGet:
		send(w, 200, map[string]any{
			"@odata.id": root, "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot", "Id": "RootService",
			"Name": "Root Service", "RedfishVersion": "1.6.0",
			"Systems":        map[string]any{"@odata.id": root + "/Systems"},
			"SessionService": map[string]any{"@odata.id": root + "/SessionService"},
			"Links":          map[string]any{"Sessions": map[string]any{"@odata.id": root + "/SessionService/Sessions"}},
		})
		return
	case p == root+"/SessionService/Sessions" && r.Method == http.MethodPost:
		s.login(w, r)
		return
	}
	if !s.authorized(r) {
		send(w, 401, errBody("unauthorized"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	switch {
	case strings.HasPrefix(p, root+"/SessionService/Sessions/") && r.Method == http.MethodDelete:
		for tok, uri := range s.sessions {
			if uri == p {
				delete(s.sessions, tok)
				w.WriteHeader(204)
				return
			}
		}
		send(w, 404, errBody("no such session"))
	case p == root+"/Systems" && r.Method == http.MethodGet:
		var members []any
		for _, sys := range s.systems {
			members = append(members, map[string]any{"@odata.id": root + "/Systems/" + sys.id})
		}
		send(w, 200, map[string]any{"@odata.id": p, "Name": "Systems", "Members@odata.count": len(members), "Members": members})
	case strings.HasPrefix(p, root+"/Systems/"):
		rest := strings.TrimPrefix(p, root+"/Systems/")
		id, action, _ := strings.Cut(rest, "/")
		var sys *system
		for _, x := range s.systems {
			if x.id == id {
				sys = x
			}
		}
		switch {
		case sys == nil:
			send(w, 404, errBody("not found"))
		case action == "" && r.Method == http.MethodGet:
			uri := root + "/Systems/" + sys.id
			send(w, 200, map[string]any{
				"@odata.id": uri, "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
				"Id": sys.id, "Name": sys.name, "PowerState": sys.powerState(now),
				"Actions": map[string]any{"#ComputerSystem.Reset": map[string]any{
					"target":                            uri + "/Actions/ComputerSystem.Reset",
					"ResetType@Redfish.AllowableValues": []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "Nmi", "PowerCycle"},
				}},
			})
		case action == "Actions/ComputerSystem.Reset" && r.Method == http.MethodPost:
			var body struct{ ResetType string }
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				send(w, 400, errBody("bad JSON"))
				return
			}
			s.resets = append(s.resets, sys.id+" "+body.ResetType)
			var want bool
			switch body.ResetType {
			case "On":
				want = true
			case "ForceOff", "GracefulShutdown":
				want = false
			case "ForceRestart", "PowerCycle":
				want = true
			case "Nmi":
				w.WriteHeader(204)
				return
			default:
				send(w, 400, errBody("bad ResetType "+body.ResetType))
				return
			}
			if !s.Stuck && (sys.on != want || body.ResetType == "ForceRestart" || body.ResetType == "PowerCycle") {
				sys.on = want
				sys.changeAt = now.Add(s.Lag)
			}
			w.WriteHeader(204)
		default:
			send(w, 405, errBody("method not allowed"))
		}
	default:
		send(w, 404, errBody("not found"))
	}
}

func (s *Server) authorized(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		if _, ok := s.sessions[tok]; ok {
			s.token++
			return true
		}
		return false
	}
	u, p, ok := r.BasicAuth()
	if ok && u == s.User && p == s.Password {
		s.basic++
		return true
	}
	return false
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var body struct{ UserName, Password string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		send(w, 400, errBody("bad JSON"))
		return
	}
	if body.UserName != s.User || body.Password != s.Password {
		send(w, 401, errBody("bad credentials"))
		return
	}
	s.mu.Lock()
	s.nextSess++
	tok := fmt.Sprintf("tok-%d-%d", s.nextSess, time.Now().UnixNano())
	uri := fmt.Sprintf("%s/SessionService/Sessions/%d", root, s.nextSess)
	s.sessions[tok] = uri
	s.mu.Unlock()
	w.Header().Set("X-Auth-Token", tok)
	w.Header().Set("Location", uri)
	send(w, 201, map[string]any{"@odata.id": uri, "UserName": body.UserName})
}

func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, err
}

// Hang listens on 127.0.0.1 and accepts connections that never get an
// answer: a dead BMC whose TCP stack still works. Close it when done.
type Hang struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

// NewHang starts a Hang listener.
func NewHang() (*Hang, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &Hang{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	return h, nil
}

// Port is the listening port.
func (h *Hang) Port() int { return h.ln.Addr().(*net.TCPAddr).Port }

// Close closes the listener and every accepted connection.
func (h *Hang) Close() error {
	err := h.ln.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
	return err
}
