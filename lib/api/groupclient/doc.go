// Package groupclient is the Go client of Concord's process groups: a
// Session is one SOCK_SEQPACKET connection to concord-noded speaking the
// protocol of lib/api/groupwire, through which a program joins groups,
// sends to them and reads their views and messages in the cluster's order.
//
// The session reads its socket only when the program asks for something
// that needs it: an event (Next), a reply, or credit to send. Events read
// while waiting for a reply or for credit are kept, in order, for later
// Next calls, at most the welcome's max queue of them; past that, the wait
// goes on only as Next takes events. So a program that stops calling Next
// stops reading, and the daemon, which bounds what it holds for a client,
// sees it and removes the client from its groups with the reason (a view
// change of kind removed). A program that sends must therefore also read
// its events, from the same or another goroutine.
//
// Every method is safe for concurrent use.
package groupclient
