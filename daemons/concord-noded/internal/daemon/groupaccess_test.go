package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/groupwire"
	"github.com/concord-ha/concord/lib/api/nodebus"
)

type fakeAccounts struct {
	users  map[string]uint32
	groups map[string]uint32
	member map[uint32][]uint32
}

func (f fakeAccounts) uid(n string) (uint32, bool)  { v, ok := f.users[n]; return v, ok }
func (f fakeAccounts) gid(n string) (uint32, bool)  { v, ok := f.groups[n]; return v, ok }
func (f fakeAccounts) groupsOf(uid uint32) []uint32 { return f.member[uid] }

func TestMayJoin(t *testing.T) {
	acc := fakeAccounts{users: map[string]uint32{"postgres": 500}, groups: map[string]uint32{"haclient": 900}, member: map[uint32][]uint32{600: {900}}}
	c := &config.Cluster{Options: map[string]string{
		"groups.allow.pg": "user:postgres db-*",
		"groups.allow.ha": "group:haclient ha",
		"groups.allow.n":  "user:700 x",
	}}
	rules := c.GroupRules()
	for _, tc := range []struct {
		uid, gid uint32
		group    string
		want     string // "" allowed, else part of the error
	}{
		{0, 0, "anything", ""},
		{500, 500, "db-1", ""},
		{500, 500, "web", `may not join group "web" (its groups.allow rules allow db-*)`},
		{600, 600, "ha", ""}, // a supplementary group
		{601, 900, "ha", ""}, // the primary group
		{700, 700, "x", ""},  // a uid by number
		{800, 800, "db-1", "may not use process groups on this node"},
		{600, 600, "db-1", `may not join group "db-1"`},
	} {
		err := mayJoin(rules, acc, tc.uid, tc.gid, tc.group)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("uid %d gid %d join %q: %v, want %q", tc.uid, tc.gid, tc.group, err, tc.want)
		}
	}
}

// groupClientEnv makes the test binary a one-shot group client (run as
// another user by TestGroupAccessByUID): it says hello, joins each group
// named in the env var, and prints one line per answer.
const groupClientEnv = "CONCORD_TEST_GROUP_CLIENT"

func TestMain(m *testing.M) {
	if spec := os.Getenv(groupClientEnv); spec != "" {
		os.Exit(groupClientMain(spec))
	}
	os.Exit(m.Run())
}

func groupClientMain(spec string) int {
	sock, groupsList, _ := strings.Cut(spec, ";")
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	buf := make([]byte, groupwire.MaxPacket)
	ask := func(r groupwire.Record) groupwire.Record {
		b, _ := groupwire.Append(nil, &r)
		if _, err := c.Write(b); err != nil {
			return groupwire.Record{Type: groupwire.TReply, Text: "write: " + err.Error()}
		}
		for {
			n, err := c.Read(buf)
			if err != nil || n == 0 {
				return groupwire.Record{Type: groupwire.TReply, Text: fmt.Sprint("read: ", err)}
			}
			rs, err := groupwire.Records(buf[:n])
			if err != nil {
				return groupwire.Record{Type: groupwire.TReply, Text: err.Error()}
			}
			for _, x := range rs {
				if x.Tag == r.Tag && (x.Type == groupwire.TReply || x.Type == groupwire.TWelcome) {
					return x
				}
			}
		}
	}
	w := ask(groupwire.Record{Type: groupwire.THello, Tag: 1, Version: 1, Name: "access"})
	fmt.Printf("hello: %s %s %s\n", w.Type, w.Code, w.Text)
	if w.Type != groupwire.TWelcome {
		return 0
	}
	for i, g := range strings.Fields(groupsList) {
		if g == "sleep" {
			select {} // until killed
		}
		r := ask(groupwire.Record{Type: groupwire.TJoin, Tag: uint32(2 + i), Group: g})
		fmt.Printf("join %s: %s %s\n", g, r.Code, r.Text)
	}
	return 0
}

// A process of another user is refused until a groups.allow option lets
// it in, and then only into the groups the option names.
func TestGroupAccessByUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	ns, socks := startGroupCluster(t, 1)
	// The test's temporary directories are private: let the other user
	// reach the socket.
	for d := socks[0]; d != "/" && d != os.TempDir(); d = d[:strings.LastIndex(d, "/")] {
		if d != socks[0] {
			os.Chmod(d, 0o755)
		}
	}
	// Nor can it run the test binary where go test builds it.
	bin := filepath.Join(t.TempDir(), "client")
	os.Chmod(filepath.Dir(bin), 0o755)
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(groups string) string {
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), groupClientEnv+"="+socks[0]+";"+groups)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client: %v: %s", err, out)
		}
		return string(out)
	}
	if out := run("app-1"); !strings.Contains(out, "hello: reply denied uid 65534 may not use process groups on this node") {
		t.Fatalf("before any rule: %q", out)
	}
	if err := ns[0].change(t, func(d *Daemon) (nodebus.Job, error) {
		return d.SetOption("groups.allow.nobody", "user:65534 app-*")
	}); err != nil {
		t.Fatal(err)
	}
	out := run("app-1 web")
	for _, want := range []string{"hello: welcome ok", "join app-1: ok", `join web: denied uid 65534 may not join group "web" (its groups.allow rules allow app-*)`} {
		if !strings.Contains(out, want) {
			t.Errorf("with the rule: %q lacks %q", out, want)
		}
	}
}

// A member whose process is killed leaves as died; one that says bye
// (the Go client's Close) as closed.
func TestGroupDeathAndClose(t *testing.T) {
	_, socks := startGroupCluster(t, 1)
	watcher := dialGroups(t, socks[0])
	watcher.call(groupwire.Record{Type: groupwire.TJoin, Group: "g"}, groupwire.TReply)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), groupClientEnv+"="+socks[0]+";g sleep")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	watcher.until("the child's join", func(r groupwire.Record) bool { return r.Type == groupwire.TView && len(r.Members) == 2 })
	cmd.Process.Kill()
	watcher.until("the child's death", func(r groupwire.Record) bool {
		if r.Type != groupwire.TView {
			return false
		}
		if len(r.Changes) != 1 || r.Changes[0].Kind != groupwire.Died || r.Changes[0].Member.PID != uint32(cmd.Process.Pid) {
			t.Fatalf("the killed member left as %+v", r.Changes)
		}
		return true
	})
	c := dialClient(t, socks[0])
	if err := c.Join(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	watcher.until("the client's join", func(r groupwire.Record) bool { return r.Type == groupwire.TView && len(r.Members) == 2 })
	c.Close()
	watcher.until("the client's close", func(r groupwire.Record) bool {
		if r.Type != groupwire.TView {
			return false
		}
		if len(r.Changes) != 1 || r.Changes[0].Kind != groupwire.Closed {
			t.Fatalf("the closed member left as %+v", r.Changes)
		}
		return true
	})
}
