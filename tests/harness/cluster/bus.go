package cluster

import (
	"fmt"
	"os"
	"os/exec"
)

// ensureBus starts a host system bus if none runs: systemd-nspawn talks to
// it even with --register=no. The bus is host infrastructure shared by
// every test binary, so it is left running.
func ensureBus(log Logger) error {
	if _, err := os.Stat("/run/dbus/system_bus_socket"); err == nil {
		return nil
	}
	os.MkdirAll("/run/dbus", 0o755)
	log.Logf("cluster: no host system bus; starting dbus-daemon --system")
	if out, err := exec.Command("dbus-daemon", "--system", "--fork").CombinedOutput(); err != nil {
		return fmt.Errorf("cluster: host system bus: dbus-daemon --system: %v: %s", err, out)
	}
	return nil
}
