/*
 * api_int: what the api_*.c files share and nothing else uses (the public
 * side is net/api.h).
 */
#ifndef CHATPLANE_API_INT_H
#define CHATPLANE_API_INT_H

#include <jansson.h>

#include "core/agentproto.h"
#include "net/api.h"
#include "net/validate.h"
#include "store/store.h"

void api__register_sessions(http_server *s, api *a);
void api__register_runs(http_server *s, api *a);
void api__register_misc(http_server *s, api *a);
void api__register_health(http_server *s, api *a);
void api__register_export(http_server *s, api *a);
void api__register_fork(http_server *s, api *a);
void api__register_auth(http_server *s, api *a);

/* The guard of every route (api_auth.c): see http_set_guard. */
void api__guard(http_req *r, http_handler next, void *next_ud, void *ud);

/* Answers 429 too_many_subscribers (a stream limit was reached). */
void api__too_many_subscribers(http_req *r);

/* The validation context: limits and the names of the engine's modes.
 * names must hold API__MODES_MAX pointers. */
#define API__MODES_MAX 64
void api__validate_ctx(api *a, validate_ctx *ctx, const char **names);
/* Reads the JSON body and validates it; on failure answers r (freed) and
 * returns NULL. Returns a new reference. */
json_t *api__body(api *a, http_req *r, const validate_schema *schema);

/* Answers the error that an engine call reported. */
void api__engine_error(http_req *r, int status, const char *session_id);

/*
 * A read on a pool thread. work runs there with the thread's store and
 * fills the job: body (a new JSON value) and status on success, or status
 * with code and msg on failure. The reply goes out on the loop.
 */
typedef struct api__job api__job;
typedef void (*api__work_fn)(store *st, api__job *j);
struct api__job {
    api *a;
    http_req *r;
    char *id;    /* the path's id, copied */
    char *owner; /* the request's owner (http_req_owner), copied, or NULL */
    char *arg;   /* a second string argument, copied, or NULL */
    int64_t num; /* a number argument */
    api__work_fn work;
    int status;
    const char *code; /* an error code, NULL on success */
    char msg[512];
    json_t *body;
    void (*then)(api__job *j); /* on the loop instead of the reply, or NULL */
    void *ud;
};
api__job *api__job_new(api *a, http_req *r, const char *id, api__work_fn work);
void api__job_submit(api__job *j);
void api__job_free(api__job *j);
/* Answers a job that decides something a person is asked (an approval, an
 * input): 200 with j->body, an error, or an error whose body carries the
 * object too under key ({"error": {…}, key: {…}}, as for 409
 * already_decided). Frees nothing. */
void api__reply_decided(api__job *j, const char *key);
/* Fills j with a store error: 404 for STORE_NOT_FOUND (naming what), else 503. */
void api__job_store_error(api__job *j, store *st, int rc, const char *what);
/* The same for the object kind called id ("no session ses_…"). */
void api__job_store_error_id(api__job *j, store *st, int rc, const char *kind, const char *id);

/* The session object with its newest run, or a negative store code;
 * owner as for store_session_get. */
int api__session_object(store *st, const char *id, const char *owner, json_t **out);

/* Whether the job's session exists and belongs to its owner; otherwise
 * fills the job with the 404 (or the store's error) and returns false. */
bool api__session_exists(store *st, api__job *j);

/*
 * Defines the job function fn that answers {"<key>": [...]} with the rows of
 * a session: when the session exists for the caller, LIST (an expression
 * that fills `rows` of ROW_TYPE and `n`, e.g. store_run_list(st, j->id,
 * &rows, &n)) is called and each row becomes TO_JSON(&row). WHAT names the
 * rows in a store error. The four lists of a session differ only in these.
 */
