/*
 * store_run: the runs table, and the heartbeats that tell instances which
 * runs are still owned by a live one.
 */
#include <stdio.h>

#include "store/store.h"
#include "store/store_int.h"

#define STORE__ROW store_run
STORE__DEFINE_ROW(store_run, run, "runs", STORE_RUN_COLUMNS)
enum { STORE_RUN_COLUMNS(STORE__INDEX) };

/* A run's id is new, so nothing but the database can fail its insert: on
 * PostgreSQL it travels with the next statement (db_exec_later). */
int store_run_insert(store *s, const store_run *row)
{
    return store__insert_row_later(s, &store__run_table, row);
}

/* The columns a run's owner writes as it goes and when it stops. */
static const int run_update_cols[] = {
    COL_mode,    COL_status,    COL_stop_reason, COL_stop_detail, COL_recovery_suggestion,
    COL_actions, COL_diagnosis, COL_wrapped_up,  COL_limits,      COL_usage,
    COL_ended_ms};

int store_run_update(store *s, const store_run *row)
{
    if (db_get_kind(s->d) == DB_POSTGRES) {
        /* Sent ahead: a row that did not change fails the transaction
         * through chatplane_run_unchanged (migration 17), with the code
         * and message the count read back gives below. */
        const char *p[] = {row->id, row->id};
        return store__update_checked(s, &store__run_table, row, run_update_cols,
                                     sizeof run_update_cols / sizeof run_update_cols[0],
                                     "WHERE id = ? AND status = 'running'", 2, p,
                                     "chatplane_run_unchanged(CAST(? AS TEXT))");
    }
    const char *p[] = {row->id};
    int rc = store__update(s, &store__run_table, row, run_update_cols,
                           sizeof run_update_cols / sizeof run_update_cols[0],
                           "WHERE id = ? AND status = 'running'", 1, p);
    if (rc != 0) return rc < 0 ? rc : 0;
    /* Nothing changed: the run is missing, or it stopped already, which on
     * a shared database means another instance interrupted it. */
    store_run cur;
    rc = store_run_get(s, row->id, &cur);
    if (rc < 0) return rc;
    store_run_cleanup(&cur);
    snprintf(s->err, sizeof s->err, "run %s has already stopped", row->id);
    return STORE_CONFLICT;
}

int store_run_get(store *s, const char *id, store_run *out)
{
    const char *p[] = {id};
    return store__row(s, &store__run_table, "WHERE id = ?", 1, p, out, "run", id);
}

int store_run_list(store *s, const char *session_id, store_run **out, size_t *n)
{
    const char *p[] = {session_id};
    return store__rows(s, &store__run_table,
                       "WHERE session_id = ? ORDER BY started_at DESC, id DESC", 1, p, (void **)out,
                       n);
}

int store_run_latest(store *s, const char *session_id, store_run *out)
{
    const char *p[] = {session_id};
    return store__row(s, &store__run_table,
                      "WHERE session_id = ? ORDER BY started_at DESC, id DESC LIMIT 1", 1, p, out,
                      "run of session", session_id);
}

int store_run_list_running(store *s, int64_t stale_before_ms, store_run **out, size_t *n)
{
    store_num t;
    const char *p[] = {store__num_i64(&t, stale_before_ms)};
    if (stale_before_ms == INT64_MAX)
        return store__rows(s, &store__run_table, "WHERE status = 'running' ORDER BY started_at, id",
                           0, NULL, (void **)out, n);
    return store__rows(s, &store__run_table,
                       "WHERE status = 'running' AND " STORE__RUN_STALE_COND
                       " ORDER BY started_at, id",
                       1, p, (void **)out, n);
}

int store_run_beat(store *s, const char *run_id, int64_t now_ms)
{
    int rc = store__exec_at(s,
                            "UPDATE runs SET heartbeat_at = chatplane_ts(?) WHERE id = ? AND "
                            "status = 'running'",
                            now_ms, run_id);
    return rc < 0 ? rc : rc > 0;
}

int store_run_heartbeat(store *s, const char *instance, int64_t now_ms)
{
    store_num t;
    const char *p[] = {store__num_i64(&t, now_ms), instance};
    return store__exec(s,
                       "UPDATE runs SET heartbeat_at = chatplane_ts(?) WHERE owner_instance = ? "
                       "AND status = 'running'",
                       2, p);
}