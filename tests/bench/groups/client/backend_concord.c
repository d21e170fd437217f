/*
 * STUB, not built yet: groupbench's backend over Concord's process groups
 * (libconcord, <concord/group.h>), to be written once that library exists
 * (issue 10). The groups bench (../main.go) builds only backend_cpg.c
 * today; add a "concord" entry to its backends list when this file is done,
 * so every figure gets a Concord row beside CPG's from the same run.
 *
 * It must implement backend.h exactly as backend_cpg.c does:
 *   gb_name      "concord"
 *   gb_open      open a session on the local node's socket (default
 *                cluster context) and join the group; NULL + err on failure
 *   gb_fd        the session's poll fd (readable = events to dispatch)
 *   gb_dispatch  deliver what is ready without blocking: messages through
 *                ev->deliver (own messages included), membership changes
 *                through ev->view with the new view's member count
 *   gb_send      one message in AGREED (total) order; GB_AGAIN for the
 *                library's would-block answer (never drop, never block)
 *   gb_close     leave and close the session
 * Link flags then come from pkg-config (libconcord), and the library must
 * be installed in the nodes (the Concord .deb and its -dev package).
 */
#error "backend_concord.c is a stub: libconcord does not exist yet"
