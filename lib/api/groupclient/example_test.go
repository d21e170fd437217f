package groupclient_test

import (
	"context"
	"fmt"

	"github.com/concord-ha/concord/lib/api/groupclient"
	"github.com/concord-ha/concord/lib/api/groupclient/grouptest"
	"github.com/concord-ha/concord/lib/api/groupwire"
)

// A member joins a group, sends to it and reads what the group delivers:
// its own view change, then its message, in the group's order. (Here on
// grouptest's fake daemon; a program leaves Socket empty and, for a
// cluster context other than the default, sets Context.)
func Example() {
	d, err := grouptest.NewDaemon(64)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	ctx := context.Background()
	s, err := groupclient.Dial(ctx, groupclient.Options{Socket: d.Path, Name: "example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	if err := s.Join(ctx, "db"); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := s.Send(ctx, "db", groupwire.Safe, []byte("hello")); err != nil {
		fmt.Println(err)
		return
	}
	for range 2 {
		e, err := s.Next(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		switch e.Kind {
		case groupclient.ViewChange:
			fmt.Println(e.Kind, e.Group, len(e.Members), "member,", e.Changes[0].Kind)
		case groupclient.Message:
			fmt.Println(e.Kind, e.Group, string(e.Payload), e.From == s.Self())
		}
	}
	// Output:
	// view db 1 member, joined
	// message db hello true
}
