// Command fence-scsi times SCSI persistent reservation fencing against
// Debian's tgtd on 127.0.0.1: PREEMPT and READ KEYS round trips over an
// open session (lib/iscsi + lib/scsipr vs libiscsi's iscsi-pr), and whole
// processes (fence_concord_scsi off/status vs libiscsi's sg-persist-iscsi,
// the stand-in fence_scsi runs), 20 trials each.
package main
