#include "core/agui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/agentproto.h"
#include "lib/xmalloc.h"

#define AGUI__RUN_ID_MAX 256

/* ---- RunAgentInput ---- */

/* The text of a user message's content: a string, or the text parts of a
 * list joined without separator. A new string, or NULL with err set. */
static char *agui__user_text(const json_t *content, size_t i, char *err, size_t errlen)
{
    if (json_is_string(content)) return xstrdup(json_string_value(content));
    char where[64];
    snprintf(where, sizeof where, "messages[%zu].content", i);
    if (!json_is_array(content)) {
        agentproto_err(err, errlen, "%s must be a string or a list of parts", where);
        return NULL;
    }
    return agentproto_text(content, where, err, errlen);
}

/* Finds the run's message: the newest user message that nothing follows. */
static int agui__messages(const json_t *msgs, agui_input *out, char *err, size_t errlen)
{
    if (agentproto_list(msgs, "messages", AGUI_MESSAGES_MAX, "messages", err, errlen) != 0)
        return -1;
    size_t i, last_user = (size_t)-1;
    bool answered = false;
    const json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!json_is_object(m) || !role) {
            agentproto_err(err, errlen, "messages[%zu] must be an object with a role", i);
            return -1;
        }
        if (strcmp(role, "user") == 0) {
            last_user = i;
            answered = false;
        } else if (strcmp(role, "assistant") == 0 || strcmp(role, "tool") == 0) {
            answered = true;
        }
    }
    if (last_user == (size_t)-1 || answered) return 0;
    out->message = agui__user_text(json_object_get(json_array_get(msgs, last_user), "content"),
                                   last_user, err, errlen);
    return out->message ? 0 : -1;
}

static int agui__context(const json_t *list, agui_input *out, char *err, size_t errlen)
{
    if (!list || json_is_null(list) || (json_is_array(list) && json_array_size(list) == 0))
        return 0;
    if (!json_is_array(list)) {
        agentproto_err(err, errlen, "context must be a list");
        return -1;
    }
    buf b;
    buf_init(&b, AGUI_CONTEXT_MAX);
    int rc = buf_append_str(&b, "The frontend gave this context:");
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item)
    {
        const char *d = json_string_value(json_object_get(item, "description"));
        const char *v = json_string_value(json_object_get(item, "value"));
        if (!d || !v) {
            agentproto_err(err, errlen,
                           "context[%zu] must have a description and a value (strings)", i);
            buf_cleanup(&b);
            return -1;
        }
        if (rc == 0) rc = buf_printf(&b, "\n- %s: %s", d, v);
    }
    if (rc != 0) {
        agentproto_err(err, errlen, "context holds more than %d bytes", AGUI_CONTEXT_MAX);
        buf_cleanup(&b);
        return -1;
    }
    out->context = buf_detach(&b, NULL);
    return 0;
}

static int agui__resume(const json_t *list, agui_input *out, char *err, size_t errlen)
{
    if (!list || json_is_null(list)) return 0;
    if (agentproto_list(list, "resume", AGUI_RESUME_MAX, "entries", err, errlen) != 0) return -1;
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "interruptId"));
        const char *status = json_string_value(json_object_get(e, "status"));
        const json_t *payload = json_object_get(e, "payload");
        if (!id || !*id) {
            agentproto_err(err, errlen, "resume[%zu].interruptId must be a non-empty string", i);
            return -1;
        }
        bool resolved = status && strcmp(status, "resolved") == 0;
        if (!resolved && !(status && strcmp(status, "cancelled") == 0)) {
            agentproto_err(err, errlen, "resume[%zu].status must be resolved or cancelled", i);
            return -1;
        }
        bool approved;
        char *reason;
        int rc = agentproto_decision(payload, resolved, &approved, &reason);
        if (rc == AGENTPROTO_BAD_APPROVED) {
            agentproto_err(err, errlen, "resume[%zu].payload.approved must be a boolean", i);
            return -1;
        }
        if (rc == AGENTPROTO_BAD_REASON) {
            agentproto_err(err, errlen, "resume[%zu].payload.reason must be a string", i);
            return -1;
        }
        agui_resume *r = &out->resume[out->nresume++];
        r->interrupt_id = xstrdup(id);
        r->approved = resolved && approved;
        r->reason = reason;
    }
    return 0;
}

