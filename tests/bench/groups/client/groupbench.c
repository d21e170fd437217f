/*
 * groupbench: one member of a group benchmark. Every node runs one; the
 * members whose -id is in -senders each multicast -msgs messages of -size
 * bytes, as fast as the group takes them (flood) or one every -interval-us
 * (paced). Every member, sender or not, delivers all senders' messages,
 * checks each sender's sequence (no loss, duplicate or reordering), hashes
 * the total delivery order and prints one line of key=value figures:
 *
 *   GROUPBENCH backend=cpg id=2 ... rate=44123.4 digest=... status=ok
 *
 * The group service is reached through backend.h; this file knows nothing
 * of CPG or Concord. Exit status: 0 all checks passed, 1 usage or backend
 * error, 2 a check failed or the run timed out (the line says which).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "backend.h"

#define MAX_ID 64
#define MAGIC 0x31424d47u /* "GMB1" */

/* The header every message starts with; the rest is filler. */
struct hdr {
	uint32_t magic;
	uint32_t sender; /* the sender's -id */
	uint64_t seq;    /* from 0, per sender */
	int64_t sent_ns; /* CLOCK_REALTIME at the send call (paced latency) */
	uint32_t size;   /* the whole message's length */
} __attribute__((packed));

struct opts {
	const char *group;
	unsigned id, members, size;
	unsigned long msgs;
	long interval_us; /* 0: flood */
	int timeout_s;
	int idle_s; /* >0: send nothing, stay a member this long (idle cost) */
	int sender[MAX_ID + 1]; /* sender[i]: node i sends */
	unsigned nsenders;
	char senders[256];
};

struct state {
	const struct opts *o;
	unsigned view; /* members in the latest view */
	unsigned long delivered, expect;
	uint64_t next[MAX_ID + 1];     /* next expected seq per sender */
	unsigned long got[MAX_ID + 1]; /* delivered per sender */
	unsigned finished;             /* senders whose last message came */
	unsigned long lost, dup, bad;
	uint64_t digest; /* FNV-1a over (sender, seq) in delivery order */
	int64_t first_ns, last_ns; /* CLOCK_MONOTONIC of first and last delivery */
	int64_t *lat_ns;           /* paced: one sample per delivery */
	unsigned long nlat;
	char first_problem[200];
};

static int64_t now_ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void fnv(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		*h ^= b[i];
		*h *= 1099511628211ull;
	}
}

static void problem(struct state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct state *s, const char *fmt, ...)
{
	if (s->first_problem[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->first_problem, sizeof s->first_problem, fmt, ap);
	va_end(ap);
}

static void on_deliver(void *arg, const void *msg, size_t len)
{
	struct state *s = arg;
	int64_t mono = now_ns(CLOCK_MONOTONIC);
	struct hdr h;
	if (len < sizeof h) {
		s->bad++;
		problem(s, "message of %zu bytes, shorter than the header", len);
		return;
	}
	memcpy(&h, msg, sizeof h);
	if (h.magic != MAGIC || h.size != len || h.sender == 0 || h.sender > MAX_ID || !s->o->sender[h.sender]) {
		s->bad++;
		problem(s, "foreign or malformed message: magic %08x sender %u size %u, %zu bytes", h.magic, h.sender, h.size, len);
		return;
	}
	if (h.seq >= s->next[h.sender] && h.seq + 1 == s->o->msgs)
		s->finished++; /* the sender's last, seen once */
	if (h.seq == s->next[h.sender]) {
		s->next[h.sender]++;
	} else if (h.seq > s->next[h.sender]) {
		s->lost += h.seq - s->next[h.sender];
		problem(s, "sender %u: seq %" PRIu64 " after %" PRIu64 ": lost %" PRIu64, h.sender, h.seq,
			s->next[h.sender] - 1, h.seq - s->next[h.sender]);
		s->next[h.sender] = h.seq + 1;
	} else {
		s->dup++;
		problem(s, "sender %u: seq %" PRIu64 " again or late (expected %" PRIu64 ")", h.sender, h.seq, s->next[h.sender]);
	}
	s->got[h.sender]++;
	fnv(&s->digest, &h.sender, sizeof h.sender);
	fnv(&s->digest, &h.seq, sizeof h.seq);
	if (s->delivered == 0)
		s->first_ns = mono;
	s->last_ns = mono;
	s->delivered++;
	if (s->lat_ns && s->nlat < s->expect)
		s->lat_ns[s->nlat++] = now_ns(CLOCK_REALTIME) - h.sent_ns;
}

static void on_view(void *arg, unsigned members)
{
	((struct state *)arg)->view = members;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: groupbench -group NAME -id N -members N -senders ID[,ID...] -msgs N -size BYTES\n"
		"                  [-interval-us US] [-timeout S]\n"
		"       groupbench -group NAME -id N -members N -idle-s S\n"
		"  -id          this member's number, 1..%d (the node index)\n"
		"  -members     members to wait for before sending\n"
		"  -senders     the ids that send; this member sends if its id is listed\n"
		"  -msgs        messages per sender\n"
		"  -size        bytes per message, %zu..1048576\n"
		"  -interval-us 0: flood; else one message every US microseconds\n"
		"  -timeout     seconds for the whole run (default 300)\n"
		"  -idle-s      join, wait for the members, then only stay a member for S\n"
		"               seconds and exit (the idle cost of an open group session)\n",
		MAX_ID, sizeof(struct hdr));
	exit(1);
}

