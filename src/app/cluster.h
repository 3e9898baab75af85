/*
 * cluster: what one instance does to share a PostgreSQL database with
 * other instances (docs/architecture.md, "Several instances").
 *
 * - It listens (pgnotify): a session's new events go to the on_events hook
 *   (the hub reads them from the store), control messages for runs go to
 *   the engine (engine_control), a session deleted elsewhere goes to the
 *   on_session_deleted hook, and every time listening starts again the
 *   on_up hook runs (notifications sent meanwhile were missed).
 * - It heart-beats this instance's runs (engine_heartbeat) every
 *   cluster_interval_ms.
 * - With sweep on (serve), it stops as interrupted, at the same interval,
 *   the runs whose owner has not beaten them for the orphan time-out,
 *   whichever instance owned them. The database makes sure only one
 *   instance records each such stop. An instance that itself lost the
 *   database waits one orphan time-out after it is back before it sweeps
 *   again, so that the others have beaten their runs by then.
 *
 * Heartbeats and sweeps use a connection of their own (a one-thread
 * dbpool), so a busy read pool never delays them. On SQLite none of this
 * runs: one instance owns the file.
 */
#ifndef CHATPLANE_CLUSTER_H
#define CHATPLANE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

struct event_base;

typedef struct cluster cluster;

typedef struct cluster_deps {
    struct event_base *base;
    const char *url;
    engine *engine;
    const char *instance_id;
    int64_t orphan_timeout_ms;
    bool sweep;
    /* Hooks (may be NULL), on the loop thread. */
    void (*on_events)(void *ud, const char *session_id, int64_t seq);
    void (*on_up)(void *ud);
    void (*on_session_deleted)(void *ud, const char *session_id); /* by another instance */
    void *ud;
} cluster_deps;

/* The heartbeat and sweep interval for an orphan time-out: a sixth of it,
 * between 250 ms and 5 s, so that a live owner beats several times within
 * one time-out. */
int64_t cluster_interval_ms(int64_t orphan_timeout_ms);

/* Starts listening, beating and sweeping. Returns 0, or -1 with err set
 * when the connection of its own cannot be opened. */
int cluster_start(const cluster_deps *d, cluster **out, char *err, size_t errlen);
/* Stops everything; pending heartbeat and sweep callbacks run first, so
 * call it before the engine is freed. NULL is fine. */
void cluster_stop(cluster *c);
/* False while the notification connection is down. */
bool cluster_healthy(const cluster *c);
/* Tells the other instances that this one deleted a session, so that they
 * end its streams (their on_session_deleted hook). */
void cluster_session_deleted(cluster *c, const char *session_id);

#endif
