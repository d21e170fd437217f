// Package frame is Concord's own wire protocol, in one place: the frame
// that carries every message between nodes (sealed and opened here), the
// frame kinds, the fragments of messages too large for one frame, and the
// notices. The payloads of membership and config-store messages are the
// encodings of their owners (lib/core/membership, lib/store/confstore);
// this package carries them without looking inside.
//
// # Frame
//
// A versioned header, then the payload encrypted and authenticated with
// XChaCha20-Poly1305, with per-sender replay protection. All integers are
// big-endian; offsets are in bytes.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-------------------------------+---------------+---------------+
//	|         magic "CC"            |  version = 1  |     kind      |  0
//	+-------------------------------+---------------+---------------+
//	|                          cluster id                           |  4
//	+-------------------------------+---------------+---------------+
//	|      sender node number       |  link index   |     flags     |  8
//	+-------------------------------+---------------+---------------+
//	|                                                               | 12
//	+                      sender incarnation                       +
//	|                                                               |
//	+---------------------------------------------------------------+
//	|                                                               | 20
//	+                        sequence number                        +
//	|                                                               |
//	+---------------------------------------------------------------+
//	|                 ciphertext of payload (0..MaxPayload)     ... | 28
//	+---------------------------------------------------------------+
//	|                 Poly1305 tag (16 bytes)                   ... |
//	+---------------------------------------------------------------+
//
// Flags: bit 0 is FlagAllLinks (the sender misses a peer on some link and
// asks for heartbeats on every link); the other bits are 0, and a frame
// with any of them set is rejected (ErrFlags). Flags are authenticated.
//
// The nonce is incarnation(8) || sequence(8) || sender(2) || zeros(6); it
// never repeats because a daemon's incarnation strictly grows per start and
// the sequence grows per frame. The associated data is the 28-byte header
// without the link index byte, so the one sealed frame can be sent on every
// link with only that byte patched (SetLink); the receiver learns the link
// and drops the later copies as replays. The AEAD key is
// HKDF-SHA256(cluster key, salt = cluster id, info = "concord frame v1").
//
// # Kinds
//
//	1 KindMembership      a membership message
//	2 KindConfig          a fragment of a config-store (Raft) message
//	3 KindProbe           a Probe
//	4 KindMembershipFrag  a fragment of a membership message
//	5 KindNotMember       a NotMember notice
//	6 KindStateLost       a StateLost notice
//	7 KindEcho            an Echo request or reply
//	8 KindJoinRequest     a JoinRequest, from sender 0 (a node not yet a member)
//	9 KindJoinConfig      a fragment of a JoinConfig
//	10 KindHeartbeat      a membership heartbeat (held by the links until the receiver's tick)
//
// # Fragment (payload of KindConfig, KindMembershipFrag and KindJoinConfig)
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------------------------------------------------------+
//	|                          message id                           |  0
//	+---------------+---------------+-------------------------------+
//	|     index     |     count     |  chunk (0..MaxPayload-6) ...  |  4
//	+---------------+---------------+-------------------------------+
//
// count is 1..64, index 0..count-1. The message is the chunks in index
// order.
//
// # Probe (payload of KindProbe)
//
//	+---------------+
//	|   has state   |  0: 0 no replicated state here, 1 replicated state here
//	+---------------+
//
// # NotMember (payload of KindNotMember)
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-------------------------------+-------------------------------+
//	|  node number (the receiver)   |                               |  0
//	+-------------------------------+                               +
//	|         index of the sender's configuration (8 bytes)         |  4
//	+                               +-------------------------------+
//	|                               |                                  8
//	+-------------------------------+
//
// # StateLost (payload of KindStateLost)
//
//	+---------------+
//	|  version = 0  |  0
//	+---------------+
//
// # Echo (payload of KindEcho)
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------+-----------------------------------------------+
//	|     type      |                                               |  0
//	+---------------+                                               +
//	|            stamp (the requester's clock, 8 bytes)             |  4
//	+               +-----------------------------------------------+
//	|               |                                                  8
//	+---------------+
//
// type is 0 for a request, 1 for a reply. A request goes to one peer's
// address on one link; the peer answers at once with a reply carrying the
// same stamp, to the request's source address on the link it came in on.
// The stamp means something only to the requester (its monotonic clock),
// which takes the round-trip time as its clock minus the stamp.
//
// # JoinRequest (payload of KindJoinRequest)
//
// Sent by a node that has the cluster key but no configuration, as sender
// 0 with a fresh incarnation, to the cluster's multicast group on every
// link. name is 1..64 bytes of A-Z a-z 0-9 _ . - (n is its length).
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------+---------------+-------------------------------+
//	|  version = 0  |       n       |                               |  0
//	+---------------+---------------+                               +
//	|                    request id (8 bytes)                       |  4
//	+                               +-------------------------------+
//	|                               |       name (n bytes) ...      |  8
//	+-------------------------------+-------------------------------+
//
// # JoinConfig (the message that KindJoinConfig fragments carry)
//
// A member's answer, to the asker's MAC on the link the request came in
// on: the request id it answers, the replicated store's applied index
// (never 0), and the configuration as JSON (lib/api/config), not empty.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------+-----------------------------------------------+
//	|  version = 0  |                                               |  0
//	+---------------+                                               +
//	|                    request id (8 bytes)                       |  4
//	+               +-----------------------------------------------+
//	|               |                                               |  8
//	+---------------+                                               +
//	|               configuration index (8 bytes)                   | 12
//	+               +-----------------------------------------------+
//	|               |    configuration JSON (1.. bytes) ...         | 16
//	+---------------+-----------------------------------------------+
package frame
