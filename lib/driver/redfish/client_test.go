package redfish

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concord-ha/concord/lib/api/fenceproto"
)

// fakeBMC answers a fixed Redfish tree; status overrides reply codes by path.
func fakeBMC(t *testing.T, status map[string]int) (*httptest.Server, *[]string) {
	var posts []string
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, r *http.Request, body any) {
		if code, ok := status[r.URL.Path]; ok {
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": "nope"}})
			return
		}
		json.NewEncoder(w).Encode(body)
	}
	mux.HandleFunc("GET /redfish/v1", func(w http.ResponseWriter, r *http.Request) {
		reply(w, r, map[string]any{"Systems": map[string]any{"@odata.id": "/redfish/v1/Systems"},
			"Links": map[string]any{"Sessions": map[string]any{"@odata.id": "/redfish/v1/SessionService/Sessions"}}})
	})
	mux.HandleFunc("GET /redfish/v1/Systems", func(w http.ResponseWriter, r *http.Request) {
		reply(w, r, map[string]any{"Members": []any{
			map[string]any{"@odata.id": "/redfish/v1/Systems/A"}, map[string]any{"@odata.id": "/redfish/v1/Systems/B"}}})
	})
	mux.HandleFunc("GET /redfish/v1/Systems/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		reply(w, r, map[string]any{"Id": id, "Name": "sys-" + id, "PowerState": "PoweringOff",
			"Actions": map[string]any{"#ComputerSystem.Reset": map[string]any{
				"target": "/redfish/v1/Systems/" + id + "/Reset", "ResetType@Redfish.AllowableValues": []string{"On", "ForceOff", "PowerCycle"}}}})
	})
	mux.HandleFunc("POST /redfish/v1/Systems/{id}/Reset", func(w http.ResponseWriter, r *http.Request) {
		var b struct{ ResetType string }
		json.NewDecoder(r.Body).Decode(&b)
		posts = append(posts, r.PathValue("id")+" "+b.ResetType+" "+r.Header.Get("X-Auth-Token"))
		if code, ok := status[r.URL.Path]; ok {
			w.WriteHeader(code)
			return
		}
		w.WriteHeader(204)
	})
	mux.HandleFunc("POST /redfish/v1/SessionService/Sessions", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Auth-Token", "tok")
		w.Header().Set("Location", "/redfish/v1/SessionService/Sessions/1")
		w.WriteHeader(201)
	})
	mux.HandleFunc("DELETE /redfish/v1/SessionService/Sessions/1", func(w http.ResponseWriter, r *http.Request) {
		posts = append(posts, "logout "+r.Header.Get("X-Auth-Token"))
	})
	s := httptest.NewTLSServer(mux)
	t.Cleanup(s.Close)
	return s, &posts
}

func cfgFor(s *httptest.Server) Config {
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "https://"))
	p, _ := strconv.Atoi(port)
	return Config{Host: host, Port: p, Username: "u", Password: "p", Insecure: true}
}

func TestDiscoveryAndReset(t *testing.T) {
	s, posts := fakeBMC(t, nil)
	tests := []struct {
		name    string
		mod     func(*Config)
		wantURI string
	}{
		{"first member", func(*Config) {}, "/redfish/v1/Systems/A"},
		{"plug by Id", func(c *Config) { c.System = "B" }, "/redfish/v1/Systems/B"},
		{"plug by Name", func(c *Config) { c.System = "sys-B" }, "/redfish/v1/Systems/B"},
		{"systems_uri", func(c *Config) { c.SystemsURI = "/redfish/v1/Systems/B" }, "/redfish/v1/Systems/B"},
		{"host:port form", func(c *Config) { c.Host = net.JoinHostPort(c.Host, strconv.Itoa(c.Port)); c.Port = 1 }, "/redfish/v1/Systems/A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := cfgFor(s)
			tt.mod(&cfg)
			c, err := Dial(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.SystemURI() != tt.wantURI {
				t.Errorf("system %q, want %q", c.SystemURI(), tt.wantURI)
			}
		})
	}
	cfg := cfgFor(s)
	cfg.Auth = AuthSession
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(context.Background(), "ForceOff"); err != nil {
		t.Fatal(err)
	}
	if ps, err := c.PowerState(context.Background()); ps != "PoweringOff" || err != nil || State(ps) != fenceproto.StateOn {
		t.Errorf("PowerState %q %v", ps, err)
	}
	if c.Allows("ForceRestart") || !c.Allows("PowerCycle") {
		t.Errorf("Allows wrong for %v", c.allowed)
	}
	c.Close()
	if got := strings.Join(*posts, "|"); got != "A ForceOff tok|logout tok" {
		t.Errorf("requests %q", got)
	}
}

