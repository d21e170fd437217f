package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/concord-ha/concord/lib/api/fenceproto"
	"github.com/concord-ha/concord/lib/driver/iscsi"
	"github.com/concord-ha/concord/lib/driver/scsipr"
)

const defaultKeyFile = "/run/concord/fence_concord_scsi.key"

// iqnPrefix names our initiators when initiator_name is not given.
const iqnPrefix = "iqn.2026-11.org.concord-ha:"

func agent() *fenceproto.Agent {
	return &fenceproto.Agent{
		Name:      "fence_concord_scsi",
		ShortDesc: "Fence agent for SCSI persistent reservations (Concord)",
		LongDesc: "fence_concord_scsi is an I/O fencing agent that uses SCSI-3 persistent reservations, " +
			"as fence_scsi does: every node registers its own key on the devices (on, run on the node itself), " +
			"one registrant holds a Write Exclusive - Registrants Only reservation, and off removes the " +
			"target node's key with PREEMPT AND ABORT (PREEMPT where the target refuses that), so the " +
			"target's writes fail with RESERVATION CONFLICT. Devices are /dev paths (sent through SG_IO; " +
			"dm-multipath devices act on each path) or iscsi://host:port/target-iqn/lun URLs, for which " +
			"the agent is its own iSCSI initiator. Keys are fence_scsi's: 4 hex digits of md5(cluster_name) " +
			"then 4 of md5(node name) (key_value=hash) or the node id (key_value=id).",
		Common:  []string{"devices", "nodename", "plug"},
		Fabric:  true,
		Unfence: true,
		Params: []fenceproto.Param{
			{Name: "devices", Short: "d", Required: true, Desc: "Comma-separated devices: /dev/... block devices or iscsi://host[:port]/target-iqn/lun"},
			{Name: "key", Short: "k", Desc: "Key of the node acted on (hex). Default: derived from cluster_name and the node name"},
			{Name: "cluster_name", Desc: "Cluster name, used to derive keys as fence_scsi does"},
			{Name: "key_value", Type: fenceproto.TypeSelect, Default: "hash", Choices: []string{"hash", "id"}, Desc: "Key derivation: hash of the node name, or the node id from node_ids"},
			{Name: "node_ids", Desc: "Node ids for key_value=id, as name:id pairs separated by commas"},
			{Name: "local_node", Desc: "Name of the node running the agent; its key removes others' keys. Default: the key stored by on, else the host name"},
			{Name: "key_file", Default: defaultKeyFile, Desc: "Where on stores this node's key for later off actions"},
			{Name: "initiator_name", Desc: "iSCSI initiator name for iscsi:// devices. Default: " + iqnPrefix + "<local node>"},
			{Name: "aptpl", Short: "a", Type: fenceproto.TypeBoolean, Desc: "Use the APTPL flag for registrations"},
		},
		Open:  open,
		Check: check,
	}
}

// actsOnNode: list and monitor concern the devices only; Pacemaker runs
// monitor without naming a node.
func actsOnNode(o *fenceproto.Options) bool {
	switch o.Get("action") {
	case "list", "list-status", "monitor":
		return false
	}
	return true
}

// specs lists the devices parameter's entries.
func specs(o *fenceproto.Options) []string {
	var ss []string
	for _, s := range strings.Split(o.Get("devices"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			ss = append(ss, s)
		}
	}
	return ss
}

// check: the device list's syntax and, for actions on a node, its key.
func check(o *fenceproto.Options) error {
	ss := specs(o)
	if len(ss) == 0 {
		return fmt.Errorf("%w: no devices given", fenceproto.ErrBadArgs)
	}
	for _, spec := range ss {
		if err := checkSpec(spec); err != nil {
			return err
		}
	}
	if actsOnNode(o) {
		if _, err := nodeKey(o, target(o), "key"); err != nil {
			return err
		}
	}
	return nil
}

