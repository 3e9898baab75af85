/*
 * mcp_call: tools/call on an MCP server: the server's list of calls, queued
 * (id 0) or sent, each with its time-out timer; progress; cancellation; and
 * the answers. See mcp_int.h for the rules the list follows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/elicit.h"
#include "engine/mcp_int.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

static void mcp_call__unlink_call(mcp_call *c)
{
    mcp_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* The engine still reads the tool_def of a call just after it ended or was
 * cancelled, so retired lists are freed on the next loop turn, not here. */
void mcp__call_free(mcp_call *c)
{
    mcp_server *s = c->srv;
    mcp_call__unlink_call(c);
    event_free(c->timer);
    json_decref(c->elicit_id);
    free(c->tool);
    json_decref(c->args);
    free(c);
    if (!s->calls && s->retired) mcp__timer(s->retire_ev, 0);
}

/* Ends a call with a result: the call is freed first, then on_done runs. */
static void mcp_call__finish(mcp_call *c, tool_status st, const char *text, size_t len,
                             const char *error)
{
    tool_callbacks cb = c->cb;
    void *ud = c->ud;
    bool lost = c->srv->calls_lost;
    mcp__call_free(c);
    tool_result r = {
        .status = st, .text = text, .text_len = len, .error = error, .server_lost = lost};
    cb.on_done(ud, &r);
}

void mcp__call_fail(mcp_call *c, tool_status st, const char *msg)
{
    mcp_call__finish(c, st, msg, strlen(msg), msg);
}

mcp_call *mcp__call_find(mcp_server *s, int64_t id)
{
    for (mcp_call *c = s->calls; c; c = c->next)
        if (c->id == id) return c;
    return NULL;
}

/* The list is searched again after each callback, which may change it. */
void mcp__calls_fail(mcp_server *s, bool queued, const char *msg)
{
    for (;;) {
        mcp_call *c = s->calls;
        while (c && (c->id == 0) != queued) c = c->next;
        if (!c) return;
        mcp__call_fail(c, TOOL_ERROR, msg);
    }
}

/* Tells the server a sent call is abandoned; a transport that is closed
 * refuses the notice, which is then not needed. */
static void mcp_call__cancelled_notice(mcp_call *c, const char *reason)
{
    if (c->id == 0) return;
    mcp__server_notify(c->srv, "notifications/cancelled",
                       json_pack("{s:I,s:s}", "requestId", (json_int_t)c->id, "reason", reason));
}

/* Sends a queued call; the request id is its progress token too. Fails it
 * when the server cannot take it; returns -1 then (c is freed). */
static int mcp_call__send_call(mcp_call *c)
{
    mcp_server *s = c->srv;
    int64_t id = s->next_id;
    json_t *params = json_pack("{s:s,s:O,s:{s:I}}", "name", c->tool, "arguments", c->args, "_meta",
                               "progressToken", (json_int_t)id);
    if (mcp__server_request(s, "tools/call", params) < 0) {
        char *msg = xasprintf("the MCP server '%s' is not taking input", s->cfg.name);
        mcp__call_fail(c, TOOL_ERROR, msg);
        free(msg);
        return -1;
    }
    c->id = id;
    return 0;
}

void mcp__calls_send_queued(mcp_server *s)
{
    for (;;) {
        mcp_call *c = s->calls;
        while (c && c->id != 0) c = c->next;
        if (!c) return;
        mcp_call__send_call(c);
    }
}

static void mcp_call__on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mcp_call *c = arg;
    mcp_server *s = c->srv;
    char *secs = mcp__seconds(c->timeout_ms);
    char *msg = xasprintf("timed out after %s", secs);
    bool was_sent = c->id != 0;
    mcp_call__cancelled_notice(c, msg);
    mcp__call_fail(c, TOOL_TIMEOUT, msg);
    free(msg);
    free(secs);
    /* A server that let a call time out may have stopped answering at all. */
    if (was_sent) mcp__server_ping(s);
}

void mcp__calls_on_progress(mcp_server *s, const json_t *params)
{
    const json_t *token = json_object_get(params, "progressToken");
    /* Queued calls have id 0, and no token was ever 0. */
    if (!json_is_integer(token) || json_integer_value(token) <= 0) return;
    mcp_call *c = mcp__call_find(s, json_integer_value(token));
    if (!c || !c->cb.on_progress) return;
    const json_t *total = json_object_get(params, "total");
    c->cb.on_progress(c->ud, json_number_value(json_object_get(params, "progress")),
                      json_is_number(total) ? json_number_value(total) : -1,
                      json_string_value(json_object_get(params, "message")));
}

void mcp__calls_on_response(mcp_server *s, const mcp_msg *m)
{
    int64_t id = m->id_int;
    mcp_call *c = id > 0 ? mcp__call_find(s, id) : NULL;
    if (!c) {
        /* A late answer to a call that was cancelled or timed out. */
        LOG(LOG_DEBUG, "mcp answer to no pending request", "server=%s id=%lld", s->cfg.name,
            (long long)id);
        return;
    }
    if (m->kind == MCP_MSG_ERROR) {
        char *t = mcp_msg_error_text(m);
        mcp__call_fail(c, TOOL_ERROR, t);
        free(t);
        return;
    }
    buf text;
    buf_init(&text, TOOL_RESULT_MAX);
    bool is_error = mcp_frame_result_text(m->result, &text);
    const char *str = text.data ? text.data : "";
    if (is_error)
        mcp_call__finish(c, TOOL_ERROR, str, text.len, *str ? str : "the tool reported an error");
    else
        mcp_call__finish(c, TOOL_OK, str, text.len, NULL);
    buf_cleanup(&text);
}

