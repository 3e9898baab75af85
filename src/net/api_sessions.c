/* The session routes: create, list, read, rename or change mode, delete,
 * and a session's messages, tool executions and runs; and GET /api/runs/{id}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/search.h"
#include "store/objects.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"

#define API__LIST_DEFAULT   50
#define API__LIST_MAX       200
#define API__DELETE_WAIT_MS 5000
#define API__DELETE_POLL_MS 20

/* A write through the eventlog on behalf of one request. */
typedef struct api__write {
    api *a;
    http_req *r;
    store_session row;
    char *title, *mode; /* PATCH: the new values, or NULL */
    bool not_found;
    bool mode_changed;
    int64_t waited_ms;
    struct event *timer;
} api__write;

static void api__write_free(api__write *w)
{
    store_session_cleanup(&w->row);
    free(w->title);
    free(w->mode);
    if (w->timer) event_free(w->timer);
    free(w);
}

/* ---- POST /api/sessions ---- */

static int api__create_apply(store *s, void *arg)
{
    api__write *w = arg;
    return store_session_insert(s, &w->row);
}

static void api__create_done(void *arg, evt *ev, int status)
{
    (void)ev;
    api__write *w = arg;
    if (status < 0) {
        http_reply_error(w->r, 503, "unavailable", "the session could not be stored");
    } else {
        json_t *o = objects_session(&w->row, NULL);
        if (!*w->row.title) json_object_set_new(o, "title", json_string("New chat"));
        http_reply_json(w->r, 201, o);
    }
    api__write_free(w);
}

static void api__create(http_req *r, void *ud)
{
    api *a = ud;
    json_t *body = api__body(a, r, &validate_session_create);
    if (!body) return;
    api__write *w = xcalloc(1, sizeof *w);
    w->a = a;
    w->r = r;
    char id[ID_MAX];
    int64_t now = clock_wall_ms();
    id_new(id, "ses", now);
    const char *title = validate_get_string(body, "title");
    const char *mode_name = validate_get_string(body, "mode");
    w->row.id = xstrdup(id);
    const char *owner = http_req_owner(r);
    w->row.owner = owner ? xstrdup(owner) : NULL;
    w->row.title = xstrdup(title ? title : "");
    w->row.mode = xstrdup(mode_name ? mode_name : MODE_DEFAULT);
    w->row.status = xstrdup("idle");
    w->row.created_ms = w->row.updated_ms = now;
    json_decref(body);
    eventlog_op op = {api__create_apply, api__create_done, w, NULL, w->row.id, NULL};
    eventlog_submit(a->d.log, &op);
}

/* ---- GET /api/sessions ---- */

static void api__list_work(store *st, api__job *j)
{
    store_session *rows = NULL;
    size_t n = 0;
    int rc = store_session_search(st, j->owner, j->id, (int)j->num, j->arg, &rows, &n);
    if (rc < 0) {
        api__job_store_error(j, st, rc, "such session");
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = NULL;
        if (api__session_object(st, rows[i].id, j->owner, &o) == 0) json_array_append_new(list, o);
    }
    store_session_list_free(rows, n);
    j->body = json_object();
    json_object_set_new(j->body, "sessions", list);
}

static void api__list(http_req *r, void *ud)
{
    api *a = ud;
    int64_t limit = API__LIST_DEFAULT;
    const char *l = http_req_query(r, "limit");
    char err[256];
    if (l && validate_query_int("limit", l, 1, API__LIST_MAX, &limit, err, sizeof err) != 0) {
        http_reply_error(r, 400, "bad_request", "%s", err);
        return;
    }
    const char *before = http_req_query(r, "before");
    if (before && (!*before || strlen(before) > 64)) {
        http_reply_error(r, 400, "bad_request", "before must be a session id");
        return;
    }
    /* q: only the sessions whose title or messages hold this text; empty is
     * the plain list (docs/api.md, Sessions). */
    const char *q = http_req_query(r, "q");
    if (q && search_text_check(q, err, sizeof err) != 0) {
        http_reply_error(r, 400, "bad_request", "%s", err);
        return;
    }
    /* The route has no id in its path, so the job's id carries the text. */
    api__job *j = api__job_new(a, r, q && *q ? q : NULL, api__list_work);
    j->num = limit;
    j->arg = before ? xstrdup(before) : NULL;
    api__job_submit(j);
}

/* ---- GET /api/sessions/{id} ---- */

static void api__get(http_req *r, void *ud)
{
    api__reply_session(ud, r, http_req_param(r, "id"), 200);
}

/* ---- PATCH /api/sessions/{id} ---- */

/* A PATCH: the write, with the id it names (the row is read inside the
 * write, so a concurrent delete is seen). */
typedef struct api__patch_op {
    api__write w;
    char *id;
    char *owner; /* NULL: any */
} api__patch_op;

