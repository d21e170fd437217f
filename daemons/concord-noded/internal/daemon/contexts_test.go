package daemon

import (
	"testing"

	"github.com/concord-ha/concord/lib/api/clusterctx"
	"github.com/concord-ha/concord/lib/store/confstore"
)

// A named context's state directory is a directory of its name inside the
// default context's, so no file the daemon keeps there may be a valid
// context name: clusterctx must reserve each such name.
func TestStateFilesAreNoContextNames(t *testing.T) {
	for _, name := range []string{deletedFile, joinedFile, "view-seq", confstore.WALFile, confstore.SnapFile, confstore.ClusterFile} {
		if _, err := clusterctx.Parse(name); err == nil {
			t.Errorf("%q, a file in the state directory, is a valid cluster context name", name)
		}
	}
	d := &Daemon{opts: Options{StateDir: "/x"}}
	if got := d.viewSeqPath(); got != "/x/view-seq" {
		t.Errorf("viewSeqPath = %s; update this test's list", got)
	}
}
