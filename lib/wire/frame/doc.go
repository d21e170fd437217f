// Package frame seals and opens Concord's on-the-wire frame: a versioned
// header, then the payload encrypted and authenticated with
// XChaCha20-Poly1305, with per-sender replay protection.
//
// Layout (all integers big-endian, offsets in bytes):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-------------------------------+---------------+---------------+
//	|         magic "CC"            |  version = 1  |     kind      |  0
//	+-------------------------------+---------------+---------------+
//	|                          cluster id                           |  4
//	+-------------------------------+---------------+---------------+
//	|      sender node number       |  link index   |  flags = 0    |  8
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
// The nonce is incarnation(8) || sequence(8) || sender(2) || zeros(6); it
// never repeats because a daemon's incarnation strictly grows per start and
// the sequence grows per frame. The associated data is the 28-byte header
// without the link index byte, so the one sealed frame can be sent on every
// link with only that byte patched (SetLink); the receiver learns the link
// and drops the later copies as replays. The AEAD key is
// HKDF-SHA256(cluster key, salt = cluster id, info = "concord frame v1").
package frame
