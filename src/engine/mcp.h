/*
 * mcp: MCP servers over stdio as tool sources (docs/mcp.md, Protocol).
 *
 * Each configured server ("mcpServers" in the config file, the shape other
 * MCP clients use) becomes one tool source of the toolset. Its child
 * process is driven by non-blocking pipes on the event loop: the handshake,
 * tools/list (every page, again on notifications/tools/list_changed),
 * tools/call with a time-out, progress and cancellation. A server that
 * exits or stops answering is restarted, with backoff, for the next call;
 * a call in flight when it died fails with an error that says so.
 *
 * Tools are offered to the model as "<server>__<tool>" (tool_model_name).
 * A run sees the tools listed when it started; a server still starting then
 * contributes none to it.
 */
#ifndef CHATPLANE_MCP_H
#define CHATPLANE_MCP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/mcp_config.h"
#include "engine/toolset.h"

struct event_base;

#define MCP_START_WAIT_MS 5000       /* start-up waits this long for first listings */
#define MCP_LINE_MAX      (4u << 20) /* the longest message line a server may send */

/*
 * Adds a source to ts for each server of the "mcpServers" object, starts
 * them on base, then runs base (which must not be running yet) until every
 * server has listed its tools or failed, for at most wait_ms. A server that
 * cannot start is not an error here: the log and toolset_servers_json say
 * why, and the others work. Returns -1 with err filled, adding nothing, only
 * when the configuration is malformed.
 *
 * With any server configured, SIGPIPE is ignored from then on in the whole
 * process: a write to a server that just died must be an error, not the end
 * of chatplane.
 */
int mcp_add_servers(toolset *ts, struct event_base *base, const json_t *servers, int64_t wait_ms,
                    char *err, size_t errlen);

#endif
