package deps

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// Protocol cores must not do I/O, read clocks or start goroutines on their
// own: they are driven by messages and ticks so simulation can replay them.
var pure = []string{
	"github.com/concord-ha/concord/lib/membership",
	"github.com/concord-ha/concord/lib/quorum",
}

var forbidden = []string{"net", "os", "os/exec", "time", "syscall", "golang.org/x/sys/unix",
	"github.com/godbus/dbus/v5", "github.com/coreos/go-systemd/v22/daemon", "github.com/mdlayher/packet"}

func TestProtocolCoresArePure(t *testing.T) {
	for _, pkg := range pure {
		out, err := exec.Command("go", "list", "-json", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		var p struct{ Imports []string }
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatal(err)
		}
		for _, imp := range p.Imports {
			for _, f := range forbidden {
				if imp == f || strings.HasPrefix(imp, f+"/") && f != "os" {
					t.Errorf("%s imports %s: protocol cores must stay free of I/O, clocks and goroutines", pkg, imp)
				}
			}
		}
	}
}
