/* groupbench backend over Corosync's CPG (libcpg, Debian's libcpg-dev). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <corosync/cpg.h>

#include "backend.h"

struct gb_backend {
	cpg_handle_t h;
	struct cpg_name name;
	struct gb_events ev;
	int fd;
	int joined;
};

const char *gb_name(void) { return "cpg"; }

static struct gb_backend *backend_of(cpg_handle_t h)
{
	void *ctx = NULL;
	if (cpg_context_get(h, &ctx) != CS_OK)
		return NULL;
	return ctx;
}

static void on_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	(void)group, (void)nodeid, (void)pid;
	struct gb_backend *b = backend_of(h);
	if (b)
		b->ev.deliver(b->ev.arg, msg, len);
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *group, const struct cpg_address *members, size_t n,
		       const struct cpg_address *left, size_t nleft, const struct cpg_address *joined, size_t njoined)
{
	(void)group, (void)members, (void)left, (void)nleft, (void)joined, (void)njoined;
	struct gb_backend *b = backend_of(h);
	if (b)
		b->ev.view(b->ev.arg, (unsigned)n);
}

/* retry runs a libcpg call that answered CS_ERR_TRY_AGAIN (corosync busy
 * or still syncing) again, for up to about 10 s. */
#define RETRY(call)                                                                  \
	({                                                                           \
		cs_error_t e_;                                                       \
		for (int t_ = 0; (e_ = (call)) == CS_ERR_TRY_AGAIN && t_ < 10000; t_++) \
			nanosleep(&(struct timespec){0, 1000000}, NULL);             \
		e_;                                                                  \
	})

struct gb_backend *gb_open(const char *group, const struct gb_events *ev, char *err, size_t errlen)
{
	size_t l = strlen(group);
	if (l == 0 || l > CPG_MAX_NAME_LENGTH) {
		snprintf(err, errlen, "cpg: group name %s has %zu bytes, want 1..%d", group, l, CPG_MAX_NAME_LENGTH);
		return NULL;
	}
	struct gb_backend *b = calloc(1, sizeof *b);
	if (!b) {
		snprintf(err, errlen, "cpg: %s", strerror(errno));
		return NULL;
	}
	b->ev = *ev;
	b->name.length = (uint32_t)l;
	memcpy(b->name.value, group, l);
	cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = on_deliver,
		.cpg_confchg_fn = on_confchg,
	};
	cs_error_t e = RETRY(cpg_model_initialize(&b->h, CPG_MODEL_V1, (cpg_model_data_t *)&model, b));
	if (e != CS_OK) {
		snprintf(err, errlen, "cpg_model_initialize: cs_error %d (is corosync running?)", e);
		free(b);
		return NULL;
	}
	if ((e = cpg_fd_get(b->h, &b->fd)) != CS_OK) {
		snprintf(err, errlen, "cpg_fd_get: cs_error %d", e);
		goto fail;
	}
	if ((e = RETRY(cpg_join(b->h, &b->name))) != CS_OK) {
		snprintf(err, errlen, "cpg_join %s: cs_error %d", group, e);
		goto fail;
	}
	b->joined = 1;
	return b;
fail:
	cpg_finalize(b->h);
	free(b);
	return NULL;
}

int gb_fd(struct gb_backend *b) { return b->fd; }

int gb_dispatch(struct gb_backend *b, char *err, size_t errlen)
{
	cs_error_t e = cpg_dispatch(b->h, CS_DISPATCH_ALL);
	/* TRY_AGAIN here means nothing (more) was ready. */
	if (e == CS_OK || e == CS_ERR_TRY_AGAIN)
		return GB_OK;
	snprintf(err, errlen, "cpg_dispatch: cs_error %d", e);
	return GB_ERROR;
}

int gb_send(struct gb_backend *b, const void *msg, size_t len, char *err, size_t errlen)
{
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	cs_error_t e = cpg_mcast_joined(b->h, CPG_TYPE_AGREED, &iov, 1);
	if (e == CS_OK)
		return GB_OK;
	if (e == CS_ERR_TRY_AGAIN)
		return GB_AGAIN;
	snprintf(err, errlen, "cpg_mcast_joined: cs_error %d", e);
	return GB_ERROR;
}

void gb_close(struct gb_backend *b)
{
	if (b->joined)
		RETRY(cpg_leave(b->h, &b->name));
	cpg_finalize(b->h);
	free(b);
}
