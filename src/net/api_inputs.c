/* The question routes (docs/api.md, Inputs): a session's inputs, and a
 * person's answer to one, checked against the input's form and applied by
 * the engine to the run that waits for it, here or (several instances) on
 * the instance that owns the run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/elicit.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"
#include "store/objects.h"

/* ---- GET /api/sessions/{id}/inputs?status= ---- */

static void api__inputs_work(store *st, api__job *j)
{
    if (!api__session_exists(st, j)) return;
    store_input *rows = NULL;
    size_t n = 0;
    int rc = store_input_list(st, j->id, j->arg, &rows, &n);
    if (rc < 0) {
        api__job_store_error(j, st, rc, "inputs");
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(list, objects_input(&rows[i]));
    store_input_list_free(rows, n);
    j->body = json_object();
    json_object_set_new(j->body, "inputs", list);
}

static void api__inputs(http_req *r, void *ud)
{
    const char *status = http_req_query(r, "status");
    elicit_status st;
    if (status && elicit_status_parse(status, &st) != 0) {
        http_reply_error(r, 400, "bad_request",
                         "status must be one of pending, accepted, declined, cancelled, expired");
        return;
    }
    api__job *j = api__job_new(ud, r, http_req_param(r, "id"), api__inputs_work);
    j->arg = status ? xstrdup(status) : NULL;
    api__job_submit(j);
}

/* ---- POST /api/sessions/{id}/inputs/{input_id} ---- */

/* An answer on its way: checked against the stored input, given to the
 * engine, and when no run here waits for it, stored for the run's owner. */
typedef struct api__pending_answer {
    elicit_action action;
    json_t *content;      /* accept only; NULL otherwise */
    char *answered_by;    /* the request's owner, or "local" */
    const char *instance; /* this instance (the engine's, outliving the job) */
    bool clustered;
} api__pending_answer;

static void api__answer_free(api__pending_answer *x)
{
    json_decref(x->content);
    free(x->answered_by);
    free(x);
}

/* Submits j; a server shutting down answers it at once and frees it, and
 * then the answer it carries too. */
static void api__answer_submit(api__job *j)
{
    if (j->a->stopping) api__answer_free(j->ud);
    api__job_submit(j);
}

/* Reads the input j->arg of the job's session into *row: not found (404)
 * or no longer pending (409 already_decided with the input) fill the job
 * and return false. */
static bool api__pending_input(store *st, api__job *j, store_input *row)
{
    if (!api__session_exists(st, j)) return false;
    int rc = store_input_get(st, j->id, j->arg, row);
    if (rc < 0) {
        api__job_store_error_id(j, st, rc, "input", j->arg);
        return false;
    }
    if (strcmp(row->status, "pending") != 0) {
        j->status = 409;
        j->code = "already_decided";
        snprintf(j->msg, sizeof j->msg, "input %.80s is already %s", j->arg, row->status);
        j->body = objects_input(row);
        return false;
    }
    return true;
}

/* On the pool: the input exists, waits, and the content fits its form. */
static void api__answer_check_work(store *st, api__job *j)
{
    api__pending_answer *x = j->ud;
    store_input row = {0};
    if (api__pending_input(st, j, &row)) {
        char err[ELICIT_ERR_MAX];
        if (x->action == ELICIT_ACCEPT &&
            elicit_content_check(row.schema, x->content, err, sizeof err) != 0) {
            j->status = 400;
            j->code = "bad_request";
            snprintf(j->msg, sizeof j->msg, "%s", err);
        }
    }
    store_input_cleanup(&row);
}

/* On the pool: no run of this instance waits for the input. When its run
 * is running on another instance, the answer is written here (the
 * conditional update decides between two answers) and the owner is told;
 * otherwise the run is ending or gone, as the single-instance answer says. */
static void api__answer_elsewhere_work(store *st, api__job *j)
{
    api__pending_answer *x = j->ud;
    store_input row = {0};
    if (!api__pending_input(st, j, &row)) goto out;
    char *owner = NULL;
    int rc = x->clustered ? engine_owner_elsewhere(st, x->instance, row.run_id, &owner) : 0;
    if (rc < 0) {
        api__job_store_error(j, st, rc, "input");
        goto out;
    }
    if (rc == 0) {
        j->status = 503;
        j->code = "unavailable";
        snprintf(j->msg, sizeof j->msg,
                 "no run of this server waits for input %.80s; try again shortly", j->arg);
        goto out;
    }
    json_decref(row.content);
    row.content =
        x->action == ELICIT_ACCEPT ? (x->content ? json_incref(x->content) : json_object()) : NULL;
    free(row.status);
    row.status = xstrdup(elicit_status_name(elicit_action_status(x->action)));
    free(row.answered_by);
    row.answered_by = xstrdup(x->answered_by);
    row.answered_ms = clock_wall_ms();
    rc = store_input_answer(st, &row);
    if (rc == STORE_CONFLICT) {
        /* Someone else answered first: the stored answer is the reply. */
        store_input_cleanup(&row);
        api__pending_input(st, j, &row);
    } else if (rc < 0) {
        api__job_store_error(j, st, rc, "input");
    } else {
        if (engine_send_decided(st, owner, row.run_id, true, row.id) < 0)
            LOG(LOG_WARN, "cannot tell the run's instance of an answer", "input_id=%s error=\"%s\"",
                row.id, store_errmsg(st));
        j->body = objects_input(&row);
    }
    free(owner);
out:
    store_input_cleanup(&row);
}

/* The reply of an answer that went through the pool. */
static void api__answer_reply(api__job *j)
{
    api__reply_decided(j, "input");
    api__answer_free(j->ud);
    api__job_free(j);
}

static void api__answer_engine_done(void *ud, int status, const json_t *input)
{
    api__job *j = ud;
    if (status == 0 && input) {
        http_reply_json(j->r, 200, json_deep_copy(input));
        api__answer_free(j->ud);
        api__job_free(j);
    } else if (status == ENGINE_ERR_NOT_FOUND) {
        j->work = api__answer_elsewhere_work;
        j->then = api__answer_reply;
        api__answer_submit(j);
    } else {
        api__engine_error(j->r, status < 0 ? status : ENGINE_ERR_UNAVAILABLE, j->id);
        api__answer_free(j->ud);
        api__job_free(j);
    }
}

/* Checked: the engine gets the answer. */
static void api__answer_checked(api__job *j)
{
    if (j->code) {
        api__answer_reply(j);
        return;
    }
    api__pending_answer *x = j->ud;
    engine_answer ans = {.input_id = j->arg,
                         .action = x->action,
                         .content = x->content,
                         .answered_by = x->answered_by};
    engine_answer_input(j->a->d.engine, j->id, &ans, api__answer_engine_done, j);
}

static void api__answer(http_req *r, void *ud)
{
    api *a = ud;
    json_t *body = api__body(a, r, &validate_answer);
    if (!body) return;
    api__pending_answer *x = xcalloc(1, sizeof *x);
    elicit_action_parse(validate_get_string(body, "action"), &x->action);
    json_t *content = json_object_get(body, "content");
    if (content && x->action != ELICIT_ACCEPT) {
        http_reply_error(r, 400, "bad_request", "content goes only with the action accept");
        json_decref(body);
        free(x);
        return;
    }
    x->content = json_incref(content);
    const char *owner = http_req_owner(r);
    x->answered_by = xstrdup(owner ? owner : "local");
    x->instance = engine_instance_id(a->d.engine);
    x->clustered = engine_clustered(a->d.engine);
    json_decref(body);
    api__job *j = api__job_new(a, r, http_req_param(r, "id"), api__answer_check_work);
    j->arg = xstrdup(http_req_param(r, "input_id"));
    j->ud = x;
    j->then = api__answer_checked;
    api__answer_submit(j);
}

void api__register_inputs(http_server *s, api *a)
{
    http_route(s, "GET", "/api/sessions/{id}/inputs", api__inputs, a);
    http_route(s, "POST", "/api/sessions/{id}/inputs/{input_id}", api__answer, a);
}