func checkSpec(spec string) error {
	if strings.HasPrefix(spec, "iscsi://") {
		if _, err := iscsi.ParseURL(spec); err != nil {
			return fmt.Errorf("%w: %v", fenceproto.ErrBadArgs, err)
		}
		return nil
	}
	if !strings.HasPrefix(spec, "/") {
		return fmt.Errorf("%w: device %q: want a /dev path or an iscsi:// URL", fenceproto.ErrBadArgs, spec)
	}
	return nil
}

// target is the node acted on.
func target(o *fenceproto.Options) string {
	if n := o.Get("nodename"); n != "" {
		return n
	}
	return o.Get("plug")
}

type device struct {
	o       *fenceproto.Options
	fencer  *scsipr.Fencer
	closers []func() error
	target  string
	key     uint64
}

func open(ctx context.Context, o *fenceproto.Options) (fenceproto.Device, error) {
	d := &device{o: o, target: target(o)}
	if actsOnNode(o) {
		key, err := nodeKey(o, d.target, "key")
		if err != nil {
			return nil, err
		}
		d.key = key
	}
	d.fencer = &scsipr.Fencer{APTPL: o.Bool("aptpl"), Logf: o.Logf, Warnf: warnf(o)}
	local, err := localNode(o)
	if err != nil {
		return nil, err
	}
	for _, spec := range specs(o) {
		if err := d.add(ctx, spec, local); err != nil {
			d.Close()
			return nil, err
		}
	}
	if len(d.fencer.Devices) == 0 {
		return nil, fmt.Errorf("%w: no devices given", fenceproto.ErrBadArgs)
	}
	return d, nil
}

// warnf prints degraded-mode notes even without -v: an admin must know the
// target cannot abort a fenced node's queued commands.
func warnf(o *fenceproto.Options) func(string, ...any) {
	return func(format string, args ...any) {
		if o.Verbose() > 0 {
			o.Logf(format, args...)
			return
		}
		if !o.Bool("quiet") {
			fmt.Fprintf(os.Stderr, "WARNING: "+format+"\n", args...)
		}
	}
}

func (d *device) add(ctx context.Context, spec, local string) error {
	if err := checkSpec(spec); err != nil {
		return err
	}
	if strings.HasPrefix(spec, "iscsi://") {
		u, err := iscsi.ParseURL(spec)
		if err != nil {
			return err
		}
		iqn := d.o.Get("initiator_name")
		if iqn == "" {
			iqn = iqnPrefix + local
		}
		s, err := iscsi.Dial(ctx, iscsi.Config{Addr: u.Addr, Target: u.Target, LUN: u.LUN, InitiatorName: iqn, Logf: d.o.Logf})
		if err != nil {
			return fmt.Errorf("device %s: %w", spec, err)
		}
		d.closers = append(d.closers, func() error { return s.Logout(context.Background()) })
		d.fencer.Devices = append(d.fencer.Devices, &scsipr.Device{Name: spec, T: s, Logf: d.o.Logf})
		return nil
	}
	if _, err := os.Stat(spec); err != nil {
		return fmt.Errorf("device %q does not exist: %w", spec, err)
	}
	paths, err := scsipr.MultipathPaths(spec)
	if err != nil {
		return err
	}
	for _, p := range paths {
		t, err := scsipr.OpenSGIO(p)
		if err != nil {
			return err
		}
		d.closers = append(d.closers, t.Close)
		d.fencer.Devices = append(d.fencer.Devices, &scsipr.Device{Name: p, T: t, Logf: d.o.Logf})
	}
	return nil
}

