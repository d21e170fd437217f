package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

func minority() nodebus.Status {
	s := threeNodes()
	s.View.Members = []uint16{1}
	s.Quorum = nodebus.QuorumInfo{TotalVotes: 1, ExpectedVotes: 3, Quorum: 2, Reason: "1 of 3 votes, need 2"}
	return s
}

func TestQuorumUnblock(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		stdin     string
		status    nodebus.Status
		code      int
		unblocked int
		stdout    string
		stderr    string
	}{
		{name: "confirmed", args: []string{"quorum", "unblock"}, stdin: "unblock\n", status: minority(), unblocked: 1,
			stdout: "quorate: 1 of 1 votes (forced by quorum unblock)\n", stderr: "Nodes outside it: node2, node3."},
		{name: "not confirmed", args: []string{"quorum", "unblock"}, stdin: "yes\n", status: minority(), code: 1,
			stderr: "not confirmed: nothing was changed"},
		{name: "no answer", args: []string{"quorum", "unblock"}, status: minority(), code: 1, stderr: "not confirmed"},
		{name: "--yes", args: []string{"quorum", "unblock", "--yes"}, status: minority(), unblocked: 1, stdout: "quorate:"},
		{name: "already quorate", args: []string{"quorum", "unblock", "--yes"}, status: threeNodes(), code: 1,
			stderr: "this partition is quorate (2 of 3 votes): nothing to unblock"},
		{name: "bad argument", args: []string{"quorum", "unblock", "--force"}, status: minority(), code: 2, stderr: `unknown argument "--force"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			s := &stub{status: tc.status}
			code := Main(tc.args, Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(tc.stdin), Version: "test",
				Dial: func(string) (API, error) { return s, nil }})
			if code != tc.code || s.unblocked != tc.unblocked {
				t.Fatalf("code %d unblocked %d, want %d and %d\nstdout: %s\nstderr: %s", code, s.unblocked, tc.code, tc.unblocked, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stdout %q (want %q)\nstderr %q (want %q)", out.String(), tc.stdout, errb.String(), tc.stderr)
			}
		})
	}
}
