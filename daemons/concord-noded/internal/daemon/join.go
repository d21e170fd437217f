package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/concord-ha/concord/daemons/concord-noded/internal/nic"
	"github.com/concord-ha/concord/lib/api/config"
	"github.com/concord-ha/concord/lib/driver/link"
	"github.com/concord-ha/concord/lib/store/atomicfile"
	"github.com/concord-ha/concord/lib/store/confstore"
	"github.com/concord-ha/concord/lib/sys/sdnotify"
	"github.com/concord-ha/concord/lib/wire/frame"
)

// Joining. A new node needs only the cluster key and its own name: its
// cluster.conf has the join form (config.JoinFile: no [cluster] section,
// at most [node NAME] and the names of its heartbeat NICs), or there is no
// file at all. It then fetches the configuration from the running cluster
// before it starts as a member:
//
//  1. It listens on its heartbeat NICs (those named in the file, else
//     every interface named hb*) for Concord frames of any multicast
//     group, since it does not know its cluster's yet.
//  2. A frame's header names its cluster id; the node proves that it has
//     that cluster's key by opening the frame with an Opener for that id.
//     Frames that do not open are counted and, if nothing else is heard,
//     make it say that its key is not the cluster's.
//  3. It sends a JoinRequest, as sender 0 (not a member yet) with its name,
//     to the cluster's group on every NIC, once a second.
//  4. Members answer with their replicated configuration and its index
//     (JoinConfig, fragmented; see answerJoin). The node takes the first
//     answer to one of its requests that lists it, checks that its NICs
//     have the MACs the configuration gives them, stores it in the state
//     directory (joinedFile; /etc is not rewritten) and starts with it as
//     a normal member that never bootstraps a configuration of its own.
//
// At later starts the stored configuration is used and nothing is fetched.

// joinedFile holds, in the state directory, the configuration this node
// fetched when it joined; it is read at every start while cluster.conf
// has the join form.
const joinedFile = "joined.conf"

// Timing of a join.
const (
	joinWait   = 60 * time.Second // listen this long for a cluster and its answer; under systemd's start timeout
	joinRetry  = time.Second      // between join requests
	joinSettle = 3 * time.Second  // after an answer without this node, wait this long for one with it
	maxOpeners = 16               // cluster ids tried at once: frames of strangers must not cost memory
)

// ErrTryAgain is wrapped by the errors of a start that may work later
// without any change here: no cluster was heard yet. concord-noded exits
// with 1 for them, which systemd restarts, and with 6 for the others.
var ErrTryAgain = errors.New("try again later")

type tryAgain struct{ msg string }

func (e *tryAgain) Error() string        { return e.msg }
func (e *tryAgain) Is(target error) bool { return target == ErrTryAgain }

// startConfig is what a start reads: the configuration, whether this
// node joins (or joined) a running cluster, and the index of a
// configuration just fetched (0 otherwise).
type startConfig struct {
	cfg     *config.Cluster
	joining bool
	index   uint64
}

// loadConfig reads the configuration a start needs: cluster.conf, or
// while it has the join form, the configuration fetched when this node
// joined, fetching it now if it never did. It sets o.NodeName when the
// file names the node.
func loadConfig(o *Options, log *slog.Logger) (startConfig, error) {
	if err := checkDeleted(o.StateDir); err != nil {
		return startConfig{}, err
	}
	data, err := os.ReadFile(o.ConfigPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return startConfig{}, err
	}
	if err == nil && !config.IsJoinForm(data) {
		fc, err := config.Load(o.ConfigPath)
		return startConfig{cfg: fc}, err
	}
	jf := &config.JoinFile{}
	form := o.ConfigPath + " does not exist"
	if err == nil {
		if jf, err = config.ParseJoin(o.ConfigPath, data); err != nil {
			return startConfig{}, err
		}
		form = o.ConfigPath + " has no [cluster] section"
	}
	switch {
	case jf.Name != "" && o.NodeName != "" && jf.Name != o.NodeName:
		return startConfig{}, fmt.Errorf("--node %s, but %s names [node %s]", o.NodeName, o.ConfigPath, jf.Name)
	case jf.Name != "":
		o.NodeName = jf.Name
	case o.NodeName == "":
		if o.NodeName, err = os.Hostname(); err != nil {
			return startConfig{}, fmt.Errorf("host name: %w", err)
		}
	}
	if fc, err := loadJoined(o.StateDir, o.NodeName); fc != nil || err != nil {
		return startConfig{cfg: fc, joining: true}, err
	}
	key, err := frame.LoadKey(o.KeyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return startConfig{}, fmt.Errorf("%s, so this node joins a running cluster, which needs the cluster's key: copy %s from a member (root, mode 0600)",
			form, o.KeyPath)
	}
	if err != nil {
		return startConfig{}, fmt.Errorf("%s, so this node joins a running cluster: %w", form, err)
	}
	log.Info(form + ", so this node joins a running cluster: looking for it")
	ports, err := openJoinPorts(jf.Links, log)
	if err != nil {
		return startConfig{}, err
	}
	n, _ := sdnotify.Open(os.Getenv("NOTIFY_SOCKET")) // nil: no STATUS=, as go-systemd would do
	defer n.Close()
	j := &joiner{name: o.NodeName, key: key, keyPath: o.KeyPath, context: o.Context, ports: ports, log: log, macOf: localMAC,
		status: func(s string) { n.Send("STATUS=" + s) }}
	r, err := j.run(context.Background())
	if err != nil {
		return startConfig{}, err
	}
	if err := saveJoined(o.StateDir, o.NodeName, r); err != nil {
		return startConfig{}, err
	}
	log.Info(fmt.Sprintf("joined cluster %s: node %d sent its configuration (index %d); kept in %s",
		r.cfg.Name, r.from, r.index, filepath.Join(o.StateDir, joinedFile)), "node", r.from, "config_index", r.index)
	return startConfig{cfg: r.cfg, joining: true, index: r.index}, nil
}

