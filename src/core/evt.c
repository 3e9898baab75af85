#include "core/evt.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"
#include "core/timefmt.h"
#include "lib/buf.h"
#include "lib/id.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

/* The largest encoded event. Every field that comes from outside is capped
 * well below this by the API and the engine; the cap only stops a bug from
 * turning into an unbounded allocation. */
#define EVENT_JSON_MAX  (64u * 1024 * 1024)
#define EVT__JSON_GUESS 480 /* bytes: a token event with its envelope and a long piece */

static const char *const evt__names[EVT__COUNT] = {
    [EVT_MESSAGE] = "message",
    [EVT_RUN_STARTED] = "run_started",
    [EVT_STATUS] = "status",
    [EVT_TOKEN] = "token",
    [EVT_TOOL_STARTED] = "tool_started",
    [EVT_TOOL_PROGRESS] = "tool_progress",
    [EVT_TOOL_FINISHED] = "tool_finished",
    [EVT_BUDGET] = "budget",
    [EVT_GUARDRAIL] = "guardrail",
    [EVT_ERROR] = "error",
    [EVT_RUN_STOPPED] = "run_stopped",
    [EVT_APPROVAL_REQUESTED] = "approval_requested",
    [EVT_APPROVAL_DECIDED] = "approval_decided",
    [EVT_REPAIR] = "repair",
    [EVT_SUPERSEDED] = "superseded",
    [EVT_INPUT_REQUESTED] = "input_requested",
    [EVT_INPUT_ANSWERED] = "input_answered",
    [EVT_RUN_QUEUED] = "run_queued",
};

const char *evt_type_name(evt_type t)
{
    if ((unsigned)t >= EVT__COUNT) return "unknown";
    return evt__names[t];
}

int evt_type_parse(const char *name, evt_type *out)
{
    if (!name) return -1;
    for (int i = 0; i < EVT__COUNT; i++) {
        if (strcmp(evt__names[i], name) == 0) {
            *out = (evt_type)i;
            return 0;
        }
    }
    return -1;
}

/*
 * Returns a new JSON string of s[0..len), which may hold any bytes: text from
 * models and tools is not trusted to be UTF-8, and jansson refuses a string
 * that is not. Ill-formed sequences become U+FFFD.
 */
static json_t *evt__string(const char *s, size_t len)
{
    size_t ok = utf8_valid_prefix(s, len);
    if (ok == len) return json_stringn_nocheck(s, len);

    /* A replacement is at most three bytes for every byte it replaces. */
    buf b;
    buf_init(&b, len * 3);
    int rc = buf_append(&b, s, ok);
    for (size_t i = ok, k; i < len; i += k) {
        k = utf8_next(s + i, len - i);
        if (utf8_seq(s + i, k) == k)
            rc |= buf_append(&b, s + i, k);
        else
            rc |= buf_append(&b, UTF8_REPLACEMENT, 3);
    }
    assert(rc == 0); /* the cap is what the worst case needs */
    json_t *j = json_stringn_nocheck(b.data, b.len);
    buf_cleanup(&b);
    return j;
}

/* A JSON string of s, or "" for NULL. */
static json_t *evt__str(const char *s)
{
    return s ? evt__string(s, strlen(s)) : json_string("");
}

/* A JSON string of s, or null for NULL. */
static json_t *evt__str_or_null(const char *s)
{
    return s ? evt__string(s, strlen(s)) : json_null();
}

/* A deep copy of v, or dflt (a new reference) for NULL, so that an evt
 * never shares a mutable value with its caller. */
static json_t *evt__copy(const json_t *v, json_t *dflt)
{
    if (!v) return dflt;
    json_decref(dflt);
    return json_deep_copy(v);
}

/* A number as an integer when it holds one exactly (progress 3 of 10 reads
 * "3" and "10"), else as a real; null for NaN and infinities, which JSON
 * cannot carry. */
