/*
 * mcp_int: what the parts of the MCP client share, and nothing outside the
 * module includes. The client is three parts over a transport
 * (mcp_transport.h):
 *
 * - mcp_server.c: one server's life and handshake. DOWN (no connection)
 *   -> STARTING (connected; initialize, then tools/list page by page) ->
 *   READY (calls are sent) -> and when its transport says no more messages
 *   will come, EXITING (learning how it ended) -> DOWN again. Restarts with
 *   backoff, liveness pings, and the dispatch of every message it receives.
 * - mcp_call.c: tools/call: the queue of calls, progress, cancellation and
 *   time-outs. A call made while the server is STARTING or EXITING waits in
 *   the queue; a call made while it is DOWN waits too and schedules a
 *   restart after the backoff. Every call, queued or sent, has its own
 *   time-out timer from the moment it is made.
 * - mcp_group.c: the servers of one mcp_add_servers, built from the
 *   configuration, started together and stopped together.
 *
 * Ownership: the toolset owns each server (its tool_source); the server
 * owns its transport. A call belongs to its server until it ends: its
 * on_done runs after it is unlinked and freed, so a callback may do
 * anything, including making new calls. The servers of one group share it,
 * through which the first server freed stops every connection at once, so
 * shutdown waits once, not once per server.
 *
 * Tool definitions: the engine keeps a tool_def pointer for as long as its
 * call is in flight, so a list replaced while calls are in flight is kept
 * (retired) until the server has no call left.
 */
#ifndef CHATPLANE_MCP_INT_H
#define CHATPLANE_MCP_INT_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/mcp.h"
#include "engine/mcp_config.h"
#include "engine/mcp_frame.h"
#include "engine/mcp_transport.h"
#include "engine/tool_source.h"
#include "lib/log.h"

/* What one server may write to chatplane's log (docs/mcp.md, Log limits): per
 * stream (its stderr; its log notifications and unreadable lines), a burst
 * of MCP_LOG_BURST lines, then MCP_LOG_RATE a second; what is dropped is
 * summed up in one line per MCP_LOG_SUMMARY_MS. A line is cut at
 * MCP_LOG_LINE_MAX bytes. */
#define MCP_LOG_RATE       20
#define MCP_LOG_BURST      200
#define MCP_LOG_SUMMARY_MS 10000
#define MCP_LOG_LINE_MAX   1024

typedef enum mcp__state { MCP__DOWN, MCP__STARTING, MCP__READY, MCP__EXITING } mcp__state;

typedef struct mcp_server mcp_server;
typedef struct mcp_call mcp_call;

/* The servers of one mcp_add_servers. */
typedef struct mcp_group {
    int refs;
    mcp_server **servers;
    size_t nservers;
    bool stopped;
} mcp_group;

struct mcp_call {
    tool_call base; /* first: tool_call_cancel finds the source through it */
    mcp_server *srv;
    int64_t id; /* the request id once sent; 0 while queued */
    char *tool;
    json_t *args;
    tool_callbacks cb;
    void *ud;
    int64_t timeout_ms;
    int64_t deadline_ms; /* monotonic: when the time-out fires */
    struct event *timer;
    bool resent; /* sent again after the server forgot its session */
    /* The id of the server's elicitation/create request waiting for the
     * person (owned), or NULL; while it waits, the time-out stands still
     * with remaining_ms left. */
    json_t *elicit_id;
    int64_t remaining_ms;
    mcp_call *prev, *next;
};

typedef struct mcp__retired {
    tool_def *defs;
    size_t n;
    struct mcp__retired *next;
} mcp__retired;

struct mcp_server {
    tool_source base; /* first */
    mcp_group *group;
    struct event_base *evb;
    mcp_server_config cfg;
    mcp_transport *tr;

    mcp__state state;
    bool instance_ready; /* this connection has finished its first listing */
    bool ever_ready;
    bool settled; /* the first start listed its tools or failed */
    char *error;  /* why the last start failed; NULL when it did not */
    int64_t started_ms;

    int64_t next_id;
    int64_t init_id, list_id, ping_id;
    struct event *hs_ev;   /* time-out of initialize or a tools/list page */
    struct event *ping_ev; /* time-out of a liveness ping */
    json_t *listing;       /* tools gathered from the pages so far */
    int list_pages;
    bool relist;

    tool_def *defs;
    size_t ndefs;
    mcp__retired *retired;
    struct event *retire_ev; /* frees the retired lists on the next loop turn */

