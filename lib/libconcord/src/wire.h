/*
 * The process-group wire protocol, version 1, as lib/api/groupwire/doc.go
 * specifies it: the records a client writes and the decoding, with every
 * check the Go decoder makes, of what the daemon sends.
 */
#ifndef CONCORD_WIRE_H
#define CONCORD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "concord/group.h"

enum {
	T_HELLO = 1,
	T_JOIN,
	T_LEAVE,
	T_SEND,
	T_SEND_TO,
	T_BARRIER,
	T_TX_BEGIN,
	T_TX_ADD,
	T_TX_COMMIT,
	T_GROUPS,
	T_MEMBERS,
	T_BYE,

	T_WELCOME = 64,
	T_REPLY,
	T_VIEW,
	T_MESSAGE,
	T_TX,
	T_BARRIER_DONE,
	T_SEND_FAILED,
	T_CREDIT,
	T_GROUP_LIST,
	T_MEMBER_LIST,
};

#define WIRE_HEADER 12
#define WIRE_MAX_PACKET (256 << 10)
#define WIRE_MAX_TEXT 1024
#define WIRE_MAX_CLIENT_NAME 64
#define WIRE_CODES 12 /* codes 0 (ok) to 11 (not found) */

/*
 * A decoded record from the daemon. Strings are NUL-terminated and, like
 * the arrays and payloads, live in the arena right after the struct, so a
 * record is one allocation.
 */
struct rec {
	struct rec *next;
	uint16_t type;
	uint32_t tag;

	uint16_t version;             /* welcome */
	struct concord_member self;   /* welcome */
	uint32_t window, max_payload, max_queue;
	const char *name;             /* welcome: cluster name */

	uint16_t code;                /* reply, send-failed */
	const char *text;             /* reply text, send-failed and barrier-done reason */

	const char *group, *barrier;
	struct concord_view_id view;
	struct concord_member from;
	int order, direct, failed;
	struct concord_msg_id id;
	uint64_t tx;
	const void *payload;
	size_t len;
	uint32_t count;               /* credit */

	struct concord_member *members;
	size_t n_members;
	struct concord_change *changes;
	size_t n_changes;
	struct concord_tx_part *parts;
	size_t n_parts;
	struct concord_group_info *groups;
	size_t n_groups;
};

/*
 * wire_decode decodes the record of len bytes at p (len as its header
 * says, already checked against the packet). With arena NULL it only
 * checks, and sets *need to the arena bytes a second call needs; with an
 * arena of that size it fills r. Returns 0, or -1 when the record is
 * malformed.
 */
int wire_decode(const uint8_t *p, size_t len, struct rec *r, char *arena, size_t *need);

/* wire_valid_utf8 reports whether s[0..n) is UTF-8 as Go's utf8.Valid has it. */
int wire_valid_utf8(const uint8_t *s, size_t n);

/* Encoding: into a buffer the caller sized; payloads travel beside it. */
struct enc {
	uint8_t *b;
	size_t n;
};

void enc_header(struct enc *e, uint16_t type, uint32_t tag);
void enc_u8(struct enc *e, uint8_t v);
void enc_u16(struct enc *e, uint16_t v);
void enc_u32(struct enc *e, uint32_t v);
void enc_u64(struct enc *e, uint64_t v);
void enc_str(struct enc *e, const char *s, size_t n);
void enc_member(struct enc *e, const struct concord_member *m);
/* enc_finish writes the record's length: the encoded bytes plus extra
 * (a payload sent beside the buffer). */
void enc_finish(struct enc *e, size_t extra);

#endif