static json_t *evt__number(double v)
{
    if (!isfinite(v)) return json_null();
    if (v == floor(v) && fabs(v) < 9007199254740992.0) return json_integer((json_int_t)v);
    return json_real(v);
}

/* ------------------------------------------------------------------------
 * Life cycle
 */

/* An event with its envelope and no fields yet. Its ids are kept after it
 * in the same block: one allocation per event rather than three, on the
 * path of every streamed piece (docs/benchmarks.md, fix 32). */
static evt *evt__alloc(evt_type type, const evt_origin *o)
{
    const char *sid = o->session_id ? o->session_id : "";
    size_t slen = strlen(sid) + 1, rlen = o->run_id ? strlen(o->run_id) + 1 : 0;
    evt *e = xcalloc(1, sizeof *e + slen + rlen);
    atomic_init(&e->refs, 1);
    e->type = type;
    e->ts_ms = o->ts_ms;
    char *ids = (char *)(e + 1);
    e->session_id = memcpy(ids, sid, slen);
    e->session_hash = id_hash(e->session_id);
    e->run_id = o->run_id ? memcpy(ids + slen, o->run_id, rlen) : NULL;
    return e;
}

evt *evt_new(evt_type type, const evt_origin *o, json_t *fields)
{
    evt *e = evt__alloc(type, o);
    e->fields = fields ? fields : json_object();
    return e;
}

json_t *evt_fields(const evt *e)
{
    if (!e->body) return json_incref(e->fields);
    buf b;
    buf_init(&b, EVENT_JSON_MAX);
    int rc = buf_append_char(&b, '{');
    rc |= buf_append(&b, e->body, e->body_len);
    rc |= buf_append_char(&b, '}');
    json_t *f = rc == 0 ? json_loadb(b.data, b.len, JSON_ALLOW_NUL, NULL) : NULL;
    buf_cleanup(&b);
    return f ? f : json_object();
}

evt *evt_ref(evt *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    return e;
}

/* The last reference frees; acquire-release ordering makes every write of
 * the other holders visible before the memory is released. */
void evt_unref(evt *e)
{
    if (!e) return;
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1) return;
    json_decref(e->fields);
    free(e->body);
    free(e->json);
    free(e);
}

/* ------------------------------------------------------------------------
 * Typed constructors: fields in the order of docs/events.md.
 */

evt *evt_message(const evt_origin *o, const char *message_id, const char *role, const char *content,
                 const json_t *tool_calls, const char *tool_call_id, bool partial)
{
    json_t *f = json_object();
    json_object_set_new(f, "message_id", evt__str(message_id));
    json_object_set_new(f, "role", evt__str(role));
    json_object_set_new(f, "content", evt__str(content));
    json_object_set_new(f, "tool_calls", evt__copy(tool_calls, json_null()));
    json_object_set_new(f, "tool_call_id", evt__str_or_null(tool_call_id));
    json_object_set_new(f, "partial", json_boolean(partial));
    if (role && strcmp(role, "assistant") == 0) json_object_set_new(f, "model", json_null());
    return evt_new(EVT_MESSAGE, o, f);
}

void evt_message_set_model(evt *e, const char *model)
{
    if (e && e->type == EVT_MESSAGE && model && json_object_get(e->fields, "model"))
        json_object_set_new(e->fields, "model", evt__str(model));
}

evt *evt_repair(const evt_origin *o, const char *playbook, const char *action, const char *detail,
                const char *outcome, const json_t *evidence)
{
    json_t *f = json_object();
    json_object_set_new(f, "playbook", evt__str(playbook));
    json_object_set_new(f, "action", evt__str(action));
    json_object_set_new(f, "detail", evt__str(detail));
    json_object_set_new(f, "outcome", evt__str(outcome));
    json_object_set_new(f, "evidence", evt__copy(evidence, json_object()));
    return evt_new(EVT_REPAIR, o, f);
}

evt *evt_superseded(const evt_origin *o, const json_t *message_ids)
{
    json_t *f = json_object();
    json_object_set_new(f, "message_ids", evt__copy(message_ids, json_array()));
    return evt_new(EVT_SUPERSEDED, o, f);
}

