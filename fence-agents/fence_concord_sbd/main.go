// Command fence_concord_sbd is a ClusterLabs-protocol fence agent that
// writes SBD poison pills into a node's slot on shared disks.
package main

import "github.com/concord-ha/concord/lib/api/fenceproto"

func main() { fenceproto.Main(agent()) }
