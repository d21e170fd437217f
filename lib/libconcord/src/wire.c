/*
 * Encoding and decoding of groupwire records (lib/api/groupwire/doc.go).
 * All integers are little-endian, whatever the host's byte order.
 */
#include <string.h>

#include "wire.h"

/* ---- encoding ---- */

void enc_u8(struct enc *e, uint8_t v) { e->b[e->n++] = v; }

void enc_u16(struct enc *e, uint16_t v)
{
	e->b[e->n++] = (uint8_t)v;
	e->b[e->n++] = (uint8_t)(v >> 8);
}

void enc_u32(struct enc *e, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		e->b[e->n++] = (uint8_t)(v >> (8 * i));
}

void enc_u64(struct enc *e, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		e->b[e->n++] = (uint8_t)(v >> (8 * i));
}

void enc_header(struct enc *e, uint16_t type, uint32_t tag)
{
	e->n = 0;
	enc_u32(e, 0); /* length, by enc_finish */
	enc_u16(e, type);
	enc_u16(e, 0);
	enc_u32(e, tag);
}

void enc_str(struct enc *e, const char *s, size_t n)
{
	enc_u16(e, (uint16_t)n);
	memcpy(e->b + e->n, s, n);
	e->n += n;
}

void enc_member(struct enc *e, const struct concord_member *m)
{
	enc_u16(e, m->node);
	enc_u64(e, m->incarnation);
	enc_u32(e, m->client);
	enc_u32(e, m->pid);
	enc_u32(e, m->uid);
}

void enc_finish(struct enc *e, size_t extra)
{
	uint32_t n = (uint32_t)(e->n + extra);
	for (int i = 0; i < 4; i++)
		e->b[i] = (uint8_t)(n >> (8 * i));
}

/* ---- decoding ---- */

int wire_valid_utf8(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t k;        /* continuation bytes */
		uint8_t lo = 0x80, hi = 0xbf; /* bounds of the first one */
		if (c >= 0xc2 && c <= 0xdf)
			k = 1;
		else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			if (c == 0xe0)
				lo = 0xa0; /* no overlong forms */
			if (c == 0xed)
				hi = 0x9f; /* no surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			if (c == 0xf0)
				lo = 0x90;
			if (c == 0xf4)
				hi = 0x8f; /* nothing past U+10FFFF */
		} else
			return 0;
		if (n - i - 1 < k)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t j = 2; j <= k; j++)
			if (s[i + j] < 0x80 || s[i + j] > 0xbf)
				return 0;
		i += k + 1;
	}
	return 1;
}

struct dec {
	const uint8_t *p;
	size_t n;   /* bytes left */
	int bad;
	char *arena; /* NULL on the checking pass */
	size_t used;
};

static const uint8_t *take(struct dec *d, size_t n)
{
	if (d->bad || d->n < n) {
		d->bad = 1;
		return NULL;
	}
	const uint8_t *v = d->p;
	d->p += n;
	d->n -= n;
	return v;
}

/* alloc reserves n bytes, 8-aligned, of the arena: NULL on the checking pass. */
static void *alloc(struct dec *d, size_t n)
{
	size_t off = (d->used + 7) & ~(size_t)7;
	d->used = off + n;
	return d->arena ? d->arena + off : NULL;
}

static uint8_t u8(struct dec *d)
{
	const uint8_t *v = take(d, 1);
	return v ? v[0] : 0;
}

static uint16_t u16(struct dec *d)
{
	const uint8_t *v = take(d, 2);
	return v ? (uint16_t)(v[0] | v[1] << 8) : 0;
}

static uint32_t u32(struct dec *d)
{
	const uint8_t *v = take(d, 4);
	return v ? (uint32_t)v[0] | (uint32_t)v[1] << 8 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 24 : 0;
}

static uint64_t u64(struct dec *d)
{
	uint64_t lo = u32(d);
	return lo | (uint64_t)u32(d) << 32;
}

static int flag(struct dec *d)
{
	uint8_t v = u8(d);
	if (v > 1)
		d->bad = 1;
	return v;
}

static int order(struct dec *d)
{
	uint8_t v = u8(d);
	if (v > CONCORD_ORDER_SAFE)
		d->bad = 1;
	return v;
}

static uint16_t code(struct dec *d)
{
	uint16_t c = u16(d);
	if (c >= WIRE_CODES)
		d->bad = 1;
	return c;
}

/* str: a string of min..max bytes, UTF-8, without NUL. */
static const char *str(struct dec *d, size_t min, size_t max)
{
	size_t n = u16(d);
	const uint8_t *v = take(d, n);
	if (!v)
		return NULL;
	if (n < min || n > max || memchr(v, 0, n) || !wire_valid_utf8(v, n)) {
		d->bad = 1;
		return NULL;
	}
	char *s = alloc(d, n + 1);
	if (s) {
		memcpy(s, v, n);
		s[n] = 0;
	}
	return s;
}

static const char *name(struct dec *d) { return str(d, 1, CONCORD_GROUP_MAX_NAME); }

static const void *bytes(struct dec *d, size_t *len)
{
	uint32_t n = u32(d);
	if (n > CONCORD_GROUP_MAX_PAYLOAD) {
		d->bad = 1;
		return NULL;
	}
	const uint8_t *v = take(d, n);
	if (!v)
		return NULL;
	*len = n;
	void *out = alloc(d, n);
	if (out && n)
		memcpy(out, v, n);
	return out;
}

