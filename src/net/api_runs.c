/* The run routes: start a run (202, or its events as SSE), stop, continue,
 * a session's events (SSE or JSON), and the seed system's streaming routes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"

#define API__EVENTS_PAGE 1000

/* One start, stop or continue waiting for the engine. */
typedef struct api__start {
    api *a;
    http_req *r;
    hub_sub *watch; /* the run-scoped stream, or NULL for a 202 answer */
    char *session_id;
    char *message, *mode;
    bool regenerate;            /* answer the last user message again */
    engine_if_active if_active; /* what to do when a run is active */
    bool stream;                /* stream whatever the Accept header says */
} api__start;

static void api__start_free(api__start *st)
{
    free(st->session_id);
    free(st->message);
    free(st->mode);
    free(st);
}

static void api__started(void *ud, int status, const json_t *run)
{
    api__start *st = ud;
    if (status < 0 || !run) {
        if (st->watch) hub_watch_cancel(st->watch);
        api__engine_error(st->r, status < 0 ? status : ENGINE_ERR_UNAVAILABLE, st->session_id);
    } else if (st->watch) {
        const char *run_id = json_string_value(json_object_get(run, "id"));
        hub_watch_start(st->watch, run_id ? run_id : "");
    } else {
        http_reply_json(st->r, 202, json_deep_copy(run));
    }
    api__start_free(st);
}

/* Starts the run, watching its events first when the client asked for a
 * stream, so not one of them is missed. */
static void api__start_run(api__start *st)
{
    if (st->stream || http_req_accepts(st->r, "text/event-stream")) {
        st->watch = hub_watch(st->a->hub, st->r, st->session_id, http_req_owner(st->r));
        if (!st->watch) {
            api__too_many_subscribers(st->r);
            api__start_free(st);
            return;
        }
    }
    /* A stream needs the run's id alone (engine.h, brief). */
    bool brief = st->watch != NULL;
    if (st->regenerate)
        engine_regenerate_run(st->a->d.engine, st->session_id, st->mode, brief, api__started, st);
    else
        engine_submit_run(st->a->d.engine, st->session_id, st->message, st->mode, st->if_active,
                          brief, api__started, st);
}

static api__start *api__start_new(api *a, http_req *r, const char *session_id, const json_t *body)
{
    api__start *st = xcalloc(1, sizeof *st);
    st->a = a;
    st->r = r;
    st->session_id = session_id ? xstrdup(session_id) : NULL;
    const char *message = validate_get_string(body, "message");
    const char *mode_name = validate_get_string(body, "mode");
    st->message = message ? xstrdup(message) : NULL;
    st->mode = mode_name ? xstrdup(mode_name) : NULL;
    return st;
}

/* POST /api/sessions/{id}/runs */
static void api__post_run(http_req *r, void *ud)
{
    api *a = ud;
    json_t *body = api__body(a, r, &validate_run_start);
    if (!body) return;
    bool regenerate = json_is_true(json_object_get(body, "regenerate"));
    bool message = validate_get_string(body, "message") != NULL;
    if (regenerate == message) {
        http_reply_error(r, 400, "bad_request",
                         regenerate ? "give a message or regenerate, not both"
                                    : "message must be a non-empty string");
        json_decref(body);
        return;
    }
    /* A queued run carries a message (docs/runs.md, Queue and interrupt). */
    const char *if_active = validate_get_string(body, "if_active");
    if (regenerate && if_active && strcmp(if_active, "reject") != 0) {
        http_reply_error(r, 400, "bad_request",
                         "if_active must be reject with regenerate: only a message is queued");
        json_decref(body);
        return;
    }
    api__start *st = api__start_new(a, r, http_req_param(r, "id"), body);
    st->regenerate = regenerate;
    st->if_active = !if_active || strcmp(if_active, "reject") == 0 ? ENGINE_IF_ACTIVE_REJECT
                    : strcmp(if_active, "enqueue") == 0            ? ENGINE_IF_ACTIVE_ENQUEUE
                                                                   : ENGINE_IF_ACTIVE_INTERRUPT;
    json_decref(body);
    api__start_run(st);
}

/* POST /api/sessions/{id}/continue */
static void api__continue(http_req *r, void *ud)
{
    api *a = ud;
    json_t *body = api__body(a, r, &validate_continue);
    if (!body) return;
    api__start *st = api__start_new(a, r, http_req_param(r, "id"), body);
    json_decref(body);
    api__start_run(st);
}

/* POST /api/sessions/{id}/stop */
static void api__stop(http_req *r, void *ud)
{
    api *a = ud;
    json_t *body = api__body(a, r, &validate_stop);
    if (!body) return;
    json_decref(body);
    api__start *st = api__start_new(a, r, http_req_param(r, "id"), NULL);
    engine_stop_run(a->d.engine, st->session_id, api__started, st);
}

/* ---- the seed system's streaming routes ---- */

typedef struct api__brain {
    api__start *st;
    store_session row;
} api__brain;

static int api__brain_apply(store *s, void *arg)
{
    api__brain *b = arg;
    return store_session_insert(s, &b->row);
}

static void api__brain_done(void *arg, evt *ev, int status)
{
    (void)ev;
    api__brain *b = arg;
    api__start *st = b->st;
    store_session_cleanup(&b->row);
    free(b);
    if (status < 0 || st->a->stopping) {
        http_reply_error(st->r, 503, "unavailable", "the session could not be stored");
        api__start_free(st);
        return;
    }
    api__start_run(st);
}

/* A session named in the body is checked like the path's id is by the
 * guard: another owner's session is not found. */
static void api__brain_owned_work(store *s, api__job *j)
{
    api__session_exists(s, j);
}

