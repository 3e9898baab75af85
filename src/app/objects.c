#include "app/objects.h"

#include "core/stop.h"
#include "core/timefmt.h"

/* A time as an RFC 3339 string, or null for 0 (not set). */
static json_t *objects__time(int64_t ms)
{
    if (ms == 0) return json_null();
    char t[TIMEFMT_LEN];
    timefmt_rfc3339(ms, t);
    return json_string(t);
}

/* A string, or null. */
static json_t *objects__str(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* A borrowed JSON value as a new reference, or fallback when NULL. */
static json_t *objects__json(json_t *v, json_t *fallback)
{
    if (!v) return fallback;
    json_decref(fallback);
    return json_incref(v);
}

/* The tone of a stop reason's name (core/stop.h), or null while the run
 * goes on or for a reason this version does not know. */
static json_t *objects__stop_tone(const char *reason)
{
    stop_reason r;
    if (!reason || stop_reason_parse(reason, &r) != 0) return json_null();
    return json_string(stop_tone_name(stop_reason_tone(r)));
}

json_t *objects_session(const store_session *s, const store_run *last_run)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", objects__str(s->id));
    /* A session keeps an empty title until its first message names it. */
    json_object_set_new(o, "title", json_string(s->title && *s->title ? s->title : "New chat"));
    json_object_set_new(o, "mode", objects__str(s->mode));
    json_object_set_new(o, "status", objects__str(s->status));
    json_object_set_new(o, "active_run_id", objects__str(s->active_run_id));
    json_object_set_new(o, "last_seq", json_integer(s->last_seq));
    json_object_set_new(o, "created_at", objects__time(s->created_ms));
    json_object_set_new(o, "updated_at", objects__time(s->updated_ms));
    json_object_set_new(o, "last_run", last_run ? objects_run(last_run) : json_null());
    return o;
}

json_t *objects_run(const store_run *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", objects__str(r->id));
    json_object_set_new(o, "session_id", objects__str(r->session_id));
    json_object_set_new(o, "mode", objects__str(r->mode));
    json_object_set_new(o, "status", objects__str(r->status));
    json_object_set_new(o, "stop_reason", objects__str(r->stop_reason));
    json_object_set_new(o, "stop_tone", objects__stop_tone(r->stop_reason));
    json_object_set_new(o, "stop_detail", objects__str(r->stop_detail));
    json_object_set_new(o, "recovery_suggestion", objects__str(r->recovery_suggestion));
    json_object_set_new(o, "actions", objects__json(r->actions, json_array()));
    json_object_set_new(o, "wrapped_up", json_boolean(r->wrapped_up));
    json_object_set_new(o, "limits", objects__json(r->limits, json_object()));
    json_object_set_new(o, "usage", objects__json(r->usage, json_object()));
    json_object_set_new(o, "started_at", objects__time(r->started_ms));
    json_object_set_new(o, "ended_at", objects__time(r->ended_ms));
    json_object_set_new(o, "continues", objects__str(r->continues));
    return o;
}

json_t *objects_message(const store_message *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", objects__str(m->id));
    json_object_set_new(o, "session_id", objects__str(m->session_id));
    json_object_set_new(o, "run_id", objects__str(m->run_id));
    json_object_set_new(o, "role", objects__str(m->role));
    json_object_set_new(o, "content", objects__str(m->content));
    json_object_set_new(o, "tool_calls", objects__json(m->tool_calls, json_null()));
    json_object_set_new(o, "tool_call_id", objects__str(m->tool_call_id));
    json_object_set_new(o, "partial", json_boolean(m->partial));
    json_object_set_new(o, "created_at", objects__time(m->created_ms));
    return o;
}

json_t *objects_tool_exec(const store_tool_exec *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", objects__str(t->id));
    json_object_set_new(o, "session_id", objects__str(t->session_id));
    json_object_set_new(o, "run_id", objects__str(t->run_id));
    json_object_set_new(o, "step", json_integer(t->step));
    json_object_set_new(o, "server", objects__str(t->server));
    json_object_set_new(o, "tool", objects__str(t->tool));
    json_object_set_new(o, "arguments", objects__json(t->arguments, json_object()));
    json_object_set_new(o, "status", objects__str(t->status));
    json_object_set_new(o, "result", objects__str(t->result));
    json_object_set_new(o, "error", objects__str(t->error));
    json_object_set_new(o, "started_at", objects__time(t->started_ms));
    json_object_set_new(o, "finished_at", objects__time(t->finished_ms));
    json_object_set_new(o, "duration_ms",
                        t->finished_ms ? json_integer(t->duration_ms) : json_null());
    return o;
}

json_t *objects_mode(const mode *m)
{
    return mode_to_json(m);
}