func TestErrorCodes(t *testing.T) {
	tests := []struct {
		name   string
		status map[string]int
		reset  bool
		code   int
	}{
		{"401 on Systems", map[string]int{"/redfish/v1/Systems": 401}, false, fenceproto.ExitLoginDenied},
		{"403 on Reset", map[string]int{"/redfish/v1/Systems/A/Reset": 403}, true, fenceproto.ExitInvalidPrivileges},
		{"404 system", map[string]int{"/redfish/v1/Systems/A": 404}, false, fenceproto.ExitStatus},
		{"500 on Reset", map[string]int{"/redfish/v1/Systems/A/Reset": 500}, true, fenceproto.ExitGeneric},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := fakeBMC(t, tt.status)
			c, err := Dial(context.Background(), cfgFor(s))
			if err == nil && tt.reset {
				err = c.Reset(context.Background(), "ForceOff")
			}
			if got := fenceproto.ExitCode(err); got != tt.code {
				t.Errorf("exit code %d (%v), want %d", got, err, tt.code)
			}
		})
	}
	// Unverified certificate, closed port, hung server.
	s, _ := fakeBMC(t, nil)
	cfg := cfgFor(s)
	cfg.Insecure = false
	if _, err := Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("self-signed certificate accepted: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if _, err := Dial(context.Background(), Config{Host: "127.0.0.1", Port: port, Insecure: true}); fenceproto.ExitCode(err) != fenceproto.ExitConnectionLost {
		t.Errorf("closed port: %v", err)
	}
	hang, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hang.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, Config{Host: "127.0.0.1", Port: hang.Addr().(*net.TCPAddr).Port, Insecure: true}); fenceproto.ExitCode(err) != fenceproto.ExitTimedOut {
		t.Errorf("hung server: %v", err)
	}
}

func TestState(t *testing.T) {
	for ps, want := range map[string]fenceproto.PowerState{"On": fenceproto.StateOn, "Off": fenceproto.StateOff,
		"PoweringOn": fenceproto.StateOn, "PoweringOff": fenceproto.StateOn, "Paused": fenceproto.StateOn, "": fenceproto.StateUnknown, "off": fenceproto.StateUnknown} {
		if got := State(ps); got != want {
			t.Errorf("State(%q) = %v, want %v", ps, got, want)
		}
	}
}

// A BMC that drops the connection of a read is asked once more on a fresh
// one. (Go's transport already resends once on a reused connection, so the
// BMC here drops two in a row.)
func TestReadRetriedOnceAfterDroppedConnection(t *testing.T) {
	s, _ := fakeBMC(t, nil)
	drops := 0
	inner := s.Config.Handler
	s.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/Systems/A") && drops < 2 {
			drops++
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		inner.ServeHTTP(w, r)
	})
	c, err := Dial(context.Background(), cfgFor(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if drops != 2 {
		t.Fatalf("the BMC dropped %d reads; the test needs 2", drops)
	}
	if _, err := c.PowerState(context.Background()); err != nil {
		t.Fatal(err)
	}
}
