#include "core/aisdk.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/agentproto.h"
#include "lib/xmalloc.h"

static void aisdk__err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void aisdk__err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- the request body ---- */

/* The answered approval of an assistant message's tool parts: the last
 * part in state approval-responded. */
static int aisdk__approval(const json_t *parts, size_t i, aisdk_input *out, char *err,
                           size_t errlen)
{
    size_t k;
    const json_t *p;
    const json_t *found = NULL;
    size_t at = 0;
    json_array_foreach(parts, k, p)
    {
        const char *state = json_string_value(json_object_get(p, "state"));
        if (state && strcmp(state, "approval-responded") == 0) {
            found = p;
            at = k;
        }
    }
    if (!found) {
        aisdk__err(err, errlen,
                   "messages[%zu] is an assistant message without an answered approval: "
                   "nothing to run",
                   i);
        return -1;
    }
    const json_t *a = json_object_get(found, "approval");
    const char *id = json_string_value(json_object_get(a, "id"));
    const json_t *approved = json_object_get(a, "approved");
    const json_t *reason = json_object_get(a, "reason");
    if (!id || !*id || !json_is_boolean(approved)) {
        aisdk__err(err, errlen,
                   "messages[%zu].parts[%zu].approval must have an id and approved (a boolean)", i,
                   at);
        return -1;
    }
    if (reason && !json_is_null(reason) && !json_is_string(reason)) {
        aisdk__err(err, errlen, "messages[%zu].parts[%zu].approval.reason must be a string", i, at);
        return -1;
    }
    out->approval_id = xstrdup(id);
    out->approved = json_is_true(approved);
    out->reason = json_is_string(reason) ? xstrdup(json_string_value(reason)) : NULL;
    return 0;
}

int aisdk_input_read(const json_t *in, aisdk_input *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(in)) {
        aisdk__err(err, errlen, "the body must be an object");
        return -1;
    }
    const char *id = json_string_value(json_object_get(in, "id"));
    if (!agentproto_thread_valid(id)) {
        aisdk__err(err, errlen, "id must be 1 to %d characters of [A-Za-z0-9._:-]",
                   AGENTPROTO_THREAD_MAX);
        return -1;
    }
    out->chat_id = xstrdup(id);
    const json_t *trigger = json_object_get(in, "trigger");
    const char *t = json_string_value(trigger);
    if (trigger &&
        !(t && (strcmp(t, "submit-message") == 0 || strcmp(t, "regenerate-message") == 0))) {
        aisdk__err(err, errlen, "trigger must be submit-message or regenerate-message");
        return -1;
    }
    out->regenerate = t && strcmp(t, "regenerate-message") == 0;
    const json_t *mode = json_object_get(in, "mode");
    if (mode && !json_is_null(mode) && !json_is_string(mode)) {
        aisdk__err(err, errlen, "mode must be a string");
        return -1;
    }
    out->mode = json_is_string(mode) ? xstrdup(json_string_value(mode)) : NULL;
    const json_t *msgs = json_object_get(in, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        aisdk__err(err, errlen, "messages must be a non-empty list");
        return -1;
    }
    if (json_array_size(msgs) > AISDK_MESSAGES_MAX) {
        aisdk__err(err, errlen, "messages holds more than %d messages", AISDK_MESSAGES_MAX);
        return -1;
    }
    size_t i = json_array_size(msgs) - 1;
    const json_t *m = json_array_get(msgs, i);
    const char *role = json_string_value(json_object_get(m, "role"));
    const json_t *parts = json_object_get(m, "parts");
    if (!role) {
        aisdk__err(err, errlen, "messages[%zu] must be an object with a role", i);
        return -1;
    }
    if (strcmp(role, "user") == 0) {
        char where[64];
        snprintf(where, sizeof where, "messages[%zu].parts", i);
        out->message = agentproto_text(parts, where, err, errlen);
        return out->message ? 0 : -1;
    }
    if (strcmp(role, "assistant") == 0 && !out->regenerate) {
        if (!json_is_array(parts)) {
            aisdk__err(err, errlen, "messages[%zu].parts must be a list", i);
            return -1;
        }
        return aisdk__approval(parts, i, out, err, errlen);
    }
    aisdk__err(err, errlen,
               "the last message must be a user message, or an assistant message "
               "with an answered approval");
    return -1;
}

int aisdk_input_parse(const char *text, size_t len, aisdk_input *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_t *in = agentproto_load(text, len, err, errlen);
    if (!in) return -1;
    int rc = aisdk_input_read(in, out, err, errlen);
    json_decref(in);
    return rc;
}

