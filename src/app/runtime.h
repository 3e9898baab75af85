/*
 * runtime: everything a run needs, started on one event loop: the store
 * (migrated), the writer thread, the read pool, the model provider, the
 * tools and the engine. `serve` puts the HTTP server in front of it; `ask`
 * drives one run in-process. Both start and stop it the same way.
 */
#ifndef CHATPLANE_RUNTIME_H
#define CHATPLANE_RUNTIME_H

#include <stdbool.h>

#include "app/cluster.h"
#include "app/config.h"
#include "engine/engine.h"
#include "lib/id.h"
#include "store/dbpool.h"
#include "store/eventlog.h"
#include "store/store.h"

struct event_base;
struct event;

typedef struct runtime {
    const config *cfg;
    struct event_base *base;
    store *db;       /* the loop thread's own connection, for start-up work */
    db_claim *claim; /* this process's claim on a SQLite file (db_claim_take) */
    eventlog *log;
    dbpool *pool;
    llm *model;       /* the primary provider, owned by chain */
    llm_chain *chain; /* the providers, primary first */
    toolset *tools;
    engine *engine;
    cluster *cluster; /* PostgreSQL only: notifications, heartbeats, orphans */
    char instance_id[ID_MAX];
    struct event *log_ev, *pool_ev;
    struct event *here_ev;      /* the event log's work written on the loop (SQLite) */
    struct event *journal_ev;   /* the token journal's pause, timed on the loop (SQLite) */
    struct event *index_ev;     /* SQLite: copies new messages into the search index */
    bool indexing;              /* a job of the search index is with the pool */
    int indexed;                /* what the last one copied, or a negative code */
    int64_t index_caught_up_ns; /* when a job last left nothing waiting */
    unsigned long ckpt_background, ckpt_fallback; /* checkpoints counted in the metric */
    eventlog_publish_cb publish; /* where committed events go (the hub, ask's view) */
    void *publish_ud;
} runtime;

typedef struct runtime_options {
    bool recover;  /* stop runs left running by a crash (serve at start-up) */
    bool announce; /* log migrations and the model provider */
    eventlog_publish_cb publish;
    void *publish_ud;
    /* Passed to the engine (engine_deps.on_run_finished); may be NULL. */
    void (*on_run_finished)(void *ud, const char *session_id, const char *run_id, int status);
    /* PostgreSQL (may be NULL, called with publish_ud): another instance
     * committed a session's events up to seq; listening started (again),
     * so notifications may have been missed. */
    void (*on_events)(void *ud, const char *session_id, int64_t seq);
    void (*on_listening)(void *ud);
    /* PostgreSQL (may be NULL): another instance deleted a session. */
    void (*on_session_deleted)(void *ud, const char *session_id);
} runtime_options;

/* Starts the runtime. On failure returns -1 with err naming the problem
 * (the database URL with its password masked and the reason), and
 * everything started so far is stopped again. */
int runtime_start(runtime *rt, const config *cfg, struct event_base *base,
                  const runtime_options *opt, char *err, size_t errlen);
/* Interrupts active runs, commits their last events and stops everything. */
void runtime_stop(runtime *rt);
/* False while an instance on PostgreSQL does not listen to the others
 * (its notification connection is down). */
bool runtime_healthy(const runtime *rt);
/* This instance deleted a session: on PostgreSQL the others are told. */
void runtime_session_deleted(runtime *rt, const char *session_id);

#endif
