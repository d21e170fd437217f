package nodebus

import (
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

// A change to the cluster (AddNode, DeleteNode, EditNode, SetOption,
// SetQuorum) is a job, as systemd's unit changes are: the method checks
// its arguments, starts the job and returns its object at once; the
// Manager's JobRemoved signal says how it ended.
const (
	JobIface      = "org.concordha.node1.Job"
	jobPathStart  = "/org/concordha/node1/job/"
	JobDirectory  = dbus.ObjectPath("/org/concordha/node1/job")
	NodeDirectory = dbus.ObjectPath("/org/concordha/node1/node")
)

// Job kinds.
const (
	JobAddNode    = "add-node"
	JobDeleteNode = "delete-node"
	JobEditNode   = "edit-node"
	JobSetOption  = "set-option"
	JobSetQuorum  = "set-quorum"
)

// Job states.
const (
	JobWaiting = "waiting" // for the replicated configuration to take it (a leader)
	JobRunning = "running" // taken; waiting to be committed and applied here
)

// Job results, in JobRemoved.
const (
	ResultDone    = "done"    // committed and applied here
	ResultFailed  = "failed"  // refused; the message is "ERROR.NAME: text"
	ResultTimeout = "timeout" // not applied in time; it may still be applied later
)

// Job is a change under way.
type Job struct {
	ID     uint32
	Kind   string // JobAddNode, ...
	Target string // the node's name, or the option's or quorum setting's key
	State  string // JobWaiting | JobRunning
}

// Path is the job's object path.
func (j Job) Path() dbus.ObjectPath { return JobPath(j.ID) }

// JobPath is the object path of the job with the given id.
func JobPath(id uint32) dbus.ObjectPath {
	return dbus.ObjectPath(fmt.Sprintf("%s%d", jobPathStart, id))
}

// Error is an error with a D-Bus error name, on either side of the bus.
type Error struct {
	Name    string // e.g. ErrNoLeader
	Message string
}

// Error reads "message (name)", the form concordctl prints.
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Name
	}
	return e.Message + " (" + e.Name + ")"
}

// Errorf makes an *Error.
func Errorf(name, format string, a ...any) *Error {
	return &Error{Name: name, Message: fmt.Sprintf(format, a...)}
}

// FailureMessage is the JobRemoved message of a failed or timed-out job.
func FailureMessage(e *Error) string { return e.Name + ": " + e.Message }

// ParseFailure reads a JobRemoved message made by FailureMessage.
func ParseFailure(msg string) *Error {
	name, text, ok := strings.Cut(msg, ": ")
	if !ok || strings.ContainsAny(name, " \t") || !strings.Contains(name, ".") {
		return &Error{Name: ErrFailed, Message: msg}
	}
	return &Error{Name: name, Message: text}
}