evt *evt_run_queued(const evt_origin *o, const char *message, const char *mode_name, bool interrupt)
{
    json_t *f = json_object();
    json_object_set_new(f, "message", evt__str(message));
    json_object_set_new(f, "mode", evt__str_or_null(mode_name));
    json_object_set_new(f, "interrupt", json_boolean(interrupt));
    return evt_new(EVT_RUN_QUEUED, o, f);
}

evt *evt_run_started(const evt_origin *o, const char *mode_name, const mode_limits *limits,
                     const char *continues)
{
    json_t *f = json_object();
    json_object_set_new(f, "mode", evt__str(mode_name));
    json_object_set_new(f, "limits", mode_limits_to_json(limits));
    json_object_set_new(f, "continues", evt__str_or_null(continues));
    return evt_new(EVT_RUN_STARTED, o, f);
}

evt *evt_status(const evt_origin *o, run_status status, const char *detail)
{
    json_t *f = json_object();
    json_object_set_new(f, "status", json_string(status_name(status)));
    json_object_set_new(f, "detail", evt__str_or_null(detail));
    return evt_new(EVT_STATUS, o, f);
}

/* Appends s[0..len) as a JSON string, ill-formed UTF-8 replaced as
 * evt__string replaces it. */
static int evt__append_text(buf *out, const char *s, size_t len)
{
    if (utf8_valid_prefix(s, len) == len) return jsonw_string(out, s, len);
    json_t *j = evt__string(s, len);
    int rc = jsonw_string(out, json_string_value(j), json_string_length(j));
    json_decref(j);
    return rc;
}

/* The one event made for every piece of streamed text: its fields are
 * encoded at once, with no jansson tree (see evt.body). */
evt *evt_token(const evt_origin *o, const char *message_id, const char *text, size_t len)
{
    if (!message_id) message_id = "";
    if (!text) len = 0;
    buf b;
    buf_init(&b, EVENT_JSON_MAX);
    int rc = buf_reserve(&b, 32 + strlen(message_id) + len + len / 8);
    rc |= buf_append_str(&b, "\"message_id\":");
    rc |= evt__append_text(&b, message_id, strlen(message_id));
    rc |= buf_append_str(&b, ",\"text\":");
    rc |= evt__append_text(&b, text ? text : "", len);
    assert(rc == 0); /* a model's piece is far below the cap */
    evt *e = evt__alloc(EVT_TOKEN, o);
    e->body = buf_detach(&b, &e->body_len);
    return e;
}

evt *evt_tool_started(const evt_origin *o, const char *execution_id, int step, const char *server,
                      const char *tool, const json_t *arguments)
{
    json_t *f = json_object();
    json_object_set_new(f, "execution_id", evt__str(execution_id));
    json_object_set_new(f, "step", json_integer(step));
    json_object_set_new(f, "server", evt__str(server));
    json_object_set_new(f, "tool", evt__str(tool));
    json_object_set_new(f, "arguments", evt__copy(arguments, json_object()));
    return evt_new(EVT_TOOL_STARTED, o, f);
}

evt *evt_approval_requested(const evt_origin *o, const char *approval_id, const char *execution_id,
                            int step, const char *server, const char *tool, const json_t *arguments,
                            const char *reason, const json_t *annotations, int64_t expires_ms)
{
    char ts[TIMEFMT_LEN];
    timefmt_rfc3339(expires_ms, ts);
    json_t *f = json_object();
    json_object_set_new(f, "approval_id", evt__str(approval_id));
    json_object_set_new(f, "execution_id", evt__str(execution_id));
    json_object_set_new(f, "step", json_integer(step));
    json_object_set_new(f, "server", evt__str(server));
    json_object_set_new(f, "tool", evt__str(tool));
    json_object_set_new(f, "arguments", evt__copy(arguments, json_object()));
    json_object_set_new(f, "reason", evt__str(reason));
    json_object_set_new(f, "annotations", evt__copy(annotations, json_null()));
    json_object_set_new(f, "expires_at", json_string(ts));
    return evt_new(EVT_APPROVAL_REQUESTED, o, f);
}

