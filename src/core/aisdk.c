#include "core/aisdk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/agentproto.h"
#include "lib/xmalloc.h"

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
        agentproto_err(err, errlen,
                       "messages[%zu] is an assistant message without an answered approval: "
                       "nothing to run",
                       i);
        return -1;
    }
    const json_t *a = json_object_get(found, "approval");
    const char *id = json_string_value(json_object_get(a, "id"));
    int rc = id && *id ? agentproto_decision(a, true, &out->approved, &out->reason)
                       : AGENTPROTO_BAD_APPROVED;
    if (rc == AGENTPROTO_BAD_APPROVED) {
        agentproto_err(err, errlen,
                       "messages[%zu].parts[%zu].approval must have an id and approved (a boolean)",
                       i, at);
        return -1;
    }
    if (rc == AGENTPROTO_BAD_REASON) {
        agentproto_err(err, errlen, "messages[%zu].parts[%zu].approval.reason must be a string", i,
                       at);
        return -1;
    }
    out->approval_id = xstrdup(id);
    return 0;
}

int aisdk_input_read(const json_t *in, aisdk_input *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(in)) {
        agentproto_err(err, errlen, "the body must be an object");
        return -1;
    }
    const char *id = json_string_value(json_object_get(in, "id"));
    if (!agentproto_thread_valid(id)) {
        agentproto_err(err, errlen, "id must be 1 to %d characters of [A-Za-z0-9._:-]",
                       AGENTPROTO_THREAD_MAX);
        return -1;
    }
    out->chat_id = xstrdup(id);
    const json_t *trigger = json_object_get(in, "trigger");
    const char *t = json_string_value(trigger);
    if (trigger &&
        !(t && (strcmp(t, "submit-message") == 0 || strcmp(t, "regenerate-message") == 0))) {
        agentproto_err(err, errlen, "trigger must be submit-message or regenerate-message");
        return -1;
    }
    out->regenerate = t && strcmp(t, "regenerate-message") == 0;
    if (agentproto_string_opt(json_object_get(in, "mode"), &out->mode) != 0) {
        agentproto_err(err, errlen, "mode must be a string");
        return -1;
    }
    const json_t *msgs = json_object_get(in, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        agentproto_err(err, errlen, "messages must be a non-empty list");
        return -1;
    }
    if (json_array_size(msgs) > AISDK_MESSAGES_MAX) {
        agentproto_err(err, errlen, "messages holds more than %d messages", AISDK_MESSAGES_MAX);
        return -1;
    }
    size_t i = json_array_size(msgs) - 1;
    const json_t *m = json_array_get(msgs, i);
    const char *role = json_string_value(json_object_get(m, "role"));
    const json_t *parts = json_object_get(m, "parts");
    if (!role) {
        agentproto_err(err, errlen, "messages[%zu] must be an object with a role", i);
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
            agentproto_err(err, errlen, "messages[%zu].parts must be a list", i);
            return -1;
        }
        return aisdk__approval(parts, i, out, err, errlen);
    }
    agentproto_err(err, errlen,
                   "the last message must be a user message, or an assistant message "
                   "with an answered approval");
    return -1;
}

static int aisdk__read(const json_t *in, void *out, char *err, size_t errlen)
{
    return aisdk_input_read(in, out, err, errlen);
}

