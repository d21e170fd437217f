/*
 * cmember: grouptool's member mode in C, against libconcord's installed
 * header, so that the integration test can mix C and Go members in one
 * group and compare their logs line for line. The log lines are
 * byte-identical to grouptool's (tests/cmd/grouptool/main.go):
 *
 *   ready
 *   view GROUP VIEWID [NODE/CLIENT ...] [NODE/CLIENT:KIND:"REASON" ...]
 *   msg GROUP NODE/CLIENT NODE/PID/SEQ
 *   tx NODE/CLIENT GROUP:PAYLOAD...
 *   barrier GROUP NAME ok N | failed "REASON"
 *   send-failed TAG ERR
 *   sent N
 *   end REASON
 *
 *   cc -Wall -Werror -o cmember cmember.c $(pkg-config --cflags --libs concord) -pthread
 *   cmember [member] -group t -members 4 -send 3334 -size 256 -interval 1ms -idle 6s -out /tmp/c.log
 *
 * One thread sends (blocking for credit); the main thread dispatches.
 * grouptool's "sent N" waits for its Drain (every send completed); the C
 * library has no drain, so a send counts as complete when this session
 * delivers its own message or gets a send failure for it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <concord/group.h>

#define MAX_GROUPS 16

static const char *kinds[] = {"", "joined", "left", "closed", "died", "removed", "lost", "merged"};

static struct {
	const char *groups[MAX_GROUPS];
	int n_groups;
	const char *cluster;
	unsigned members, send, size;
	int64_t interval_ns, idle_ns;
	int safe;
	const char *out;
} opt = {.members = 1, .size = 64, .idle_ns = 5000000000LL};

static FILE *logf_;
static concord_group_t *h;
static struct concord_group_session self;
static int ready;
static uint64_t completed; /* own messages delivered and send failures (main thread) */
static int64_t last_event;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t sends_ok; /* sends accepted by the library */
static int sender_done, sender_err;

static volatile sig_atomic_t stop_signal;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "cmember: %s: %s\n", what, strerror(err));
	exit(1);
}

/* A Go duration as grouptool's flags take it: 0, 1500ms, 6s, 2m, 1.5s. */
static int64_t parse_duration(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		goto bad;
	if (*end == 0 && v == 0)
		return 0;
	static const struct {
		const char *unit;
		double ns;
	} units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strcmp(end, units[i].unit) == 0)
			return (int64_t)(v * units[i].ns);
bad:
	fprintf(stderr, "cmember: invalid duration \"%s\"\n", s);
	exit(2);
}

static unsigned parse_uint(const char *flag, const char *s)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > 0xffffffffUL || s[0] == '-') {
		fprintf(stderr, "cmember: invalid value \"%s\" for flag %s\n", s, flag);
		exit(2);
	}
	return (unsigned)v;
}

/* Go's %q for the reasons: quoted, with \" \\ and escapes for control bytes. */
static void put_quoted(const char *s)
{
	fputc('"', logf_);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", logf_);
			break;
		case '\\':
			fputs("\\\\", logf_);
			break;
		case '\a':
			fputs("\\a", logf_);
			break;
		case '\b':
			fputs("\\b", logf_);
			break;
		case '\f':
			fputs("\\f", logf_);
			break;
		case '\n':
			fputs("\\n", logf_);
			break;
		case '\r':
			fputs("\\r", logf_);
			break;
		case '\t':
			fputs("\\t", logf_);
			break;
		case '\v':
			fputs("\\v", logf_);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(logf_, "\\x%02x", *p);
			else
				fputc(*p, logf_); /* UTF-8 passes through, as Go prints printable runes */
		}
	}
	fputc('"', logf_);
}

static void put_view_id(const struct concord_view_id *v)
{
	fprintf(logf_, "%" PRIu64 ".%u/%" PRIu32, v->seq, (unsigned)v->coordinator, v->changes);
	if (v->branch)
		fprintf(logf_, "~%04x", (unsigned)(v->branch & 0xffff));
}

static void on_view(concord_group_t *hh, const struct concord_view *v, void *ud)
{
	(void)hh;
	(void)ud;
	fprintf(logf_, "view %s ", v->group);
	put_view_id(&v->id);
	fputs(" [", logf_);
	for (size_t i = 0; i < v->n_members; i++)
		fprintf(logf_, "%s%u/%" PRIu32, i ? " " : "", (unsigned)v->members[i].node, v->members[i].client);
	fputs("] [", logf_);
	for (size_t i = 0; i < v->n_changes; i++) {
		const struct concord_change *c = &v->changes[i];
		fprintf(logf_, "%s%u/%" PRIu32 ":", i ? " " : "", (unsigned)c->member.node, c->member.client);
		if (c->kind > 0 && c->kind < (int)(sizeof kinds / sizeof kinds[0]))
			fputs(kinds[c->kind], logf_);
		else
			fprintf(logf_, "kind(%d)", c->kind);
		fputc(':', logf_);
		put_quoted(c->reason ? c->reason : "");
	}
	fputs("]\n", logf_);
	if (!ready && strcmp(v->group, opt.groups[0]) == 0 && v->n_members >= opt.members)
		ready = 1;
}