evt *evt_approval_decided(const evt_origin *o, const char *approval_id, const char *decision,
                          const char *decided_by, const char *reason, const char *remember)
{
    json_t *f = json_object();
    json_object_set_new(f, "approval_id", evt__str(approval_id));
    json_object_set_new(f, "decision", evt__str(decision));
    json_object_set_new(f, "decided_by", evt__str(decided_by));
    json_object_set_new(f, "reason", reason ? evt__str(reason) : json_null());
    json_object_set_new(f, "remember", evt__str(remember));
    return evt_new(EVT_APPROVAL_DECIDED, o, f);
}

evt *evt_input_requested(const evt_origin *o, const char *input_id, const char *execution_id,
                         const char *server, const char *message, const json_t *schema,
                         int64_t expires_ms)
{
    char ts[TIMEFMT_LEN];
    timefmt_rfc3339(expires_ms, ts);
    json_t *f = json_object();
    json_object_set_new(f, "input_id", evt__str(input_id));
    json_object_set_new(f, "execution_id", evt__str(execution_id));
    json_object_set_new(f, "server", evt__str(server));
    json_object_set_new(f, "message", evt__str(message));
    json_object_set_new(f, "schema", evt__copy(schema, json_object()));
    json_object_set_new(f, "expires_at", json_string(ts));
    return evt_new(EVT_INPUT_REQUESTED, o, f);
}

evt *evt_input_answered(const evt_origin *o, const char *input_id, const char *action,
                        const char *answered_by, const json_t *content)
{
    json_t *f = json_object();
    json_object_set_new(f, "input_id", evt__str(input_id));
    json_object_set_new(f, "action", evt__str(action));
    json_object_set_new(f, "answered_by", evt__str(answered_by));
    if (content) json_object_set_new(f, "content", evt__copy(content, json_object()));
    return evt_new(EVT_INPUT_ANSWERED, o, f);
}

evt *evt_tool_progress(const evt_origin *o, const char *execution_id, double progress, double total,
                       const char *message)
{
    json_t *f = json_object();
    json_object_set_new(f, "execution_id", evt__str(execution_id));
    json_object_set_new(f, "progress", evt__number(progress));
    json_object_set_new(f, "total", total < 0 ? json_null() : evt__number(total));
    json_object_set_new(f, "message", evt__str_or_null(message));
    return evt_new(EVT_TOOL_PROGRESS, o, f);
}

/*
 * Makes the result field: the text made valid UTF-8 first, so that the cut
 * measures the bytes that are actually sent, then cut to EVT_RESULT_MAX
 * bytes at a character boundary. Sets *truncated when anything was cut.
 */
static json_t *evt__result(const char *result, bool *truncated)
{
    if (!result) result = "";
    /* Repairing a byte never makes the text shorter, so bytes past
     * EVT_RESULT_MAX + 4 (a full character past the cut) cannot reach the
     * event; results of up to 1 MiB are not scanned past that. */
    size_t len = strnlen(result, EVT_RESULT_MAX + 4);
    json_t *full = evt__string(result, len);
    size_t slen = json_string_length(full);
    *truncated = slen > EVT_RESULT_MAX;
    if (!*truncated) return full;
    const char *s = json_string_value(full);
    size_t cut = utf8_cut(s, slen, EVT_RESULT_MAX);
    json_t *part = json_stringn_nocheck(s, cut);
    json_decref(full);
    return part;
}