static long num(const char *flag, const char *v, long min, long max)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *v == '\0' || *end != '\0' || n < min || n > max) {
		fprintf(stderr, "groupbench: %s %s: want a number in %ld..%ld\n", flag, v, min, max);
		exit(1);
	}
	return n;
}

static void parse(int argc, char **argv, struct opts *o)
{
	o->timeout_s = 300;
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(f, "-group"))
			o->group = v;
		else if (!strcmp(f, "-id"))
			o->id = (unsigned)num(f, v, 1, MAX_ID);
		else if (!strcmp(f, "-members"))
			o->members = (unsigned)num(f, v, 1, MAX_ID);
		else if (!strcmp(f, "-msgs"))
			o->msgs = (unsigned long)num(f, v, 1, 100000000);
		else if (!strcmp(f, "-size"))
			o->size = (unsigned)num(f, v, (long)sizeof(struct hdr), 1 << 20);
		else if (!strcmp(f, "-interval-us"))
			o->interval_us = num(f, v, 0, 60000000);
		else if (!strcmp(f, "-idle-s"))
			o->idle_s = (int)num(f, v, 1, 86400);
		else if (!strcmp(f, "-timeout"))
			o->timeout_s = (int)num(f, v, 1, 86400);
		else if (!strcmp(f, "-senders")) {
			if (strlen(v) >= sizeof o->senders) {
				fprintf(stderr, "groupbench: -senders %s: too long\n", v);
				exit(1);
			}
			strcpy(o->senders, v);
			char buf[sizeof o->senders], *save = NULL;
			strcpy(buf, v);
			for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				long id = num("-senders", t, 1, MAX_ID);
				if (o->sender[id]) {
					fprintf(stderr, "groupbench: -senders %s: %ld twice\n", v, id);
					exit(1);
				}
				o->sender[id] = 1;
				o->nsenders++;
			}
		} else {
			fprintf(stderr, "groupbench: unknown flag %s\n", f);
			usage();
		}
	}
	if (o->idle_s && o->group && o->id && o->members && !o->nsenders)
		return;
	if (!o->group || !o->id || !o->members || !o->msgs || !o->size || !o->nsenders) {
		fprintf(stderr, "groupbench: -group, -id, -members, -senders, -msgs and -size are required\n");
		usage();
	}
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* wait_dispatch waits up to ns nanoseconds (0: just look) for the
 * backend's fd and dispatches what is ready. */