    mcp_call *calls;
    int failures; /* starts in a row that ended early */
    int64_t down_ms;
    /* For the health (docs/health.md): starts after the first, the last
     * way the server failed, and since when it has been down (wall clock,
     * 0 while it works). */
    int starts, restarts;
    bool calls_lost; /* the calls failing now failed because the connection ended */
    char *last_error;
    int64_t down_since_wall_ms;
    struct event *restart_ev;

    log_limit log_limit;          /* its log notifications and unreadable lines */
    struct event *log_summary_ev; /* writes the summary of what log_limit dropped */
};

/* ---- helpers (mcp_server.c) ---- */

/* s as a double-quoted log value: quotes and backslashes escaped, control
 * characters shown as spaces. Caller frees. */
char *mcp__quoted(const char *s, size_t n);
/* Arms ev to fire once after ms. */
void mcp__timer(struct event *ev, int64_t ms);
/* "1.5 s"; caller frees. */
char *mcp__seconds(int64_t ms);
/* Whether a line of level from server output limited by l may be written
 * now. A dropped line is counted, and summary_ev armed for its summary,
 * which mcp__log_summary writes. Lines the log level hides anyway are
 * neither written nor counted. */
bool mcp__log_admit(log_limit *l, struct event *summary_ev, log_level level);
/* Writes the summary of the lines l dropped, if any: one warning naming
 * the server and the stream ("stderr", "messages"). */
void mcp__log_summary(log_limit *l, const char *server, const char *stream);

/* ---- the server (mcp_server.c) ---- */

/*
 * A server of group g on base, not started yet. Takes over cfg (the struct
 * is copied; its strings now belong to the server) and the transport t,
 * whose callbacks it sets.
 */
mcp_server *mcp__server_new(mcp_group *g, struct event_base *base, mcp_server_config *cfg,
                            mcp_transport *t);
/* Starts the connection and sends initialize; a failure is reported as the
 * server's start error, not returned. */
void mcp__server_start(mcp_server *s);
/* Sends a request; returns its id, or -1 when the transport refused it.
 * params is stolen (NULL: none). */
int64_t mcp__server_request(mcp_server *s, const char *method, json_t *params);
/* Sends a notification, if the transport takes it; params is stolen. */
void mcp__server_notify(mcp_server *s, const char *method, json_t *params);
/* Sends an encoded message (a response to the server's request), if the
 * transport takes it; msg is freed. */
void mcp__server_send(mcp_server *s, char *msg, size_t len);
/* A call waits for a server that is down: start it after the backoff. */
void mcp__server_schedule_restart(mcp_server *s);
/* Asks a READY server whether it still answers (after a call timed out). */
void mcp__server_ping(mcp_server *s);

/* ---- calls (mcp_call.c) ---- */

/* The tool_source call and cancel operations. */
tool_call *mcp__call_start(tool_source *src, size_t i, const json_t *arguments, int64_t timeout_ms,
                           const tool_callbacks *cb, void *ud);
void mcp__call_cancel(tool_call *tc);
/* Frees a call without calling back (the server is being freed). */
void mcp__call_free(mcp_call *c);
/* Ends a call with an error result msg; the call is freed, then on_done runs. */
void mcp__call_fail(mcp_call *c, tool_status st, const char *msg);
/* The call with request id id, or NULL. */
mcp_call *mcp__call_find(mcp_server *s, int64_t id);
/* Fails every sent call (queued == false) or every queued one (true). */
void mcp__calls_fail(mcp_server *s, bool queued, const char *msg);
/* Sends the queued calls of a server that just became READY. */
void mcp__calls_send_queued(mcp_server *s);
/* A response to a request that is not the handshake's nor a ping. */
void mcp__calls_on_response(mcp_server *s, const mcp_msg *m);
/* notifications/progress. */
void mcp__calls_on_progress(mcp_server *s, const json_t *params);
/* An elicitation/create request (m): asked of the person through the one
 * sent call's on_input, or answered at once (docs/mcp.md, Questions). */
void mcp__calls_on_elicit(mcp_server *s, const mcp_msg *m);
/* The tool_source answer operation. */
void mcp__call_answer(tool_call *tc, const char *action, const json_t *content);

/* ---- the group (mcp_group.c) ---- */

/* An empty group; mcp__server_new adds to it. */
mcp_group *mcp__group_new(void);
/* Stops the connections of every server of g at once (once). */
void mcp__group_stop(mcp_group *g);
/* s leaves g; the last server to leave frees it. */
void mcp__group_leave(mcp_group *g, mcp_server *s);

#endif
