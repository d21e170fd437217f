/*
 * driver: libconcord under test, one command a line on stdin, one answer
 * (and the events a dispatch delivers) a line on stdout. libconcord_test.go
 * runs it against a fake daemon and checks both the wire and the output.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <concord/group.h>

static concord_group_t *h;
static int reenter; /* "reenter on": the message callback calls the library */
static long counting = -1; /* "drain": count messages rather than print them */
static long bg_want, bg_count; /* "bgdispatch": a thread dispatches, counting */
static int bg_rc;

static void *bg_dispatch(void *arg)
{
	(void)arg;
	while (bg_count < bg_want && bg_rc >= 0)
		bg_rc = concord_group_dispatch(h, CONCORD_DISPATCH_ALL | CONCORD_DISPATCH_BLOCKING);
	return NULL;
}

static void member(const struct concord_member *m)
{
	printf("%u/%" PRIu64 "/%u/%u/%u", (unsigned)m->node, m->incarnation, (unsigned)m->client, (unsigned)m->pid,
	       (unsigned)m->uid);
}

static void members(const struct concord_member *ms, size_t n)
{
	printf("[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			printf(",");
		member(&ms[i]);
	}
	printf("]");
}

static void view(const struct concord_view_id *v)
{
	printf("%" PRIu64 ".%u.%u.%" PRIu64, v->seq, (unsigned)v->coordinator, (unsigned)v->changes, v->branch);
}

static void msgid(const struct concord_msg_id *id)
{
	printf("%u/%" PRIu64 "/%" PRIu64, (unsigned)id->node, id->incarnation, id->seq);
}

static void hex(const void *p, size_t n)
{
	const unsigned char *b = p;
	if (!n)
		printf("-");
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}

static size_t unhex(const char *s, unsigned char *out)
{
	size_t n = 0;
	if (strcmp(s, "-") == 0)
		return 0;
	for (; s[0] && s[1]; s += 2)
		sscanf(s, "%2hhx", &out[n++]);
	return n;
}

static void on_view(concord_group_t *hh, const struct concord_view *v, void *u)
{
	(void)hh;
	(void)u;
	printf("view %s ", v->group);
	view(&v->id);
	printf(" ");
	members(v->members, v->n_members);
	printf(" [");
	for (size_t i = 0; i < v->n_changes; i++) {
		printf(i ? ",{" : "{");
		member(&v->changes[i].member);
		printf(" %d %s}", v->changes[i].kind, v->changes[i].reason);
	}
	printf("]\n");
}

static void on_message(concord_group_t *hh, const struct concord_message *m, void *u)
{
	(void)hh;
	(void)u;
	if (counting >= 0) {
		counting++;
		return;
	}
	if (bg_want) {
		bg_count++;
		return;
	}
	printf("message %s ", m->group);
	view(&m->view);
	printf(" ");
	member(&m->from);
	printf(" %d %d ", m->order, m->direct);
	msgid(&m->id);
	printf(" ");
	hex(m->payload, m->len);
	printf("\n");
	if (reenter) {
		/* A request that waits for its answer, then a send, from inside
		 * dispatch: the lock is not held. */
		struct concord_member *ms;
		size_t k;
		int rc = concord_group_members(hh, m->group, NULL, &ms, &k);
		if (rc == 0)
			free(ms);
		uint32_t tag = 0;
		int rc2 = concord_group_send(hh, m->group, m->order, m->payload, m->len, 0, &tag);
		printf("reentered %d %zu %d %u\n", rc, rc == 0 ? k : 0, rc2, (unsigned)tag);
	}
}

static void on_tx(concord_group_t *hh, const struct concord_tx *t, void *u)
{
	(void)hh;
	(void)u;
	printf("tx ");
	member(&t->from);
	printf(" %d %" PRIu64 " ", t->order, t->number);
	msgid(&t->id);
	printf(" [");
	for (size_t i = 0; i < t->n_parts; i++) {
		printf(i ? ",%s:" : "%s:", t->parts[i].group);
		hex(t->parts[i].payload, t->parts[i].len);
	}
	printf("]\n");
}

