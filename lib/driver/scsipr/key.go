package scsipr

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// ParseKey parses a reservation key in hex, with or without 0x, as
// fence_scsi's key option and sg_persist take it. Zero is not a key.
func ParseKey(s string) (uint64, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	if t == "" || len(t) > 16 {
		return 0, fmt.Errorf("scsipr: bad key %q: want 1-16 hex digits", s)
	}
	k, err := strconv.ParseUint(t, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("scsipr: bad key %q: want 1-16 hex digits", s)
	}
	if k == 0 {
		return 0, fmt.Errorf("scsipr: bad key %q: key cannot be 0", s)
	}
	return k, nil
}

// FormatKey prints a key as fence_scsi stores it: lower-case hex without
// leading zeros.
func FormatKey(k uint64) string { return strconv.FormatUint(k, 16) }

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// KeyFromID derives fence_scsi's default ("key_value=id") key: the first 4
// hex digits of md5(cluster name) followed by the corosync node id in
// decimal, zero-padded to 4 digits, read as hex ("%.4s%.4d").
func KeyFromID(cluster string, nodeID int) (uint64, error) {
	if cluster == "" {
		return 0, fmt.Errorf("scsipr: key from node id: empty cluster name")
	}
	if nodeID <= 0 {
		return 0, fmt.Errorf("scsipr: key from node id: bad node id %d", nodeID)
	}
	return ParseKey(fmt.Sprintf("%.4s%.4d", md5hex(cluster), nodeID))
}

// KeyFromHash derives fence_scsi's "key_value=hash" key: the first 4 hex
// digits of md5(cluster name) followed by the first 4 of md5(node name).
func KeyFromHash(cluster, node string) (uint64, error) {
	if cluster == "" || node == "" {
		return 0, fmt.Errorf("scsipr: key from hash: cluster name %q and node name %q must be set", cluster, node)
	}
	return ParseKey(md5hex(cluster)[:4] + md5hex(node)[:4])
}
