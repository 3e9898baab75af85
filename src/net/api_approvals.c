/* The approval routes (docs/api.md, Approvals): a session's approvals, and
 * a person's decision on one, which the engine applies to the run that
 * waits for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/approval.h"
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

/* The engine had no run waiting for the approval: the stored one says
 * why. Another owner's session, or an approval of another session, is not
 * found; a decided one is 409 already_decided with the approval. */
static void api__decided_work(store *st, api__job *j)
{
    if (!api__session_exists(st, j)) return;
    store_approval a = {0};
    int rc = store_approval_get(st, j->id, j->arg, &a);
    if (rc < 0) {
        api__job_store_error_id(j, st, rc, "approval", j->arg);
        return;
    }
    if (strcmp(a.status, "pending") == 0) {
        /* Its run is not on this instance (or is ending right now). */
        j->status = 503;
        j->code = "unavailable";
        snprintf(j->msg, sizeof j->msg,
                 "no run of this server waits for approval %.80s; try again shortly", j->arg);
    } else {
        j->status = 409;
        j->code = "already_decided";
        snprintf(j->msg, sizeof j->msg, "approval %.80s is already %s", j->arg, a.status);
        j->body = objects_approval(&a);
    }
    store_approval_cleanup(&a);
}

static void api__decided_then(api__job *j)
{
    if (j->code && j->body) {
        json_t *err = json_pack("{s:s, s:s}", "code", j->code, "message", j->msg);
        json_t *out = json_pack("{s:o, s:O}", "error", err, "approval", j->body);
        http_reply_json(j->r, j->status, out);
    } else if (j->code) {
        http_reply_error(j->r, j->status, j->code, "%s", j->msg);
    }
    api__job_free(j);
}

typedef struct api__decision {
    api *a;
    http_req *r;
    char *session_id, *approval_id;
} api__decision;

static void api__decision_answer(void *ud, int status, const json_t *approval)
{
    api__decision *d = ud;
    if (status == 0 && approval) {
        http_reply_json(d->r, 200, json_deep_copy(approval));
    } else if (status == ENGINE_ERR_NOT_FOUND) {
        api__job *j = api__job_new(d->a, d->r, d->session_id, api__decided_work);
        j->arg = xstrdup(d->approval_id);
        j->then = api__decided_then;
        api__job_submit(j);
    } else {
        api__engine_error(d->r, status < 0 ? status : ENGINE_ERR_UNAVAILABLE, d->session_id);
    }
    free(d->session_id);
    free(d->approval_id);
    free(d);
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
    engine_decision dec = {
        .approval_id = d->approval_id,
        .approve = strcmp(validate_get_string(body, "decision"), "approve") == 0,
        .reason = validate_get_string(body, "reason"),
        .remember = remember,
        .decided_by = owner ? owner : "local",
    };
    engine_decide_approval(a->d.engine, d->session_id, &dec, api__decision_answer, d);
    json_decref(body);
}

void api__register_approvals(http_server *s, api *a)
{
    http_route(s, "GET", "/api/sessions/{id}/approvals", api__approvals, a);
    http_route(s, "POST", "/api/sessions/{id}/approvals/{approval_id}", api__decide, a);
}