void aisdk_input_cleanup(aisdk_input *in)
{
    free(in->chat_id);
    free(in->message);
    free(in->mode);
    free(in->approval_id);
    free(in->reason);
    memset(in, 0, sizeof *in);
}

/* ---- chunks ---- */

void aisdk_xlate_init(aisdk_xlate *x, const char *wait_approval)
{
    memset(x, 0, sizeof *x);
    x->wait_approval = wait_approval ? xstrdup(wait_approval) : NULL;
    x->decided = json_array();
    x->pending = json_array();
    x->denied = json_array();
}

void aisdk_xlate_decided(aisdk_xlate *x, const char *approval_id)
{
    json_array_append_new(x->decided, json_string(approval_id));
}

void aisdk_xlate_cleanup(aisdk_xlate *x)
{
    free(x->wait_approval);
    json_decref(x->decided);
    free(x->text_id);
    free(x->tool_status);
    free(x->tool_error);
    json_decref(x->pending);
    json_decref(x->denied);
    memset(x, 0, sizeof *x);
}

static json_t *aisdk__chunk(const char *type)
{
    return json_pack("{s:s}", "type", type);
}

static int aisdk__simple(buf *out, const char *type)
{
    return agentproto_emit(out, aisdk__chunk(type));
}

/* A data part carrying the chatplane event. */
static int aisdk__data(buf *out, const char *name, const json_t *ev, bool transient)
{
    json_t *c = aisdk__chunk(name);
    json_object_set(c, "data", (json_t *)ev);
    if (transient) json_object_set_new(c, "transient", json_true());
    return agentproto_emit(out, c);
}

static int aisdk__close_text(aisdk_xlate *x, buf *out)
{
    if (!x->text_id) return 0;
    json_t *c = aisdk__chunk("text-end");
    json_object_set_new(c, "id", json_string(x->text_id));
    free(x->text_id);
    x->text_id = NULL;
    return agentproto_emit(out, c);
}

static int aisdk__close_step(aisdk_xlate *x, buf *out)
{
    int rc = aisdk__close_text(x, out);
    if (rc != 0 || !x->step_open) return rc;
    x->step_open = false;
    return aisdk__simple(out, "finish-step");
}

static int aisdk__open_text(aisdk_xlate *x, const char *id, buf *out)
{
    if (x->text_id && strcmp(x->text_id, id) == 0) return 0;
    int rc = aisdk__close_text(x, out);
    if (rc != 0) return rc;
    x->text_id = xstrdup(id);
    json_t *c = aisdk__chunk("text-start");
    json_object_set_new(c, "id", json_string(id));
    return agentproto_emit(out, c);
}

static int aisdk__delta(const char *id, const char *text, buf *out)
{
    if (!text || !*text) return 0;
    json_t *c = aisdk__chunk("text-delta");
    json_object_set_new(c, "id", json_string(id));
    json_object_set_new(c, "delta", json_string(text));
    return agentproto_emit(out, c);
}

/* The tool calls of an assistant message become dynamic tool parts with
 * their input (the arguments as JSON, or the text when they are not). */
static int aisdk__tool_calls(aisdk_xlate *x, const json_t *calls, buf *out)
{
    agentproto_ids_add_calls(x->pending, calls);
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "id"));
        const json_t *fn = json_object_get(c, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        if (!id) continue;
        json_t *input = args && *args ? json_loads(args, JSON_DECODE_ANY, NULL) : json_object();
        if (!input) input = json_string(args);
        json_t *ch = aisdk__chunk("tool-input-available");
        json_object_set_new(ch, "toolCallId", json_string(id));
        json_object_set_new(ch, "toolName", json_string(name ? name : ""));
        json_object_set_new(ch, "input", input);
        json_object_set_new(ch, "dynamic", json_true());
        int rc = agentproto_emit(out, ch);
        if (rc != 0) return rc;
    }
    return 0;
}

static int aisdk__tool_result(aisdk_xlate *x, const json_t *ev, buf *out)
{
    const char *call = json_string_value(json_object_get(ev, "tool_call_id"));
    if (!call) return 0;
    agentproto_ids_drop(x->pending, call);
    if (agentproto_ids_has(x->denied, call)) return 0; /* tool-output-denied went out */
    const char *content = json_string_value(json_object_get(ev, "content"));
    bool ok = !x->tool_status || strcmp(x->tool_status, "ok") == 0;
    json_t *c;
    if (ok) {
        c = aisdk__chunk("tool-output-available");
        json_object_set_new(c, "toolCallId", json_string(call));
        json_object_set_new(c, "output", json_string(content ? content : ""));
    } else {
        c = aisdk__chunk("tool-output-error");
        json_object_set_new(c, "toolCallId", json_string(call));
        const char *e = x->tool_error ? x->tool_error : content;
        json_object_set_new(c, "errorText", json_string(e ? e : x->tool_status));
    }
    json_object_set_new(c, "dynamic", json_true());
    free(x->tool_status);
    free(x->tool_error);
    x->tool_status = x->tool_error = NULL;
    return agentproto_emit(out, c);
}

