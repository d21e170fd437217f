package units

import (
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	busName = "org.concordha.node1"
	objPath = "/org/concordha/node1"
	mgrIfc  = "org.concordha.node1.Manager"
)

// readOnly are the Manager methods anyone may call; every other method in
// the interface file must be root's alone.
var readOnly = map[string]bool{
	"ListNodes": true, "GetNode": true, "GetNodeByNumber": true, "GetStatusJSON": true, "GetConfig": true,
	"ListJobs": true, "GetLinkStats": true, "ListGroups": true, "GetGroup": true, "GetGroupMembers": true, "ListSessions": true,
}

// managerMethods reads the method names of Manager from the interface file
// the daemon serves, so a method added there is checked here too.
func managerMethods(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../lib/api/nodebus/org.concordha.node1.xml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Interfaces []struct {
			Name    string `xml:"name,attr"`
			Methods []struct {
				Name string `xml:"name,attr"`
			} `xml:"method"`
		} `xml:"interface"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("org.concordha.node1.xml: %v", err)
	}
	var names []string
	for _, ifc := range doc.Interfaces {
		if ifc.Name == mgrIfc {
			for _, m := range ifc.Methods {
				names = append(names, m.Name)
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("org.concordha.node1.xml: no Manager methods")
	}
	sort.Strings(names)
	return names
}

// privateBus starts a dbus-daemon with the system bus's default-deny
// policy plus ours, on a socket in a temp dir, and returns its address.
func privateBus(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root (to call the bus as an unprivileged user)")
	}
	for _, tool := range []string{"dbus-daemon", "dbus-send"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: needs %s (Debian package dbus)", tool)
		}
	}
	// Not t.TempDir: its parent is private, and nobody must reach the socket.
	dir, err := os.MkdirTemp("", "concord-bus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	policy, err := filepath.Abs("org.concordha.node1.conf")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bus")
	conf := fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  </policy>
  <include>%s</include>
</busconfig>
`, sock, policy)
	confPath := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+confPath, "--nofork", "--nopidfile")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if s := stderr.String(); s != "" && t.Failed() {
			t.Logf("dbus-daemon: %s", s)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dbus-daemon did not listen on %s: %s", sock, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "unix:path=" + sock
}

// serve owns the name as root and answers every Manager method and
// Properties Get/GetAll/Set with a string, whatever the arguments.
func serve(t *testing.T, addr string, methods []string) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	reply := func() (string, *dbus.Error) { return "ok", nil }
	table := map[string]any{}
	for _, m := range methods {
		table[m] = reply
	}
	if err := conn.ExportMethodTable(table, objPath, mgrIfc); err != nil {
		t.Fatal(err)
	}
	props := map[string]any{"Get": reply, "GetAll": reply, "Set": reply}
	if err := conn.ExportMethodTable(props, objPath, "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	if err := conn.ExportMethodTable(map[string]any{"Introspect": reply}, objPath, "org.freedesktop.DBus.Introspectable"); err != nil {
		t.Fatal(err)
	}
	r, err := conn.RequestName(busName, dbus.NameFlagDoNotQueue)
	if err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("root cannot own %s: %v %v", busName, r, err)
	}
}

// call runs dbus-send as uid/gid and returns its error output ("" on success).
func call(addr string, uid uint32, ifc, member string) string {
	cmd := exec.Command("dbus-send", "--bus="+addr, "--print-reply", "--reply-timeout=5000",
		"--dest="+busName, objPath, ifc+"."+member)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		return ""
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return strings.TrimSpace(string(out))
	}
	return err.Error()
}

func TestBusPolicy(t *testing.T) {
	methods := managerMethods(t)
	addr := privateBus(t)
	serve(t, addr, methods)

	const nobody = 65534
	type tc struct {
		uid         uint32
		ifc, member string
		allowed     bool
	}
	cases := []tc{
		{nobody, "org.freedesktop.DBus.Introspectable", "Introspect", true},
		{nobody, "org.freedesktop.DBus.Peer", "Ping", true},
		{nobody, "org.freedesktop.DBus.Properties", "Get", true},
		{nobody, "org.freedesktop.DBus.Properties", "GetAll", true},
		{nobody, "org.freedesktop.DBus.Properties", "Set", false},
		{0, "org.freedesktop.DBus.Properties", "Set", true},
	}
	for _, m := range methods {
		cases = append(cases, tc{nobody, mgrIfc, m, readOnly[m]}, tc{0, mgrIfc, m, true})
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("uid%d/%s", c.uid, c.member), func(t *testing.T) {
			out := call(addr, c.uid, c.ifc, c.member)
			denied := strings.Contains(out, "AccessDenied")
			switch {
			case c.allowed && out != "":
				t.Errorf("uid %d calling %s.%s: %s; want it allowed", c.uid, c.ifc, c.member, out)
			case !c.allowed && !denied:
				t.Errorf("uid %d calling %s.%s: %q; want AccessDenied", c.uid, c.ifc, c.member, out)
			}
		})
	}
	// Only root may own the name.
	if out := ownAs(addr, nobody); !strings.Contains(out, "AccessDenied") {
		t.Errorf("nobody owning %s: %q; want AccessDenied", busName, out)
	}
}

func ownAs(addr string, uid uint32) string {
	cmd := exec.Command("dbus-send", "--bus="+addr, "--print-reply", "--dest=org.freedesktop.DBus",
		"/org/freedesktop/DBus", "org.freedesktop.DBus.RequestName", "string:"+busName, "uint32:4")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// TestServiceUnit checks the unit with systemd's own parser. The binary is
// not installed on the build host, so a copy runs /bin/true instead.
func TestServiceUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("SKIP: needs systemd-analyze (Debian package systemd)")
	}
	b, err := os.ReadFile("concord-noded.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.Replace(string(b), "ExecStart=/usr/sbin/concord-noded", "ExecStart=/bin/true", 1)
	if unit == string(b) {
		t.Fatal("concord-noded.service: no ExecStart=/usr/sbin/concord-noded")
	}
	// No start timeout: READY=1 waits for a working heartbeat link, and a
	// node whose NICs have no carrier must not be killed and restarted
	// in a loop meanwhile.
	for _, want := range []string{"Type=notify", "BusName=" + busName, "WatchdogSec=", "TimeoutStartSec=infinity", "WantedBy=multi-user.target",
		"RestartPreventExitStatus=6"} {
		if !strings.Contains(unit, "\n"+want) {
			t.Errorf("concord-noded.service lacks %s", want)
		}
	}
	p := filepath.Join(t.TempDir(), "concord-noded.service")
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", p).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
