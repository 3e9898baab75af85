/*
 * POST /api/sessions/{id}/fork (docs/api.md, Fork): a new session of the
 * same owner whose history is the source's messages before a user message
 * (all of them by default), and, with a message, a run at once. Editing a
 * sent message is a fork before it with the new text.
 *
 * Three steps: a read checks the source and the message on a pool thread,
 * the eventlog writes the new session with its copied messages and their
 * events in one transaction, and the engine starts the run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/id.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"
#include "store/objects.h"

typedef struct api_fork {
    api *a;
    http_req *r;
    store_session row; /* the new session */
    char *message;     /* the run's message, or NULL */
    json_t *run;       /* the started run, once it is */
} api_fork;

static void api_fork__free(api_fork *f)
{
    store_session_cleanup(&f->row);
    free(f->message);
    json_decref(f->run);
    free(f);
}

/* ---- 3: the answer, with the session as it is now ---- */

static void api_fork__reply_work(store *st, api__job *j)
{
    int rc = api__session_object(st, j->id, NULL, &j->body);
    if (rc < 0) api__job_store_error(j, st, rc, "session");
}

static void api_fork__reply_then(api__job *j)
{
    api_fork *f = j->ud;
    if (j->code) {
        http_reply_error(j->r, j->status, j->code, "%s", j->msg);
    } else {
        if (f->run) json_object_set(j->body, "run", f->run);
        http_reply_json(j->r, 201, j->body);
        j->body = NULL;
    }
    api__job_free(j);
    api_fork__free(f);
}

static void api_fork__reply(api_fork *f)
{
    api__job *j = api__job_new(f->a, f->r, f->row.id, api_fork__reply_work);
    j->ud = f;
    j->then = api_fork__reply_then;
    api__job_submit(j);
}

static void api_fork__started(void *ud, int status, const json_t *run)
{
    api_fork *f = ud;
    if (status < 0) {
        /* The fork is stored; only its run did not start. */
        api__engine_error(f->r, status, f->row.id);
        api_fork__free(f);
        return;
    }
    f->run = json_deep_copy(run);
    api_fork__reply(f);
}

/* ---- 2: the write ---- */

static int api_fork__apply(store *s, void *arg)
{
    int rc = store_session_fork(s, &((api_fork *)arg)->row);
    return rc < 0 ? rc : 0;
}

static void api_fork__written(void *arg, evt *ev, int status)
{
    (void)ev;
    api_fork *f = arg;
    if (status < 0) {
        http_reply_error(f->r, 503, "unavailable", "the fork could not be stored");
        api_fork__free(f);
        return;
    }
    if (f->message)
        engine_start_run(f->a->d.engine, f->row.id, f->message, NULL, api_fork__started, f);
    else
        api_fork__reply(f);
}

/* ---- 1: the source and the message ---- */

static void api_fork__check_work(store *st, api__job *j)
{
    api_fork *f = j->ud;
    store_session src = {0};
    int rc = store_session_get(st, j->id, j->owner, &src);
    if (rc < 0) {
        api__job_store_error_id(j, st, rc, "session", j->id);
        return;
    }
    if (!f->row.title) f->row.title = xstrdup(src.title ? src.title : "");
    f->row.mode = xstrdup(src.mode);
    store_session_cleanup(&src);
    if (!j->arg) return;
    store_message *ms = NULL;
    size_t n = 0;
    rc = store_message_list(st, j->id, &ms, &n);
    if (rc < 0) {
        api__job_store_error(j, st, rc, "messages");
        return;
    }
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp(ms[i].id, j->arg) == 0 && strcmp(ms[i].role, "user") == 0;
    store_message_list_free(ms, n);
    if (!found) {
        j->status = 400;
        j->code = "bad_request";
        snprintf(j->msg, sizeof j->msg, "message_id: %.80s is not a user message of session %.80s",
                 j->arg, j->id);
    }
}

static void api_fork__checked(api__job *j)
{
    api_fork *f = j->ud;
    if (j->code) {
        http_reply_error(j->r, j->status, j->code, "%s", j->msg);
        api_fork__free(f);
    } else {
        eventlog_op op = {api_fork__apply, api_fork__written, f, NULL, NULL, NULL};
        eventlog_submit(f->a->d.log, &op);
    }
    api__job_free(j);
}

static void api_fork__post(http_req *r, void *ud)
{
    api *a = ud;
    json_t *body = api__body(a, r, &validate_fork);
    if (!body) return;
    const char *source = http_req_param(r, "id");
    const char *message_id = validate_get_string(body, "message_id");
    const char *message = validate_get_string(body, "message");
    const char *title = validate_get_string(body, "title");
    const char *owner = http_req_owner(r);
    api_fork *f = xcalloc(1, sizeof *f);
    f->a = a;
    f->r = r;
    char id[ID_MAX];
    int64_t now = clock_wall_ms();
    id_new(id, "ses", now);
    f->row.id = xstrdup(id);
    f->row.owner = owner ? xstrdup(owner) : NULL;
    f->row.title = title ? xstrdup(title) : NULL;
    f->row.status = xstrdup("idle");
    f->row.created_ms = f->row.updated_ms = now;
    f->row.forked_from_session = xstrdup(source);
    f->row.forked_from_message = message_id ? xstrdup(message_id) : NULL;
    f->message = message ? xstrdup(message) : NULL;
    api__job *j = api__job_new(a, r, source, api_fork__check_work);
    j->arg = message_id ? xstrdup(message_id) : NULL;
    j->ud = f;
    j->then = api_fork__checked;
    json_decref(body);
    api__job_submit(j);
}

void api__register_fork(http_server *s, api *a)
{
    http_route(s, "POST", "/api/sessions/{id}/fork", api_fork__post, a);
}
