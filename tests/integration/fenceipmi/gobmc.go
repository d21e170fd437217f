package fenceipmi

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/clock"
	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/bougou/go-ipmi/pkg/hal/mock"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/transport/udp"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/concord-ha/concord/tests/harness/fencepeer"
)

// GoBMC is go-ipmi's reference BMC server on 127.0.0.1, the second IPMI peer:
// unlike ipmi_sim it offers cipher suite 17 (RAKP-HMAC-SHA256). Its chassis
// runs the same chassis.sh, so power is a node process with an events log.
// It is the same library as our client, so a check against it only counts
// where ipmitool or fence_ipmilan agree.
type GoBMC struct {
	fencepeer.Node
	Port   int
	srv    *server.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// StartGoBMC serves lanplus with suites 3 and 17 and lan (MD5) on a free
// port, with files under dir. The only user is AdminUser/AdminPass.
func StartGoBMC(dir string) (*GoBMC, error) {
	node, err := fencepeer.NewNode(filepath.Join(dir, "node"))
	if err != nil {
		return nil, err
	}
	chassis, err := fencepeer.Chassis(dir)
	if err != nil {
		return nil, err
	}
	h := &nodeHAL{HAL: mock.New(), c: &nodeChassis{Chassis: &mock.Chassis{}, prog: chassis, node: node.Dir}}
	var guid [16]byte
	copy(guid[:], "concord-test-bmc")
	b := bmc.New(bmc.DeviceInfo{DeviceID: 32, IPMIVersion: 0x20, ManufacturerID: 0x000157, ProductID: 1,
		AdditionalDeviceSupport: 0x80}, guid, h, bmc.WithClock(clock.Real),
		bmc.WithCipherSuites([]types.CipherSuiteID{types.CipherSuiteID3, types.CipherSuiteID17}))
	u, err := b.Users.Add(2, AdminUser)
	if err != nil {
		return nil, err
	}
	u.SetPassword([]byte(AdminPass))
	u.Enabled = true
	u.ChannelAccess[1] = bmc.UserChannelAccess{MaxPrivilege: bmc.PrivilegeLevelAdministrator, Enabled: true}
	conn, err := udp.Listen("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &GoBMC{Node: node, srv: server.NewServer(b, conn), done: make(chan struct{})}
	g.Port = conn.LocalAddr().(*net.UDPAddr).Port
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() {
		defer close(g.done)
		g.srv.Serve(ctx)
	}()
	return g, nil
}

// Addr is the BMC's host:port.
func (g *GoBMC) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(g.Port)) }

// Stop ends the server and kills the node.
func (g *GoBMC) Stop() {
	g.cancel()
	g.srv.Close()
	<-g.done
	g.Node.Kill()
}

type nodeHAL struct {
	*mock.HAL
	c *nodeChassis
}

func (h *nodeHAL) Chassis() hal.ChassisHAL { return h.c }

// nodeChassis switches the node through chassis.sh; boot flags and the
// rest stay with the mock.
type nodeChassis struct {
	*mock.Chassis
	prog, node string
}

func (c *nodeChassis) run(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, c.prog, append([]string{c.node}, args...)...).Output()
	if err != nil {
		return "", fmt.Errorf("chassis.sh %v: %v", args, err)
	}
	return string(out), nil
}

func (c *nodeChassis) PowerState(ctx context.Context) (bool, error) {
	out, err := c.run(ctx, "get", "power")
	return strings.TrimSpace(out) == "power:1", err
}

func (c *nodeChassis) SetPower(ctx context.Context, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	_, err := c.run(ctx, "set", "power", v)
	return err
}

func (c *nodeChassis) PowerCycle(ctx context.Context) error {
	if err := c.SetPower(ctx, false); err != nil {
		return err
	}
	return c.SetPower(ctx, true)
}

func (c *nodeChassis) ColdReset(ctx context.Context) error {
	_, err := c.run(ctx, "set", "reset", "1")
	return err
}

func (c *nodeChassis) WarmReset(ctx context.Context) error {
	_, err := c.run(ctx, "set", "shutdown", "1")
	return err
}
