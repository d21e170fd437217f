package daemon

import "github.com/concord-ha/concord/lib/api/nodebus"

// Events hears what happens in the loop: the D-Bus adapter turns it into
// signals and properties. The loop calls it on its own goroutine, in
// order; a method must not block for long and must not call back into
// the daemon. Slices and maps passed in are the callee's to keep.
type Events interface {
	// StatusChanged: a new status, with the frame counters as of now.
	StatusChanged(s nodebus.Status, counters map[string]uint64)
	ViewChanged(v nodebus.ViewInfo, reason string)
	QuorumChanged(q nodebus.QuorumInfo)
	LinkChanged(node uint16, link uint8, up bool)
	// ConfigChanged: the replicated configuration changed at index.
	ConfigChanged(index uint64, what string)
	// JobNew comes before the request that started the job returns.
	JobNew(j nodebus.Job)
	JobChanged(j nodebus.Job)
	// JobRemoved: result is nodebus.ResultDone, ResultFailed or
	// ResultTimeout; for the last two, message is FailureMessage's.
	JobRemoved(j nodebus.Job, result, message string)
	// GroupChanged: a process group has a new view on this node, local
	// members or not (once per view change, never per message).
	GroupChanged(g nodebus.GroupInfo)
	// GroupGone: the group has no members left; g has the view and the
	// changes that emptied it, and no members.
	GroupGone(g nodebus.GroupInfo)
	// SessionChanged: a local session of the group socket opened, or its
	// groups changed, or its counters did (checked once a second).
	SessionChanged(s nodebus.SessionInfo)
	// SessionClosed: the session with this client id ended.
	SessionClosed(client uint32)
}

// nopEvents hears nothing: a daemon without D-Bus.
type nopEvents struct{}

func (nopEvents) StatusChanged(nodebus.Status, map[string]uint64) {}
func (nopEvents) ViewChanged(nodebus.ViewInfo, string)            {}
func (nopEvents) QuorumChanged(nodebus.QuorumInfo)                {}
func (nopEvents) LinkChanged(uint16, uint8, bool)                 {}
func (nopEvents) ConfigChanged(uint64, string)                    {}
func (nopEvents) JobNew(nodebus.Job)                              {}
func (nopEvents) JobChanged(nodebus.Job)                          {}
func (nopEvents) JobRemoved(nodebus.Job, string, string)          {}
func (nopEvents) GroupChanged(nodebus.GroupInfo)                  {}
func (nopEvents) GroupGone(nodebus.GroupInfo)                     {}
func (nopEvents) SessionChanged(nodebus.SessionInfo)              {}
func (nopEvents) SessionClosed(uint32)                            {}