static int api__patch_apply_real(store *s, void *arg)
{
    api__patch_op *p = arg;
    api__write *w = &p->w;
    store_session_cleanup(&w->row);
    memset(&w->row, 0, sizeof w->row);
    w->not_found = false;
    w->mode_changed = false;
    int rc = store_session_get(s, p->id, p->owner, &w->row);
    if (rc == STORE_NOT_FOUND) {
        w->not_found = true;
        return 0;
    }
    if (rc < 0) return rc;
    if (w->title) {
        free(w->row.title);
        w->row.title = xstrdup(w->title);
    }
    if (w->mode && strcmp(w->mode, w->row.mode) != 0) {
        free(w->row.mode);
        w->row.mode = xstrdup(w->mode);
        w->mode_changed = true;
    }
    w->row.updated_ms = clock_wall_ms();
    return store_session_update(s, &w->row);
}

static void api__patch_done(void *arg, evt *ev, int status)
{
    (void)ev;
    api__patch_op *p = arg;
    api__write *w = &p->w;
    if (status < 0) {
        http_reply_error(w->r, 503, "unavailable", "the session could not be stored");
    } else if (w->not_found) {
        http_reply_error(w->r, 404, "not_found", "no session %s", p->id);
    } else if (w->a->stopping) {
        http_reply_error(w->r, 503, "unavailable", "the server is shutting down");
    } else {
        if (w->mode_changed) engine_session_mode_changed(w->a->d.engine, p->id, w->mode);
        api__reply_session(w->a, w->r, p->id, 200);
    }
    free(p->id);
    free(p->owner);
    store_session_cleanup(&w->row);
    free(w->title);
    free(w->mode);
    free(p);
}

static void api__patch(http_req *r, void *ud)
{
    api *a = ud;
    json_t *body = api__body(a, r, &validate_session_patch);
    if (!body) return;
    api__patch_op *p = xcalloc(1, sizeof *p);
    p->id = xstrdup(http_req_param(r, "id"));
    const char *owner = http_req_owner(r);
    p->owner = owner ? xstrdup(owner) : NULL;
    p->w.a = a;
    p->w.r = r;
    const char *title = validate_get_string(body, "title");
    const char *mode_name = validate_get_string(body, "mode");
    p->w.title = title ? xstrdup(title) : NULL;
    p->w.mode = mode_name ? xstrdup(mode_name) : NULL;
    json_decref(body);
    eventlog_op op = {api__patch_apply_real, api__patch_done, p, NULL, NULL, NULL};
    eventlog_submit(a->d.log, &op);
}

/* ---- DELETE /api/sessions/{id} ---- */

static int api__delete_apply(store *s, void *arg)
{
    api__write *w = arg;
    w->not_found = false;
    int rc = store_session_delete(s, w->row.id);
    if (rc == STORE_NOT_FOUND) {
        w->not_found = true;
        return 0;
    }
    return rc < 0 ? rc : 0;
}

static void api__delete_done(void *arg, evt *ev, int status)
{
    (void)ev;
    api__write *w = arg;
    if (status < 0) {
        http_reply_error(w->r, 503, "unavailable", "the session could not be deleted");
    } else if (w->not_found) {
        http_reply_error(w->r, 404, "not_found", "no session %s", w->row.id);
    } else {
        hub_session_deleted(w->a->hub, w->row.id);
        if (w->a->d.session_deleted) w->a->d.session_deleted(w->a->d.ud, w->row.id);
        http_reply_no_content(w->r);
    }
    api__write_free(w);
}

static void api__delete_write(api__write *w)
{
    eventlog_op op = {api__delete_apply, api__delete_done, w, NULL, NULL, NULL};
    eventlog_submit(w->a->d.log, &op);
}

/* Waits for the session's run to stop, then deletes. A run that does not
 * stop within API__DELETE_WAIT_MS is left to the delete's cascade. */
static void api__delete_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    api__write *w = arg;
    w->waited_ms += API__DELETE_POLL_MS;
    if (w->a->stopping) {
        http_reply_error(w->r, 503, "unavailable", "the server is shutting down");
        api__write_free(w);
        return;
    }
    if (engine_active_run_id(w->a->d.engine, w->row.id) && w->waited_ms < API__DELETE_WAIT_MS) {
        struct timeval tv = {0, API__DELETE_POLL_MS * 1000};
        evtimer_add(w->timer, &tv);
        return;
    }
    if (w->waited_ms >= API__DELETE_WAIT_MS)
        LOG(LOG_WARN, "deleting a session whose run did not stop in time", "session_id=%s",
            w->row.id);
    api__delete_write(w);
}

static void api__delete_stopped(void *ud, int status, const json_t *run)
{
    (void)status;
    (void)run;
    api__write *w = ud;
    w->timer = evtimer_new(w->a->d.base, api__delete_poll, w);
    api__delete_poll(-1, 0, w);
}

