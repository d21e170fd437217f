// Package scsipr builds and parses SCSI-3 persistent reservation commands
// (SPC-4 PERSISTENT RESERVE IN/OUT) and runs fence_scsi-style fencing over
// any Transport: SG_IO on a Linux block device or an iSCSI session.
package scsipr
