// Package fencescsi proves SCSI persistent reservation fencing (lib/scsipr
// over lib/iscsi, and the fence_concord_scsi agent) against real iSCSI
// targets on 127.0.0.1: Debian's tgtd and istgt.
package fencescsi
