package ipmi

import "net/netip"

func netipAddrPort(a netip.Addr, port int) netip.AddrPort {
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}