/* count reads a list length the rest of the body can hold at min bytes
 * an item, so that a forged count cannot make us allocate. */
static size_t count(struct dec *d, size_t min)
{
	uint64_t n = u32(d);
	if (!d->bad && n * min > d->n)
		d->bad = 1;
	return d->bad ? 0 : (size_t)n;
}

static void member(struct dec *d, struct concord_member *m)
{
	m->node = u16(d);
	m->incarnation = u64(d);
	m->client = u32(d);
	m->pid = u32(d);
	m->uid = u32(d);
}

static void view(struct dec *d, struct concord_view_id *v)
{
	v->seq = u64(d);
	v->coordinator = u16(d);
	v->changes = u32(d);
	v->branch = u64(d);
}

static void msgid(struct dec *d, struct concord_msg_id *id)
{
	id->node = u16(d);
	id->incarnation = u64(d);
	id->seq = u64(d);
}

static struct concord_member *members(struct dec *d, size_t *n)
{
	size_t c = count(d, 22);
	struct concord_member *ms = alloc(d, c * sizeof *ms), scratch;
	for (size_t i = 0; i < c && !d->bad; i++)
		member(d, ms ? &ms[i] : &scratch);
	*n = c;
	return ms;
}

int wire_decode(const uint8_t *p, size_t len, struct rec *r, char *arena, size_t *need)
{
	struct dec d = {.p = p + WIRE_HEADER, .n = len - WIRE_HEADER, .arena = arena};
	memset(r, 0, sizeof *r);
	r->type = (uint16_t)(p[4] | p[5] << 8);
	r->tag = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
	if (p[6] || p[7])
		return -1; /* flags */
	switch (r->type) {
	case T_WELCOME:
		r->version = u16(&d);
		member(&d, &r->self);
		r->window = u32(&d);
		r->max_payload = u32(&d);
		r->max_queue = u32(&d);
		r->name = str(&d, 0, CONCORD_GROUP_MAX_NAME);
		break;
	case T_REPLY:
		r->code = code(&d);
		r->text = str(&d, 0, WIRE_MAX_TEXT);
		break;
	case T_VIEW: {
		r->group = name(&d);
		view(&d, &r->view);
		r->members = members(&d, &r->n_members);
		size_t c = count(&d, 22 + 1 + 2);
		struct concord_change *cs = alloc(&d, c * sizeof *cs), scratch;
		for (size_t i = 0; i < c && !d.bad; i++) {
			struct concord_change *ch = cs ? &cs[i] : &scratch;
			member(&d, &ch->member);
			ch->kind = u8(&d);
			if (ch->kind < CONCORD_CHANGE_JOINED || ch->kind > CONCORD_CHANGE_MERGED)
				d.bad = 1;
			ch->reason = str(&d, 0, WIRE_MAX_TEXT);
		}
		r->changes = cs;
		r->n_changes = c;
		break;
	}
	case T_MESSAGE:
		r->group = name(&d);
		view(&d, &r->view);
		member(&d, &r->from);
		r->order = order(&d);
		r->direct = flag(&d);
		msgid(&d, &r->id);
		r->payload = bytes(&d, &r->len);
		break;
	case T_TX: {
		member(&d, &r->from);
		r->order = order(&d);
		r->tx = u64(&d);
		msgid(&d, &r->id);
		size_t c = count(&d, 2 + 1 + 4);
		struct concord_tx_part *ps = alloc(&d, c * sizeof *ps), scratch;
		for (size_t i = 0; i < c && !d.bad; i++) {
			struct concord_tx_part *pt = ps ? &ps[i] : &scratch;
			pt->group = name(&d);
			pt->payload = bytes(&d, &pt->len);
		}
		r->parts = ps;
		r->n_parts = c;
		break;
	}
	case T_BARRIER_DONE:
		r->group = name(&d);
		r->barrier = name(&d);
		r->failed = flag(&d);
		r->text = str(&d, 0, WIRE_MAX_TEXT);
		r->members = members(&d, &r->n_members);
		break;
	case T_SEND_FAILED:
		r->code = code(&d);
		msgid(&d, &r->id);
		r->text = str(&d, 0, WIRE_MAX_TEXT);
		break;
	case T_CREDIT:
		r->count = u32(&d);
		break;
	case T_GROUP_LIST: {
		size_t c = count(&d, 2 + 1 + 22 + 4);
		struct concord_group_info *gs = alloc(&d, c * sizeof *gs), scratch;
		for (size_t i = 0; i < c && !d.bad; i++) {
			struct concord_group_info *g = gs ? &gs[i] : &scratch;
			g->group = name(&d);
			view(&d, &g->view);
			g->members = u32(&d);
		}
		r->groups = gs;
		r->n_groups = c;
		break;
	}
	case T_MEMBER_LIST:
		r->group = name(&d);
		view(&d, &r->view);
		r->members = members(&d, &r->n_members);
		break;
	default:
		/* Requests, and types version 1 does not know. */
		return -1;
	}
	if (d.bad || d.n > 0)
		return -1;
	*need = d.used;
	return 0;
}
