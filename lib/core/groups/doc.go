// Package groups is the pure protocol core of process groups: members are
// processes (node, node incarnation, local client id, pid, uid), not
// nodes. Each node's daemon runs one Core on top of membership's total
// order. Like membership it has no sockets, clocks, goroutines or locks:
// input is method calls, output is the Ready batch.
//
// # Driving it
//
// The daemon calls, for its local clients: Open, Join, Leave, Send (agreed
// or safe), SendTo (1-1), EnterBarrier, TxBegin/TxAdd/TxCommit, Consumed
// (the client read n events) and Close (closed, or died). From membership
// it calls NodeView for every view membership installs (the Event with
// View set, passing Event.Survivors) and Deliver for every delivery of a
// message this layer broadcast, with stable = !Delivery.Unstable
// (membership marks what it delivers beyond the old view's stable point
// when it finishes a view; see "Agreed and safe" below). After each call it takes Ready: Broadcast goes to membership.Broadcast
// on group "" in order (one FIFO stream per node; the messages carry
// their own group), Events go to the local clients, each in order.
//
// # Messages this layer broadcasts
//
//	join, leave      a member joins or leaves a group
//	gone             a member leaves every group: session closed, process
//	                 died, or removed because its event queue passed MaxQueue
//	data             a message to a group, agreed or safe
//	direct           a message to one member of a group, in the group's order
//	barrier          a member enters a barrier of a group
//	tx               a transaction: messages to several groups in one message,
//	                 so it is delivered whole at one point of the order or not
//	                 at all; refused whole (EvSendFailed to the sender) if the
//	                 sender is not a member of every group at that point
//	sync             the state exchange of a node view: the sender's own
//	                 members of each group and their open barrier entries
//
// Everything is applied at its point of membership's total order, so every
// node that delivers the same stretch of the order makes the same group
// views, deliveries, barrier outcomes and refusals. Msg.MarshalBinary is
// the payload given to membership. Membership bounds a payload
// (Config.MaxPayload, default 1200): large messages, transactions and the
// syncs of busy nodes need a larger bound or fragmenting.
//
// # Node views and the state exchange
//
// A node is the authority on its own members only. When membership
// installs a node view, NodeView
//
//  1. applies what was ordered in the view being left and had to wait;
//  2. gives every group a new view without the members of nodes that do
//     not pass with this node from its previous node view (membership's
//     Event.Survivors): nodes outside the new view ("left the cluster
//     view") and nodes that enter it from another view ("comes from another
//     cluster view"; they may lack what this node delivered last, and the
//     exchange below brings their members back as Merged). These leave
//     with kind Lost ("lost with its node") and fail their groups' open
//     barriers. Every group gets a new view here even when nobody is lost;
//     with Survivors no test needs that any more, it only keeps a group
//     view from spanning two node views;
//  3. applies what waited behind an unstable safe message (below);
//  4. broadcasts a sync with its own members.
//
// Until the sync of every node of the view is delivered, the view is not
// settled and other messages are held. When the last sync arrives, every
// node rebuilds each group as the union of the syncs, so all agree even
// after a merge: members only the other side knew come in with kind Merged,
// members a node no longer lists (it restarted) leave with kind Lost. Then
// the held messages are applied. A sync of an older view (membership
// resends undelivered messages in the next view) is ignored. If another
// node view comes before the syncs complete, the held messages are applied
// at step 1 of that view, in order, against the state as it stands.
//
// A restarted daemon is a new incarnation: its members are new members,
// and its old ones are lost when its sync (which no longer lists them)
// completes the exchange.
//
// # Group view ids
//
// In a settled node view V, every group's view after the exchange is
// (V, 0), and each change adds one: (V, 1), (V, 2)... These are identical
// on every node of V. A boot view (Seq 0, one node) has the same ViewID in
// every incarnation of its node, so its group views carry a Branch hashed
// from the node and its incarnation. Views made while not settled (losses at a node view,
// changes applied before the exchange completes, or after an unstable
// delivery) can differ between sides of a partition, so their id also has
// a Branch: a hash of the previous id and the change. Equal ids mean equal
// member lists everywhere.
//
// # Agreed and safe
//
// Membership delivers a message only once every node of its view received
// it (it is stable), except when it finishes a view at a transition: then
// the survivors also deliver messages beyond the stable point from origins
// that survive with them; the nodes that left may not hold those. So an
// agreed message is delivered at its place, even then, in the group view
// of the moment. A safe message delivered unstable, and everything after
// it, waits for the next node view: it is delivered after step 2, when the
// group view holds only members of nodes that survive, all of which hold
// it (they fetched up to the cut). Within a view membership delivers
// only stable messages, so there agreed and safe are delivered alike;
// they differ only at transitions, as above. (A later fast path that
// delivers agreed messages before they are stable would widen the gap.)
//
// # Virtual synchrony
//
// Members that pass together from one group view to the next delivered
// the same messages in between: both views are made at the same points of
// the order on every node that has them, and membership gives the nodes
// that pass together from one node view to the next the same stretch of
// the order.
//
// # Barriers
//
// A barrier opens with its first entry. When every member of the current
// group view has entered, the members are released together, each with
// the same member list. A member leaving, closing, dying, being removed or
// being lost fails every open barrier of the group, with the reason, for
// the members that had entered; an entry ordered later starts a new
// barrier. Joins do not fail a barrier: the new member must enter too.
// Open barriers survive a merge: the syncs carry their entries.
//
// # Flow control
//
// A client may have MaxInFlight messages sent and not yet ordered back at
// its node; past that Send returns ErrWouldBlock and EvWritable follows
// when it drops below. Events a client has not consumed are counted; past
// MaxQueue the client is removed from all its groups through the order
// (gone, kind Removed, with the reason), so it and every other member see
// the same change at the same point. Events ordered before that point
// are still queued for it (virtual synchrony), so MaxQueue is a soft bound:
// the hard bound is MaxQueue plus what the order holds before the removal.
package groups
