/*
 * concord-chat: a small example of libconcord. It joins a process group,
 * prints the group's views and messages, and sends each line read from
 * standard input to the group, in agreed order.
 *
 *   cc -o concord-chat concord-chat.c $(pkg-config --cflags --libs concord)
 *   concord-chat [-c CONTEXT] [GROUP]
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <concord/group.h>

static const char *kinds[] = {"?", "joined", "left", "closed", "died", "removed", "lost", "merged"};

static void on_view(concord_group_t *h, const struct concord_view *v, void *userdata)
{
	(void)h;
	(void)userdata;
	printf("* %s: view %" PRIu64 ".%u, %zu members\n", v->group, v->id.seq, (unsigned)v->id.coordinator, v->n_members);
	for (size_t i = 0; i < v->n_changes; i++) {
		const struct concord_change *c = &v->changes[i];
		printf("*   %u/%u (pid %u) %s%s%s\n", (unsigned)c->member.node, (unsigned)c->member.client,
		       (unsigned)c->member.pid, kinds[c->kind < 8 ? c->kind : 0], *c->reason ? ": " : "", c->reason);
	}
}

static void on_message(concord_group_t *h, const struct concord_message *m, void *userdata)
{
	(void)h;
	(void)userdata;
	printf("%u/%u%s: %.*s\n", (unsigned)m->from.node, (unsigned)m->from.client, m->direct ? " (to you)" : "",
	       (int)m->len, (const char *)m->payload);
}

static void on_send_failed(concord_group_t *h, const struct concord_send_failure *f, void *userdata)
{
	(void)h;
	(void)userdata;
	fprintf(stderr, "concord-chat: message %u not delivered: %s (%s)\n", (unsigned)f->tag, strerror(-f->error), f->reason);
}

int main(int argc, char **argv)
{
	const char *context = NULL, *group = "chat";
	int opt;
	while ((opt = getopt(argc, argv, "c:")) != -1) {
		if (opt != 'c') {
			fprintf(stderr, "usage: concord-chat [-c CONTEXT] [GROUP]\n");
			return 2;
		}
		context = optarg;
	}
	if (optind < argc)
		group = argv[optind];

	struct concord_group_callbacks cb = {.view = on_view, .message = on_message, .send_failed = on_send_failed};
	concord_group_t *h;
	int rc = concord_group_open(&h, context, &cb, NULL);
	if (rc < 0) {
		fprintf(stderr, "concord-chat: open: %s\n", strerror(-rc));
		return 1;
	}
	struct concord_group_session s;
	concord_group_session(h, &s);
	printf("* cluster %s, I am %u/%u\n", s.cluster, (unsigned)s.self.node, (unsigned)s.self.client);
	if ((rc = concord_group_join(h, group)) < 0) {
		fprintf(stderr, "concord-chat: join %s: %s\n", group, strerror(-rc));
		concord_group_close(h);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	char *line = NULL;
	size_t cap = 0;
	int in_open = 1;
	for (;;) {
		/* Events the join read are already waiting: deliver them first. */
		if ((rc = concord_group_dispatch(h, CONCORD_DISPATCH_ALL)) < 0)
			break;
		struct pollfd p[2] = {{.fd = concord_group_fd(h), .events = POLLIN}, {.fd = in_open ? 0 : -1, .events = POLLIN}};
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (p[1].revents) {
			ssize_t n = getline(&line, &cap, stdin);
			if (n <= 0) {
				in_open = 0; /* end of input: keep printing until interrupted */
				continue;
			}
			if (line[n - 1] == '\n')
				n--;
			/* Blocks, reading the socket, while the window is full. */
			rc = concord_group_send(h, group, CONCORD_ORDER_AGREED, line, (size_t)n, CONCORD_SEND_BLOCK, NULL);
			if (rc < 0)
				fprintf(stderr, "concord-chat: send: %s\n", strerror(-rc));
		}
	}
	fprintf(stderr, "concord-chat: %s\n", strerror(-rc));
	free(line);
	concord_group_close(h);
	return 1;
}