static void on_barrier(concord_group_t *hh, const struct concord_barrier_done *b, void *u)
{
	(void)hh;
	(void)u;
	printf("barrier %s %s %d {%s} ", b->group, b->barrier, b->failed, b->reason);
	members(b->released, b->n_released);
	printf("\n");
}

static void on_send_failed(concord_group_t *hh, const struct concord_send_failure *f, void *u)
{
	(void)hh;
	(void)u;
	printf("sendfailed %u %d ", (unsigned)f->tag, f->error);
	msgid(&f->id);
	printf(" {%s}\n", f->reason);
}

struct sender {
	int id, count;
	const char *group;
	int rc;
};

static void *send_loop(void *arg)
{
	struct sender *s = arg;
	for (int i = 0; i < s->count && s->rc == 0; i++) {
		char buf[32];
		int n = snprintf(buf, sizeof buf, "t%d-%06d", s->id, i);
		s->rc = concord_group_send(h, s->group, CONCORD_ORDER_AGREED, buf, (size_t)n, CONCORD_SEND_BLOCK, NULL);
	}
	return NULL;
}

int main(void)
{
	static unsigned char buf[1 << 20];
	char *line = NULL;
	size_t cap = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct concord_group_callbacks cb = {on_view, on_message, on_tx, on_barrier, on_send_failed};
	while (getline(&line, &cap, stdin) > 0) {
		char *a[10] = {0};
		int n = 0;
		for (char *t = strtok(line, " \n"); t && n < 10; t = strtok(NULL, " \n"))
			a[n++] = t;
		if (!n)
			continue;
		const char *c = a[0];
		int rc = 0;
		uint32_t tag = 0;
		if (!strcmp(c, "open")) {
			rc = concord_group_open(&h, a[1], &cb, NULL);
			printf("open %d", rc);
			if (rc == 0) {
				struct concord_group_session s;
				concord_group_session(h, &s);
				printf(" ");
				member(&s.self);
				printf(" %u %u %u %s", (unsigned)s.window, (unsigned)s.max_payload, (unsigned)s.max_queue, s.cluster);
			}
			printf("\n");
		} else if (!strcmp(c, "join"))
			printf("join %d\n", concord_group_join(h, a[1]));
		else if (!strcmp(c, "leave"))
			printf("leave %d\n", concord_group_leave(h, a[1]));
		else if (!strcmp(c, "send")) {
			int flags = n > 4 && !strcmp(a[4], "block") ? CONCORD_SEND_BLOCK : 0;
			size_t len = unhex(a[3], buf);
			rc = concord_group_send(h, a[1], atoi(a[2]), buf, len, flags, &tag);
			printf("send %d %u\n", rc, (unsigned)tag);
		} else if (!strcmp(c, "sendsize")) {
			rc = concord_group_send(h, a[1], 0, buf, (size_t)atol(a[2]), 0, &tag);
			printf("send %d\n", rc);
		} else if (!strcmp(c, "sendto")) {
			struct concord_member to;
			sscanf(a[2], "%hu/%" SCNu64 "/%u/%u/%u", &to.node, &to.incarnation, &to.client, &to.pid, &to.uid);
			size_t len = unhex(a[3], buf);
			rc = concord_group_send_to(h, a[1], &to, buf, len, 0, &tag);
			printf("sendto %d %u\n", rc, (unsigned)tag);
		} else if (!strcmp(c, "barrier"))
			printf("barrier %d\n", concord_group_barrier(h, a[1], a[2]));
		else if (!strcmp(c, "txbegin"))
			printf("txbegin %d\n", concord_group_tx_begin(h));
		else if (!strcmp(c, "txadd")) {
			size_t len = unhex(a[2], buf);
			printf("txadd %d\n", concord_group_tx_add(h, a[1], buf, len));
		} else if (!strcmp(c, "txcommit")) {
			rc = concord_group_tx_commit(h, atoi(a[1]), 0, &tag);
			printf("txcommit %d %u\n", rc, (unsigned)tag);
		} else if (!strcmp(c, "groups")) {
			struct concord_group_info *g;
			size_t k;
			rc = concord_group_list(h, &g, &k);
			printf("groups %d", rc);
			for (size_t i = 0; rc == 0 && i < k; i++) {
				printf(" %s:", g[i].group);
				view(&g[i].view);
				printf(":%u", (unsigned)g[i].members);
			}
			printf("\n");
			if (rc == 0)
				free(g);
		} else if (!strcmp(c, "members")) {
			struct concord_member *m;
			struct concord_view_id v = {0};
			size_t k;
			rc = concord_group_members(h, a[1], &v, &m, &k);
			printf("members %d ", rc);
			view(&v);
			printf(" ");
			if (rc == 0) {
				members(m, k);
				free(m);
			}
			printf("\n");
		} else if (!strcmp(c, "dispatch")) {
			int flags = CONCORD_DISPATCH_ALL;
			if (n > 1 && !strcmp(a[1], "one"))
				flags = CONCORD_DISPATCH_ONE;
			if (n > 1 && !strcmp(a[1], "block"))
				flags = CONCORD_DISPATCH_ONE | CONCORD_DISPATCH_BLOCKING;
			printf("dispatch %d\n", concord_group_dispatch(h, flags));
		} else if (!strcmp(c, "pollfd")) {
			struct pollfd p = {.fd = concord_group_fd(h), .events = POLLIN};
			printf("pollfd %d\n", poll(&p, 1, atoi(a[1])));
		} else if (!strcmp(c, "threads")) {
			struct sender s[2] = {{0, atoi(a[1]), a[2], 0}, {1, atoi(a[1]), a[2], 0}};
			pthread_t t[2];
			for (int i = 0; i < 2; i++)
				pthread_create(&t[i], NULL, send_loop, &s[i]);
			for (int i = 0; i < 2; i++)
				pthread_join(t[i], NULL);
			printf("threads %d %d\n", s[0].rc, s[1].rc);
		} else if (!strcmp(c, "blast")) {
			/* blast N SIZE GROUP: N sends, waiting for credit. */
			long k = atol(a[1]);
			size_t size = (size_t)atol(a[2]);
			struct timespec t0, t1;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			for (long i = 0; i < k && rc == 0; i++)
				rc = concord_group_send(h, a[3], 0, buf, size, CONCORD_SEND_BLOCK, NULL);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			printf("blast %d %ld\n", rc, (long)((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec)));
		} else if (!strcmp(c, "drain")) {
			/* drain N: dispatch until N messages came. */
			long k = atol(a[1]);
			struct timespec t0, t1;
			counting = 0;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			while (counting < k && rc >= 0)
				rc = concord_group_dispatch(h, CONCORD_DISPATCH_ALL | CONCORD_DISPATCH_BLOCKING);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			counting = -1;
			printf("drain %d %ld\n", rc < 0 ? rc : 0, (long)((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec)));
		} else if (!strcmp(c, "bgdispatch")) {
			static pthread_t bg;
			if (n > 1) {
				bg_want = atol(a[1]);
				pthread_create(&bg, NULL, bg_dispatch, NULL);
				printf("bgdispatch started\n");
			} else {
				pthread_join(bg, NULL);
				printf("bgdispatch %d %ld\n", bg_rc < 0 ? bg_rc : 0, bg_count);
				bg_want = 0;
			}
		} else if (!strcmp(c, "reenter")) {
			reenter = !strcmp(a[1], "on");
			printf("reenter %d\n", reenter);
		} else if (!strcmp(c, "close")) {
			printf("close %d\n", concord_group_close(h));
			h = NULL;
		} else
			printf("unknown %s\n", c);
	}
	free(line);
	return 0;
}
