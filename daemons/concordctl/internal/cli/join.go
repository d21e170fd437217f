package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/concord-ha/concord/lib/api/clusterctx"
)

// joinSteps tells the admin, after `node add`, what to do on the new node:
// it needs only the package, the key and at most its name (see
// concord-noded(8), JOINING A CLUSTER); it fetches the rest.
func joinSteps(w io.Writer, name string, links []string, version string, cc clusterctx.Context) {
	var ifs, other []string
	for _, l := range links {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		ifs = append(ifs, f[0])
		if !strings.HasPrefix(f[0], "hb") {
			other = append(other, f[0])
		}
	}
	conf := fmt.Sprintf("no %s if its host name is %s; else one with only the line\n       [node %s]", cc.ConfigPath(), name, name)
	if len(other) > 0 {
		// The node listens on hb* interfaces unless the file names others.
		are := "is"
		if len(other) > 1 {
			are = "are"
		}
		conf = fmt.Sprintf("an %s with only these lines (%s %s not named hb*):\n       [node %s]", cc.ConfigPath(), strings.Join(other, ", "), are, name)
		for _, i := range ifs {
			conf += "\n       link = " + i
		}
	}
	fmt.Fprintf(w, `On %[1]s, to join it to the cluster:
  1. install the concord package, version %[2]s as here (apt install ./concord.deb)
  2. copy %[5]s from this node to %[5]s there (owner root, mode 0600)
  3. %[3]s
  4. systemctl enable --now %[6]s
It fetches the cluster configuration over %[4]s when it starts.
`, name, version, conf, strings.Join(ifs, ", "), cc.KeyPath(), cc.Unit())
}
