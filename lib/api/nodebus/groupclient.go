package nodebus

import "github.com/godbus/dbus/v5"

// ListGroups lists the process groups this node knows, by name.
func (c *Client) ListGroups() ([]GroupRow, error) {
	var rows []GroupRow
	if err := c.call("ListGroups").Store(&rows); err != nil {
		return nil, callErr(err, false)
	}
	return rows, nil
}

// ListSessions lists this node's sessions of the group socket, by client id.
func (c *Client) ListSessions() ([]SessionRow, error) {
	var rows []SessionRow
	if err := c.call("ListSessions").Store(&rows); err != nil {
		return nil, callErr(err, false)
	}
	return rows, nil
}

// GroupMembers is a group's view id and members, read together; a group
// without members is an *Error named ErrNoSuchGroup.
func (c *Client) GroupMembers(name string) (string, []GroupMember, error) {
	var view string
	var ms []GroupMember
	if err := c.call("GetGroupMembers", name).Store(&view, &ms); err != nil {
		return "", nil, callErr(err, false)
	}
	return view, ms, nil
}

// GetGroup is the object path of a group; ErrNoSuchGroup if it has no members.
func (c *Client) GetGroup(name string) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	if err := c.call("GetGroup", name).Store(&p); err != nil {
		return "", callErr(err, false)
	}
	return p, nil
}