static int aisdk__message(aisdk_xlate *x, const json_t *ev, buf *out)
{
    const char *role = json_string_value(json_object_get(ev, "role"));
    const char *id = json_string_value(json_object_get(ev, "message_id"));
    const char *content = json_string_value(json_object_get(ev, "content"));
    if (!role || !id) return 0;
    if (strcmp(role, "tool") == 0) {
        int rc = aisdk__close_text(x, out);
        return rc ? rc : aisdk__tool_result(x, ev, out);
    }
    if (strcmp(role, "assistant") != 0) return 0;
    int rc = 0;
    if (x->text_id && strcmp(x->text_id, id) == 0) {
        rc = aisdk__close_text(x, out);
    } else if (content && *content) {
        /* The run's token events were compacted away: the whole text. */
        rc = aisdk__open_text(x, id, out);
        if (rc == 0) rc = aisdk__delta(id, content, out);
        if (rc == 0) rc = aisdk__close_text(x, out);
    }
    return rc ? rc : aisdk__tool_calls(x, json_object_get(ev, "tool_calls"), out);
}

/* The stream's last chunks: finish, or what ends it otherwise, and
 * [DONE]. */
static int aisdk__end(aisdk_xlate *x, json_t *last, buf *out)
{
    x->ended = true;
    int rc = agentproto_emit(out, last);
    if (rc == 0) rc = buf_append_str(out, "data: [DONE]\n\n");
    return rc ? rc : 1;
}

static int aisdk__approval_requested(aisdk_xlate *x, const json_t *ev, buf *out)
{
    const char *id = json_string_value(json_object_get(ev, "approval_id"));
    if (!id) return 0;
    int rc = aisdk__close_text(x, out);
    if (rc != 0) return rc;
    json_t *c = aisdk__chunk("tool-approval-request");
    json_object_set_new(c, "approvalId", json_string(id));
    json_t *call = json_array_get(x->pending, 0);
    json_object_set(c, "toolCallId", call ? call : json_object_get(ev, "execution_id"));
    rc = agentproto_emit(out, c);
    if (rc != 0) return rc;
    if (agentproto_ids_has(x->decided, id)) return 0;
    /* The run waits for the person: the client answers with its next
     * request, and this stream ends. */
    rc = aisdk__close_step(x, out);
    return rc ? rc
              : aisdk__end(x,
                           json_pack("{s:s, s:s}", "type", "finish", "finishReason", "tool-calls"),
                           out);
}

static int aisdk__approval_decided(aisdk_xlate *x, const json_t *ev, buf *out)
{
    const char *decision = json_string_value(json_object_get(ev, "decision"));
    json_t *call = json_array_get(x->pending, 0);
    if (!decision || strcmp(decision, "approved") == 0 || !call) return 0;
    json_array_append(x->denied, call);
    json_t *c = aisdk__chunk("tool-output-denied");
    json_object_set(c, "toolCallId", call);
    return agentproto_emit(out, c);
}

static int aisdk__stopped(aisdk_xlate *x, const json_t *ev, buf *out)
{
    int rc = aisdk__close_step(x, out);
    if (rc == 0) rc = aisdk__data(out, "data-chatplane-stop", ev, false);
    if (rc != 0) return rc;
    const char *reason = json_string_value(json_object_get(ev, "reason"));
    const char *detail = json_string_value(json_object_get(ev, "detail"));
    if (!reason) reason = "";
    if (!detail || !*detail) detail = reason;
    static const char *const errors[] = {"llm_error", "max_retries", "interrupted", "owner_budget"};
    for (size_t i = 0; i < sizeof errors / sizeof *errors; i++)
        if (strcmp(reason, errors[i]) == 0)
            return aisdk__end(x, json_pack("{s:s, s:s}", "type", "error", "errorText", detail),
                              out);
    if (strcmp(reason, "user_stopped") == 0 || strcmp(reason, "approval_timeout") == 0)
        return aisdk__end(x, json_pack("{s:s, s:s}", "type", "abort", "reason", detail), out);
    /* A budget stop cut the answer short; everything else ended it. */
    bool budget = strncmp(reason, "max_", 4) == 0;
    return aisdk__end(
        x, json_pack("{s:s, s:s}", "type", "finish", "finishReason", budget ? "length" : "stop"),
        out);
}