evt *evt_tool_finished(const evt_origin *o, const char *execution_id, int step, const char *server,
                       const char *tool, const char *status, const char *result, const char *error,
                       int64_t duration_ms)
{
    bool truncated;
    json_t *res = evt__result(result, &truncated);
    json_t *f = json_object();
    json_object_set_new(f, "execution_id", evt__str(execution_id));
    json_object_set_new(f, "step", json_integer(step));
    json_object_set_new(f, "server", evt__str(server));
    json_object_set_new(f, "tool", evt__str(tool));
    json_object_set_new(f, "status", evt__str(status));
    json_object_set_new(f, "result", res);
    json_object_set_new(f, "truncated", json_boolean(truncated));
    json_object_set_new(f, "error", evt__str_or_null(error));
    json_object_set_new(f, "duration_ms", json_integer(duration_ms));
    return evt_new(EVT_TOOL_FINISHED, o, f);
}

evt *evt_budget(const evt_origin *o, const budget *b)
{
    return evt_new(EVT_BUDGET, o, budget_to_json(b));
}

evt *evt_guardrail(const evt_origin *o, const guard_verdict *v)
{
    json_t *f = json_object();
    json_object_set_new(f, "check", json_string(guard_check_name(v->check)));
    json_object_set_new(f, "action", json_string(guard_action_name(v->action)));
    json_object_set_new(f, "detail", evt__str(v->detail));
    json_object_set_new(f, "evidence", evt__copy(v->evidence, json_object()));
    return evt_new(EVT_GUARDRAIL, o, f);
}

evt *evt_error(const evt_origin *o, const char *code, const char *message, bool retryable,
               const char *message_id)
{
    json_t *f = json_object();
    json_object_set_new(f, "code", evt__str(code));
    json_object_set_new(f, "message", evt__str(message));
    json_object_set_new(f, "retryable", json_boolean(retryable));
    json_object_set_new(f, "message_id", evt__str_or_null(message_id));
    return evt_new(EVT_ERROR, o, f);
}

evt *evt_run_stopped(const evt_origin *o, stop_reason reason, const char *detail,
                     const char *recovery_suggestion, const json_t *actions,
                     const json_t *diagnosis, bool wrapped_up, const budget_usage *usage)
{
    json_t *f = json_object();
    json_object_set_new(f, "reason", json_string(stop_reason_name(reason)));
    json_object_set_new(f, "detail", evt__str_or_null(detail));
    json_object_set_new(f, "recovery_suggestion", evt__str_or_null(recovery_suggestion));
    json_object_set_new(f, "actions", evt__copy(actions, json_array()));
    if (diagnosis) json_object_set_new(f, "diagnosis", json_deep_copy(diagnosis));
    json_object_set_new(f, "wrapped_up", json_boolean(wrapped_up));
    json_object_set_new(f, "usage", budget_usage_to_json(usage));
    return evt_new(EVT_RUN_STOPPED, o, f);
}

/* ------------------------------------------------------------------------
 * Encoding
 */

/* Appends a field value as jansson writes it (core/jsonw.h). */
static int evt__append_value(buf *out, const json_t *v)
{
    return jsonw_value(out, v, EVT_JSON_FLAGS | JSON_ENCODE_ANY);
}

/*
 * Writes the envelope by hand and then each field in its stored order. A
 * failed append leaves the buffer as it was, so the return codes can be
 * gathered and checked once at the end.
 */
int evt_encode(evt *e)
{
    if (e->json) return 0;
    if (e->seq < 1) return -1;
    char ts[TIMEFMT_LEN];
    timefmt_rfc3339(e->ts_ms, ts);

    buf out;
    buf_init(&out, EVENT_JSON_MAX);
    /* Most events (tokens) fit here, so the buffer is allocated once. */
    int rc = buf_reserve(&out, EVT__JSON_GUESS);
    rc |= buf_append_str(&out, "{\"type\":\"");
    rc |= buf_append_str(&out, evt_type_name(e->type));
    rc |= buf_append_str(&out, "\",\"seq\":");
    rc |= buf_append_i64(&out, e->seq);
    rc |= buf_append_str(&out, ",\"session_id\":");
    rc |= jsonw_string(&out, e->session_id, strlen(e->session_id));
    rc |= buf_append_str(&out, ",\"run_id\":");
    if (e->run_id)
        rc |= jsonw_string(&out, e->run_id, strlen(e->run_id));
    else
        rc |= buf_append_str(&out, "null");
    rc |= buf_append_str(&out, ",\"ts\":\"");
    rc |= buf_append(&out, ts, strlen(ts));
    rc |= buf_append_char(&out, '"');

    if (e->body) {
        rc |= buf_append_char(&out, ',');
        rc |= buf_append(&out, e->body, e->body_len);
    }
    const char *key;
    json_t *v;
    json_object_foreach(e->fields, key, v)
    {
        rc |= buf_append_char(&out, ',');
        rc |= jsonw_string(&out, key, strlen(key));
        rc |= buf_append_char(&out, ':');
        rc |= evt__append_value(&out, v);
    }
    rc |= buf_append_char(&out, '}');
    if (rc != 0) {
        buf_cleanup(&out);
        return -1;
    }
    e->json = buf_detach(&out, &e->json_len);
    return 0;
}

