// Command concordctl shows and changes a Concord cluster. See concordctl(8).
package main

import (
	"os"

	"github.com/concord-ha/concord/lib/ctl"
)

var version = "dev"

func main() {
	os.Exit(ctl.Main(os.Args[1:], ctl.Env{Stdout: os.Stdout, Stderr: os.Stderr, Dial: ctl.DialBus, Version: version}))
}