int aisdk_input_parse(const char *text, size_t len, aisdk_input *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    return agentproto_parse(text, len, aisdk__read, out, err, errlen);
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

static const agentproto_dialect aisdk__dialect = {
    .text_start = "text-start",
    .text_delta = "text-delta",
    .text_end = "text-end",
    .text_key = "id",
    .start_role = NULL,
};

void aisdk_xlate_init(aisdk_xlate *x, const char *wait_approval)
{
    memset(x, 0, sizeof *x);
    agentproto_xlate_init(&x->b, &aisdk__dialect, wait_approval);
    x->decided = json_array();
    x->denied = json_array();
}

void aisdk_xlate_decided(aisdk_xlate *x, const char *approval_id)
{
    json_array_append_new(x->decided, json_string(approval_id));
}

void aisdk_xlate_cleanup(aisdk_xlate *x)
{
    agentproto_xlate_cleanup(&x->b);
    json_decref(x->decided);
    json_decref(x->denied);
    free(x->tool_status);
    free(x->tool_error);
    memset(x, 0, sizeof *x);
}

static int aisdk__simple(buf *out, const char *type)
{
    return agentproto_emit(out, agentproto_event(type));
}

/* A data part carrying the chatplane event. */
static int aisdk__data(buf *out, const char *name, const json_t *ev, bool transient)
{
    json_t *c = agentproto_event(name);
    json_object_set(c, "data", (json_t *)ev);
    if (transient) json_object_set_new(c, "transient", json_true());
    return agentproto_emit(out, c);
}

static int aisdk__close_step(aisdk_xlate *x, buf *out)
{
    int rc = agentproto_text_close(&x->b, out);
    if (rc != 0 || !x->b.step_open) return rc;
    x->b.step_open = false;
    return aisdk__simple(out, "finish-step");
}

/* A tool call of an assistant message becomes a dynamic tool part with
 * its input (the arguments as JSON, or the text when they are not). */
static int aisdk__tool_call(void *ud, const char *id, const char *name, const char *args, buf *out)
{
    (void)ud;
    json_t *input = args && *args ? json_loads(args, JSON_DECODE_ANY, NULL) : json_object();
    if (!input) input = json_string(args);
    json_t *ch = agentproto_event("tool-input-available");
    json_object_set_new(ch, "toolCallId", json_string(id));
    json_object_set_new(ch, "toolName", json_string(name ? name : ""));
    json_object_set_new(ch, "input", input);
    json_object_set_new(ch, "dynamic", json_true());
    return agentproto_emit(out, ch);
}

static int aisdk__tool_result(aisdk_xlate *x, const json_t *ev, buf *out)
{
    const char *call = json_string_value(json_object_get(ev, "tool_call_id"));
    if (!call) return 0;
    agentproto_ids_drop(x->b.pending, call);
    if (agentproto_ids_has(x->denied, call)) return 0; /* tool-output-denied went out */
    const char *content = json_string_value(json_object_get(ev, "content"));
    bool ok = !x->tool_status || strcmp(x->tool_status, "ok") == 0;
    json_t *c;
    if (ok) {
        c = agentproto_event("tool-output-available");
        json_object_set_new(c, "toolCallId", json_string(call));
        json_object_set_new(c, "output", json_string(content ? content : ""));
    } else {
        c = agentproto_event("tool-output-error");
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
        int rc = agentproto_text_close(&x->b, out);
        return rc ? rc : aisdk__tool_result(x, ev, out);
    }
    if (strcmp(role, "assistant") != 0) return 0;
    int rc = agentproto_xlate_text(&x->b, id, content, out);
    return rc ? rc
              : agentproto_xlate_calls(&x->b, json_object_get(ev, "tool_calls"), aisdk__tool_call,
                                       NULL, out);
}

/* The stream's last chunks: finish, or what ends it otherwise, and
 * [DONE]. */
static int aisdk__end(aisdk_xlate *x, json_t *last, buf *out)
{
    x->b.ended = true;
    int rc = agentproto_emit(out, last);
    if (rc == 0) rc = buf_append_str(out, "data: [DONE]\n\n");
    return rc ? rc : 1;
}

static int aisdk__approval_requested(aisdk_xlate *x, const json_t *ev, buf *out)
{
    const char *id = json_string_value(json_object_get(ev, "approval_id"));
    if (!id) return 0;
    int rc = agentproto_text_close(&x->b, out);
    if (rc != 0) return rc;
    json_t *c = agentproto_event("tool-approval-request");
    json_object_set_new(c, "approvalId", json_string(id));
    json_t *call = json_array_get(x->b.pending, 0);
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
    json_t *call = json_array_get(x->b.pending, 0);
    if (!decision || strcmp(decision, "approved") == 0 || !call) return 0;
    json_array_append(x->denied, call);
    json_t *c = agentproto_event("tool-output-denied");
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
    agentproto_stop how = agentproto_stop_kind(reason);
    if (how == AGENTPROTO_STOP_ERROR)
        return aisdk__end(x, json_pack("{s:s, s:s}", "type", "error", "errorText", detail), out);
    if (how == AGENTPROTO_STOP_CANCELLED)
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
        x->b.step_open = true;
    }
    return aisdk__data(out, "data-chatplane-status", ev, true);
}

/* While a continuation waits for its approval's decision, only the tool
 * calls are followed; the decision itself goes out (a denial is a chunk). */
static bool aisdk__waiting(aisdk_xlate *x, const char *type, const json_t *ev)
{
    return agentproto_xlate_wait(&x->b, type, ev) == AGENTPROTO_HOLD;
}

static int aisdk__begin(aisdk_xlate *x, const json_t *ev, buf *out)
{
    if (x->b.started) return 0;
    x->b.started = true;
    json_t *c = agentproto_event("start");
    const json_t *run = json_object_get(ev, "run_id");
    if (json_is_string(run)) json_object_set(c, "messageId", (json_t *)run);
    return agentproto_emit(out, c);
}

int aisdk_xlate_event(aisdk_xlate *x, const json_t *ev, buf *out)
{
    if (x->b.ended) return 1;
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type || aisdk__waiting(x, type, ev)) return 0;
    int rc = aisdk__begin(x, ev, out);
    if (rc != 0) return rc;
    if (strcmp(type, "message") == 0) return aisdk__message(x, ev, out);
    if (strcmp(type, "status") == 0) return aisdk__status(x, ev, out);
    if (strcmp(type, "token") == 0) return agentproto_xlate_token(&x->b, ev, out);
    if (strcmp(type, "tool_finished") == 0) {
        const char *st = json_string_value(json_object_get(ev, "status"));
        const char *e = json_string_value(json_object_get(ev, "error"));
        free(x->tool_status);
        free(x->tool_error);
        x->tool_status = st ? xstrdup(st) : NULL;
        x->tool_error = e ? xstrdup(e) : NULL;
        return 0;
    }
    if (strcmp(type, "error") == 0) return agentproto_xlate_error(&x->b, ev, out);
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
    if (x->b.ended) return;
    if (!x->b.started) {
        x->b.started = true;
        if (aisdk__simple(out, "start") != 0) return;
    }
    if (aisdk__close_step(x, out) != 0) return;
    aisdk__end(x,
               json_pack("{s:s, s:s}", "type", "error", "errorText", AGENTPROTO_UNRECORDED_MESSAGE),
               out);
}