// nodeKey is the explicit key param, else fence_scsi's derivation for node.
func nodeKey(o *fenceproto.Options, node, param string) (uint64, error) {
	if param != "" && o.Get(param) != "" {
		k, err := scsipr.ParseKey(o.Get(param))
		if err != nil {
			return 0, fmt.Errorf("%w: %v", fenceproto.ErrBadArgs, err)
		}
		return k, nil
	}
	if node == "" {
		return 0, fmt.Errorf("%w: nodename, plug or key is required", fenceproto.ErrBadArgs)
	}
	cluster := o.Get("cluster_name")
	if cluster == "" {
		return 0, fmt.Errorf("%w: cluster_name is required to derive the key of node %q (or give key)", fenceproto.ErrBadArgs, node)
	}
	var k uint64
	var err error
	if o.Get("key_value") == "id" {
		id, ierr := nodeID(o.Get("node_ids"), node)
		if ierr != nil {
			return 0, fmt.Errorf("%w: %v", fenceproto.ErrBadArgs, ierr)
		}
		k, err = scsipr.KeyFromID(cluster, id)
	} else {
		k, err = scsipr.KeyFromHash(cluster, node)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", fenceproto.ErrBadArgs, err)
	}
	return k, nil
}

// nodeID finds node in "name:id,name:id".
func nodeID(list, node string) (int, error) {
	for _, pair := range strings.Split(list, ",") {
		name, id, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok || name != node {
			continue
		}
		n, err := strconv.Atoi(id)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("node_ids: node %q: bad id %q", node, id)
		}
		return n, nil
	}
	return 0, fmt.Errorf("node_ids: no id for node %q (key_value=id)", node)
}

func localNode(o *fenceproto.Options) (string, error) {
	if n := o.Get("local_node"); n != "" {
		return n, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("local_node not set and no host name: %w", err)
	}
	return h, nil
}

// ownKey is this node's key for removing others: local_node's derived key,
// else the key the last on stored, else the host name's derived key.
func (d *device) ownKey() (uint64, error) {
	if n := d.o.Get("local_node"); n != "" {
		return nodeKey(d.o, n, "")
	}
	if b, err := os.ReadFile(d.o.Get("key_file")); err == nil {
		k, err := scsipr.ParseKey(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, fmt.Errorf("key_file %s: %v", d.o.Get("key_file"), err)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("key_file: %w", err)
	}
	h, err := localNode(d.o)
	if err != nil {
		return 0, err
	}
	return nodeKey(d.o, h, "")
}

// Status is ON when the key is registered on any device. For on, which
// runs on the node itself, ON means this agent's own nexus is registered
// on every device, as fence_scsi's status does for on.
func (d *device) Status(ctx context.Context) (fenceproto.PowerState, error) {
	check := d.fencer.Registered
	if d.o.Get("action") == "on" || d.o.Get("action") == "enable" {
		check = d.fencer.NexusRegistered
	}
	on, err := check(ctx, d.key)
	if err != nil {
		return fenceproto.StateUnknown, err
	}
	if on {
		return fenceproto.StateOn, nil
	}
	return fenceproto.StateOff, nil
}

// On registers the key (unfencing runs on the node itself) and stores it
// for later off actions, as fence_scsi does.
func (d *device) On(ctx context.Context) error {
	if err := d.fencer.Unfence(ctx, d.key); err != nil {
		return err
	}
	f := d.o.Get("key_file")
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return fmt.Errorf("key_file: %w", err)
	}
	if err := os.WriteFile(f, []byte(scsipr.FormatKey(d.key)+"\n"), 0o644); err != nil {
		return fmt.Errorf("key_file: %w", err)
	}
	return nil
}

func (d *device) Off(ctx context.Context) error {
	own, err := d.ownKey()
	if err != nil {
		return err
	}
	d.o.Logf("removing key 0x%s of %q as key 0x%s", scsipr.FormatKey(d.key), d.target, scsipr.FormatKey(own))
	return d.fencer.Fence(ctx, own, d.key)
}

// Monitor checks that every device answers READ KEYS.
func (d *device) Monitor(ctx context.Context) error {
	for _, dev := range d.fencer.Devices {
		if _, err := dev.ReadKeys(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (d *device) Close() error {
	var errs []error
	for _, c := range d.closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	d.closers = nil
	return errors.Join(errs...)
}
