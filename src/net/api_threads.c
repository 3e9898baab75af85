/* What the agent protocol routes share (docs/protocols.md, Threads and
 * sessions): the session a thread id names, made on first use, the check
 * of a request's new user message, and the run started, followed or
 * decided through a protocol's translator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/agentproto.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"

typedef struct api__thread {
    api *a;
    http_req *r;
    store_session row;   /* the session to make when it is missing */
    bool create;         /* make it; else a missing session is not found */
    bool missing;        /* it was not found (create false) */
    char *active_run_id; /* the session's active run, read on the writer */
    json_t *decided;     /* the ids of its decided approvals, when asked for */
    api__thread_cb then;
    void *ud;
} api__thread;

/* On the writer: the thread's session, made when it does not exist yet. */
static int api__thread_apply(store *s, void *arg)
{
    api__thread *t = arg;
    store_session ses = {0};
    int rc = store_session_get(s, t->row.id, t->row.owner, &ses);
    if (rc == STORE_NOT_FOUND && t->create) return store_session_insert(s, &t->row);
    if (rc == STORE_NOT_FOUND) {
        t->missing = true;
        return 0;
    }
    if (rc == 0 && ses.active_run_id) t->active_run_id = xstrdup(ses.active_run_id);
    store_session_cleanup(&ses);
    if (rc == 0 && t->decided) {
        store_approval *rows = NULL;
        size_t n = 0;
        rc = store_approval_list(s, t->row.id, NULL, &rows, &n);
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (strcmp(rows[i].status, "pending") != 0)
                json_array_append_new(t->decided, json_string(rows[i].id));
        store_approval_list_free(rows, n);
    }
    return rc;
}

static void api__thread_done(void *arg, evt *ev, int status)
{
    (void)ev;
    api__thread *t = arg;
    if (status < 0 || t->a->stopping) {
        http_reply_error(t->r, 503, "unavailable", "the session could not be stored");
        t->then(t->a, NULL, NULL, t->ud);
    } else {
        api__thread_info info = {t->row.id, t->missing, t->active_run_id, t->decided};
        t->then(t->a, t->r, &info, t->ud);
    }
    store_session_cleanup(&t->row);
    free(t->active_run_id);
    json_decref(t->decided);
    free(t);
}

void api__thread_session(api *a, http_req *r, const char *thread_id, const char *mode_name,
                         int flags, api__thread_cb then, void *ud)
{
    if (a->stopping) {
        http_reply_error(r, 503, "unavailable", "the server is shutting down");
        then(a, NULL, NULL, ud);
        return;
    }
    api__thread *t = xcalloc(1, sizeof *t);
    t->a = a;
    t->r = r;
    t->then = then;
    t->ud = ud;
    t->create = !(flags & API__THREAD_EXISTING);
    t->decided = flags & API__THREAD_DECIDED ? json_array() : NULL;
    char id[ID_MAX];
    const char *owner = http_req_owner(r);
    agentproto_session_id(owner, thread_id, id);
    int64_t now = clock_wall_ms();
    t->row.id = xstrdup(id);
    t->row.owner = owner ? xstrdup(owner) : NULL;
    t->row.title = xstrdup("");
    t->row.mode = xstrdup(mode_name ? mode_name : MODE_DEFAULT);
    t->row.status = xstrdup("idle");
    t->row.created_ms = t->row.updated_ms = now;
    eventlog_op op = {api__thread_apply, api__thread_done, t, NULL, NULL, NULL};
    eventlog_submit(a->d.log, &op);
}

bool api__protocol_read(http_req *r, agentproto_read_fn read, void *in)
{
    json_t *body = NULL;
    if (http_req_json_body(r, &body) != 0) return false;
    char err[256];
    int rc = read(body, in, err, sizeof err);
    json_decref(body);
    if (rc != 0) http_reply_error(r, 400, "bad_request", "%s", err);
    return rc == 0;
}

static bool api__protocol_message_ok(api *a, http_req *r, const char *message)
{
    if (!message) return true;
    const char *names[API__MODES_MAX];
    validate_ctx ctx;
    api__validate_ctx(a, &ctx, names);
    if (!*message) {
        http_reply_error(r, 400, "bad_request", "the new user message must not be empty");
        return false;
    }
    if (strlen(message) > ctx.message_bytes) {
        http_reply_error(r, 400, "bad_request", "the new user message must be at most %zu bytes",
                         ctx.message_bytes);
        return false;
    }
    return true;
}

bool api__protocol_request_ok(api *a, http_req *r, const char *refused, const char *message,
                              const char *mode_name, const char *mode_field)
{
    if (refused) {
        http_reply_error(r, 400, "bad_request", "%s", refused);
        return false;
    }
    if (!api__protocol_message_ok(a, r, message)) return false;
    if (mode_name && !engine_mode(a->d.engine, mode_name)) {
        http_reply_error(r, 400, "bad_request", "%s: unknown mode \"%.64s\"", mode_field,
                         mode_name);
        return false;
    }
    return true;
}

/* A run being started for a protocol stream: what its answer needs. */
typedef struct api__protocol_run {
    http_req *r;
    hub_sub *watch;
    char *session_id;
} api__protocol_run;

static void api__protocol_started(void *ud, int status, const json_t *run)
{
    api__protocol_run *p = ud;
    if (status < 0 || !run) {
        hub_watch_cancel(p->watch);
        api__engine_error(p->r, status < 0 ? status : ENGINE_ERR_UNAVAILABLE, p->session_id);
    } else {
        const char *run_id = json_string_value(json_object_get(run, "id"));
        hub_watch_start(p->watch, run_id ? run_id : "");
    }
    free(p->session_id);
    free(p);
}

void api__protocol_start(api *a, http_req *r, const char *session_id, const hub_xlate *x,
                         const char *message, const char *mode_name, const char *note)
{
    hub_sub *watch = hub_watch_as(a->hub, r, session_id, http_req_owner(r), x);
    if (!watch) {
        x->on_free(x->ud);
        api__too_many_subscribers(r);
        return;
    }
    api__protocol_run *p = xcalloc(1, sizeof *p);
    p->r = r;
    p->watch = watch;
    p->session_id = xstrdup(session_id);
    if (message)
        engine_start_run_noted(a->d.engine, session_id, message, mode_name, note, true,
                               api__protocol_started, p);
    else
        engine_regenerate_run(a->d.engine, session_id, mode_name, true, api__protocol_started, p);
}

void api__protocol_follow(api *a, http_req *r, const char *session_id, const char *run_id,
                          const hub_xlate *x)
{
    if (hub_follow(a->hub, r, session_id, http_req_owner(r), run_id, x) != 0) {
        x->on_free(x->ud);
        api__too_many_subscribers(r);
    }
}

void api__protocol_decide(api *a, http_req *r, const char *session_id, const char *approval_id,
                          bool approve, const char *reason, engine_approval_cb cb, void *ud)
{
    const char *owner = http_req_owner(r);
    engine_decision d = {
        .approval_id = approval_id,
        .approve = approve,
        .reason = reason,
        .remember = APPROVAL_ONCE,
        .decided_by = owner ? owner : "local",
    };
    engine_decide_approval(a->d.engine, session_id, &d, cb, ud);
}
