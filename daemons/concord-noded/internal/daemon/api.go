package daemon

import (
	"errors"
	"sort"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/core/membership"
	"github.com/concord-ha/concord/lib/store/confstore"
)

// The requests of the D-Bus adapter (busapi.Backend). They are called on
// the adapter's goroutines and run their work on the loop, which they wait
// for only as long as it takes to run: a change is checked and started as
// a job, and its end comes later through Events. Errors are
// *nodebus.Error, named for D-Bus.

// Status is the status as of the loop's last refresh.
func (d *Daemon) Status() nodebus.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// Config is the configuration in force, in cluster.conf syntax.
func (d *Daemon) Config() (string, error) {
	var b []byte
	if err := d.call(func() { b = config.Format(d.cfg) }); err != nil {
		return "", err
	}
	return string(b), nil
}

// change runs check on the loop; if it returns ops without an error, they
// become a job.
func (d *Daemon) change(kind, target string, check func(c *config.Cluster) ([]confstore.Op, error)) (nodebus.Job, error) {
	var info nodebus.Job
	var err error
	if cerr := d.call(func() {
		var ops []confstore.Op
		if ops, err = check(d.cfg); err != nil {
			return
		}
		j := d.startJob(kind, target, ops...)
		info = j.info
		d.announce(j)
	}); cerr != nil {
		return info, cerr
	}
	return info, err
}

// AddNode starts adding a node and returns the job and the node's number.
func (d *Daemon) AddNode(name string, number uint16, votes uint32, links []string, attrs map[string]string) (nodebus.Job, uint16, error) {
	var num uint16
	j, err := d.change(nodebus.JobAddNode, name, func(c *config.Cluster) ([]confstore.Op, error) {
		n, err := config.NewNode(c, name, number, votes, links, attrs)
		if config.IsQuorumError(err) {
			return nil, nodebus.Errorf(nodebus.ErrInvalidArgs, "%v; %s", err, config.QuorumHint)
		}
		if err != nil {
			return nil, nodebus.Errorf(nodebus.ErrInvalidArgs, "%v", err)
		}
		num = n.Number
		return []confstore.Op{{Kind: confstore.AddNode, Node: *n}}, nil
	})
	return j, num, err
}

func nodeByName(c *config.Cluster, name string) (config.Node, error) {
	n := c.NodeByName(name)
	if n == nil {
		return config.Node{}, nodebus.Errorf(nodebus.ErrNoSuchNode, "no node named %q", name)
	}
	return *n, nil
}

// DeleteNode starts deleting a node.
func (d *Daemon) DeleteNode(name string) (nodebus.Job, error) {
	return d.change(nodebus.JobDeleteNode, name, func(c *config.Cluster) ([]confstore.Op, error) {
		n, err := nodeByName(c, name)
		if err != nil {
			return nil, err
		}
		return []confstore.Op{{Kind: confstore.DeleteNode, Number: n.Number}}, nil
	})
}

// SetOption starts setting a free-form option; an empty value removes it.
func (d *Daemon) SetOption(key, value string) (nodebus.Job, error) {
	return d.change(nodebus.JobSetOption, key, func(*config.Cluster) ([]confstore.Op, error) {
		if err := config.ValidOptionKey(key); err != nil {
			return nil, nodebus.Errorf(nodebus.ErrInvalidArgs, "%v", err)
		}
		return []confstore.Op{{Kind: confstore.SetOption, Key: key, Value: value}}, nil
	})
}

// SetQuorum starts changing one [quorum] setting. It is checked here
// first, so a typo is InvalidArgs at once; the store checks it again when
// it applies it, against the node list of that moment, and the quorum
// tracker takes it on every node (applyConfig).
func (d *Daemon) SetQuorum(key, value string) (nodebus.Job, error) {
	return d.change(nodebus.JobSetQuorum, key, func(c *config.Cluster) ([]confstore.Op, error) {
		cc := *c // SetQuorum changes cc.Quorum; the loop's copy stays
		if err := cc.SetQuorum(key, value); err != nil {
			return nil, nodebus.Errorf(nodebus.ErrInvalidArgs, "%v", err)
		}
		return []confstore.Op{{Kind: confstore.SetQuorum, Key: key, Value: value}}, nil
	})
}

// EditNode starts changing a node: keys votes (uint32), name (string),
// links ([]string) and attributes (map[string]string).
func (d *Daemon) EditNode(name string, changes map[string]any) (nodebus.Job, error) {
	return d.change(nodebus.JobEditNode, name, func(c *config.Cluster) ([]confstore.Op, error) {
		n, err := nodeByName(c, name)
		if err != nil {
			return nil, err
		}
		if err := editNode(&n, name, changes); err != nil {
			return nil, err
		}
		return []confstore.Op{{Kind: confstore.EditNode, Number: n.Number, Node: n}}, nil
	})
}

func editNode(n *config.Node, name string, changes map[string]any) error {
	keys := make([]string, 0, len(changes))
	for k := range changes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := changes[k]
		bad := func() error {
			return nodebus.Errorf(nodebus.ErrInvalidArgs, "edit node %q: %q has the wrong type %T", name, k, v)
		}
		switch k {
		case "votes":
			x, ok := v.(uint32)
			if !ok {
				return bad()
			}
			n.Votes = x
		case "name":
			x, ok := v.(string)
			if !ok {
				return bad()
			}
			n.Name = x
		case "links":
			x, ok := v.([]string)
			if !ok {
				return bad()
			}
			ls, err := config.ParseLinks(x)
			if err != nil {
				return nodebus.Errorf(nodebus.ErrInvalidArgs, "edit node %q: %v", name, err)
			}
			n.Links = ls
		case "attributes":
			x, ok := v.(map[string]string)
			if !ok {
				return bad()
			}
			n.Attrs = x
		default:
			return nodebus.Errorf(nodebus.ErrInvalidArgs, "edit node %q: unknown key %q (known: votes, name, links, attributes)", name, k)
		}
	}
	return nil
}

// groupOp runs a call that sends through the total order on the loop; a
// full send queue comes back as QueueFull, anything else as InvalidArgs.
func (d *Daemon) groupOp(fn func() error) error {
	var err error
	if cerr := d.call(func() { err = fn() }); cerr != nil {
		return cerr
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, membership.ErrQueueFull):
		return nodebus.Errorf(nodebus.ErrQueueFull, "%v", err)
	}
	return nodebus.Errorf(nodebus.ErrInvalidArgs, "%v", err)
}
