// Command fence_concord_scsi is a ClusterLabs-protocol fabric fence agent
// using SCSI-3 persistent reservations (the fence_scsi method), over SG_IO
// on /dev block devices or over its own iSCSI sessions (iscsi:// URLs).
package main

import "github.com/concord-ha/concord/lib/api/fenceproto"

func main() { fenceproto.Main(agent()) }
