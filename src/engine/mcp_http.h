/*
 * mcp_http: the HTTP transports of the MCP client (mcp_transport.h;
 * docs/mcp.md, Remote servers).
 *
 * Streamable HTTP ("type": "http"): every message is its own POST to the
 * server's URL, answered with one JSON message or an SSE stream that may
 * carry the server's notifications and requests before the response. The
 * session id of initialize's answer and the negotiated protocol version go
 * on every later request. An answer stream cut before its response is
 * resumed with a GET carrying the id of the last event seen; after the
 * handshake a GET opens the server's own event stream, if it offers one.
 *
 * HTTP+SSE ("type": "sse", the older transport): a GET opens the event
 * stream, whose first event names the endpoint (same origin only) that
 * every message is POSTed to; every answer comes on the event stream.
 *
 * The transfers run on a libcurl multi handle driven by the event loop.
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
#define MCP_HTTP_DELETE_MS   1000 /* shutdown: the bounded wait for last notices and DELETEs */

/* Resuming a stream that ended early (docs/mcp.md, Resuming): the delay
 * the server's retry field asks for, else MCP_HTTP_RETRY_DEFAULT_MS
 * doubled each attempt, always within [MIN, CAP]; at most
 * MCP_HTTP_RESUME_MAX attempts in a row that bring no event. */
#define MCP_HTTP_RETRY_DEFAULT_MS 1000
#define MCP_HTTP_RETRY_MIN_MS     100
#define MCP_HTTP_RETRY_CAP_MS     10000
#define MCP_HTTP_RESUME_MAX       5
#define MCP_HTTP_ENDPOINT_MAX     2048 /* bytes of an HTTP+SSE endpoint event */

/* A transport for the url, headers, tls_verify and timeout of cfg (copied:
 * cfg need not outlive it). Logs a warning when tls_verify is off. */
mcp_transport *mcp_http_new(struct event_base *base, const mcp_server_config *cfg);
/* The id of the request whose 404 ended the last connection (the server
 * never ran it, so it may be sent again on a new session), or -1; reading
 * it forgets it. */
int64_t mcp_http_take_rejected(mcp_transport *t);
/* Whether the last connection ended with a 401. */
bool mcp_http_unauthorized(const mcp_transport *t);

/* The delay before attempt number attempt (1, 2, …) to resume a stream,
 * given the server's last retry field in ms (-1: none). Pure. */
int64_t mcp_http_retry_delay(int64_t server_ms, int attempt);
/* The URL where an HTTP+SSE server wants messages POSTed: ref, the len
 * bytes of its endpoint event (a relative or absolute URL), resolved
 * against base, the URL of its event stream. It must be on the same
 * origin (scheme, host and port) as base. Returns a new string, or NULL
 * with err saying why ("… is not on the origin of the event stream …"). */
char *mcp_http_endpoint(const char *base, const char *ref, size_t len, char *err, size_t errlen);

#endif
