/*
 * Process-group sessions: the handle, its lock, the reading of the socket
 * and the calls of concord/group.h.
 *
 * One thread at a time reads the socket (h->reading), without the lock
 * held; the others wait on h->cond. What it reads is routed under the
 * lock: answers to the thread waiting for their tag, credit to the
 * window, events to the queue that dispatch empties. The socket is read
 * only when the program dispatches or waits (for an answer or credit), so
 * a program that stops reading is seen by the daemon's own queue bound.
 *
 * concord_group_fd() is an epoll descriptor holding the socket and an
 * eventfd: the eventfd is set while events read by another call wait in
 * the queue, or credit came back after a send failed with -EAGAIN, so
 * that polling it never sleeps on work already read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "wire.h"

#define API __attribute__((visibility("default")))

#define DEFAULT_SOCKET "/run/concord/groups.sock"
#define HANDSHAKE_TIMEOUT_MS 30000
#define MAX_DISPATCH_PACKETS 64 /* read by one dispatch, once it has delivered */
/* The largest request head: header, name, member, order and payload length. */
#define MAX_HEAD (WIRE_HEADER + 2 + CONCORD_GROUP_MAX_NAME + 2 + CONCORD_GROUP_MAX_NAME + 22 + 1 + 4)

struct waiter {
	struct waiter *next;
	uint32_t tag;
	uint16_t want; /* the request type */
	int done;
	struct rec *r;
};

struct concord_group {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* reading ended, answer in, credit back, dispatch ended */
	int sock, ep, ev;
	int err;        /* the session is over: every call returns it */
	int welcomed;
	int reading;    /* a thread is in recv */
	uint8_t *rbuf;  /* the reader's packet buffer */
	uint32_t next_tag;
	uint32_t inflight, window, max_payload;
	int starved;    /* a send failed with -EAGAIN */
	int signalled;  /* the eventfd is set */
	struct waiter *waiters;
	struct rec *head, *tail;
	int dispatching;
	pthread_t dispatcher;
	struct concord_group_session session;
	struct concord_group_callbacks cb;
	void *userdata;
};

/* code_errno maps a reply's code to an errno, as groupwire/record.go lists. */
static int code_errno(uint16_t c)
{
	static const int e[WIRE_CODES] = {0, EINVAL, EINVAL, ENOTCONN, EALREADY, EMSGSIZE,
	                                  EAGAIN, EPROTO, EACCES, EPROTONOSUPPORT, ESHUTDOWN, ENOENT};
	return c < WIRE_CODES ? e[c] : EPROTO;
}

static void signal_fd(struct concord_group *h)
{
	if (!h->signalled) {
		uint64_t one = 1;
		if (write(h->ev, &one, sizeof one) == sizeof one)
			h->signalled = 1;
	}
}

static void clear_fd(struct concord_group *h)
{
	if (h->signalled) {
		uint64_t v;
		if (read(h->ev, &v, sizeof v) == sizeof v || errno == EAGAIN)
			h->signalled = 0;
	}
}

/* fail ends the session: the daemon sees it closed, every call returns err. */
static void fail(struct concord_group *h, int err)
{
	if (!h->err) {
		h->err = err;
		shutdown(h->sock, SHUT_RDWR);
	}
	pthread_cond_broadcast(&h->cond);
}

static uint32_t new_tag(struct concord_group *h)
{
	uint32_t t = h->next_tag++;
	if (t == 0)
		t = h->next_tag++; /* 0 is the events' tag */
	return t;
}

