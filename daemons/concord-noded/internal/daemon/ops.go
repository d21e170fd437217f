package daemon

import (
	"errors"
	"sort"
	"time"

	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/api/nodebus"
	"github.com/concord-ha/concord/lib/core/membership"
	"github.com/concord-ha/concord/lib/store/confstore"
)

// propose hands op to the replicated store and waits until it is applied
// here. Without a leader (just after a restart, an election takes a second
// or two) it keeps trying for a while before giving up.
func (d *Daemon) propose(op confstore.Op) error {
	deadline := time.Now().Add(6 * time.Second)
	for {
		err := d.proposeOnce(op)
		var ae *apiError
		if err == nil || !errors.As(err, &ae) || ae.name != nodebus.ErrNoLeader || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *Daemon) proposeOnce(op confstore.Op) error {
	op.Origin = d.num
	return d.store.propose(op, 10*time.Second)
}

// groupOp runs a messaging call on the loop; a full send queue comes back
// as QueueFull, anything else (bad name, too large) as InvalidArgs.
func (d *Daemon) groupOp(fn func() error) error {
	var err error
	d.call(func() { err = fn() })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, membership.ErrQueueFull):
		return errorf(nodebus.ErrQueueFull, "%v", err)
	}
	return errorf(nodebus.ErrInvalidArgs, "%v", err)
}

func (d *Daemon) addNode(name string, number uint16, votes uint32, links []string, attrs map[string]string) (uint16, error) {
	n, err := config.NewNode(d.cfgSnapshot(), name, number, votes, links, attrs)
	if config.IsQuorumError(err) {
		return 0, errorf(nodebus.ErrInvalidArgs, "%v; %s", err, config.QuorumHint)
	}
	if err != nil {
		return 0, errorf(nodebus.ErrInvalidArgs, "%v", err)
	}
	if err := d.propose(confstore.Op{Kind: confstore.AddNode, Node: *n}); err != nil {
		return 0, err
	}
	return n.Number, nil
}

func (d *Daemon) cfgSnapshot() *config.Cluster {
	var c *config.Cluster
	d.call(func() { c = d.cfg })
	return c
}

func (d *Daemon) nodeByName(name string) (config.Node, error) {
	n := d.cfgSnapshot().NodeByName(name)
	if n == nil {
		return config.Node{}, errorf(nodebus.ErrNoSuchNode, "no node named %q", name)
	}
	return *n, nil
}

func (d *Daemon) deleteNode(name string) error {
	n, err := d.nodeByName(name)
	if err != nil {
		return err
	}
	return d.propose(confstore.Op{Kind: confstore.DeleteNode, Number: n.Number})
}

func (d *Daemon) setOption(key, value string) error {
	if err := config.ValidOptionKey(key); err != nil {
		return errorf(nodebus.ErrInvalidArgs, "%v", err)
	}
	return d.propose(confstore.Op{Kind: confstore.SetOption, Key: key, Value: value})
}

// setQuorumOption changes one [quorum] setting. It is checked here first, so a
// typo is InvalidArgs at once; the store checks it again when it applies
// it, against the node list of that moment, and the quorum tracker takes
// it on every node (applyConfig).
func (d *Daemon) setQuorumOption(key, value string) error {
	c := *d.cfgSnapshot() // SetQuorum changes c.Quorum; the loop's copy stays
	if err := c.SetQuorum(key, value); err != nil {
		return errorf(nodebus.ErrInvalidArgs, "%v", err)
	}
	return d.propose(confstore.Op{Kind: confstore.SetQuorum, Key: key, Value: value})
}

func (d *Daemon) editNode(name string, changes map[string]any) error {
	n, err := d.nodeByName(name)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(changes))
	for k := range changes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := changes[k]
		bad := func() error {
			return errorf(nodebus.ErrInvalidArgs, "edit node %q: %q has the wrong type %T", name, k, v)
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
				return errorf(nodebus.ErrInvalidArgs, "edit node %q: %v", name, err)
			}
			n.Links = ls
		case "attributes":
			x, ok := v.(map[string]string)
			if !ok {
				return bad()
			}
			n.Attrs = x
		default:
			return errorf(nodebus.ErrInvalidArgs, "edit node %q: unknown key %q (known: votes, name, links, attributes)", name, k)
		}
	}
	return d.propose(confstore.Op{Kind: confstore.EditNode, Number: n.Number, Node: n})
}
