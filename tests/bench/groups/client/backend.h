/*
 * The group backend that groupbench.c measures through: join one group,
 * multicast in agreed (total) order with a would-block answer, and a poll
 * fd whose readiness means "call gb_dispatch". A backend is one C file
 * defining these functions; the bench links groupbench.c with exactly one
 * of them (backend_cpg.c, backend_concord.c), so every system
 * is measured by the same driver code.
 */
#ifndef GROUPBENCH_BACKEND_H
#define GROUPBENCH_BACKEND_H

#include <stddef.h>

enum {
	GB_OK = 0,
	GB_AGAIN = 1,   /* would block: poll the fd, dispatch, then retry */
	GB_ERROR = -1,  /* the message in err says what failed */
};

struct gb_backend;

/* What the backend calls from gb_dispatch, with arg. */
struct gb_events {
	/* One message of the group, in the group's agreed order, including
	 * the member's own messages. msg is valid during the call only. */
	void (*deliver)(void *arg, const void *msg, size_t len);
	/* The group's membership changed; members is the new view's size. */
	void (*view)(void *arg, unsigned members);
	void *arg;
};

/* gb_name names the backend in the output line, e.g. "cpg". */
const char *gb_name(void);

/* gb_open connects to the local node's group service and joins group
 * (a NUL-terminated name). It returns NULL and fills err on failure. */
struct gb_backend *gb_open(const char *group, const struct gb_events *ev, char *err, size_t errlen);

/* gb_fd is readable when gb_dispatch has something to deliver. */
int gb_fd(struct gb_backend *b);

/* gb_dispatch runs the callbacks for what is ready now, without waiting
 * for more. GB_OK or GB_ERROR. */
int gb_dispatch(struct gb_backend *b, char *err, size_t errlen);

/* gb_send multicasts msg to the group in agreed order: GB_OK when
 * accepted, GB_AGAIN when the sender must wait, GB_ERROR otherwise. */
int gb_send(struct gb_backend *b, const void *msg, size_t len, char *err, size_t errlen);

/* gb_close leaves the group and disconnects. */
void gb_close(struct gb_backend *b);

#endif
