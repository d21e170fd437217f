/* groupbench backend over Concord's process groups (libconcord). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <concord/group.h>

#include "backend.h"

struct gb_backend {
	concord_group_t *h;
	char group[CONCORD_GROUP_MAX_NAME + 1];
	struct gb_events ev;
	/* A send the daemon refused after taking it: the run is void, and
	 * the next gb_dispatch says why. */
	char failed[300];
};

const char *gb_name(void) { return "concord"; }

static void on_view(concord_group_t *h, const struct concord_view *v, void *ud)
{
	(void)h;
	struct gb_backend *b = ud;
	if (!strcmp(v->group, b->group))
		b->ev.view(b->ev.arg, (unsigned)v->n_members);
}

static void on_message(concord_group_t *h, const struct concord_message *m, void *ud)
{
	(void)h;
	struct gb_backend *b = ud;
	/* Only the benchmark's group and its multicasts: anything else would
	 * be a library or daemon bug, which the sequence check then shows. */
	if (!strcmp(m->group, b->group) && !m->direct)
		b->ev.deliver(b->ev.arg, m->payload, m->len);
}

static void on_send_failed(concord_group_t *h, const struct concord_send_failure *f, void *ud)
{
	(void)h;
	struct gb_backend *b = ud;
	if (!b->failed[0])
		snprintf(b->failed, sizeof b->failed, "concord: send %u failed: %s (%s)", f->tag, strerror(-f->error),
			 f->reason ? f->reason : "");
}

struct gb_backend *gb_open(const char *group, const struct gb_events *ev, char *err, size_t errlen)
{
	size_t l = strlen(group);
	if (l == 0 || l > CONCORD_GROUP_MAX_NAME) {
		snprintf(err, errlen, "concord: group name %s has %zu bytes, want 1..%d", group, l, CONCORD_GROUP_MAX_NAME);
		return NULL;
	}
	struct gb_backend *b = calloc(1, sizeof *b);
	if (!b) {
		snprintf(err, errlen, "concord: %s", strerror(errno));
		return NULL;
	}
	b->ev = *ev;
	memcpy(b->group, group, l + 1);
	struct concord_group_callbacks cb = {.view = on_view, .message = on_message, .send_failed = on_send_failed};
	int e = concord_group_open(&b->h, NULL, &cb, b);
	if (e < 0) {
		snprintf(err, errlen, "concord_group_open: %s (is concord-noded running?)", strerror(-e));
		free(b);
		return NULL;
	}
	if ((e = concord_group_join(b->h, group)) < 0) {
		snprintf(err, errlen, "concord_group_join %s: %s", group, strerror(-e));
		concord_group_close(b->h);
		free(b);
		return NULL;
	}
	return b;
}

int gb_fd(struct gb_backend *b) { return concord_group_fd(b->h); }

int gb_dispatch(struct gb_backend *b, char *err, size_t errlen)
{
	int e = concord_group_dispatch(b->h, CONCORD_DISPATCH_ALL);
	if (e < 0) {
		snprintf(err, errlen, "concord_group_dispatch: %s", strerror(-e));
		return GB_ERROR;
	}
	if (b->failed[0]) {
		snprintf(err, errlen, "%s", b->failed);
		return GB_ERROR;
	}
	return GB_OK;
}

int gb_send(struct gb_backend *b, const void *msg, size_t len, char *err, size_t errlen)
{
	uint32_t tag;
	int e = concord_group_send(b->h, b->group, CONCORD_ORDER_AGREED, msg, len, 0, &tag);
	if (e == 0)
		return GB_OK;
	if (e == -EAGAIN)
		return GB_AGAIN;
	snprintf(err, errlen, "concord_group_send: %s", strerror(-e));
	return GB_ERROR;
}

void gb_close(struct gb_backend *b)
{
	concord_group_leave(b->h, b->group);
	concord_group_close(b->h);
	free(b);
}