static void api__brain_owned_then(api__job *j)
{
    api__start *st = j->ud;
    if (j->code) {
        http_reply_error(j->r, j->status, j->code, "%s", j->msg);
        api__start_free(st);
    } else {
        api__start_run(st);
    }
    api__job_free(j);
}

/* POST /api/brain/stream and /api/brain/unified/consult/stream: like POST
 * …/runs with Accept: text/event-stream, creating a session when the body
 * names none. */
static void api__brain_stream(http_req *r, void *ud)
{
    api *a = ud;
    json_t *body = api__body(a, r, &validate_brain_stream);
    if (!body) return;
    const char *sid = validate_get_string(body, "session_id");
    api__start *st = api__start_new(a, r, sid, body);
    json_decref(body);
    st->stream = true;
    if (st->session_id && http_req_owner(r)) {
        if (a->stopping) {
            http_reply_error(r, 503, "unavailable", "the server is shutting down");
            api__start_free(st);
            return;
        }
        api__job *j = api__job_new(a, r, st->session_id, api__brain_owned_work);
        j->then = api__brain_owned_then;
        j->ud = st;
        api__job_submit(j);
        return;
    }
    if (st->session_id) {
        api__start_run(st);
        return;
    }
    api__brain *b = xcalloc(1, sizeof *b);
    b->st = st;
    char id[ID_MAX];
    int64_t now = clock_wall_ms();
    id_new(id, "ses", now);
    st->session_id = xstrdup(id);
    b->row.id = xstrdup(id);
    const char *owner = http_req_owner(r);
    b->row.owner = owner ? xstrdup(owner) : NULL;
    b->row.title = xstrdup("");
    b->row.mode = xstrdup(st->mode ? st->mode : MODE_DEFAULT);
    b->row.status = xstrdup("idle");
    b->row.created_ms = b->row.updated_ms = now;
    eventlog_op op = {api__brain_apply, api__brain_done, b, NULL, NULL, NULL};
    eventlog_submit(a->d.log, &op);
}

/* ---- GET /api/sessions/{id}/events ---- */

typedef struct api__events_out {
    buf out;
    size_t n;
} api__events_out;

static int api__events_row(void *ud, int64_t seq, const char *type, const char *json, size_t len)
{
    (void)seq;
    (void)type;
    api__events_out *e = ud;
    if (e->n++ > 0 && buf_append_char(&e->out, ',') != 0) return BUF_TOOBIG;
    return buf_append(&e->out, json, len);
}

static void api__events_work(store *st, api__job *j)
{
    if (!api__session_exists(st, j)) return;
    if (!j->ud) return; /* SSE: the hub replays */
    api__events_out *e = j->ud;
    int rc = buf_append_str(&e->out, "{\"events\":[");
    /* store_event_after answers the number of events delivered. */
    if (rc == 0) rc = store_event_after(st, j->id, j->num, API__EVENTS_PAGE, api__events_row, e);
    if (rc >= 0) rc = buf_append_str(&e->out, "]}");
    if (rc == BUF_TOOBIG) {
        j->status = 500;
        j->code = "internal";
        snprintf(j->msg, sizeof j->msg, "the page of events is larger than the answer may be");
    } else if (rc < 0) {
        api__job_store_error(j, st, rc, "events");
    }
}

static void api__events_then(api__job *j)
{
    api__events_out *e = j->ud;
    if (j->code) {
        http_reply_error(j->r, j->status, j->code, "%s", j->msg);
    } else if (e) {
        http_reply_json_text(j->r, 200, e->out.data, e->out.len);
    } else if (strcmp(http_req_method(j->r), "HEAD") == 0) {
        /* The head of a stream without the stream: a HEAD never subscribes. */
        http_reply_header(j->r, "Cache-Control", "no-cache");
        http_reply(j->r, 200, "text/event-stream", NULL, 0);
    } else if (hub_subscribe(j->a->hub, j->r, j->id, j->owner, j->num) != 0) {
        api__too_many_subscribers(j->r);
    }
    if (e) {
        buf_cleanup(&e->out);
        free(e);
    }
    api__job_free(j);
}

static void api__events(http_req *r, void *ud)
{
    api *a = ud;
    int64_t after = 0;
    char err[256];
    const char *last = http_req_header(r, "Last-Event-ID");
    const char *q = http_req_query(r, "after");
    if (last && *last) {
        if (validate_query_int("Last-Event-ID", last, 0, INT64_MAX, &after, err, sizeof err) != 0) {
            http_reply_error(r, 400, "bad_request", "%s", err);
            return;
        }
    } else if (q && validate_query_int("after", q, 0, INT64_MAX, &after, err, sizeof err) != 0) {
        http_reply_error(r, 400, "bad_request", "%s", err);
        return;
    }
    api__job *j = api__job_new(a, r, http_req_param(r, "id"), api__events_work);
    j->num = after;
    j->then = api__events_then;
    if (http_req_accepts(r, "application/json") && !http_req_accepts(r, "text/event-stream")) {
        api__events_out *e = xcalloc(1, sizeof *e);
        /* 1000 events of at most a few hundred KiB each. */
        buf_init(&e->out, (size_t)1 << 31);
        j->ud = e;
    }
    api__job_submit(j);
}

void api__register_runs(http_server *s, api *a)
{
    http_route(s, "POST", "/api/sessions/{id}/runs", api__post_run, a);
    http_route(s, "POST", "/api/sessions/{id}/stop", api__stop, a);
    http_route(s, "POST", "/api/sessions/{id}/continue", api__continue, a);
    http_route(s, "GET", "/api/sessions/{id}/events", api__events, a);
    http_route(s, "POST", "/api/brain/stream", api__brain_stream, a);
    http_route(s, "POST", "/api/brain/unified/consult/stream", api__brain_stream, a);
}
