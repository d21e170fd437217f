/*
 * decode: libconcord's decoder alone, for the differential fuzz test.
 * Reads packets (u32 length, then the bytes) on stdin; for each prints a
 * line per record decoded, then "end", or "malformed" at the first record
 * that is. Strings and payloads are printed in hex, so every line is one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "../src/wire.h"

static void hex(const void *p, size_t n)
{
	const unsigned char *b = p;
	putchar(' ');
	if (!n)
		putchar('-');
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}

static void str(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	hex(s, n);
}

static void member(const struct concord_member *m)
{
	printf(" %u/%" PRIu64 "/%u/%u/%u", (unsigned)m->node, m->incarnation, (unsigned)m->client, (unsigned)m->pid, (unsigned)m->uid);
}

static void members(const struct concord_member *ms, size_t n)
{
	printf(" %zu", n);
	for (size_t i = 0; i < n; i++)
		member(&ms[i]);
}

static void view(const struct concord_view_id *v)
{
	printf(" %" PRIu64 ".%u.%u.%" PRIu64, v->seq, (unsigned)v->coordinator, (unsigned)v->changes, v->branch);
}

static void msgid(const struct concord_msg_id *id)
{
	printf(" %u/%" PRIu64 "/%" PRIu64, (unsigned)id->node, id->incarnation, id->seq);
}

static void print(const struct rec *r)
{
	printf("%u %u", (unsigned)r->type, (unsigned)r->tag);
	switch (r->type) {
	case T_WELCOME:
		printf(" %u", (unsigned)r->version);
		member(&r->self);
		printf(" %u %u %u", (unsigned)r->window, (unsigned)r->max_payload, (unsigned)r->max_queue);
		str(r->name);
		break;
	case T_REPLY:
		printf(" %u", (unsigned)r->code);
		str(r->text);
		break;
	case T_VIEW:
		str(r->group);
		view(&r->view);
		members(r->members, r->n_members);
		printf(" %zu", r->n_changes);
		for (size_t i = 0; i < r->n_changes; i++) {
			member(&r->changes[i].member);
			printf(" %d", r->changes[i].kind);
			str(r->changes[i].reason);
		}
		break;
	case T_MESSAGE:
		str(r->group);
		view(&r->view);
		member(&r->from);
		printf(" %d %d", r->order, r->direct);
		msgid(&r->id);
		hex(r->payload, r->len);
		break;
	case T_TX:
		member(&r->from);
		printf(" %d %" PRIu64, r->order, r->tx);
		msgid(&r->id);
		printf(" %zu", r->n_parts);
		for (size_t i = 0; i < r->n_parts; i++) {
			str(r->parts[i].group);
			hex(r->parts[i].payload, r->parts[i].len);
		}
		break;
	case T_BARRIER_DONE:
		str(r->group);
		str(r->barrier);
		printf(" %d", r->failed);
		str(r->text);
		members(r->members, r->n_members);
		break;
	case T_SEND_FAILED:
		printf(" %u", (unsigned)r->code);
		msgid(&r->id);
		str(r->text);
		break;
	case T_CREDIT:
		printf(" %u", (unsigned)r->count);
		break;
	case T_GROUP_LIST:
		printf(" %zu", r->n_groups);
		for (size_t i = 0; i < r->n_groups; i++) {
			str(r->groups[i].group);
			view(&r->groups[i].view);
			printf(" %u", (unsigned)r->groups[i].members);
		}
		break;
	case T_MEMBER_LIST:
		str(r->group);
		view(&r->view);
		members(r->members, r->n_members);
		break;
	}
	putchar('\n');
}

int main(void)
{
	static uint8_t p[WIRE_MAX_PACKET + 64];
	uint8_t lb[4];
	while (fread(lb, 1, 4, stdin) == 4) {
		size_t n = (size_t)lb[0] | (size_t)lb[1] << 8 | (size_t)lb[2] << 16 | (size_t)lb[3] << 24;
		if (n > sizeof p || fread(p, 1, n, stdin) != n)
			return 2;
		/* A copy of exactly n bytes, so that a read past it is caught. */
		uint8_t *b = malloc(n ? n : 1);
		for (size_t i = 0; i < n; i++)
			b[i] = p[i];
		const uint8_t *q = b;
		size_t left = n;
		int bad = n == 0;
		while (!bad && left > 0) {
			size_t len = left < WIRE_HEADER ? 0 : (size_t)q[0] | (size_t)q[1] << 8 | (size_t)q[2] << 16 | (size_t)q[3] << 24;
			struct rec scratch;
			size_t need;
			if (len < WIRE_HEADER || len > left || wire_decode(q, len, &scratch, NULL, &need) < 0) {
				bad = 1;
				break;
			}
			struct rec *r = malloc(sizeof *r + need);
			size_t need2;
			if (wire_decode(q, len, r, (char *)(r + 1), &need2) < 0 || need2 != need)
				abort(); /* the two passes disagree */
			print(r);
			free(r);
			q += len;
			left -= len;
		}
		free(b);
		puts(bad ? "malformed" : "end");
		fflush(stdout);
	}
	return 0;
}
