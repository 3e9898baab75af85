/* The approval routes (docs/api.md, Approvals): a session's approvals, and
 * a person's decision on one, which the engine applies to the run that
 * waits for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/approval.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"
#include "store/objects.h"

/* ---- GET /api/sessions/{id}/approvals?status= ---- */

API__SESSION_LIST_WORK(api__approvals_work, store_approval, "approvals", "approvals",
                       store_approval_list(st, j->id, j->arg, &rows, &n), objects_approval,
                       store_approval_list_free)

static void api__approvals(http_req *r, void *ud)
{
    const char *status = http_req_query(r, "status");
    approval_status st;
    if (status && approval_status_parse(status, &st) != 0) {
        http_reply_error(r, 400, "bad_request",
                         "status must be one of pending, approved, denied, expired, cancelled");
        return;
    }
    api__job *j = api__job_new(ud, r, http_req_param(r, "id"), api__approvals_work);
    j->arg = status ? xstrdup(status) : NULL;
    api__job_submit(j);
}

/* ---- POST /api/sessions/{id}/approvals/{approval_id} ---- */

typedef struct api__decision {
    api *a;
    http_req *r;
    char *session_id, *approval_id;
    bool approve;
    char *reason; /* NULL: none */
    approval_remember remember;
    char *decided_by;
} api__decision;

static void api__decision_free(api__decision *d)
{
    free(d->session_id);
    free(d->approval_id);
    free(d->reason);
    free(d->decided_by);
    free(d);
}

/* Reads the approval j->arg of the job's session into *a; not found (404)
 * or decided already (409 already_decided with the approval) fill the job
 * and return false. */
static bool api__pending_approval(store *st, api__job *j, store_approval *a)
{
    if (!api__session_exists(st, j)) return false;
    int rc = store_approval_get(st, j->id, j->arg, a);
    if (rc < 0) {
        api__job_store_error_id(j, st, rc, "approval", j->arg);
        return false;
    }
    if (strcmp(a->status, "pending") != 0) {
        j->status = 409;
        j->code = "already_decided";
        snprintf(j->msg, sizeof j->msg, "approval %.80s is already %s", j->arg, a->status);
        j->body = objects_approval(a);
        return false;
    }
    return true;
}

/* The engine had no run waiting for the approval: the stored one says
 * why. Another owner's session, or an approval of another session, is not
 * found; a decided one is 409 already_decided with the approval. A pending
 * one whose run is running on another instance is decided here (the
 * conditional update arbitrates between two deciders) and the owner is
 * told, which applies the stored decision to the run (docs/runs.md,
 * Several instances); any other pending one belongs to a run that is
 * ending right now. */
static void api__decided_work(store *st, api__job *j)
{
    api__decision *d = j->ud;
    store_approval a = {0};
    if (!api__pending_approval(st, j, &a)) goto out;
    char *owner = NULL;
    int rc = engine_clustered(d->a->d.engine)
                 ? engine_owner_elsewhere(st, engine_instance_id(d->a->d.engine), a.run_id, &owner)
                 : 0;
    if (rc < 0) {
        api__job_store_error(j, st, rc, "approval");
        goto out;
    }
    if (rc == 0) {
        j->status = 503;
        j->code = "unavailable";
        snprintf(j->msg, sizeof j->msg,
                 "no run of this server waits for approval %.80s; try again shortly", j->arg);
        goto out;
    }
    free(a.status);
    a.status = xstrdup(d->approve ? "approved" : "denied");
    free(a.decided_by);
    a.decided_by = xstrdup(d->decided_by);
    free(a.decision_reason);
    a.decision_reason = d->reason ? xstrdup(d->reason) : NULL;
    free(a.remember);
    a.remember = xstrdup(approval_remember_name(d->remember));
    a.decided_ms = clock_wall_ms();
    rc = store_approval_decide(st, &a);
    if (rc == STORE_CONFLICT) {
        /* Someone else decided first: the stored decision is the reply. */
        store_approval_cleanup(&a);
        api__pending_approval(st, j, &a);
    } else if (rc < 0) {
        api__job_store_error(j, st, rc, "approval");
    } else {
        if (engine_send_decided(st, owner, a.run_id, false, a.id) < 0)
            LOG(LOG_WARN, "cannot tell the run's instance of a decision",
                "approval_id=%s error=\"%s\"", a.id, store_errmsg(st));
        j->body = objects_approval(&a);
    }
    free(owner);
out:
    store_approval_cleanup(&a);
}

static void api__decided_then(api__job *j)
{
    api__reply_decided(j, "approval");
    api__decision_free(j->ud);
    api__job_free(j);
}

static void api__decision_answer(void *ud, int status, const json_t *approval)
{
    api__decision *d = ud;
    if (status == 0 && approval) {
        http_reply_json(d->r, 200, json_deep_copy(approval));
    } else if (status == ENGINE_ERR_NOT_FOUND) {
        api__job *j = api__job_new(d->a, d->r, d->session_id, api__decided_work);
        j->arg = xstrdup(d->approval_id);
        j->then = api__decided_then;
        j->ud = d;
        /* A server shutting down answers the job at once and frees it. */
        if (d->a->stopping) api__decision_free(d);
        api__job_submit(j);
        return;
    } else {
        api__engine_error(d->r, status < 0 ? status : ENGINE_ERR_UNAVAILABLE, d->session_id);
    }
    api__decision_free(d);
}

static void api__decide(http_req *r, void *ud)
{
    api *a = ud;
    json_t *body = api__body(a, r, &validate_decision);
    if (!body) return;
    approval_remember remember = APPROVAL_ONCE;
    approval_remember_parse(validate_get_string(body, "remember"), &remember);
    const char *owner = http_req_owner(r);
    api__decision *d = xcalloc(1, sizeof *d);
    d->a = a;
    d->r = r;
    d->session_id = xstrdup(http_req_param(r, "id"));
    d->approval_id = xstrdup(http_req_param(r, "approval_id"));
    d->approve = strcmp(validate_get_string(body, "decision"), "approve") == 0;
    const char *reason = validate_get_string(body, "reason");
    d->reason = reason && *reason ? xstrdup(reason) : NULL;
    d->remember = remember;
    d->decided_by = xstrdup(owner ? owner : "local");
    engine_decision dec = {
        .approval_id = d->approval_id,
        .approve = d->approve,
        .reason = d->reason,
        .remember = remember,
        .decided_by = d->decided_by,
    };
    engine_decide_approval(a->d.engine, d->session_id, &dec, api__decision_answer, d);
    json_decref(body);
}

void api__register_approvals(http_server *s, api *a)
{
    http_route(s, "GET", "/api/sessions/{id}/approvals", api__approvals, a);
    http_route(s, "POST", "/api/sessions/{id}/approvals/{approval_id}", api__decide, a);
}
