/*
 * mcp_stdio: the stdio transport of the MCP client (mcp_transport.h). Each
 * connection is a child process (mcp_proc.h) driven by non-blocking pipes
 * on the event loop: messages go to its stdin and come from its stdout one
 * per line (at most MCP_LINE_MAX bytes, mcp_frame's reader), its stderr is
 * logged line by line, and when its stdout ends its exit status says how
 * the connection ended.
 *
 * A child killed while still running (a server that stopped answering, a
 * failed start) is reaped in the background by a reaper that the
 * transports of one group share.
 */
#ifndef CHATPLANE_MCP_STDIO_H
#define CHATPLANE_MCP_STDIO_H

#include "engine/mcp_config.h"
#include "engine/mcp_transport.h"

struct event_base;

typedef struct mcp_stdio_reaper mcp_stdio_reaper;

/* A reaper on base with one reference; each transport given it takes one
 * more. */
mcp_stdio_reaper *mcp_stdio_reaper_new(struct event_base *base);
/* Drops a reference; the last one frees it. */
void mcp_stdio_reaper_release(mcp_stdio_reaper *r);

/*
 * A stdio transport for the command, args and env of cfg (copied: cfg need
 * not outlive it), reaping through r. The child's environment is computed
 * here, once, from chatplane's own (mcp_proc_env).
 */
mcp_transport *mcp_stdio_new(struct event_base *base, const mcp_server_config *cfg,
                             mcp_stdio_reaper *r);

#endif