#define API__SESSION_LIST_WORK(fn, ROW_TYPE, key, WHAT, LIST, TO_JSON, LIST_FREE)                  \
    static void fn(store *st, api__job *j)                                                         \
    {                                                                                              \
        if (!api__session_exists(st, j)) return;                                                   \
        ROW_TYPE *rows = NULL;                                                                     \
        size_t n = 0;                                                                              \
        int rc = (LIST);                                                                           \
        if (rc < 0) {                                                                              \
            api__job_store_error(j, st, rc, WHAT);                                                 \
            return;                                                                                \
        }                                                                                          \
        json_t *list = json_array();                                                               \
        for (size_t i = 0; i < n; i++) json_array_append_new(list, TO_JSON(&rows[i]));             \
        LIST_FREE(rows, n);                                                                        \
        j->body = json_object();                                                                   \
        json_object_set_new(j->body, key, list);                                                   \
    }
void api__register_approvals(http_server *s, api *a);
void api__register_agui(http_server *s, api *a);
void api__register_aisdk(http_server *s, api *a);

/*
 * The session a thread id of the agent protocols names (core/agentproto.h),
 * made for the request's owner when it does not exist yet (with mode_name,
 * or the default), unless flags hold API__THREAD_EXISTING. then gets r and
 * what was found, borrowed for the call; or r NULL when r was already
 * answered (503).
 */
/* Reads r's JSON body with a protocol's reader into in: false when r is
 * answered (the body is no JSON, or 400 with the reader's message; in may
 * hold what the reader took and needs its cleanup either way). */
bool api__protocol_read(http_req *r, agentproto_read_fn read, void *in);
/* Checks a protocol request: refused (the protocol's own reason to turn
 * it down, or NULL), then its new user message (NULL: none) as the
 * message of POST …/runs is checked, then its mode_name (NULL: none),
 * which the request carries at mode_field. Answers r with 400 and returns
 * false when one fails. */
bool api__protocol_request_ok(api *a, http_req *r, const char *refused, const char *message,
                              const char *mode_name, const char *mode_field);

#define API__THREAD_EXISTING 1 /* do not make a missing session */
#define API__THREAD_DECIDED  2 /* list the session's decided approvals */
typedef struct api__thread_info {
    const char *session_id;
    bool missing;              /* API__THREAD_EXISTING and it does not exist */
    const char *active_run_id; /* NULL when idle */
    const json_t *decided;     /* ids, with API__THREAD_DECIDED; else NULL */
} api__thread_info;
typedef void (*api__thread_cb)(api *a, http_req *r, const api__thread_info *t, void *ud);
void api__thread_session(api *a, http_req *r, const char *thread_id, const char *mode_name,
                         int flags, api__thread_cb then, void *ud);
/*
 * What the protocol routes do with a session once they have it. Each
 * takes x (its translator on the hub) and frees it when the hub does not:
 * - api__protocol_start watches the session through x, then starts a run
 *   for message (mode_name and note may be NULL; copied), or with message
 *   NULL regenerates the session's last answer, so the stream sees
 *   the run from its first event; answers r with the engine's error when
 *   the run does not start;
 * - api__protocol_follow streams the run run_id of the session through x.
 * Both answer 503 when the session has too many subscribers.
 */
void api__protocol_start(api *a, http_req *r, const char *session_id, const hub_xlate *x,
                         const char *message, const char *mode_name, const char *note);
void api__protocol_follow(api *a, http_req *r, const char *session_id, const char *run_id,
                          const hub_xlate *x);
/* Decides the approval approval_id of the session once, for the request's
 * owner ("local" without authentication); cb as engine_decide_approval. */
void api__protocol_decide(api *a, http_req *r, const char *session_id, const char *approval_id,
                          bool approve, const char *reason, engine_approval_cb cb, void *ud);

void api__register_inputs(http_server *s, api *a);
/* GET /api/usage (api_usage.c). */
void api__register_usage(http_server *s, api *a);
/* Answers GET /api/sessions/{id} for id (used after writes too). */
void api__reply_session(api *a, http_req *r, const char *id, int status);

#endif