static int is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static void on_message(concord_group_t *hh, const struct concord_message *m, void *ud)
{
	(void)hh;
	(void)ud;
	/* The first field of the payload, as Go's strings.Fields cuts it. */
	const unsigned char *p = m->payload, *e = p + m->len;
	while (p < e && is_space(*p))
		p++;
	const unsigned char *q = p;
	while (q < e && !is_space(*q))
		q++;
	fprintf(logf_, "msg %s %u/%" PRIu32 " ", m->group, (unsigned)m->from.node, m->from.client);
	if (q > p)
		fwrite(p, 1, (size_t)(q - p), logf_);
	else
		fputc('?', logf_);
	fputc('\n', logf_);
	if (m->from.node == self.self.node && m->from.incarnation == self.self.incarnation &&
	    m->from.client == self.self.client && !m->direct)
		completed++;
}

static void on_tx(concord_group_t *hh, const struct concord_tx *tx, void *ud)
{
	(void)hh;
	(void)ud;
	fprintf(logf_, "tx %u/%" PRIu32 " ", (unsigned)tx->from.node, tx->from.client);
	for (size_t i = 0; i < tx->n_parts; i++) {
		fprintf(logf_, "%s%s:", i ? " " : "", tx->parts[i].group);
		const char *b = tx->parts[i].payload;
		for (size_t k = 0; k < tx->parts[i].len; k++)
			fputc(b[k] == ' ' ? '_' : b[k], logf_);
	}
	fputc('\n', logf_);
}

static void on_barrier(concord_group_t *hh, const struct concord_barrier_done *b, void *ud)
{
	(void)hh;
	(void)ud;
	if (b->failed) {
		fprintf(logf_, "barrier %s %s failed ", b->group, b->barrier);
		put_quoted(b->reason ? b->reason : "");
		fputc('\n', logf_);
	} else {
		fprintf(logf_, "barrier %s %s ok %zu\n", b->group, b->barrier, b->n_released);
	}
}

static void on_send_failed(concord_group_t *hh, const struct concord_send_failure *f, void *ud)
{
	(void)hh;
	(void)ud;
	fprintf(logf_, "send-failed %" PRIu32 " %s: %s\n", f->tag, strerror(-f->error), f->reason ? f->reason : "");
	completed++;
}