/* route acts on one record read from the daemon; it takes r (lock held). */
static int route(struct concord_group *h, struct rec *r)
{
	if (!h->welcomed && r->type != T_WELCOME && r->type != T_REPLY)
		goto bad; /* the session begins with the answer to hello */
	switch (r->type) {
	case T_WELCOME:
		if (h->welcomed || r->version != CONCORD_GROUP_PROTOCOL)
			goto bad;
		/* fall through */
	case T_REPLY:
	case T_GROUP_LIST:
	case T_MEMBER_LIST: {
		struct waiter *w = h->waiters;
		while (w && (w->tag != r->tag || w->done))
			w = w->next;
		if (!w)
			goto bad;
		if (r->type == T_REPLY) {
			/* Success is a welcome, a group-list or a member-list for these. */
			if (r->code == 0 && (w->want == T_HELLO || w->want == T_GROUPS || w->want == T_MEMBERS))
				goto bad;
		} else if ((r->type == T_WELCOME) != (w->want == T_HELLO) ||
		           (r->type == T_GROUP_LIST) != (w->want == T_GROUPS) ||
		           (r->type == T_MEMBER_LIST) != (w->want == T_MEMBERS))
			goto bad;
		if (r->type == T_WELCOME)
			h->welcomed = 1;
		w->r = r;
		w->done = 1;
		pthread_cond_broadcast(&h->cond);
		return 0;
	}
	case T_SEND_FAILED:
		if (r->code == 0)
			goto bad;
		/* fall through */
	case T_VIEW:
	case T_MESSAGE:
	case T_TX:
	case T_BARRIER_DONE:
		r->next = NULL;
		if (h->tail)
			h->tail->next = r;
		else
			h->head = r;
		h->tail = r;
		/* The dispatching thread delivers it before it returns; for
		 * anyone else, the fd says there is work. */
		if (!h->dispatching || !pthread_equal(h->dispatcher, pthread_self()))
			signal_fd(h);
		return 0;
	}
bad:
	free(r);
	return -EPROTO;
}

/* packet checks and routes every record of a packet (lock held). */
static int packet(struct concord_group *h, const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (n < WIRE_HEADER)
			return -EPROTO;
		size_t len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
		if (len < WIRE_HEADER || len > n)
			return -EPROTO;
		struct rec scratch;
		size_t need;
		if (wire_decode(p, len, &scratch, NULL, &need) < 0)
			return -EPROTO;
		if (scratch.type == T_CREDIT) {
			/* Credit counts completed sends; more than were in flight is a lie. */
			if (!h->welcomed || scratch.count > h->inflight)
				return -EPROTO;
			h->inflight -= scratch.count;
			if (scratch.count && h->starved) {
				h->starved = 0;
				signal_fd(h);
			}
			pthread_cond_broadcast(&h->cond);
		} else {
			struct rec *r = malloc(sizeof *r + need);
			if (!r)
				return -ENOMEM;
			wire_decode(p, len, r, (char *)(r + 1), &need);
			int rc = route(h, r);
			if (rc < 0)
				return rc;
		}
		p += len;
		n -= len;
	}
	return 0;
}

/*
 * pump reads and routes one packet, or waits for the thread that reads
 * to finish. timeout_ms: 0 never waits, -1 waits as long as it takes.
 * Returns 1 when something may have changed, 0 when nothing was there
 * (or the time ran out), or the session's error. Lock held.
 */
static int pump(struct concord_group *h, int timeout_ms)
{
	if (h->err)
		return h->err;
	if (h->reading) {
		if (timeout_ms == 0)
			return 0;
		pthread_cond_wait(&h->cond, &h->mu);
		return 1;
	}
	h->reading = 1;
	pthread_mutex_unlock(&h->mu);
	ssize_t n;
	int e = 0;
	for (;;) {
		n = recv(h->sock, h->rbuf, WIRE_MAX_PACKET, MSG_DONTWAIT | MSG_TRUNC);
		if (n >= 0)
			break;
		e = errno;
		if (e == EINTR)
			continue;
		if (e != EAGAIN || timeout_ms == 0)
			break;
		struct pollfd pfd = {.fd = h->sock, .events = POLLIN};
		int pr = poll(&pfd, 1, timeout_ms);
		if (pr == 0)
			break; /* timed out: e stays EAGAIN */
		if (pr < 0 && errno != EINTR) {
			e = errno;
			break;
		}
	}
	pthread_mutex_lock(&h->mu);
	h->reading = 0;
	int rc = 1;
	if (n < 0) {
		if (e == EAGAIN)
			rc = 0;
		else
			fail(h, -e);
	} else if (n == 0)
		fail(h, -ECONNRESET); /* the daemon closed the session */
	else if (n > WIRE_MAX_PACKET)
		fail(h, -EPROTO);
	else {
		int err = packet(h, h->rbuf, (size_t)n);
		if (err < 0)
			fail(h, err);
	}
	pthread_cond_broadcast(&h->cond);
	if (h->err)
		return h->err;
	return rc;
}

