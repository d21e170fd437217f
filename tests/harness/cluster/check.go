package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Missing names what this host lacks to run clusters, or returns "" when
// nothing is missing. Tests skip with this reason.
func Missing() string {
	var miss []string
	if os.Geteuid() != 0 {
		miss = append(miss, "root")
	}
	for _, tool := range []string{"systemd-nspawn", "nsenter", "ip", "nft", "journalctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			miss = append(miss, tool)
		}
	}
	if _, err := os.Stat(freezerRoot + "/freezer.state"); err != nil {
		if _, err := os.Stat(freezerRoot + "/cgroup.procs"); err != nil {
			miss = append(miss, "cgroup v1 freezer at "+freezerRoot)
		}
	}
	if b, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(b), "\toverlay\n") {
		miss = append(miss, "overlay filesystem")
	}
	if len(miss) == 0 {
		return ""
	}
	return fmt.Sprintf("cluster tests need %s", strings.Join(miss, ", "))
}
