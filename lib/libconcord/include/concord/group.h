/*
 * concord/group.h: Concord's process groups, the C client library.
 *
 * A program opens a session with the local concord-noded, joins named
 * groups and receives, in one order agreed by every node, each group's
 * views (who joined, left, died...) and messages. See concord_group(3).
 *
 * Every function returns 0 (or a count) on success and a negative errno
 * on failure. A handle may be used from several threads; callbacks run
 * from concord_group_dispatch() in the thread that called it, without the
 * handle's lock held, so they may call any function but
 * concord_group_close() on the same handle.
 */
#ifndef CONCORD_GROUP_H
#define CONCORD_GROUP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The protocol version this library speaks, and its limits. */
#define CONCORD_GROUP_PROTOCOL 1
#define CONCORD_GROUP_MAX_NAME 255          /* bytes of a group or barrier name */
#define CONCORD_GROUP_MAX_PAYLOAD (64 << 10) /* bytes of one payload, at most */

typedef struct concord_group concord_group_t;

/* A member of a group: one session of one process on one node. */
struct concord_member {
	uint16_t node;
	uint64_t incarnation; /* of the node's daemon */
	uint32_t client;      /* the session's number on that node */
	uint32_t pid;
	uint32_t uid;
};

/* A group view's name. */
struct concord_view_id {
	uint64_t seq;         /* the node view's sequence number */
	uint16_t coordinator; /* the node view's coordinator */
	uint32_t changes;     /* group changes in that node view */
	uint64_t branch;      /* nonzero in a partition's branch */
};

/* A message's cluster-wide name. */
struct concord_msg_id {
	uint16_t node;
	uint64_t incarnation;
	uint64_t seq;
};

enum concord_order {
	CONCORD_ORDER_AGREED = 0, /* total order */
	CONCORD_ORDER_SAFE = 1    /* total order, once every member has it */
};

enum concord_change_kind {
	CONCORD_CHANGE_JOINED = 1,
	CONCORD_CHANGE_LEFT = 2,
	CONCORD_CHANGE_CLOSED = 3,  /* its session closed */
	CONCORD_CHANGE_DIED = 4,    /* its process died */
	CONCORD_CHANGE_REMOVED = 5, /* by the daemon; the reason says why */
	CONCORD_CHANGE_LOST = 6,    /* with its node */
	CONCORD_CHANGE_MERGED = 7   /* came in with its node at a merge */
};

struct concord_change {
	struct concord_member member;
	int kind;           /* enum concord_change_kind */
	const char *reason; /* "" when none */
};

/* Event structures: valid only during the callback. */
struct concord_view {
	const char *group;
	struct concord_view_id id;
	const struct concord_member *members; /* sorted by node, incarnation, client */
	size_t n_members;
	const struct concord_change *changes;
	size_t n_changes;
};

struct concord_message {
	const char *group;
	struct concord_view_id view;
	struct concord_member from;
	int order;  /* enum concord_order */
	int direct; /* 1: sent 1-1 to this session */
	struct concord_msg_id id;
	const void *payload;
	size_t len;
};

struct concord_tx_part {
	const char *group;
	const void *payload;
	size_t len;
};

struct concord_tx {
	struct concord_member from;
	int order;
	uint64_t number;
	struct concord_msg_id id;
	const struct concord_tx_part *parts; /* this session's share, whole */
	size_t n_parts;
};

struct concord_barrier_done {
	const char *group;
	const char *barrier;
	int failed;
	const char *reason; /* why it failed; "" when released */
	const struct concord_member *released;
	size_t n_released;
};

struct concord_send_failure {
	uint32_t tag;  /* as the send, send_to or tx_commit returned it */
	int error;     /* negative errno, as concord_group(3) lists */
	struct concord_msg_id id; /* zero when it failed before ordering */
	const char *reason;
};

/* Any callback may be NULL: those events are then dropped. */
struct concord_group_callbacks {
	void (*view)(concord_group_t *h, const struct concord_view *v, void *userdata);
	void (*message)(concord_group_t *h, const struct concord_message *m, void *userdata);
	void (*tx)(concord_group_t *h, const struct concord_tx *tx, void *userdata);
	void (*barrier_done)(concord_group_t *h, const struct concord_barrier_done *b, void *userdata);
	void (*send_failed)(concord_group_t *h, const struct concord_send_failure *f, void *userdata);
};

/* What the daemon said when the session opened. */
struct concord_group_session {
	struct concord_member self;
	uint32_t window;      /* sends that may be in flight */
	uint32_t max_payload; /* bytes */
	uint32_t max_queue;   /* events unread before removal */
	char cluster[CONCORD_GROUP_MAX_NAME + 1];
};

/* One line of concord_group_list(). */
struct concord_group_info {
	const char *group;
	struct concord_view_id view;
	uint32_t members;
};

/* Sessions: concord_group_open(3). */
int concord_group_open(concord_group_t **h, const char *context,
                       const struct concord_group_callbacks *cb, void *userdata);
int concord_group_close(concord_group_t *h);
int concord_group_fd(concord_group_t *h);
int concord_group_session(concord_group_t *h, struct concord_group_session *out);
void *concord_group_userdata(concord_group_t *h);

#define CONCORD_DISPATCH_ONE 1      /* deliver at most one event */
#define CONCORD_DISPATCH_ALL 2      /* deliver every event available now */
#define CONCORD_DISPATCH_BLOCKING 4 /* or-ed in: first wait for one */
int concord_group_dispatch(concord_group_t *h, int flags);

/* Membership: concord_group_join(3). */
int concord_group_join(concord_group_t *h, const char *group);
int concord_group_leave(concord_group_t *h, const char *group);

/* Messages: concord_group_send(3). */
#define CONCORD_SEND_BLOCK 1 /* wait for credit rather than fail with -EAGAIN */
int concord_group_send(concord_group_t *h, const char *group, int order,
                       const void *payload, size_t len, int flags, uint32_t *tag);
int concord_group_send_to(concord_group_t *h, const char *group, const struct concord_member *to,
                          const void *payload, size_t len, int flags, uint32_t *tag);

/* Barriers: concord_group_barrier(3). */
int concord_group_barrier(concord_group_t *h, const char *group, const char *barrier);

/* Transactions: concord_group_tx_begin(3). */
int concord_group_tx_begin(concord_group_t *h);
int concord_group_tx_add(concord_group_t *h, const char *group, const void *payload, size_t len);
int concord_group_tx_commit(concord_group_t *h, int order, int flags, uint32_t *tag);

/* Listings: concord_group_list(3). Free the arrays with free(3). */
int concord_group_list(concord_group_t *h, struct concord_group_info **groups, size_t *n);
int concord_group_members(concord_group_t *h, const char *group, struct concord_view_id *view,
                          struct concord_member **members, size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* CONCORD_GROUP_H */
