/*
 * api: the routes of contract section 3.3 on the HTTP server. Handlers
 * validate their input first (validate.h), so a request with bad input
 * never changes state; they read through the dbpool and write through the
 * eventlog, so nothing on the loop waits for the database.
 *
 * The api__ functions are shared by the api_*.c files and by nothing else.
 */
#ifndef CHATPLANE_API_H
#define CHATPLANE_API_H

#include <jansson.h>

#include "app/runtime.h"
#include "net/http.h"
#include "net/hub.h"
#include "net/validate.h"

typedef struct api {
    runtime *rt;
    hub *hub;
    const char *web_root; /* NULL: the built-in page */
    bool stopping;        /* shutting down: the runtime may be gone */
    /* Authentication (contract section 6, docs/security.md). */
    bool public_listen;     /* the listen address is not a loopback one */
    bool insecure_no_auth;  /* --insecure-no-auth */
    int tokens;             /* unrevoked tokens at the last look, -1 before any */
    int64_t tokens_seen_ms; /* when that was (monotonic) */
    struct event *sweep;    /* ends the streams of revoked tokens */
    bool sweeping;          /* a sweep is on the read pool */
} api;

/* Registers every route on s, and the guard that checks tokens and
 * ownership before each of them; a must outlive s. */
void api_register(http_server *s, api *a);
/* Frees what api_register made; after the HTTP server is freed. */
void api_cleanup(api *a);

/* ---- shared by the api_*.c files ---- */

void api__register_sessions(http_server *s, api *a);
void api__register_runs(http_server *s, api *a);
void api__register_misc(http_server *s, api *a);
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
/* Fills j with a store error: 404 for STORE_NOT_FOUND (naming what), else 503. */
void api__job_store_error(api__job *j, store *st, int rc, const char *what);

/* The session object with its newest run, or a negative store code;
 * owner as for store_session_get. */
int api__session_object(store *st, const char *id, const char *owner, json_t **out);

/* Answers GET /api/sessions/{id} for id (used after writes too). */
void api__reply_session(api *a, http_req *r, const char *id, int status);

#endif
