package main

import (
	"github.com/concord-ha/concord/lib/fenceproto"
	"github.com/concord-ha/concord/lib/redfish"
)

func main() { fenceproto.Main(redfish.Agent()) }