static int aisdk__status(aisdk_xlate *x, const json_t *ev, buf *out)
{
    const char *status = json_string_value(json_object_get(ev, "status"));
    if (status && strcmp(status, "thinking") == 0) {
        int rc = aisdk__close_step(x, out);
        if (rc == 0) rc = aisdk__simple(out, "start-step");
        if (rc != 0) return rc;
        x->step_open = true;
    }
    return aisdk__data(out, "data-chatplane-status", ev, true);
}

/* While a continuation waits for its approval's decision, only the tool
 * calls are followed; the decision itself goes out (a denial is a chunk). */
static bool aisdk__waiting(aisdk_xlate *x, const char *type, const json_t *ev)
{
    if (!x->wait_approval) return false;
    const char *id = json_string_value(json_object_get(ev, "approval_id"));
    if (strcmp(type, "approval_decided") == 0 && id && strcmp(id, x->wait_approval) == 0) {
        free(x->wait_approval);
        x->wait_approval = NULL;
        return false;
    }
    if (strcmp(type, "run_stopped") == 0) return false;
    if (strcmp(type, "message") == 0) {
        const char *role = json_string_value(json_object_get(ev, "role"));
        const char *call = json_string_value(json_object_get(ev, "tool_call_id"));
        if (role && strcmp(role, "assistant") == 0)
            agentproto_ids_add_calls(x->pending, json_object_get(ev, "tool_calls"));
        else if (call)
            agentproto_ids_drop(x->pending, call);
    }
    return true;
}

static int aisdk__begin(aisdk_xlate *x, const json_t *ev, buf *out)
{
    if (x->started) return 0;
    x->started = true;
    json_t *c = aisdk__chunk("start");
    const json_t *run = json_object_get(ev, "run_id");
    if (json_is_string(run)) json_object_set(c, "messageId", (json_t *)run);
    return agentproto_emit(out, c);
}

int aisdk_xlate_event(aisdk_xlate *x, const json_t *ev, buf *out)
{
    if (x->ended) return 1;
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type || aisdk__waiting(x, type, ev)) return 0;
    int rc = aisdk__begin(x, ev, out);
    if (rc != 0) return rc;
    if (strcmp(type, "message") == 0) return aisdk__message(x, ev, out);
    if (strcmp(type, "status") == 0) return aisdk__status(x, ev, out);
    if (strcmp(type, "token") == 0) {
        const char *id = json_string_value(json_object_get(ev, "message_id"));
        if (!id) return 0;
        rc = aisdk__open_text(x, id, out);
        return rc ? rc : aisdk__delta(id, json_string_value(json_object_get(ev, "text")), out);
    }
    if (strcmp(type, "tool_finished") == 0) {
        const char *st = json_string_value(json_object_get(ev, "status"));
        const char *e = json_string_value(json_object_get(ev, "error"));
        free(x->tool_status);
        free(x->tool_error);
        x->tool_status = st ? xstrdup(st) : NULL;
        x->tool_error = e ? xstrdup(e) : NULL;
        return 0;
    }
    if (strcmp(type, "error") == 0) {
        const char *id = json_string_value(json_object_get(ev, "message_id"));
        if (id && x->text_id && strcmp(id, x->text_id) == 0) return aisdk__close_text(x, out);
        return 0;
    }
    if (strcmp(type, "budget") == 0) return aisdk__data(out, "data-chatplane-budget", ev, true);
    if (strcmp(type, "guardrail") == 0)
        return aisdk__data(out, "data-chatplane-guardrail", ev, true);
    if (strcmp(type, "approval_requested") == 0) return aisdk__approval_requested(x, ev, out);
    if (strcmp(type, "approval_decided") == 0) return aisdk__approval_decided(x, ev, out);
    if (strcmp(type, "run_stopped") == 0) return aisdk__stopped(x, ev, out);
    return 0;
}

void aisdk_xlate_unrecorded(aisdk_xlate *x, buf *out)
{
    if (x->ended) return;
    if (!x->started) {
        x->started = true;
        if (aisdk__simple(out, "start") != 0) return;
    }
    if (aisdk__close_step(x, out) != 0) return;
    aisdk__end(x, json_pack("{s:s, s:s}", "type", "error", "errorText", AISDK_UNRECORDED_MESSAGE),
               out);
}
