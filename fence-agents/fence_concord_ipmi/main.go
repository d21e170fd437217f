// Command fence_concord_ipmi is a ClusterLabs-protocol fence agent that
// switches chassis power through a BMC over IPMI LAN (v2.0 lanplus or
// v1.5 lan), speaking IPMI itself instead of running ipmitool.
package main

import "github.com/concord-ha/concord/lib/api/fenceproto"

func main() { fenceproto.Main(agent()) }