int agui_input_read(const json_t *in, agui_input *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(in)) {
        agentproto_err(err, errlen, "the body must be a RunAgentInput object");
        return -1;
    }
    const char *thread = json_string_value(json_object_get(in, "threadId"));
    if (!agentproto_thread_valid(thread)) {
        agentproto_err(err, errlen, "threadId must be 1 to %d characters of [A-Za-z0-9._:-]",
                       AGENTPROTO_THREAD_MAX);
        return -1;
    }
    const char *run = json_string_value(json_object_get(in, "runId"));
    if (!run || !*run || strlen(run) > AGUI__RUN_ID_MAX) {
        agentproto_err(err, errlen, "runId must be a string of 1 to %d bytes", AGUI__RUN_ID_MAX);
        return -1;
    }
    out->thread_id = xstrdup(thread);
    out->run_id = xstrdup(run);
    const json_t *fp = json_object_get(in, "forwardedProps");
    if (fp && !json_is_null(fp) && !json_is_object(fp)) {
        agentproto_err(err, errlen, "forwardedProps must be an object");
        return -1;
    }
    if (agentproto_string_opt(json_object_get(fp, "mode"), &out->mode) != 0) {
        agentproto_err(err, errlen, "forwardedProps.mode must be a string");
        return -1;
    }
    if (agui__messages(json_object_get(in, "messages"), out, err, errlen) != 0) return -1;
    if (agui__context(json_object_get(in, "context"), out, err, errlen) != 0) return -1;
    return agui__resume(json_object_get(in, "resume"), out, err, errlen);
}

static int agui__read(const json_t *in, void *out, char *err, size_t errlen)
{
    return agui_input_read(in, out, err, errlen);
}

int agui_input_parse(const char *text, size_t len, agui_input *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    return agentproto_parse(text, len, agui__read, out, err, errlen);
}

void agui_input_cleanup(agui_input *in)
{
    free(in->thread_id);
    free(in->run_id);
    free(in->message);
    free(in->mode);
    free(in->context);
    for (size_t i = 0; i < in->nresume; i++) {
        free(in->resume[i].interrupt_id);
        free(in->resume[i].reason);
    }
    memset(in, 0, sizeof *in);
}

/* ---- events ---- */

static const agentproto_dialect agui__dialect = {
    .text_start = "TEXT_MESSAGE_START",
    .text_delta = "TEXT_MESSAGE_CONTENT",
    .text_end = "TEXT_MESSAGE_END",
    .text_key = "messageId",
    .start_role = "assistant",
};

void agui_xlate_init(agui_xlate *x, const char *thread_id, const char *run_id,
                     const char *resume_approval)
{
    memset(x, 0, sizeof *x);
    agentproto_xlate_init(&x->b, &agui__dialect, resume_approval);
    x->thread_id = xstrdup(thread_id);
    x->run_id = xstrdup(run_id);
}

void agui_xlate_cleanup(agui_xlate *x)
{
    agentproto_xlate_cleanup(&x->b);
    free(x->thread_id);
    free(x->run_id);
    memset(x, 0, sizeof *x);
}

static int agui__close_step(agui_xlate *x, buf *out)
{
    if (!x->b.step_open) return 0;
    x->b.step_open = false;
    json_t *e = agentproto_event("STEP_FINISHED");
    json_object_set_new(e, "stepName", json_sprintf("model call %d", x->steps));
    return agentproto_emit(out, e);
}

static int agui__close_all(agui_xlate *x, buf *out)
{
    int rc = agentproto_text_close(&x->b, out);
    if (rc == 0) rc = agui__close_step(x, out);
    return rc;
}

static int agui__custom(const char *name, const json_t *ev, buf *out)
{
    json_t *e = agentproto_event("CUSTOM");
    json_object_set_new(e, "name", json_string(name));
    json_object_set(e, "value", (json_t *)ev);
    return agentproto_emit(out, e);
}

/* One tool call of an assistant message (ud: its message id): started,
 * its arguments, ended. */