static void *sender(void *arg)
{
	(void)arg;
	char *payload = calloc(1, opt.size + 64);
	if (!payload)
		die("payload", ENOMEM);
	int order = opt.safe ? CONCORD_ORDER_SAFE : CONCORD_ORDER_AGREED;
	int err = 0;
	for (unsigned k = 0; k < opt.send && !stop_signal; k++) {
		int n = snprintf(payload, 64, "%u/%" PRIu32 "/%u ", (unsigned)self.self.node, self.self.pid, k);
		size_t len = (size_t)n > opt.size ? (size_t)n : opt.size;
		int rc = concord_group_send(h, opt.groups[0], order, payload, len, CONCORD_SEND_BLOCK, NULL);
		if (rc < 0) {
			err = -rc;
			break;
		}
		pthread_mutex_lock(&mu);
		sends_ok++;
		pthread_mutex_unlock(&mu);
		if (opt.interval_ns > 0) {
			struct timespec ts = {opt.interval_ns / 1000000000LL, opt.interval_ns % 1000000000LL};
			nanosleep(&ts, NULL);
		}
	}
	free(payload);
	pthread_mutex_lock(&mu);
	sender_done = 1;
	sender_err = err;
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void end(const char *why)
{
	fprintf(logf_, "end %s\n", why);
	fflush(logf_);
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* dispatch delivers what is there and waits up to ms for more. */
static int dispatch(int ms)
{
	int rc = concord_group_dispatch(h, CONCORD_DISPATCH_ALL);
	if (rc > 0) {
		last_event = now_ns();
		return rc;
	}
	if (rc < 0)
		return rc;
	struct pollfd p = {.fd = concord_group_fd(h), .events = POLLIN};
	if (poll(&p, 1, ms) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;
	if (i < argc && argv[i][0] != '-') {
		if (strcmp(argv[i], "member") != 0) {
			fprintf(stderr, "cmember: only member mode, not %s\n", argv[i]);
			return 2;
		}
		i++;
	}
	for (; i < argc; i++) {
		const char *f = argv[i];
		if (f[0] == '-' && f[1] == '-')
			f++;
		if (strcmp(f, "-safe") == 0) {
			opt.safe = 1;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "cmember: flag needs an argument: %s\n", f);
			return 2;
		}
		const char *v = argv[++i];
		if (strcmp(f, "-group") == 0) {
			if (opt.n_groups == MAX_GROUPS) {
				fprintf(stderr, "cmember: more than %d groups\n", MAX_GROUPS);
				return 2;
			}
			opt.groups[opt.n_groups++] = v;
		} else if (strcmp(f, "-cluster") == 0) {
			opt.cluster = v;
		} else if (strcmp(f, "-members") == 0) {
			opt.members = parse_uint(f, v);
		} else if (strcmp(f, "-send") == 0) {
			opt.send = parse_uint(f, v);
		} else if (strcmp(f, "-size") == 0) {
			opt.size = parse_uint(f, v);
		} else if (strcmp(f, "-interval") == 0) {
			opt.interval_ns = parse_duration(v);
		} else if (strcmp(f, "-idle") == 0) {
			opt.idle_ns = parse_duration(v);
		} else if (strcmp(f, "-out") == 0) {
			opt.out = v;
		} else {
			fprintf(stderr, "cmember: unknown flag %s\n", f);
			return 2;
		}
	}
	if (opt.n_groups == 0)
		opt.groups[opt.n_groups++] = "t";
	if (opt.size > CONCORD_GROUP_MAX_PAYLOAD) {
		fprintf(stderr, "cmember: -size %u is over %d\n", opt.size, CONCORD_GROUP_MAX_PAYLOAD);
		return 2;
	}
	logf_ = stdout;
	if (opt.out && !(logf_ = fopen(opt.out, "w")))
		die(opt.out, errno);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	struct concord_group_callbacks cb = {
		.view = on_view, .message = on_message, .tx = on_tx, .barrier_done = on_barrier, .send_failed = on_send_failed};
	int rc = concord_group_open(&h, opt.cluster, &cb, NULL);
	if (rc < 0)
		die("open", -rc);
	concord_group_session(h, &self);
	for (int g = 0; g < opt.n_groups; g++)
		if ((rc = concord_group_join(h, opt.groups[g])) < 0) {
			fprintf(stderr, "cmember: join %s: %s\n", opt.groups[g], strerror(-rc));
			return 1;
		}

	/* Wait for the view. */
	char why[256];
	int64_t deadline = now_ns() + 120000000000LL;
	while (!ready) {
		if (stop_signal || now_ns() > deadline) {
			end(stop_signal ? "no view: signal" : "no view: timeout");
			goto out;
		}
		if ((rc = dispatch(50)) < 0) {
			snprintf(why, sizeof why, "no view: %s", strerror(-rc));
			end(why);
			goto out;
		}
	}
	fputs("ready\n", logf_);
	fflush(logf_);

	pthread_t th;
	if ((rc = pthread_create(&th, NULL, sender, NULL)) != 0)
		die("thread", rc);
	int done = 0;
	for (;;) {
		if (!done) {
			pthread_mutex_lock(&mu);
			int sd = sender_done, se = sender_err;
			uint64_t ok = sends_ok;
			pthread_mutex_unlock(&mu);
			if (sd && se) {
				snprintf(why, sizeof why, "send: %s", strerror(se));
				end(why);
				break;
			}
			if (sd && completed >= ok) {
				fprintf(logf_, "sent %u\n", opt.send);
				fflush(logf_);
				done = 1;
				if (last_event < now_ns())
					last_event = now_ns();
			}
		}
		if (stop_signal) {
			end("signal");
			break;
		}
		if (done && now_ns() - last_event >= opt.idle_ns) {
			end("idle");
			break;
		}
		if ((rc = dispatch(50)) < 0) {
			end(strerror(-rc));
			break;
		}
	}
	pthread_mutex_lock(&mu);
	int sd = sender_done;
	pthread_mutex_unlock(&mu);
	if (!sd) {
		/* The sender may wait for credit that never comes: end without
		 * closing (the others see this process die). */
		fflush(logf_);
		_exit(0);
	}
	pthread_join(th, NULL);
out:
	fflush(logf_);
	concord_group_close(h);
	return 0;
}
