package noded

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mdlayher/packet"

	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/driver/link"
	"github.com/concord-ha/concord/lib/wire/frame"
	"github.com/concord-ha/concord/tests/harness/concordtest"
)

// bridgeConn opens a Concord packet socket on a test bridge, a host of its
// own on the heartbeat network.
func bridgeConn(bridge string) (*packet.Conn, error) {
	ifi, err := net.InterfaceByName(bridge)
	if err != nil {
		return nil, err
	}
	return packet.Listen(ifi, packet.Datagram, link.EtherType, nil)
}

// sendGarbage puts bad frames on a test bridge, as a broken or hostile host
// on the heartbeat network would: truncated, not ours, another cluster's,
// and well-formed but sealed with the wrong key.
func sendGarbage(bridge string, cluster uint32) error {
	c, err := bridgeConn(bridge)
	if err != nil {
		return err
	}
	defer c.Close()
	wrongKey := make([]byte, 32)
	other, err := frame.NewSealer(wrongKey, cluster+1, 1, 1)
	if err != nil {
		return err
	}
	ours, err := frame.NewSealer(wrongKey, cluster, 1, 1)
	if err != nil {
		return err
	}
	otherCluster, _, _ := other.Seal(nil, frame.KindMembership, []byte("hello"))
	wrongKeyFrame, _, _ := ours.Seal(nil, frame.KindMembership, []byte("hello"))
	frames := [][]byte{
		{0x43}, // truncated
		[]byte("XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"), // bad magic
		otherCluster,
		wrongKeyFrame,
	}
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for _, f := range frames {
		for k := 0; k < 3; k++ {
			if _, err := c.WriteTo(f, &packet.Addr{HardwareAddr: bcast}); err != nil {
				return fmt.Errorf("send on %s: %w", bridge, err)
			}
		}
	}
	return nil
}

// frameCounters reads node i's FrameCounters property with busctl.
func frameCounters(t *testing.T, ctx context.Context, c *concordtest.Cluster, i int) map[string]uint64 {
	t.Helper()
	out, err := c.Exec(ctx, i, "busctl", "--json=short", "get-property", nodebus.BusName, string(nodebus.ManagerPath), nodebus.ManagerIface, "FrameCounters")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Data map[string]uint64 `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("FrameCounters: %v: %q", err, out)
	}
	return v.Data
}

// sendAs sends n valid frames as node sender would, sealed with the
// cluster's key, as multicast on bridge.
func sendAs(bridge string, key []byte, cluster uint32, sender uint16, n int) error {
	c, err := bridgeConn(bridge)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := frame.NewSealer(key, cluster, sender, uint64(time.Now().UnixNano()))
	if err != nil {
		return err
	}
	dst := &packet.Addr{HardwareAddr: link.MulticastGroup(cluster)}
	for i := 0; i < n; i++ {
		f, _, err := s.Seal(nil, frame.KindProbe, frame.Probe{HasState: true}.Encode())
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(f, dst); err != nil {
			return fmt.Errorf("send on %s: %w", bridge, err)
		}
	}
	return nil
}
