// Package iscsi is a small user-space iSCSI initiator (RFC 7143): one
// connection per session, login without authentication, and SCSI commands
// with data-in and data-out, enough to send persistent reservations.
package iscsi