/* put writes one record: head[0..hn) then the payload (lock held). */
static int put(struct concord_group *h, const uint8_t *head, size_t hn, const void *payload, size_t pn)
{
	struct iovec iov[2] = {{(void *)head, hn}, {(void *)payload, pn}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = pn ? 2 : 1};
	for (;;) {
		ssize_t n = sendmsg(h->sock, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/* The socket's buffer is full: the daemon reads it soon. */
			struct pollfd pfd = {.fd = h->sock, .events = POLLOUT};
			poll(&pfd, 1, -1);
			continue;
		}
		int e = errno == EPIPE ? ECONNRESET : errno;
		fail(h, -e);
		return -e;
	}
}

/*
 * request writes a request that gets an answer and waits for it; *out is
 * the answer record when 0 is returned (the caller frees it). Lock held.
 */
static int request(struct concord_group *h, struct enc *e, uint16_t type, const void *payload, size_t pn,
                   int timeout_ms, struct rec **out)
{
	struct waiter w = {.tag = new_tag(h), .want = type};
	e->b[8] = (uint8_t)w.tag;
	e->b[9] = (uint8_t)(w.tag >> 8);
	e->b[10] = (uint8_t)(w.tag >> 16);
	e->b[11] = (uint8_t)(w.tag >> 24);
	int rc = put(h, e->b, e->n, payload, pn);
	if (rc < 0)
		return rc;
	w.next = h->waiters;
	h->waiters = &w;
	while (!w.done && !h->err) {
		rc = pump(h, timeout_ms);
		if (rc == 0 && timeout_ms >= 0) {
			fail(h, -ETIMEDOUT);
			break;
		}
	}
	struct waiter **pp = &h->waiters;
	while (*pp != &w)
		pp = &(*pp)->next;
	*pp = w.next;
	if (!w.done)
		return h->err;
	*out = w.r;
	return 0;
}

/* simple sends a request answered by a reply and returns its errno. */
static int simple(struct concord_group *h, struct enc *e, uint16_t type, const void *payload, size_t pn)
{
	struct rec *r;
	int rc = request(h, e, type, payload, pn, -1, &r);
	if (rc < 0)
		return rc;
	rc = -code_errno(r->code);
	free(r);
	return rc;
}

static int check_name(const char *s)
{
	if (!s)
		return -EINVAL;
	size_t n = strlen(s);
	if (n < 1 || n > CONCORD_GROUP_MAX_NAME || !wire_valid_utf8((const uint8_t *)s, n))
		return -EINVAL;
	return 0;
}

static int lock(struct concord_group *h)
{
	if (!h)
		return -EINVAL;
	pthread_mutex_lock(&h->mu);
	if (h->err) {
		int e = h->err;
		pthread_mutex_unlock(&h->mu);
		return e;
	}
	return 0;
}

