//go:build linux

package link

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// ReceiveAllMulticast makes the Conn receive frames to every multicast
// group, not only the one it was opened with: a node that does not know
// its cluster's id yet cannot know the group either. It is
// PACKET_ADD_MEMBERSHIP with PACKET_MR_ALLMULTI, which sets the NIC's
// all-multicast mode (a hardware filter would otherwise drop the frames)
// for as long as the socket lives.
func (c *Conn) ReceiveAllMulticast() error {
	mreq := unix.PacketMreq{Ifindex: c.ifindex, Type: unix.PACKET_MR_ALLMULTI}
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptPacketMreq(int(fd), unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("link: %s: receiving all multicast: %w", c.name, c.closedErr(err))
	}
	return nil
}