static int agui__tool_call(void *ud, const char *id, const char *name, const char *args, buf *out)
{
    const char *message_id = *(const char **)ud;
    json_t *e = agentproto_event("TOOL_CALL_START");
    json_object_set_new(e, "toolCallId", json_string(id));
    json_object_set_new(e, "toolCallName", json_string(name ? name : ""));
    if (message_id) json_object_set_new(e, "parentMessageId", json_string(message_id));
    int rc = agentproto_emit(out, e);
    if (rc == 0 && args && *args) {
        e = agentproto_event("TOOL_CALL_ARGS");
        json_object_set_new(e, "toolCallId", json_string(id));
        json_object_set_new(e, "delta", json_string(args));
        rc = agentproto_emit(out, e);
    }
    if (rc == 0) {
        e = agentproto_event("TOOL_CALL_END");
        json_object_set_new(e, "toolCallId", json_string(id));
        rc = agentproto_emit(out, e);
    }
    return rc;
}

static int agui__message(agui_xlate *x, const json_t *ev, buf *out)
{
    const char *role = json_string_value(json_object_get(ev, "role"));
    const char *id = json_string_value(json_object_get(ev, "message_id"));
    const char *content = json_string_value(json_object_get(ev, "content"));
    if (!role || !id) return 0;
    if (strcmp(role, "assistant") == 0) {
        int rc = agentproto_xlate_text(&x->b, id, content, out);
        return rc ? rc
                  : agentproto_xlate_calls(&x->b, json_object_get(ev, "tool_calls"),
                                           agui__tool_call, &id, out);
    }
    if (strcmp(role, "tool") == 0) {
        const char *call = json_string_value(json_object_get(ev, "tool_call_id"));
        if (!call) return 0;
        agentproto_ids_drop(x->b.pending, call);
        int rc = agentproto_text_close(&x->b, out);
        if (rc != 0) return rc;
        json_t *e = agentproto_event("TOOL_CALL_RESULT");
        json_object_set_new(e, "messageId", json_string(id));
        json_object_set_new(e, "toolCallId", json_string(call));
        json_object_set_new(e, "content", json_string(content ? content : ""));
        json_object_set_new(e, "role", json_string("tool"));
        return agentproto_emit(out, e);
    }
    return 0;
}

/* The answer a person gives to an approval: {"approved", "reason"?}. */
static json_t *agui__response_schema(void)
{
    return json_pack("{s:s, s:{s:{s:s}, s:{s:s}}, s:[s], s:b}", "type", "object", "properties",
                     "approved", "type", "boolean", "reason", "type", "string", "required",
                     "approved", "additionalProperties", 0);
}

static int agui__interrupt(agui_xlate *x, const json_t *ev, buf *out)
{
    int rc = agui__close_all(x, out);
    if (rc != 0) return rc;
    const char *tool = json_string_value(json_object_get(ev, "tool"));
    const char *why = json_string_value(json_object_get(ev, "reason"));
    json_t *it = json_object();
    json_object_set(it, "id", json_object_get(ev, "approval_id"));
    json_object_set_new(it, "reason", json_string("tool_approval"));
    json_object_set_new(it, "message",
                        json_sprintf("Allow the call of %s? (%s)", tool ? tool : "a tool",
                                     why ? why : "approval required"));
    if (json_array_size(x->b.pending) > 0)
        json_object_set(it, "toolCallId", json_array_get(x->b.pending, 0));
    json_object_set_new(it, "responseSchema", agui__response_schema());
    const json_t *exp = json_object_get(ev, "expires_at");
    if (json_is_string(exp)) json_object_set(it, "expiresAt", (json_t *)exp);
    json_object_set_new(
        it, "metadata",
        json_pack("{s:O?, s:O?, s:O?, s:O?}", "server", json_object_get(ev, "server"), "tool",
                  json_object_get(ev, "tool"), "arguments", json_object_get(ev, "arguments"),
                  "execution_id", json_object_get(ev, "execution_id")));
    json_t *e = agentproto_event("RUN_FINISHED");
    json_object_set_new(e, "threadId", json_string(x->thread_id));
    json_object_set_new(e, "runId", json_string(x->run_id));
    json_object_set_new(e, "outcome",
                        json_pack("{s:s, s:[o]}", "type", "interrupt", "interrupts", it));
    x->b.ended = true;
    rc = agentproto_emit(out, e);
    return rc ? rc : 1;
}