/* socket_path picks the socket for a context (NULL or "": the default). */
static int socket_path(const char *context, struct sockaddr_un *a)
{
	const char *env = getenv("CONCORD_GROUP_SOCKET");
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	int n;
	if (env && *env)
		n = snprintf(a->sun_path, sizeof a->sun_path, "%s", env);
	else if (!context || !*context)
		n = snprintf(a->sun_path, sizeof a->sun_path, "%s", DEFAULT_SOCKET);
	else {
		/* A context is a cluster's name: a plain file name, no path. */
		size_t len = strlen(context);
		if (len > 64 || context[0] == '.' || strspn(context, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len)
			return -EINVAL;
		n = snprintf(a->sun_path, sizeof a->sun_path, "/run/concord/%s/groups.sock", context);
	}
	if (n < 0 || (size_t)n >= sizeof a->sun_path)
		return -ENAMETOOLONG;
	return 0;
}

/* client_name is this program's name for the daemon's logs: at most 64
 * bytes, cut before the first character that is not UTF-8 or would not fit. */
static size_t client_name(char *out)
{
	const uint8_t *s = (const uint8_t *)program_invocation_short_name;
	size_t n = 0, len = s ? strlen((const char *)s) : 0;
	while (n < len) {
		size_t k = s[n] < 0x80 ? 1 : s[n] < 0xe0 ? 2 : s[n] < 0xf0 ? 3 : 4;
		if (n + k > WIRE_MAX_CLIENT_NAME || n + k > len || !wire_valid_utf8(s + n, k))
			break;
		n += k;
	}
	memcpy(out, s, n);
	return n;
}

static void destroy(struct concord_group *h)
{
	if (h->sock >= 0)
		close(h->sock);
	if (h->ep >= 0)
		close(h->ep);
	if (h->ev >= 0)
		close(h->ev);
	while (h->head) {
		struct rec *r = h->head;
		h->head = r->next;
		free(r);
	}
	free(h->rbuf);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

API int concord_group_open(concord_group_t **hp, const char *context, const struct concord_group_callbacks *cb,
                           void *userdata)
{
	if (!hp)
		return -EINVAL;
	*hp = NULL;
	struct sockaddr_un addr;
	int rc = socket_path(context, &addr);
	if (rc < 0)
		return rc;
	struct concord_group *h = calloc(1, sizeof *h);
	if (!h)
		return -ENOMEM;
	h->sock = h->ep = h->ev = -1;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->next_tag = 1;
	h->userdata = userdata;
	if (cb)
		h->cb = *cb;
	h->rbuf = malloc(WIRE_MAX_PACKET);
	if (!h->rbuf) {
		destroy(h);
		return -ENOMEM;
	}
	h->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	h->ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	if (h->sock < 0 || h->ev < 0 || h->ep < 0) {
		rc = -errno;
		destroy(h);
		return rc;
	}
	struct epoll_event es = {.events = EPOLLIN, .data.u32 = 0}, ee = {.events = EPOLLIN, .data.u32 = 1};
	if (epoll_ctl(h->ep, EPOLL_CTL_ADD, h->sock, &es) < 0 || epoll_ctl(h->ep, EPOLL_CTL_ADD, h->ev, &ee) < 0) {
		rc = -errno;
		destroy(h);
		return rc;
	}
	while (connect(h->sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
		if (errno == EINTR)
			continue;
		rc = -errno;
		destroy(h);
		return rc;
	}
	uint8_t buf[WIRE_HEADER + 2 + 2 + WIRE_MAX_CLIENT_NAME];
	char cname[WIRE_MAX_CLIENT_NAME];
	size_t cn = client_name(cname);
	struct enc e = {.b = buf};
	enc_header(&e, T_HELLO, 0);
	enc_u16(&e, CONCORD_GROUP_PROTOCOL);
	enc_str(&e, cname, cn);
	enc_finish(&e, 0);
	struct rec *r = NULL;
	pthread_mutex_lock(&h->mu);
	rc = request(h, &e, T_HELLO, NULL, 0, HANDSHAKE_TIMEOUT_MS, &r);
	pthread_mutex_unlock(&h->mu);
	if (rc == 0 && r->type == T_REPLY)
		rc = -code_errno(r->code); /* refused: bad version, denied... */
	if (rc < 0) {
		free(r);
		destroy(h);
		return rc;
	}
	h->session.self = r->self;
	h->session.window = h->window = r->window;
	h->session.max_payload = r->max_payload;
	h->session.max_queue = r->max_queue;
	h->max_payload = r->max_payload < CONCORD_GROUP_MAX_PAYLOAD ? r->max_payload : CONCORD_GROUP_MAX_PAYLOAD;
	snprintf(h->session.cluster, sizeof h->session.cluster, "%s", r->name);
	free(r);
	*hp = h;
	return 0;
}

API int concord_group_close(concord_group_t *h)
{
	if (!h)
		return -EINVAL;
	/* Bye makes this a close, not a death, for the other members; a full
	 * socket is not waited for. */
	if (h->sock >= 0) {
		uint8_t b[WIRE_HEADER];
		struct enc e = {b, 0};
		enc_header(&e, T_BYE, 0);
		enc_finish(&e, 0);
		(void)send(h->sock, b, e.n, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	destroy(h);
	return 0;
}

API int concord_group_fd(concord_group_t *h) { return h ? h->ep : -EINVAL; }

API void *concord_group_userdata(concord_group_t *h) { return h ? h->userdata : NULL; }

API int concord_group_session(concord_group_t *h, struct concord_group_session *out)
{
	if (!h || !out)
		return -EINVAL;
	*out = h->session; /* set once, by open */
	return 0;
}

/* deliver runs the callback for one event (lock not held). */
static void deliver(struct concord_group *h, const struct rec *r)
{
	switch (r->type) {
	case T_VIEW:
		if (h->cb.view) {
			struct concord_view v = {r->group, r->view, r->members, r->n_members, r->changes, r->n_changes};
			h->cb.view(h, &v, h->userdata);
		}
		break;
	case T_MESSAGE:
		if (h->cb.message) {
			struct concord_message m = {r->group, r->view, r->from, r->order, r->direct, r->id, r->payload, r->len};
			h->cb.message(h, &m, h->userdata);
		}
		break;
	case T_TX:
		if (h->cb.tx) {
			struct concord_tx t = {r->from, r->order, r->tx, r->id, r->parts, r->n_parts};
			h->cb.tx(h, &t, h->userdata);
		}
		break;
	case T_BARRIER_DONE:
		if (h->cb.barrier_done) {
			struct concord_barrier_done b = {r->group, r->barrier, r->failed, r->text, r->members, r->n_members};
			h->cb.barrier_done(h, &b, h->userdata);
		}
		break;
	case T_SEND_FAILED:
		if (h->cb.send_failed) {
			struct concord_send_failure f = {r->tag, -code_errno(r->code), r->id, r->text};
			h->cb.send_failed(h, &f, h->userdata);
		}
		break;
	}
}

API int concord_group_dispatch(concord_group_t *h, int flags)
{
	if (!h || !(flags & (CONCORD_DISPATCH_ONE | CONCORD_DISPATCH_ALL)) ||
	    (flags & ~(CONCORD_DISPATCH_ONE | CONCORD_DISPATCH_ALL | CONCORD_DISPATCH_BLOCKING)))
		return -EINVAL;
	pthread_mutex_lock(&h->mu);
	/* One thread dispatches at a time, so that events keep their order; a
	 * callback may dispatch again (nested) in the same thread. */
	pthread_t self = pthread_self();
	while (h->dispatching && !pthread_equal(h->dispatcher, self))
		pthread_cond_wait(&h->cond, &h->mu);
	int nested = h->dispatching;
	h->dispatching = 1;
	h->dispatcher = self;
	int delivered = 0, rc = 0, packets = 0;
	for (;;) {
		struct rec *r = h->head;
		if (r) {
			h->head = r->next;
			if (!h->head)
				h->tail = NULL;
			pthread_mutex_unlock(&h->mu);
			deliver(h, r);
			free(r);
			pthread_mutex_lock(&h->mu);
			delivered++;
			if (flags & CONCORD_DISPATCH_ONE)
				break;
			continue;
		}
		if (h->err) {
			if (!delivered)
				rc = h->err;
			break;
		}
		/* A flood of events must not keep the caller here for ever: after
		 * a while it returns, and the fd stays readable. */
		if (delivered && packets >= MAX_DISPATCH_PACKETS)
			break;
		int block = (flags & CONCORD_DISPATCH_BLOCKING) && !delivered;
		if (pump(h, block ? -1 : 0) == 0)
			break;
		packets++;
	}
	/* The fd is readable while events wait: ONE may leave some behind. */
	if (h->head)
		signal_fd(h);
	else if (!h->err)
		clear_fd(h);
	if (!nested) {
		h->dispatching = 0;
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->mu);
	return rc < 0 ? rc : delivered;
}

/* name_request sends a join or leave and waits for its answer, which the
 * daemon gives once the change is applied. */
static int name_request(concord_group_t *h, uint16_t type, const char *group)
{
	int rc = check_name(group);
	if (rc < 0 || (rc = lock(h)) < 0)
		return rc;
	uint8_t buf[MAX_HEAD];
	struct enc e = {.b = buf};
	enc_header(&e, type, 0);
	enc_str(&e, group, strlen(group));
	enc_finish(&e, 0);
	rc = simple(h, &e, type, NULL, 0);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

API int concord_group_join(concord_group_t *h, const char *group) { return name_request(h, T_JOIN, group); }

API int concord_group_leave(concord_group_t *h, const char *group) { return name_request(h, T_LEAVE, group); }

/*
 * unanswered writes a send, send-to or tx-commit: it takes one credit of
 * the window, waiting for one if flags says so, and is answered only by a
 * send-failed. Lock held.
 */
static int unanswered(struct concord_group *h, struct enc *e, const void *payload, size_t pn, int flags,
                      uint32_t *tag)
{
	while (h->inflight >= h->window) {
		if (!(flags & CONCORD_SEND_BLOCK)) {
			h->starved = 1;
			return -EAGAIN;
		}
		int rc = pump(h, -1);
		if (rc < 0)
			return rc;
	}
	uint32_t t = new_tag(h);
	e->b[8] = (uint8_t)t;
	e->b[9] = (uint8_t)(t >> 8);
	e->b[10] = (uint8_t)(t >> 16);
	e->b[11] = (uint8_t)(t >> 24);
	int rc = put(h, e->b, e->n, payload, pn);
	if (rc < 0)
		return rc;
	h->inflight++;
	if (tag)
		*tag = t;
	return 0;
}

static int check_payload(struct concord_group *h, const void *payload, size_t len)
{
	if (!payload && len)
		return -EINVAL;
	return len > h->max_payload ? -EMSGSIZE : 0;
}

API int concord_group_send(concord_group_t *h, const char *group, int order, const void *payload, size_t len,
                           int flags, uint32_t *tag)
{
	int rc = check_name(group);
	if (rc == 0 && (order != CONCORD_ORDER_AGREED && order != CONCORD_ORDER_SAFE))
		rc = -EINVAL;
	if (rc == 0 && (flags & ~CONCORD_SEND_BLOCK))
		rc = -EINVAL;
	if (rc < 0 || (rc = lock(h)) < 0)
		return rc;
	if ((rc = check_payload(h, payload, len)) == 0) {
		uint8_t buf[MAX_HEAD];
		struct enc e = {.b = buf};
		enc_header(&e, T_SEND, 0);
		enc_str(&e, group, strlen(group));
		enc_u8(&e, (uint8_t)order);
		enc_u32(&e, (uint32_t)len);
		enc_finish(&e, len);
		rc = unanswered(h, &e, payload, len, flags, tag);
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

API int concord_group_send_to(concord_group_t *h, const char *group, const struct concord_member *to,
                              const void *payload, size_t len, int flags, uint32_t *tag)
{
	int rc = check_name(group);
	if (rc == 0 && (!to || (flags & ~CONCORD_SEND_BLOCK)))
		rc = -EINVAL;
	if (rc < 0 || (rc = lock(h)) < 0)
		return rc;
	if ((rc = check_payload(h, payload, len)) == 0) {
		uint8_t buf[MAX_HEAD];
		struct enc e = {.b = buf};
		enc_header(&e, T_SEND_TO, 0);
		enc_str(&e, group, strlen(group));
		enc_member(&e, to);
		enc_u32(&e, (uint32_t)len);
		enc_finish(&e, len);
		rc = unanswered(h, &e, payload, len, flags, tag);
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

API int concord_group_barrier(concord_group_t *h, const char *group, const char *barrier)
{
	int rc = check_name(group);
	if (rc == 0)
		rc = check_name(barrier);
	if (rc < 0 || (rc = lock(h)) < 0)
		return rc;
	uint8_t buf[MAX_HEAD];
	struct enc e = {.b = buf};
	enc_header(&e, T_BARRIER, 0);
	enc_str(&e, group, strlen(group));
	enc_str(&e, barrier, strlen(barrier));
	enc_finish(&e, 0);
	rc = simple(h, &e, T_BARRIER, NULL, 0);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

API int concord_group_tx_begin(concord_group_t *h)
{
	int rc = lock(h);
	if (rc < 0)
		return rc;
	uint8_t buf[WIRE_HEADER];
	struct enc e = {.b = buf};
	enc_header(&e, T_TX_BEGIN, 0);
	enc_finish(&e, 0);
	rc = simple(h, &e, T_TX_BEGIN, NULL, 0);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

API int concord_group_tx_add(concord_group_t *h, const char *group, const void *payload, size_t len)
{
	int rc = check_name(group);
	if (rc < 0 || (rc = lock(h)) < 0)
		return rc;
	if ((rc = check_payload(h, payload, len)) == 0) {
		uint8_t buf[MAX_HEAD];
		struct enc e = {.b = buf};
		enc_header(&e, T_TX_ADD, 0);
		enc_str(&e, group, strlen(group));
		enc_u32(&e, (uint32_t)len);
		enc_finish(&e, len);
		rc = simple(h, &e, T_TX_ADD, payload, len);
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

API int concord_group_tx_commit(concord_group_t *h, int order, int flags, uint32_t *tag)
{
	if ((order != CONCORD_ORDER_AGREED && order != CONCORD_ORDER_SAFE) || (flags & ~CONCORD_SEND_BLOCK))
		return -EINVAL;
	int rc = lock(h);
	if (rc < 0)
		return rc;
	uint8_t buf[WIRE_HEADER + 1];
	struct enc e = {.b = buf};
	enc_header(&e, T_TX_COMMIT, 0);
	enc_u8(&e, (uint8_t)order);
	enc_finish(&e, 0);
	rc = unanswered(h, &e, NULL, 0, flags, tag);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

API int concord_group_list(concord_group_t *h, struct concord_group_info **groups, size_t *n)
{
	if (!groups || !n)
		return -EINVAL;
	*groups = NULL;
	*n = 0;
	int rc = lock(h);
	if (rc < 0)
		return rc;
	uint8_t buf[WIRE_HEADER];
	struct enc e = {.b = buf};
	enc_header(&e, T_GROUPS, 0);
	enc_finish(&e, 0);
	struct rec *r;
	rc = request(h, &e, T_GROUPS, NULL, 0, -1, &r);
	pthread_mutex_unlock(&h->mu);
	if (rc < 0)
		return rc;
	if (r->type == T_REPLY) {
		rc = -code_errno(r->code);
		free(r);
		return rc;
	}
	/* One block the caller frees: the array, then the names. */
	size_t size = r->n_groups * sizeof **groups;
	for (size_t i = 0; i < r->n_groups; i++)
		size += strlen(r->groups[i].group) + 1;
	if (r->n_groups) {
		struct concord_group_info *g = malloc(size);
		if (!g) {
			free(r);
			return -ENOMEM;
		}
		char *s = (char *)(g + r->n_groups);
		for (size_t i = 0; i < r->n_groups; i++) {
			g[i] = r->groups[i];
			size_t l = strlen(r->groups[i].group) + 1;
			memcpy(s, r->groups[i].group, l);
			g[i].group = s;
			s += l;
		}
		*groups = g;
		*n = r->n_groups;
	}
	free(r);
	return 0;
}

API int concord_group_members(concord_group_t *h, const char *group, struct concord_view_id *view,
                              struct concord_member **members, size_t *n)
{
	if (!members || !n)
		return -EINVAL;
	*members = NULL;
	*n = 0;
	int rc = check_name(group);
	if (rc < 0 || (rc = lock(h)) < 0)
		return rc;
	uint8_t buf[MAX_HEAD];
	struct enc e = {.b = buf};
	enc_header(&e, T_MEMBERS, 0);
	enc_str(&e, group, strlen(group));
	enc_finish(&e, 0);
	struct rec *r;
	rc = request(h, &e, T_MEMBERS, NULL, 0, -1, &r);
	pthread_mutex_unlock(&h->mu);
	if (rc < 0)
		return rc;
	if (r->type == T_REPLY) {
		rc = -code_errno(r->code);
		free(r);
		return rc;
	}
	if (view)
		*view = r->view;
	if (r->n_members) {
		struct concord_member *m = malloc(r->n_members * sizeof *m);
		if (!m) {
			free(r);
			return -ENOMEM;
		}
		memcpy(m, r->members, r->n_members * sizeof *m);
		*members = m;
		*n = r->n_members;
	}
	free(r);
	return 0;
}
