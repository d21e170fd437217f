// Package membership is the pure protocol core of concord-noded: liveness,
// agreed membership views and totally ordered group messaging with virtual
// synchrony, driven by Tick and Step and drained with Ready and Advance.
//
// Like etcd raft's RawNode it has no sockets, clocks, goroutines or locks:
// time is ticks, input is Step, output is the Ready batch (messages to send,
// To == 0 meaning all peers; events to apply in order).
//
// # Liveness
//
// Every HeartbeatTicks a node multicasts a heartbeat with its view, the
// round it follows, its alive set and how much of the view's order it
// received. Any message from a peer feeds the Detector (default: suspect
// after SuspectTicks of silence).
//
// # Views
//
// A node's target set is itself plus the peers that are alive and have not
// announced a leave. The lowest node of its own target set is the
// coordinator; when the target differs from the view, or a member reports
// another view or restarted, it runs a transition round:
//
//	coordinator                    members (coordinator included)
//	  Propose(round, members)  -->  freeze: stop delivering and sequencing
//	                           <--  Flush(old view, received, stable)
//	  per old view: cut = most received by a survivor,
//	  stable = most known stable, holder = who has the cut
//	  Sync(cuts)               -->  fetch missing messages from the holder
//	                           <--  Commit(done, own groups)
//	  Install(view, cuts, groups) --> deliver the old view up to its cut,
//	                                  then install the new view
//
// A member silent for TransitionTicks, or one the detector suspects or that
// restarts during the round, restarts the round (same Seq, next Attempt)
// without it, so simultaneous or cascading failures end in one new view. The
// new view's Seq is above every Seq the coordinator has seen (and
// Config.MinSeq); ViewID is (Seq, coordinator). Rounds compete by higher Seq,
// then lower coordinator; a member refuses a round not above its view.
// Partitions each form their own view and merge when they heal. A node that
// hears a member of its view in a newer view without it (it was frozen)
// leaves for a singleton view and rejoins through a new one. A lost Install
// is resent when the member's heartbeat shows it still waits for it.
//
// # Ordered messaging
//
// The view's coordinator is the sequencer. Senders queue messages (bounded,
// ErrQueueFull) and send DATA to it; it numbers them per view, FIFO per
// sender, and multicasts them. Members NACK gaps (and the tail, learnt from
// the sequencer's heartbeat) and acknowledge what they received; a message
// is delivered once every member received it (it is stable), and dropped
// once delivered and stable. Deliveries are deduplicated by (origin,
// incarnation, msgid). Group joins and leaves travel the same order, so all
// members agree where a group's membership changes.
//
// Virtual synchrony: at a transition the survivors of an old view deliver
// every message up to the highest stable point any of them knew (someone
// may have delivered those) and, beyond it up to the cut, only messages from
// origins that survive with them. A sender elsewhere resends what it did not
// see delivered, so delivering its message here too could order it twice.
// While frozen a member acknowledges no more than its Flush reported, so a
// message cannot become stable behind the cut. Queued messages not delivered
// in the old view are resent in the new one: no loss for live senders.
//
// Send is reliable FIFO point to point, retransmitted until acknowledged and
// dropped when the peer leaves the view.
//
// # Wire format
//
// Message.MarshalBinary: version byte 1, type byte, from and to (2 bytes
// each), the sender's incarnation (uvarint), then the type's fields (see
// Message). Decoders ignore trailing bytes so later versions may append.
package membership
