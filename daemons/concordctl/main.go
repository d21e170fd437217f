// Command concordctl shows and changes a Concord cluster. See concordctl(8).
package main

import (
	"os"

	"github.com/concord-ha/concord/daemons/concordctl/internal/cli"
	"github.com/concord-ha/concord/lib/sys/version"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Dial: cli.DialBus, Getenv: os.Getenv, Version: version.String()}))
}
