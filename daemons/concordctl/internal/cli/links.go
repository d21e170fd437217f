package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/concord-ha/concord/lib/api/nodebus"
)

// printWarnings says what the status holds that an admin must act on:
// nodes whose frames fail authentication here, and other clusters on
// this node's links.
func printWarnings(w io.Writer, s nodebus.Status) {
	for _, n := range s.Nodes {
		switch {
		case n.AuthFailing:
			fmt.Fprintf(w, "Warning:  %d frames from %s failed authentication here, the last at %s: its authkey differs from this node's\n",
				n.AuthFailures, n.Name, n.LastAuthFailure)
		case n.AuthFailures > 0:
			fmt.Fprintf(w, "Earlier:  %d frames from %s failed authentication here, the last at %s; its frames authenticate since\n",
				n.AuthFailures, n.Name, n.LastAuthFailure)
		}
	}
	for _, o := range s.OtherClusters {
		if o.AlsoMember != "" {
			// A host in both clusters: expected, not a fault.
			fmt.Fprintf(w, "Shared:   %s also carries cluster id %d, from %s (%s), which is a member of both (another cluster context)\n",
				o.Interface, o.ClusterID, o.AlsoMember, o.MAC)
			continue
		}
		fmt.Fprintf(w, "Warning:  %d frames of another cluster (id %d) from MAC %s on %s, the last at %s: two clusters share this link\n",
			o.Frames, o.ClusterID, o.MAC, o.Interface, o.Last)
	}
}

// printLinkStats prints one row per peer and link, as corosync-cfgtool -s.
func printLinkStats(w io.Writer, ls []nodebus.LinkStat) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tLINK\tSTATE\tIN\tOUT\tDROPS\tLAST HEARD\tRTT")
	for _, l := range ls {
		if l.Node == 0 {
			fmt.Fprintf(tw, "(unknown MAC)\t%s\t-\t-\t-\t%s\t-\t-\n", l.Interface, drops(l))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", l.Name, l.Interface, l.State, l.FramesIn, l.FramesOut,
			drops(l), lastHeard(l.LastHeardMs), rtt(l.RTTMicros))
	}
	tw.Flush()
}

// drops is "0", or the total and each reason: "5 (auth 3, short 2)".
func drops(l nodebus.LinkStat) string {
	total := l.TotalDrops()
	if total == 0 {
		return "0"
	}
	reasons := make([]string, 0, len(l.Drops))
	for r, n := range l.Drops {
		if n > 0 {
			reasons = append(reasons, fmt.Sprintf("%s %d", r, n))
		}
	}
	sort.Strings(reasons)
	return fmt.Sprintf("%d (%s)", total, strings.Join(reasons, ", "))
}

func lastHeard(ms int64) string {
	switch {
	case ms < 0:
		return "never"
	case ms < 10000:
		return fmt.Sprintf("%d ms ago", ms)
	}
	return fmt.Sprintf("%d s ago", ms/1000)
}

func rtt(us int64) string {
	if us < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", float64(us)/1000)
}