tool_call *mcp__call_start(tool_source *src, size_t i, const json_t *arguments, int64_t timeout_ms,
                           const tool_callbacks *cb, void *ud)
{
    mcp_server *s = (mcp_server *)src;
    mcp_call *c = xcalloc(1, sizeof *c);
    c->base.source = src;
    c->srv = s;
    c->tool = xstrdup(s->defs[i].tool);
    c->args = arguments ? json_deep_copy(arguments) : json_object();
    c->cb = *cb;
    c->ud = ud;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : s->cfg.timeout_ms;
    c->timer = evtimer_new(s->evb, mcp_call__on_timeout, c);
    c->next = s->calls;
    if (s->calls) s->calls->prev = c;
    s->calls = c;
    c->deadline_ms = clock_mono_ms() + c->timeout_ms;
    mcp__timer(c->timer, c->timeout_ms);

    if (s->state == MCP__READY) {
        if (mcp_call__send_call(c) != 0) return NULL;
    } else if (s->state == MCP__DOWN) {
        mcp__server_schedule_restart(s);
    }
    return &c->base;
}

void mcp__call_cancel(tool_call *tc)
{
    mcp_call *c = (mcp_call *)tc;
    /* A question still open is answered first, so the server's tool sees
     * it end before the call does. */
    if (c->elicit_id) mcp__call_answer(tc, "cancel", NULL);
    mcp_call__cancelled_notice(c, "the run stopped");
    mcp__call_free(c);
}

/* ---- questions (elicitation/create) ---- */

/* Answers the server's request id with {"action": action, "content"?}. */
static void mcp_call__elicit_result(mcp_server *s, const json_t *id, const char *action,
                                    const json_t *content)
{
    json_t *result = json_pack("{s:s}", "action", action);
    if (content) json_object_set_new(result, "content", json_deep_copy(content));
    size_t len;
    char *msg = mcp_frame_result(id, result, &len);
    mcp__server_send(s, msg, len);
}

/* The one call sent to s and not yet answered, or NULL when there is none
 * or more than one: a question does not say which call it belongs to, so
 * with several in flight nobody can tell whose it is. */
static mcp_call *mcp_call__only_sent(mcp_server *s)
{
    mcp_call *found = NULL;
    for (mcp_call *c = s->calls; c; c = c->next) {
        if (c->id == 0) continue;
        if (found) return NULL;
        found = c;
    }
    return found;
}

void mcp__calls_on_elicit(mcp_server *s, const mcp_msg *m)
{
    const char *mode = json_string_value(json_object_get(m->params, "mode"));
    if (mode && strcmp(mode, "form") != 0) {
        /* A URL question would send the person to a page chatplane never
         * shows: it is declined without asking (docs/mcp.md). */
        LOG(LOG_INFO, "mcp question declined: only form mode is supported", "server=%s",
            s->cfg.name);
        mcp_call__elicit_result(s, m->id, "decline", NULL);
        return;
    }
    const char *message = json_string_value(json_object_get(m->params, "message"));
    const json_t *schema = json_object_get(m->params, "requestedSchema");
    char err[ELICIT_ERR_MAX];
    if (!message) snprintf(err, sizeof err, "message must be a string");
    if (!message || elicit_schema_check(schema, err, sizeof err) != 0) {
        char *q = mcp__quoted(err, strlen(err));
        LOG(LOG_WARN, "mcp question refused", "server=%s error=%s", s->cfg.name, q);
        free(q);
        char *text = xasprintf("Invalid params: %s", err);
        size_t len;
        char *msg = mcp_frame_error(m->id, -32602, text, &len);
        free(text);
        mcp__server_send(s, msg, len);
        return;
    }
    mcp_call *c = mcp_call__only_sent(s);
    if (!c || c->elicit_id || !c->cb.on_input) {
        LOG(LOG_INFO, "mcp question declined: no single call in flight to ask for", "server=%s",
            s->cfg.name);
        mcp_call__elicit_result(s, m->id, "decline", NULL);
        return;
    }
    /* The person's time is not the tool's: its time-out stands still. */
    c->elicit_id = json_incref(m->id);
    c->remaining_ms = c->deadline_ms - clock_mono_ms();
    if (c->remaining_ms < 0) c->remaining_ms = 0;
    event_del(c->timer);
    c->cb.on_input(c->ud, message, schema);
}

void mcp__call_answer(tool_call *tc, const char *action, const json_t *content)
{
    mcp_call *c = (mcp_call *)tc;
    if (!c->elicit_id) return;
    json_t *id = c->elicit_id;
    c->elicit_id = NULL;
    mcp_call__elicit_result(c->srv, id, action, content);
    json_decref(id);
    c->deadline_ms = clock_mono_ms() + c->remaining_ms;
    mcp__timer(c->timer, c->remaining_ms);
}
