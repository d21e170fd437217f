package main

import (
	"github.com/concord-ha/concord/lib/api/fenceproto"
	"github.com/concord-ha/concord/lib/driver/redfish"
)

func main() { fenceproto.Main(redfish.Agent()) }