// joined sets up a daemon of a node that joined a running cluster, index
// being that of the configuration it just fetched, if it did. It must
// never bootstrap a configuration of its own. And until its store has the
// replicated configuration, the fetched one's index is its own: a peer
// whose configuration is newer and does not list it can tell it that it
// was deleted in between (see notMember), as configurations are totally
// ordered by index.
func (d *Daemon) joined(index uint64) {
	d.store.PeerInitialized()
	if d.cfgIndex == 0 {
		d.cfgIndex = index
	}
}

// joined is what a join fetched.
type joined struct {
	cfg   *config.Cluster
	index uint64 // the sender's applied index
	from  uint16 // the member that sent it
	when  time.Time
}

// saveJoined keeps what a join fetched in the state directory.
func saveJoined(dir, name string, r *joined) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	head := fmt.Sprintf("# The configuration of cluster %s, as node %d sent it (index %d) when %s joined on %s.\n"+
		"# concord-noded reads it at start while cluster.conf has the join form (see concord-noded(8));\n"+
		"# the replicated configuration (concordctl config show) is the one in force.\n",
		r.cfg.Name, r.from, r.index, name, r.when.UTC().Format(time.RFC3339))
	return atomicfile.Write(filepath.Join(dir, joinedFile), append([]byte(head), config.Format(r.cfg)...), 0o644)
}

// loadJoined returns the configuration of a node that joined before: the
// replicated one it applied last (the store's cluster.json), if that
// still lists name, else the one it fetched. Both nil: it never joined.
func loadJoined(dir, name string) (*config.Cluster, error) {
	path := filepath.Join(dir, joinedFile)
	fc, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%v (fetched when this node joined; remove it to fetch the configuration again)", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, confstore.ClusterFile)); err == nil {
		var c config.Cluster
		if json.Unmarshal(b, &c) == nil && c.Validate() == nil && c.ID == fc.ID && c.NodeByName(name) != nil {
			return &c, nil
		}
	}
	if fc.NodeByName(name) == nil {
		return nil, fmt.Errorf("%s does not list this node, %s: remove it to fetch the configuration again", path, name)
	}
	return fc, nil
}

// localMAC is the MAC of interface name on this host.
func localMAC(name string) (net.HardwareAddr, bool) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, false
	}
	return ifi.HardwareAddr, true
}

// openJoinPorts opens the NICs a joining node listens on: those named,
// else every interface named hb*. It sets them up first, as the daemon
// does with its configured NICs, since nothing else will.
func openJoinPorts(names []string, log *slog.Logger) ([]joinPort, error) {
	if len(names) == 0 {
		ifs, err := net.Interfaces()
		if err != nil {
			return nil, err
		}
		for _, ifi := range ifs {
			if strings.HasPrefix(ifi.Name, "hb") {
				names = append(names, ifi.Name)
			}
		}
		slices.Sort(names)
		if len(names) == 0 {
			return nil, &tryAgain{"no heartbeat NIC to join the cluster on: no interface is named hb*; " +
				"name them so, or list them in cluster.conf as link = IFNAME lines under [node NAME]"}
		}
	}
	links := make([]nic.Link, len(names))
	for i, n := range names {
		links[i] = nic.Link{Index: i, Interface: n}
	}
	if m, err := nic.New(links, nic.Options{}); err != nil {
		return nil, err
	} else if sts, err := m.Up(); err != nil {
		log.Warn("cannot set the heartbeat NICs up: " + err.Error())
	} else {
		for _, st := range sts {
			if !st.Working() {
				log.Warn(st.String(), "link", st.Index, "interface", st.Interface)
			}
		}
	}
	var ports []joinPort
	for _, n := range names {
		c, err := link.Open(n, nil)
		if err == nil {
			if err = c.ReceiveAllMulticast(); err != nil {
				c.Close()
			}
		}
		if err != nil {
			log.Warn("cannot listen for the cluster on "+n+": "+err.Error(), "interface", n)
			continue
		}
		ports = append(ports, joinPort{name: n, mac: c.HardwareAddr(), Port: c})
	}
	if len(ports) == 0 {
		return nil, &tryAgain{fmt.Sprintf("cannot listen for the cluster on any of %s", strings.Join(names, ", "))}
	}
	return ports, nil
}
