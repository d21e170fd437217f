package cli

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

// unblockWait is how long concordctl watches for the partition to become
// quorate after asking.
var unblockWait = 5 * time.Second

// quorumUnblock forces quorum on this node's partition, after saying
// plainly what that risks and, unless --yes, asking for confirmation.
func quorumUnblock(args []string, env Env) error {
	yes := false
	for _, a := range args {
		switch a {
		case "--yes", "-y":
			yes = true
		default:
			return usageError{fmt.Sprintf("quorum unblock: unknown argument %q (usage: concordctl quorum unblock [--yes])", a)}
		}
	}
	api, err := env.dial()
	if err != nil {
		return err
	}
	s, err := api.Status()
	if err != nil {
		return err
	}
	if s.Quorum.Quorate {
		return fmt.Errorf("this partition is quorate (%s): nothing to unblock", s.Quorum.Reason)
	}
	var missing []string
	for _, n := range s.Nodes {
		if !slices.Contains(s.View.Members, n.Number) {
			missing = append(missing, n.Name)
		}
	}
	fmt.Fprintf(env.Stderr, `WARNING: this forces quorum on this node's partition: view %d of nodes %s holds %d of %d votes.
Nodes outside it: %s.
Do this only if those nodes are powered off or cut off for good. If any of them runs
and is quorate on its own side, both sides will act (run services, fence each other).
The override ends when a node from outside this partition joins it.
`, s.View.Seq, joinNums(s.View.Members), s.Quorum.TotalVotes, s.Quorum.ExpectedVotes, strings.Join(missing, ", "))
	if !yes {
		fmt.Fprint(env.Stderr, "Type 'unblock' to go on: ")
		line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
		if strings.TrimSpace(line) != "unblock" {
			return fmt.Errorf("not confirmed: nothing was changed")
		}
	}
	if err := api.UnblockQuorum(); err != nil {
		return err
	}
	deadline := time.Now().Add(unblockWait)
	for {
		s, err := api.Status()
		if err == nil && s.Quorum.Quorate {
			fmt.Fprintf(env.Stdout, "quorate: %d of %d votes (%s)\n", s.Quorum.TotalVotes, s.Quorum.ExpectedVotes, s.Quorum.Reason)
			return nil
		}
		if time.Now().After(deadline) {
			q := nodebus.QuorumInfo{}
			if err == nil {
				q = s.Quorum
			}
			return fmt.Errorf("the unblock was sent, but this node is still not quorate after %v (%s); see journalctl -u concord-noded", unblockWait, q.Reason)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