static int agui__stopped(agui_xlate *x, const json_t *ev, buf *out)
{
    int rc = agui__close_all(x, out);
    if (rc == 0) rc = agui__custom("chatplane.run_stopped", ev, out);
    if (rc != 0) return rc;
    const char *reason = json_string_value(json_object_get(ev, "reason"));
    agentproto_stop how = agentproto_stop_kind(reason ? reason : "");
    json_t *e;
    if (how == AGENTPROTO_STOP_ERROR) {
        const char *detail = json_string_value(json_object_get(ev, "detail"));
        e = agentproto_event("RUN_ERROR");
        json_object_set_new(e, "message", json_string(detail && *detail ? detail : reason));
        json_object_set_new(e, "code", json_string(reason));
    } else {
        e = agentproto_event("RUN_FINISHED");
        json_object_set_new(e, "threadId", json_string(x->thread_id));
        json_object_set_new(e, "runId", json_string(x->run_id));
        json_object_set_new(
            e, "outcome",
            json_pack("{s:s}", "type", how == AGENTPROTO_STOP_CANCELLED ? "cancelled" : "success"));
    }
    x->b.ended = true;
    rc = agentproto_emit(out, e);
    return rc ? rc : 1;
}

static int agui__status(agui_xlate *x, const json_t *ev, buf *out)
{
    const char *status = json_string_value(json_object_get(ev, "status"));
    int rc = 0;
    if (status && strcmp(status, "thinking") == 0) {
        /* A model call begins: the step before it (the previous call and
         * the tool calls it asked for) is over. */
        rc = agui__close_all(x, out);
        if (rc != 0) return rc;
        x->steps++;
        x->b.step_open = true;
        json_t *e = agentproto_event("STEP_STARTED");
        json_object_set_new(e, "stepName", json_sprintf("model call %d", x->steps));
        rc = agentproto_emit(out, e);
    }
    return rc ? rc : agui__custom("chatplane.status", ev, out);
}

static int agui__begin(agui_xlate *x, buf *out)
{
    if (x->b.started) return 0;
    x->b.started = true;
    json_t *e = agentproto_event("RUN_STARTED");
    json_object_set_new(e, "threadId", json_string(x->thread_id));
    json_object_set_new(e, "runId", json_string(x->run_id));
    return agentproto_emit(out, e);
}

/* While a resumed stream waits for its approval's decision, only the
 * pending tool calls are followed; the decision itself does not go out,
 * and the steps count again from it. */
static bool agui__waiting(agui_xlate *x, const char *type, const json_t *ev)
{
    int w = agentproto_xlate_wait(&x->b, type, ev);
    if (w == AGENTPROTO_DECIDED) x->steps = 0;
    return w != AGENTPROTO_PASS;
}

int agui_xlate_event(agui_xlate *x, const json_t *ev, buf *out)
{
    if (x->b.ended) return 1;
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type || agui__waiting(x, type, ev)) return 0;
    int rc = agui__begin(x, out);
    if (rc != 0) return rc;
    if (strcmp(type, "message") == 0) return agui__message(x, ev, out);
    if (strcmp(type, "status") == 0) return agui__status(x, ev, out);
    if (strcmp(type, "token") == 0) return agentproto_xlate_token(&x->b, ev, out);
    if (strcmp(type, "error") == 0) return agentproto_xlate_error(&x->b, ev, out);
    if (strcmp(type, "budget") == 0) return agui__custom("chatplane.budget", ev, out);
    if (strcmp(type, "guardrail") == 0) return agui__custom("chatplane.guardrail", ev, out);
    if (strcmp(type, "repair") == 0) return agui__custom("chatplane.repair", ev, out);
    if (strcmp(type, "approval_requested") == 0) return agui__interrupt(x, ev, out);
    if (strcmp(type, "run_stopped") == 0) return agui__stopped(x, ev, out);
    return 0;
}

void agui_xlate_unrecorded(agui_xlate *x, buf *out)
{
    if (x->b.ended || agui__begin(x, out) != 0 || agui__close_all(x, out) != 0) return;
    json_t *e = agentproto_event("RUN_ERROR");
    json_object_set_new(e, "message", json_string(AGENTPROTO_UNRECORDED_MESSAGE));
    json_object_set_new(e, "code", json_string("interrupted"));
    x->b.ended = true;
    agentproto_emit(out, e);
}
