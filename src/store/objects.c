/*
 * objects: the API objects, built from the row lists of store.h by
 * store__row_json; only what no column says (a session's default title,
 * a running tool's null duration, a session's last run) is written here.
 */
#include "store/objects.h"

#include <string.h>

#include "core/stop.h"
#include "store/store_int.h"

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
    store__row_json(&store__session_table, s, o);
    /* A session keeps an empty title until its first message names it. */
    json_object_set_new(o, "title", json_string(s->title && *s->title ? s->title : "New chat"));
    json_object_set_new(o, "forked_from",
                        s->forked_from_session
                            ? json_pack("{s:s, s:s?}", "session_id", s->forked_from_session,
                                        "message_id", s->forked_from_message)
                            : json_null());
    json_object_set_new(o, "last_run", last_run ? objects_run(last_run) : json_null());
    json_object_set_new(o, "queued_run_id",
                        s->queued_run_id ? json_string(s->queued_run_id) : json_null());
    return o;
}

json_t *objects_run(const store_run *r)
{
    json_t *cols = json_object();
    store__row_json(&store__run_table, r, cols);
    /* stop_tone is derived, not a column; it goes right after stop_reason,
     * and JSON objects keep the order their keys were set in. */
    json_t *o = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(cols, key, v)
    {
        json_object_set(o, key, v);
        if (strcmp(key, "stop_reason") == 0)
            json_object_set_new(o, "stop_tone", objects__stop_tone(r->stop_reason));
    }
    json_decref(cols);
    return o;
}

json_t *objects_message(const store_message *m)
{
    json_t *o = json_object();
    store__row_json(&store__message_table, m, o);
    return o;
}

json_t *objects_tool_exec(const store_tool_exec *t)
{
    json_t *o = json_object();
    store__row_json(&store__tool_exec_table, t, o);
    if (!t->finished_ms) json_object_set_new(o, "duration_ms", json_null());
    return o;
}

json_t *objects_approval(const store_approval *a)
{
    json_t *o = json_object();
    store__row_json(&store__approval_table, a, o);
    return o;
}

json_t *objects_input(const store_input *a)
{
    json_t *o = json_object();
    store__row_json(&store__input_table, a, o);
    return o;
}

json_t *objects_mode(const mode *m)
{
    return mode_to_json(m);
}
