package iscsi

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DefaultPort is the IANA iSCSI port.
const DefaultPort = 3260

// URL names one logical unit: iscsi://host[:port]/target-iqn/lun.
type URL struct {
	Addr   string // host:port
	Target string
	LUN    uint64
}

func (u URL) String() string {
	return fmt.Sprintf("iscsi://%s/%s/%d", u.Addr, u.Target, u.LUN)
}

// ParseURL parses iscsi://host[:port]/target/lun (the libiscsi form).
func ParseURL(s string) (URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return URL{}, fmt.Errorf("iscsi: bad URL %q: %v", s, err)
	}
	if u.Scheme != "iscsi" {
		return URL{}, fmt.Errorf("iscsi: URL %q: scheme must be iscsi", s)
	}
	if u.User != nil || u.RawQuery != "" {
		return URL{}, fmt.Errorf("iscsi: URL %q: user info and query are not supported", s)
	}
	host := u.Hostname()
	if host == "" {
		return URL{}, fmt.Errorf("iscsi: URL %q: no host", s)
	}
	port := DefaultPort
	if p := u.Port(); p != "" {
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return URL{}, fmt.Errorf("iscsi: URL %q: bad port %q", s, p)
		}
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return URL{}, fmt.Errorf("iscsi: URL %q: path must be /target/lun", s)
	}
	lun, err := strconv.ParseUint(parts[1], 10, 14)
	if err != nil {
		return URL{}, fmt.Errorf("iscsi: URL %q: bad LUN %q (0-16383)", s, parts[1])
	}
	return URL{Addr: net.JoinHostPort(host, strconv.Itoa(port)), Target: parts[0], LUN: lun}, nil
}

// encodeLUN is the SAM LUN field: peripheral addressing below 256, flat
// addressing up to 16383.
func encodeLUN(lun uint64) [8]byte {
	var b [8]byte
	if lun < 256 {
		b[1] = byte(lun)
	} else {
		b[0] = 0x40 | byte(lun>>8)&0x3f
		b[1] = byte(lun)
	}
	return b
}
