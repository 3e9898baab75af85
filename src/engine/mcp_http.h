/*
 * mcp_http: the Streamable HTTP transport of the MCP client
 * (mcp_transport.h; docs/mcp.md, Remote servers). Every message is its own
 * POST to the server's URL, answered with one JSON message or an SSE
 * stream that may carry the server's notifications and requests before the
 * response. The session id of initialize's answer and the negotiated
 * protocol version go on every later request. The transfers run on a
 * libcurl multi handle driven by the event loop.
 *
 * How a connection ends: a 401 (the server wants credentials: the
 * transport is then "unauthorized", see mcp_http_unauthorized), a 404 for
 * the session (the server forgot it; the server logic initializes again),
 * or an initialize that could not be carried. A failed transfer of any
 * other request is reported as a JSON-RPC error answer to that request,
 * so only the call that made it fails.
 */
#ifndef CHATPLANE_MCP_HTTP_H
#define CHATPLANE_MCP_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/mcp_config.h"
#include "engine/mcp_transport.h"

struct event_base;

#define MCP_HTTP_MAX_ACTIVE  8    /* requests in flight at once per server */
#define MCP_HTTP_MAX_WAITING 256  /* messages waiting for a free slot */
#define MCP_HTTP_ERROR_BODY  2048 /* bytes of an error answer kept for its message */
#define MCP_HTTP_DELETE_MS   1000 /* shutdown: the bounded wait for the DELETEs */

/* A transport for the url, headers, tls_verify and timeout of cfg (copied:
 * cfg need not outlive it). Logs a warning when tls_verify is off. */
mcp_transport *mcp_http_new(struct event_base *base, const mcp_server_config *cfg);
/* The id of the request whose 404 ended the last connection (the server
 * never ran it, so it may be sent again on a new session), or -1; reading
 * it forgets it. */
int64_t mcp_http_take_rejected(mcp_transport *t);
/* Whether the last connection ended with a 401. */
bool mcp_http_unauthorized(const mcp_transport *t);

#endif
