/*
 * api: the routes of docs/api.md on the HTTP server. Handlers
 * validate their input first (validate.h), so a request with bad input
 * never changes state; they read through the dbpool and write through the
 * eventlog, so nothing on the loop waits for the database.
 *
 * This header is what the server that mounts the routes sees; what the
 * api_*.c files share among themselves is in net/api_int.h.
 */
#ifndef CHATPLANE_API_H
#define CHATPLANE_API_H

#include <jansson.h>

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "engine/llm.h"
#include "engine/toolset.h"
#include "net/http.h"
#include "net/hub.h"
#include "store/dbpool.h"
#include "store/eventlog.h"

struct event_base;
struct event;

/* What the routes use, all borrowed from the server that mounts them and
 * outliving the api. */
typedef struct api_deps {
    struct event_base *base;
    dbpool *pool;
    eventlog *log;
    engine *engine;
    const llm *model;
    toolset *tools;
    int64_t message_bytes; /* limits.message_bytes */
    bool shared;           /* other instances share the database (PostgreSQL) */
    /* The store's commit times (GET /api/health), or NULL. */
    struct metrics_family *store_commit;
    /* False while the instance cannot serve (GET /healthz answers 503). */
    bool (*healthy)(void *ud);
    /* A session was deleted here (other instances are told). */
    void (*session_deleted)(void *ud, const char *session_id);
    void *ud;
} api_deps;

typedef struct api {
    api_deps d;
    hub *hub;
    const char *web_root; /* NULL: the built-in page */
    bool stopping;        /* shutting down: the runtime may be gone */
    /* Authentication (docs/security.md). */
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

#endif
