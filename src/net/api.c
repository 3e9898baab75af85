#include "net/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/objects.h"
#include "lib/xmalloc.h"

void api_register(http_server *s, api *a)
{
    api__register_sessions(s, a);
    api__register_runs(s, a);
    api__register_approvals(s, a);
    api__register_inputs(s, a);
    api__register_health(s, a);
    api__register_export(s, a);
    api__register_fork(s, a);
    api__register_agui(s, a);
    api__register_aisdk(s, a);
    api__register_misc(s, a);
    api__register_usage(s, a);
    api__register_auth(s, a);
    http_set_guard(s, api__guard, a);
}

void api__validate_ctx(api *a, validate_ctx *ctx, const char **names)
{
    size_t n = engine_mode_count(a->d.engine);
    if (n > API__MODES_MAX) n = API__MODES_MAX;
    for (size_t i = 0; i < n; i++) names[i] = engine_mode_at(a->d.engine, i)->name;
    ctx->modes = names;
    ctx->nmodes = n;
    ctx->message_bytes = (size_t)a->d.message_bytes;
}

json_t *api__body(api *a, http_req *r, const validate_schema *schema)
{
    json_t *body = NULL;
    if (http_req_json_body(r, &body) != 0) return NULL;
    const char *names[API__MODES_MAX];
    validate_ctx ctx;
    api__validate_ctx(a, &ctx, names);
    char err[512];
    if (validate_body(schema, body, &ctx, err, sizeof err) != 0) {
        json_decref(body);
        http_reply_error(r, 400, "bad_request", "%s", err);
        return NULL;
    }
    return body;
}

void api__engine_error(http_req *r, int status, const char *session_id)
{
    switch (status) {
    case ENGINE_ERR_RUN_ACTIVE:
        http_reply_error(r, 409, "run_active", "a run is already active in session %s", session_id);
        break;
    case ENGINE_ERR_NO_RUN:
        http_reply_error(r, 409, "no_active_run", "session %s has no active run", session_id);
        break;
    case ENGINE_ERR_NOTHING:
        http_reply_error(r, 409, "nothing_to_continue", "session %s has no stopped run to continue",
                         session_id);
        break;
    case ENGINE_ERR_NOTHING_TO_REGENERATE:
        http_reply_error(r, 409, "nothing_to_regenerate",
                         "session %s has no user message to answer again", session_id);
        break;
    case ENGINE_ERR_QUEUE_FULL:
        http_reply_error(r, 409, "queue_full", "session %s has a queued run already", session_id);
        break;
    case ENGINE_ERR_TOO_MANY:
        http_reply_error(r, 429, "too_many_runs", "the server already runs its limit of runs");
        break;
    case ENGINE_ERR_NOT_FOUND:
        http_reply_error(r, 404, "not_found", "no session %s", session_id);
        break;
    case ENGINE_ERR_BAD_MODE:
        http_reply_error(r, 400, "bad_request", "mode is not the name of a known mode");
        break;
    case ENGINE_ERR_UNAVAILABLE:
        http_reply_error(r, 503, "unavailable",
                         "the database did not answer or the server is shutting down");
        break;
    default:
        http_reply_error(r, 500, "internal", "the run could not be started (%s)", err_name(status));
    }
}

/* ---- reads on the pool ---- */

api__job *api__job_new(api *a, http_req *r, const char *id, api__work_fn work)
{
    api__job *j = xcalloc(1, sizeof *j);
    j->a = a;
    j->r = r;
    j->id = id ? xstrdup(id) : NULL;
    const char *owner = http_req_owner(r);
    j->owner = owner ? xstrdup(owner) : NULL;
    j->work = work;
    j->status = 200;
    return j;
}

void api__job_free(api__job *j)
{
    json_decref(j->body);
    free(j->id);
    free(j->owner);
    free(j->arg);
    free(j);
}

static void api__job_work(store *st, void *arg)
{
    api__job *j = arg;
    j->work(st, j);
}

static void api__job_done(void *arg)
{
    api__job *j = arg;
    if (j->then) {
        j->then(j);
        return;
    }
    if (j->code) {
        http_reply_error(j->r, j->status, j->code, "%s", j->msg);
    } else {
        http_reply_json(j->r, j->status, j->body);
        j->body = NULL;
    }
    api__job_free(j);
}

void api__reply_decided(api__job *j, const char *key)
{
    if (j->code && j->body) {
        json_t *err = json_pack("{s:s, s:s}", "code", j->code, "message", j->msg);
        http_reply_json(j->r, j->status, json_pack("{s:o, s:O}", "error", err, key, j->body));
    } else if (j->code) {
        http_reply_error(j->r, j->status, j->code, "%s", j->msg);
    } else {
        http_reply_json(j->r, 200, json_incref(j->body));
    }
}

void api__job_submit(api__job *j)
{
    if (j->a->stopping) {
        http_reply_error(j->r, 503, "unavailable", "the server is shutting down");
        api__job_free(j);
        return;
    }
    dbpool_submit(j->a->d.pool, api__job_work, api__job_done, j);
}

void api__job_store_error(api__job *j, store *st, int rc, const char *what)
{
    if (rc == STORE_NOT_FOUND) {
        j->status = 404;
        j->code = "not_found";
        snprintf(j->msg, sizeof j->msg, "no %s", what);
    } else {
        j->status = 503;
        j->code = "unavailable";
        snprintf(j->msg, sizeof j->msg, "the database did not answer: %s", store_errmsg(st));
    }
}

void api__job_store_error_id(api__job *j, store *st, int rc, const char *kind, const char *id)
{
    char what[128];
    snprintf(what, sizeof what, "%s %.80s", kind, id);
    api__job_store_error(j, st, rc, what);
}

int api__session_object(store *st, const char *id, const char *owner, json_t **out)
{
    store_session ses = {0};
    int rc = store_session_get(st, id, owner, &ses);
    if (rc < 0) return rc;
    store_run last = {0};
    rc = store_run_latest(st, id, &last);
    if (rc < 0 && rc != STORE_NOT_FOUND) {
        store_session_cleanup(&ses);
        return rc;
    }
    json_t *o = objects_session(&ses, rc == 0 ? &last : NULL);
    /* A session created without a title shows "New chat" until its first
     * message names it. */
    if (!ses.title || !*ses.title) json_object_set_new(o, "title", json_string("New chat"));
    store_run_cleanup(&last);
    store_session_cleanup(&ses);
    *out = o;
    return 0;
}

static void api__session_work(store *st, api__job *j)
{
    int rc = api__session_object(st, j->id, j->owner, &j->body);
    if (rc < 0) api__job_store_error_id(j, st, rc, "session", j->id);
}

void api__reply_session(api *a, http_req *r, const char *id, int status)
{
    api__job *j = api__job_new(a, r, id, api__session_work);
    j->status = status;
    api__job_submit(j);
}
