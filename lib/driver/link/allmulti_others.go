//go:build !linux

package link

// ReceiveAllMulticast makes the Conn receive frames to every multicast
// group; it is implemented on Linux only.
func (c *Conn) ReceiveAllMulticast() error { return errUnsupported }
