package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/concord-ha/concord/lib/api/clusterctx"
	"github.com/concord-ha/concord/lib/api/nodebus"
)

// waitLimit bounds the wait for a change: the daemon ends every job within
// about 16 s (6 s for a leader, 10 s to apply), so this is a daemon that
// stopped answering.
const waitLimit = time.Minute

// lostError is a change whose outcome is unknown.
type lostError struct{ why string }

func (e lostError) Error() string {
	return e.why + ": the change may or may not have been applied; check with `concordctl config show` and `concordctl node list`"
}

// change starts a change, waits for its job unless --no-block, and calls
// done once the change is applied on this node.
func (env Env) change(start func(API) (dbus.ObjectPath, error), done func()) error {
	api, err := env.dial()
	if err != nil {
		return err
	}
	job, err := start(api)
	if err != nil {
		return lostOr(err)
	}
	if env.noBlock {
		fmt.Fprintln(env.Stdout, job)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := api.Wait(ctx, job); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return lostError{fmt.Sprintf("concord-noded did not finish job %s within %v", job, waitLimit)}
		}
		return lostOr(err)
	}
	done()
	return nil
}

// lostOr turns a lost daemon into the words an admin needs.
func lostOr(err error) error {
	if errors.Is(err, nodebus.ErrLost) {
		return lostError{fmt.Sprintf("lost concord-noded during the change (%v)", err)}
	}
	return err
}

// explain words the errors an admin meets often.
func explain(err error, cc clusterctx.Context) error {
	var e *nodebus.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Name {
	case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
		if !cc.IsDefault() {
			return fmt.Errorf("concord-noded of cluster context %s is not running (%s has no owner: %s); start it with: systemctl start %s",
				cc, cc.BusName(), e.Name, cc.Unit())
		}
		return fmt.Errorf("concord-noded is not running (%s); start it with: systemctl start concord-noded", e.Name)
	case nodebus.ErrAccessDenied:
		// The bus policy's refusal ("Rejected send message, ...") and
		// the daemon's own say the same to an admin.
		return errors.New("changing the cluster needs root: run concordctl as root (for example with sudo)")
	}
	return err
}
