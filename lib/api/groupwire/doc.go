// Package groupwire is the process-group socket protocol, version 1: what
// a program and concord-noded say to each other over a group session. It
// is the contract both client libraries implement (libconcord in C, and
// lib/api/groupclient in Go); this comment is its specification.
//
// # Transport
//
// A session is one Unix SOCK_SEQPACKET connection to the daemon's socket:
// /run/concord/groups.sock for the default cluster context, and
// /run/concord/NAME/groups.sock for context NAME. The daemon reads the
// peer's pid and uid from SO_PEERCRED when it accepts; whether that uid
// may connect, and which groups it may join, is the configuration's
// (root only by default). Each packet holds one or more records back to
// back, at most MaxPacket bytes; a record never spans two packets. Either
// side may batch records into one packet, and must accept batched packets.
//
// # Record
//
// All integers are little-endian.
//
//	offset size
//	0      4    len: bytes in the record, header included (>= 12)
//	4      2    type (Type)
//	6      2    flags: 0 (a receiver rejects other values)
//	8      4    tag: the request's number, chosen by the client; replies
//	            and send failures carry it back; 0 in events
//	12     ...  body, by type (below)
//
// Body fields, in the order listed:
//
//	u8, u16, u32, u64    little-endian integers
//	str                  u16 length, then that many bytes (UTF-8, no NUL)
//	bytes                u32 length, then that many bytes
//	member               node u16, incarnation u64, client u32, pid u32,
//	                     uid u32 (22 bytes)
//	view                 node view seq u64, node view coordinator u16,
//	                     change count n u32, branch u64 (22 bytes)
//	msgid                node u16, incarnation u64, seq u64 (18 bytes)
//	list of X            u32 count, then the items
//
// A body must be exactly as long as its fields: a record with bytes left
// over, or too few, is malformed. Group and barrier names are 1 to
// MaxName bytes; a payload is at most MaxPayload bytes.
//
// # Requests (client to daemon)
//
//	1  hello      u16 version, str client name (0..64 bytes, for logs)
//	2  join       str group
//	3  leave      str group
//	4  send       str group, u8 order (0 agreed, 1 safe), bytes payload
//	5  send-to    str group, member to, bytes payload (1-1, in the group's order)
//	6  barrier    str group, str barrier name
//	7  tx-begin   (empty)
//	8  tx-add     str group, bytes payload
//	9  tx-commit  u8 order
//	10 groups     (empty): list the cluster's groups
//	11 members    str group: list a group's current members
//	12 bye        (empty): the client is closing the session; its members
//	              leave with kind closed. A session that ends without bye
//	              leaves with kind died if its process is ending or gone,
//	              else closed. No answer.
//
// The first record of a session must be hello; the daemon answers welcome
// (or reply with code Version and closes). Every other request but send,
// send-to, tx-commit and bye is answered by a reply with its tag. Join
// is answered once the join is applied, right after the view that shows
// the client joined, so a client is a member when its join returns;
// leave likewise once it has left (groups by a
// group-list, members by a member-list, or a reply on failure). Send,
// send-to and tx-commit are answered only when they fail: a send-failed
// with their tag, at once (not a member, too large, would block) or later
// (refused at its point of the total order, e.g. the sender had left the
// group by then). Requests are carried out in the order they arrive.
//
// # Flow control
//
// Welcome gives a window W: the client may have at most W sends (send,
// send-to, tx-commit) not yet completed. The daemon completes them in the
// order they were sent and returns credit records saying how many more
// completed; a send-failed for a send always comes before the credit that
// counts it. A client with no credit left waits for credit (the socket
// becomes readable): this is the would-block of the client libraries.
// A send beyond the window fails at once with code WouldBlock. Events the
// client has not read are bounded by the welcome's max queue (in events);
// past it the daemon removes the client from all its groups, which every
// member sees as a view change of kind removed with the reason, and the
// session stays open with no groups.
//
// # Events and answers (daemon to client)
//
//	64 welcome      u16 version, member self (this session as a member),
//	                u32 window, u32 max payload, u32 max queue, str cluster name
//	65 reply        u16 code, str text (empty on success)
//	66 view         str group, view id, list of member (the new view, sorted
//	                by node, incarnation, client), list of change
//	                (member, u8 kind, str reason)
//	67 message      str group, view id, member from, u8 order, u8 direct
//	                (1: sent 1-1 to this client), msgid, bytes payload
//	68 tx           member from, u8 order, u64 transaction number, msgid,
//	                list of part (str group, bytes payload): this client's
//	                share of a transaction, delivered whole
//	69 barrier-done str group, str barrier, u8 failed, str reason (when
//	                failed), list of member (released together)
//	70 send-failed  u16 code, msgid (zero before ordering), str reason
//	71 credit       u32 count of sends completed
//	72 group-list   list of (str group, view id, u32 member count)
//	73 member-list  str group, view id, list of member
//
// Change kinds: 1 joined, 2 left, 3 closed (session closed), 4 died
// (process died), 5 removed (by the daemon; reason says why), 6 lost
// (with its node), 7 merged (came in with its node at a merge).
//
// Every member of a group sees the group's views, messages, transactions
// and barrier outcomes in one order, identical on every node; members that
// pass together from one view to the next delivered the same messages in
// between (see lib/core/groups for the guarantees and how they are kept).
//
// # Versions
//
// A later version adds record types, or fields at the end of a body only
// when hello negotiates them; version 1 readers reject what they do not
// know. The daemon answers hello with the highest version both speak.
package groupwire
