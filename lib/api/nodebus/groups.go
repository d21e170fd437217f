package nodebus

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/godbus/dbus/v5"
)

// Process groups are observed on D-Bus, not used there: each group this
// node knows has an object, and so has each local session of the group
// socket. Messages travel on /run/concord/groups.sock.
const (
	GroupIface       = "org.concordha.node1.Group"
	SessionIface     = "org.concordha.node1.Session"
	GroupDirectory   = dbus.ObjectPath("/org/concordha/node1/group")
	SessionDirectory = dbus.ObjectPath("/org/concordha/node1/session")
	ErrNoSuchGroup   = "org.concordha.node1.NoSuchGroup"
)

// GroupMember is a process in a group: its node, the node daemon's
// incarnation, the client id that daemon gave its session, pid and uid.
// On the bus it is (qtuuu).
type GroupMember struct {
	Node   uint16
	Inc    uint64
	Client uint32
	PID    uint32
	UID    uint32
}

// GroupChange is a member's entry into or exit from a group view; on the
// bus ((qtuuu)ss). Kind: joined | left | closed | died | removed | lost | merged.
type GroupChange struct {
	Member GroupMember
	Kind   string
	Reason string
}

// GroupInfo is a group's view as this node has it: View is the group
// view id ("12.1/3": node view 12 of coordinator 1, third change since).
// Changes are what made this view from the last one announced (they may
// span several views when views follow each other quickly).
type GroupInfo struct {
	Name    string
	View    string
	Members []GroupMember
	Changes []GroupChange
}

// GroupRow is a row of ListGroups.
type GroupRow struct {
	Name    string
	Path    dbus.ObjectPath
	View    string
	Members uint32
}

// SessionInfo is a local session of the group socket: the client id the
// daemon gave it, the peer's pid and uid, the name it gave in its hello,
// the groups it is a member of, its events queued and not yet read, and
// its messages sent and not yet delivered back (in flight).
type SessionInfo struct {
	Client   uint32
	PID      uint32
	UID      uint32
	Name     string
	Groups   []string
	Queued   uint32
	InFlight uint32
}

// Path is the session's object path.
func (s SessionInfo) Path() dbus.ObjectPath { return SessionPath(s.Client) }

// SessionRow is a row of ListSessions.
type SessionRow struct {
	Client uint32
	PID    uint32
	UID    uint32
	Name   string
	Path   dbus.ObjectPath
}

// SessionPath is the object path of the local session with client id c.
func SessionPath(c uint32) dbus.ObjectPath {
	return dbus.ObjectPath(fmt.Sprintf("%s/%d", SessionDirectory, c))
}

// GroupPath is the object path of the group with the given name: the
// name escaped by EscapeLabel under GroupDirectory.
func GroupPath(name string) dbus.ObjectPath {
	return GroupDirectory + "/" + dbus.ObjectPath(EscapeLabel(name))
}

// GroupName is the group name of a path made by GroupPath.
func GroupName(path dbus.ObjectPath) (string, error) {
	label, ok := strings.CutPrefix(string(path), string(GroupDirectory)+"/")
	if !ok || strings.Contains(label, "/") {
		return "", fmt.Errorf("%q is not a group object path (%s/NAME)", path, GroupDirectory)
	}
	return UnescapeLabel(label)
}

// EscapeLabel makes s one element of an object path as systemd does for
// unit paths: ASCII letters stay, digits stay unless first, every other
// byte becomes _ and two lower-case hex digits; "" becomes "_". Every
// string, UTF-8 or not, has an escape, and no two share one.
func EscapeLabel(s string) string {
	if s == "" {
		return "_"
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(c) || (i > 0 && '0' <= c && c <= '9') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// UnescapeLabel undoes EscapeLabel. It refuses what EscapeLabel never
// makes (upper-case hex, an escaped letter, a bare _ inside a label), so
// each name has one path.
func UnescapeLabel(l string) (string, error) {
	if l == "_" {
		return "", nil
	}
	if l == "" {
		return "", fmt.Errorf("empty path element: the empty name is escaped as _")
	}
	var b strings.Builder
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case isAlpha(c) || (i > 0 && '0' <= c && c <= '9'):
			b.WriteByte(c)
		case c == '_':
			if i+3 > len(l) {
				return "", fmt.Errorf("path element %q: _ at byte %d is not followed by two hex digits", l, i)
			}
			v, err := strconv.ParseUint(l[i+1:i+3], 16, 8)
			if err != nil || strings.ToLower(l[i+1:i+3]) != l[i+1:i+3] {
				return "", fmt.Errorf("path element %q: _ at byte %d is not followed by two lower-case hex digits", l, i)
			}
			e := byte(v)
			if isAlpha(e) || (b.Len() > 0 && '0' <= e && e <= '9') {
				return "", fmt.Errorf("path element %q: byte %q at %d is escaped but need not be", l, e, i)
			}
			b.WriteByte(e)
			i += 2
		default:
			return "", fmt.Errorf("path element %q: byte %q at %d is not a letter, a digit or an escape", l, c, i)
		}
	}
	return b.String(), nil
}

func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
