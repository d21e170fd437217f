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
	// ctxBus is the name of concord-noded@b, a second cluster context.
	ctxBus  = busName + ".b"
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
func serve(t *testing.T, addr, name string, methods []string) {
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
	r, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("root cannot own %s: %v %v", name, r, err)
	}
}

// call runs dbus-send as uid/gid and returns its error output ("" on success).
func call(addr, name string, uid uint32, ifc, member string) string {
	cmd := exec.Command("dbus-send", "--bus="+addr, "--print-reply", "--reply-timeout=5000",
		"--dest="+name, objPath, ifc+"."+member)
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

// The policy covers the default context's name and every other
// context's (org.concordha.node1.NAME) alike.
func TestBusPolicy(t *testing.T) {
	methods := managerMethods(t)
	addr := privateBus(t)
	serve(t, addr, busName, methods)
	serve(t, addr, ctxBus, methods)

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
	for _, name := range []string{busName, ctxBus} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/uid%d/%s", name, c.uid, c.member), func(t *testing.T) {
				out := call(addr, name, c.uid, c.ifc, c.member)
				denied := strings.Contains(out, "AccessDenied")
				switch {
				case c.allowed && out != "":
					t.Errorf("uid %d calling %s.%s: %s; want it allowed", c.uid, c.ifc, c.member, out)
				case !c.allowed && !denied:
					t.Errorf("uid %d calling %s.%s: %q; want AccessDenied", c.uid, c.ifc, c.member, out)
				}
			})
		}
	}
	// Only root may own the names, and only those of the prefix as a
	// whole element.
	for _, name := range []string{busName, ctxBus, busName + ".other"} {
		if out := ownAs(addr, name, nobody); !strings.Contains(out, "AccessDenied") {
			t.Errorf("nobody owning %s: %q; want AccessDenied", name, out)
		}
	}
	if out := ownAs(addr, busName+".other", 0); strings.Contains(out, "Error") {
		t.Errorf("root owning %s.other: %q; want it allowed", busName, out)
	}
	if out := ownAs(addr, busName+"x", 0); !strings.Contains(out, "AccessDenied") {
		t.Errorf("root owning %sx: %q; want AccessDenied (not a context's name)", busName, out)
	}
}

func ownAs(addr, name string, uid uint32) string {
	cmd := exec.Command("dbus-send", "--bus="+addr, "--print-reply", "--dest=org.freedesktop.DBus",
		"/org/freedesktop/DBus", "org.freedesktop.DBus.RequestName", "string:"+name, "uint32:4")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// TestServiceUnit checks the unit with systemd's own parser. The binary is
// not installed on the build host, so a copy runs /bin/true instead.
func TestServiceUnit(t *testing.T) {
	b, err := os.ReadFile("concord-noded.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	// No start timeout: READY=1 waits for a working heartbeat link, and a
	// node whose NICs have no carrier must not be killed and restarted
	// in a loop meanwhile.
	for _, want := range []string{"Type=notify", "BusName=" + busName, "WatchdogSec=", "TimeoutStartSec=infinity", "WantedBy=multi-user.target",
		"RestartPreventExitStatus=6"} {
		if !strings.Contains(unit, "\n"+want) {
			t.Errorf("concord-noded.service lacks %s", want)
		}
	}
	verifyUnit(t, "concord-noded.service", unit, "")
}

// verifyUnit runs systemd-analyze verify on the unit file text, saved as
// name in a temp dir, with ExecStart's program replaced by /bin/true (the
// binary is not installed on the build host); instance, if not "",
// verifies that instance of a template.
func verifyUnit(t *testing.T, name, text, instance string) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("SKIP: needs systemd-analyze (Debian package systemd)")
	}
	unit := strings.Replace(text, "ExecStart=/usr/sbin/concord-noded", "ExecStart=/bin/true", 1)
	if unit == text {
		t.Fatalf("%s: no ExecStart=/usr/sbin/concord-noded", name)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, name)
	if instance != "" {
		target = filepath.Join(dir, strings.Replace(name, "@.", "@"+instance+".", 1))
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", target).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", filepath.Base(target), err, out)
	}
}

// TestTemplateUnit checks concord-noded@.service, the unit of a named
// cluster context, with systemd's parser on an instance, and that it
// differs from concord-noded.service only where the context must: a
// hardening line added to one and not the other fails here.
func TestTemplateUnit(t *testing.T) {
	plain, err := os.ReadFile("concord-noded.service")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile("concord-noded@.service")
	if err != nil {
		t.Fatal(err)
	}
	// Settings (comments aside) of each, in order.
	settings := func(b []byte) []string {
		var s []string
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				s = append(s, l)
			}
		}
		return s
	}
	// What the template must say instead of the plain unit's line; ""
	// drops the plain unit's line.
	instead := map[string]string{
		"Description=Concord node daemon: heartbeat links, membership, quorum, replicated configuration": "Description=Concord node daemon of cluster context %i: heartbeat links, membership, quorum, replicated configuration",
		"BusName=" + busName:                "BusName=" + busName + ".%i",
		"ExecStart=/usr/sbin/concord-noded": "ExecStart=/usr/sbin/concord-noded --cluster %i",
		"StateDirectory=concord":            "StateDirectory=concord/%i",
		"RuntimeDirectory=concord":          "RuntimeDirectory=concord/%i",
		"RuntimeDirectoryPreserve=yes":      "",
		"ReadWritePaths=-/etc/concord":      "ReadWritePaths=-/etc/concord/%i",
	}
	var want []string
	for _, l := range settings(plain) {
		w, ok := instead[l]
		if !ok {
			want = append(want, l)
			continue
		}
		delete(instead, l)
		if w != "" {
			want = append(want, w)
		}
	}
	for l := range instead {
		t.Errorf("concord-noded.service lacks %q", l)
	}
	if got := settings(tmpl); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("concord-noded@.service differs from concord-noded.service beyond the context:\n--- got\n%s\n--- want\n%s",
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The plain unit keeps /run/concord, where the contexts' directories
	// are, when it stops.
	if !strings.Contains(string(plain), "\nRuntimeDirectoryPreserve=yes\n") {
		t.Error("concord-noded.service: stopping it would remove /run/concord with the other contexts' sockets")
	}
	verifyUnit(t, "concord-noded@.service", string(tmpl), "b")
}