static void api__delete(http_req *r, void *ud)
{
    api *a = ud;
    api__write *w = xcalloc(1, sizeof *w);
    w->a = a;
    w->r = r;
    w->row.id = xstrdup(http_req_param(r, "id"));
    /* With several instances the run may be another one's: the engine
     * finds it in the database and asks its owner to stop it. */
    if (engine_active_run_id(a->d.engine, w->row.id) || a->d.shared)
        engine_stop_run(a->d.engine, w->row.id, api__delete_stopped, w);
    else
        api__delete_write(w);
}

/* ---- a session's messages, tool executions and runs ---- */

bool api__session_exists(store *st, api__job *j)
{
    store_session ses = {0};
    int rc = store_session_get(st, j->id, j->owner, &ses);
    if (rc < 0) {
        api__job_store_error_id(j, st, rc, "session", j->id);
        return false;
    }
    store_session_cleanup(&ses);
    return true;
}

API__SESSION_LIST_WORK(api__messages_work, store_message, "messages", "messages",
                       store_message_list(st, j->id, &rows, &n), objects_message,
                       store_message_list_free)

API__SESSION_LIST_WORK(api__tools_work, store_tool_exec, "tool_executions", "tool executions",
                       store_tool_exec_list(st, j->id, j->arg, &rows, &n), objects_tool_exec,
                       store_tool_exec_list_free)

API__SESSION_LIST_WORK(api__runs_work, store_run, "runs", "runs",
                       store_run_list(st, j->id, &rows, &n), objects_run, store_run_list_free)

static void api__run_work(store *st, api__job *j)
{
    store_run run = {0};
    /* A queued run has no row yet: its session holds it. */
    int rc = store_queue_run_get(st, j->id, &run);
    /* A run belongs to its session's owner; another owner sees no run. */
    if (rc == 0 && j->owner) {
        store_session ses = {0};
        rc = store_session_get(st, run.session_id, j->owner, &ses);
        store_session_cleanup(&ses);
        if (rc < 0) store_run_cleanup(&run);
    }
    if (rc < 0) {
        api__job_store_error_id(j, st, rc, "run", j->id);
        return;
    }
    j->body = objects_run(&run);
    store_run_cleanup(&run);
}

static void api__messages(http_req *r, void *ud)
{
    api__job_submit(api__job_new(ud, r, http_req_param(r, "id"), api__messages_work));
}

static void api__tools(http_req *r, void *ud)
{
    const char *run_id = http_req_query(r, "run_id");
    if (run_id && (!*run_id || strlen(run_id) > 64)) {
        http_reply_error(r, 400, "bad_request", "run_id must be a run id");
        return;
    }
    api__job *j = api__job_new(ud, r, http_req_param(r, "id"), api__tools_work);
    j->arg = run_id ? xstrdup(run_id) : NULL;
    api__job_submit(j);
}

static void api__runs(http_req *r, void *ud)
{
    api__job_submit(api__job_new(ud, r, http_req_param(r, "id"), api__runs_work));
}

/* A queued run shows the limits the engine will start it with (the stored
 * mode with the configuration's overrides), as the answer that queued it
 * did; only the loop thread reads the engine's modes. */
static void api__run_then(api__job *j)
{
    const char *status = json_string_value(json_object_get(j->body, "status"));
    const mode *m =
        !j->code && status && strcmp(status, "queued") == 0
            ? engine_mode(j->a->d.engine, json_string_value(json_object_get(j->body, "mode")))
            : NULL;
    if (m) json_object_set_new(j->body, "limits", mode_limits_to_json(&m->limits));
    if (j->code) {
        http_reply_error(j->r, j->status, j->code, "%s", j->msg);
    } else {
        http_reply_json(j->r, j->status, j->body);
        j->body = NULL;
    }
    api__job_free(j);
}

static void api__run(http_req *r, void *ud)
{
    api__job *j = api__job_new(ud, r, http_req_param(r, "id"), api__run_work);
    j->then = api__run_then;
    api__job_submit(j);
}

void api__register_sessions(http_server *s, api *a)
{
    http_route(s, "POST", "/api/sessions", api__create, a);
    http_route(s, "GET", "/api/sessions", api__list, a);
    http_route(s, "GET", "/api/sessions/{id}", api__get, a);
    http_route(s, "PATCH", "/api/sessions/{id}", api__patch, a);
    http_route(s, "DELETE", "/api/sessions/{id}", api__delete, a);
    http_route(s, "GET", "/api/sessions/{id}/messages", api__messages, a);
    http_route(s, "GET", "/api/sessions/{id}/tools", api__tools, a);
    http_route(s, "GET", "/api/sessions/{id}/runs", api__runs, a);
    http_route(s, "GET", "/api/runs/{id}", api__run, a);
}