/* ------------------------------------------------------------------------
 * Parsing
 */

static bool evt__is_envelope_key(const char *key)
{
    return strcmp(key, "type") == 0 || strcmp(key, "seq") == 0 || strcmp(key, "session_id") == 0 ||
           strcmp(key, "run_id") == 0 || strcmp(key, "ts") == 0;
}

/* Reads and checks the envelope of obj into e's envelope fields. Returns 0,
 * or -1 with a message. */
static int evt__parse_envelope(const json_t *obj, evt_type *type, int64_t *seq, int64_t *ts_ms,
                               char *err, size_t errlen)
{
    const json_t *t = json_object_get(obj, "type");
    if (!json_is_string(t)) {
        snprintf(err, errlen, "type must be a string");
        return -1;
    }
    if (evt_type_parse(json_string_value(t), type) != 0) {
        snprintf(err, errlen, "unknown event type \"%s\"", json_string_value(t));
        return -1;
    }
    const json_t *s = json_object_get(obj, "seq");
    if (!json_is_integer(s) || json_integer_value(s) < 1) {
        snprintf(err, errlen, "seq must be a positive integer");
        return -1;
    }
    *seq = (int64_t)json_integer_value(s);
    if (!json_is_string(json_object_get(obj, "session_id"))) {
        snprintf(err, errlen, "session_id must be a string");
        return -1;
    }
    const json_t *r = json_object_get(obj, "run_id");
    if (!json_is_string(r) && !json_is_null(r)) {
        snprintf(err, errlen, "run_id must be a string or null");
        return -1;
    }
    const json_t *ts = json_object_get(obj, "ts");
    if (!json_is_string(ts) || timefmt_parse(json_string_value(ts), ts_ms) != 0) {
        snprintf(err, errlen, "ts must be an RFC 3339 time");
        return -1;
    }
    return 0;
}

evt *evt_parse(const char *json, size_t len, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    json_error_t jerr;
    /* JSON_ALLOW_NUL: token text may carry NUL characters, which the
     * encoder writes as \u0000. */
    json_t *obj = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!obj) {
        snprintf(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return NULL;
    }
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "an event must be a JSON object");
        json_decref(obj);
        return NULL;
    }
    evt_type type;
    int64_t seq, ts_ms;
    if (evt__parse_envelope(obj, &type, &seq, &ts_ms, err, errlen) != 0) {
        json_decref(obj);
        return NULL;
    }

    json_t *fields = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!evt__is_envelope_key(key)) json_object_set(fields, key, v);
    }

    const json_t *run = json_object_get(obj, "run_id");
    evt_origin o = {
        .session_id = json_string_value(json_object_get(obj, "session_id")),
        .run_id = json_is_string(run) ? json_string_value(run) : NULL,
        .ts_ms = ts_ms,
    };
    evt *e = evt_new(type, &o, fields);
    e->seq = seq;
    e->json = xmalloc(len + 1);
    memcpy(e->json, json, len);
    e->json[len] = '\0';
    e->json_len = len;
    json_decref(obj);
    return e;
}