static int wait_dispatch(struct gb_backend *b, int64_t ns, char *err, size_t errlen)
{
	struct pollfd p = {.fd = gb_fd(b), .events = POLLIN};
	struct timespec t = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
	int r = ppoll(&p, 1, &t, NULL);
	if (r < 0 && errno != EINTR) {
		snprintf(err, errlen, "poll: %s", strerror(errno));
		return GB_ERROR;
	}
	if (r > 0 && (p.revents & (POLLERR | POLLNVAL))) {
		snprintf(err, errlen, "poll: the group fd reports an error (revents %#x)", p.revents);
		return GB_ERROR;
	}
	if (r > 0)
		return gb_dispatch(b, err, errlen);
	return GB_OK;
}

/* idle joins, waits for every member, stays a member for -idle-s seconds
 * dispatching whatever comes (nothing should: no one sends) and exits. */
static int idle(const struct opts *o)
{
	struct state s = {.o = o};
	char err[512] = "";
	struct gb_events ev = {.deliver = on_deliver, .view = on_view, .arg = &s};
	struct gb_backend *b = gb_open(o->group, &ev, err, sizeof err);
	if (!b) {
		fprintf(stderr, "groupbench: %s\n", err);
		return 1;
	}
	int64_t deadline = now_ns(CLOCK_MONOTONIC) + 60 * (int64_t)1000000000;
	int rc = GB_OK;
	while (s.view < o->members && rc == GB_OK) {
		if (now_ns(CLOCK_MONOTONIC) > deadline) {
			fprintf(stderr, "groupbench: %u of %u members after 60 s\n", s.view, o->members);
			gb_close(b);
			return 2;
		}
		rc = wait_dispatch(b, 10000000, err, sizeof err);
	}
	printf("GROUPBENCH-IDLE members=%u\n", s.view);
	fflush(stdout);
	int64_t end = now_ns(CLOCK_MONOTONIC) + (int64_t)o->idle_s * 1000000000;
	for (int64_t left; rc == GB_OK && (left = end - now_ns(CLOCK_MONOTONIC)) > 0;)
		rc = wait_dispatch(b, left, err, sizeof err);
	gb_close(b);
	if (rc != GB_OK) {
		fprintf(stderr, "groupbench: %s\n", err);
		return 1;
	}
	if (s.delivered || s.bad) {
		fprintf(stderr, "groupbench: %lu messages while idle, no one sending\n", s.delivered + s.bad);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	parse(argc, argv, &o);
	struct state s = {.o = &o, .digest = 14695981039346656037ull};
	s.expect = o.msgs * o.nsenders;
	if (o.interval_us && !(s.lat_ns = calloc(s.expect, sizeof *s.lat_ns))) {
		fprintf(stderr, "groupbench: %s\n", strerror(errno));
		return 1;
	}
	if (o.idle_s)
		return idle(&o);
	unsigned char *buf = malloc(o.size);
	if (!buf) {
		fprintf(stderr, "groupbench: %s\n", strerror(errno));
		return 1;
	}
	for (unsigned i = 0; i < o.size; i++)
		buf[i] = (unsigned char)(i * 7 + o.id);

	char err[512] = "";
	struct gb_events ev = {.deliver = on_deliver, .view = on_view, .arg = &s};
	int64_t deadline = now_ns(CLOCK_MONOTONIC) + (int64_t)o.timeout_s * 1000000000;
	struct gb_backend *b = gb_open(o.group, &ev, err, sizeof err);
	if (!b) {
		fprintf(stderr, "groupbench: %s\n", err);
		return 1;
	}
	const char *status = "ok";
	int rc = GB_OK;
	/* Send only once every member is in: each then delivers everything. */
	while (s.view < o.members && (rc = wait_dispatch(b, 10000000, err, sizeof err)) == GB_OK)
		if (now_ns(CLOCK_MONOTONIC) > deadline) {
			status = "timeout-joining";
			break;
		}

	unsigned long sent = 0, retries = 0;
	int64_t send_start = now_ns(CLOCK_MONOTONIC), send_end = send_start;
	int sending = o.sender[o.id] && rc == GB_OK && !strcmp(status, "ok");
	int64_t next_send = now_ns(CLOCK_MONOTONIC);
	while (rc == GB_OK && sending) {
		if (now_ns(CLOCK_MONOTONIC) > deadline) {
			status = "timeout-sending";
			break;
		}
		if (o.interval_us) {
			int64_t left = next_send - now_ns(CLOCK_MONOTONIC);
			if (left > 0) {
				rc = wait_dispatch(b, left, err, sizeof err);
				continue;
			}
		}
		struct hdr h = {.magic = MAGIC, .sender = o.id, .seq = sent, .sent_ns = now_ns(CLOCK_REALTIME), .size = o.size};
		memcpy(buf, &h, sizeof h);
		int r = gb_send(b, buf, o.size, err, sizeof err);
		if (r == GB_OK) {
			if (++sent == o.msgs) {
				send_end = now_ns(CLOCK_MONOTONIC);
				sending = 0;
			}
			next_send += o.interval_us * 1000;
			rc = wait_dispatch(b, 0, err, sizeof err); /* keep our own queue short */
		} else if (r == GB_AGAIN) {
			retries++;
			rc = wait_dispatch(b, 1000000, err, sizeof err); /* back off up to 1 ms */
		} else {
			rc = r;
		}
	}
	/* Until every sender's last message came, so a lost one ends the run
	 * as soon as a later one shows it, not at the timeout. */
	while (rc == GB_OK && !strcmp(status, "ok") && s.finished < o.nsenders) {
		int64_t left = deadline - now_ns(CLOCK_MONOTONIC);
		if (left <= 0) {
			status = "timeout-delivering";
			break;
		}
		rc = wait_dispatch(b, left > 100000000 ? 100000000 : left, err, sizeof err);
	}
	if (rc != GB_OK) {
		fprintf(stderr, "groupbench: %s\n", err);
		gb_close(b);
		return 1;
	}
	gb_close(b);

	for (unsigned i = 1; i <= MAX_ID; i++)
		if (o.sender[i] && s.got[i] != o.msgs && !strcmp(status, "ok")) {
			status = "count";
			problem(&s, "sender %u: delivered %lu of %lu", i, s.got[i], o.msgs);
		}
	if (s.lost || s.dup || s.bad)
		status = "sequence";

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	double span = (double)(s.last_ns - s.first_ns) / 1e9;
	double send_s = (double)(send_end - send_start) / 1e9;
	printf("GROUPBENCH backend=%s id=%u group=%s size=%u senders=%s msgs=%lu interval_us=%ld"
	       " sent=%lu send_s=%.6f retries=%lu delivered=%lu span_s=%.6f rate=%.1f"
	       " lost=%lu dup=%lu bad=%lu cpu_s=%.3f digest=%016" PRIx64,
	       gb_name(), o.id, o.group, o.size, o.senders, o.msgs, o.interval_us, sent, send_s, retries, s.delivered,
	       span, s.delivered > 1 && span > 0 ? (double)(s.delivered - 1) / span : 0, s.lost, s.dup, s.bad, cpu_s, s.digest);
	if (s.nlat) {
		qsort(s.lat_ns, s.nlat, sizeof *s.lat_ns, cmp64);
		printf(" lat_n=%lu lat_min_us=%.1f lat_med_us=%.1f lat_p99_us=%.1f lat_max_us=%.1f", s.nlat,
		       s.lat_ns[0] / 1e3, s.lat_ns[s.nlat / 2] / 1e3, s.lat_ns[s.nlat * 99 / 100] / 1e3,
		       s.lat_ns[s.nlat - 1] / 1e3);
	}
	printf(" status=%s\n", status);
	if (s.first_problem[0])
		fprintf(stderr, "groupbench: %s\n", s.first_problem);
	fflush(stdout);
	return strcmp(status, "ok") ? 2 : 0;
}
