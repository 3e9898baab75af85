/*
 * store_queue: the queued run of a session (docs/runs.md, Queue and
 * interrupt). It lives in the session's queued_* columns until it starts
 * (the engine's start moves it into a runs row and a user message) or is
 * dropped (a stop request, a restart): then it gets a runs row that says
 * so, with its run_stopped event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"
#include "core/diagnosis.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store.h"
#include "store/store_int.h"

#define STORE_QUEUE_RESTART_DETAIL "the server stopped before the queued run could start"

int store_queue_put(store *s, const char *session_id, const char *run_id, const char *message,
                    const char *mode_name, int64_t now_ms)
{
    store_num at;
    const char *p[] = {run_id, message, mode_name, store__num_i64(&at, now_ms), session_id};
    int rc = store__exec(s,
                         "UPDATE chat_sessions SET queued_run_id = ?, queued_message = ?, "
                         "queued_mode = ?, queued_at = chatplane_ts(?) WHERE id = ? AND "
                         "queued_run_id IS NULL AND active_run_id IS NOT NULL",
                         5, p);
    if (rc != 0) return rc < 0 ? rc : 0;
    /* Nothing changed: say why. */
    store_session ses = {0};
    rc = store_session_get(s, session_id, NULL, &ses);
    if (rc == 0) {
        snprintf(s->err, sizeof s->err, "%s",
                 ses.queued_run_id ? "the session has a queued run already"
                                   : "the session has no active run");
        rc = STORE_CONFLICT;
    }
    store_session_cleanup(&ses);
    return rc;
}

int store_queue_take(store *s, const char *session_id, const char *run_id)
{
    const char *p[] = {session_id, run_id};
    int rc = store__exec(s,
                         "UPDATE chat_sessions SET queued_run_id = NULL, queued_message = NULL, "
                         "queued_mode = NULL, queued_at = NULL WHERE id = ? AND queued_run_id = ?",
                         2, p);
    return rc < 0 ? rc : rc > 0;
}

int store_queue_find(store *s, const char *run_id, store_session *out)
{
    const char *p[] = {run_id};
    return store__row(s, &store__session_table, "WHERE queued_run_id = ?", 1, p, out, "run",
                      run_id);
}

int store_queue_row(store *s, const store_session *ses, const mode_limits *limits, store_run *out)
{
    memset(out, 0, sizeof *out);
    if (!ses->queued_run_id) return store__not_found(s, "queued run of session", ses->id);
    const char *mode_name = ses->queued_mode ? ses->queued_mode : ses->mode;
    mode m;
    if (!limits) {
        int rc = store_mode_get(s, mode_name, &m);
        if (rc < 0) return rc;
        limits = &m.limits;
    }
    budget_usage zero = {0};
    out->id = xstrdup(ses->queued_run_id);
    out->session_id = xstrdup(ses->id);
    out->mode = xstrdup(mode_name);
    out->status = xstrdup("queued");
    out->actions = json_array();
    out->limits = mode_limits_to_json(limits);
    out->usage = budget_usage_to_json(&zero);
    out->started_ms = ses->queued_ms;
    return 0;
}

int store_queue_run_get(store *s, const char *run_id, store_run *out)
{
    int rc = store_run_get(s, run_id, out);
    if (rc != STORE_NOT_FOUND) return rc;
    store_session ses = {0};
    rc = store_queue_find(s, run_id, &ses);
    if (rc == 0) rc = store_queue_row(s, &ses, NULL, out);
    store_session_cleanup(&ses);
    return rc;
}

void store_queue_row_dropped(store_run *row, stop_reason reason, const char *detail, int64_t now_ms)
{
    free(row->status);
    row->status = xstrdup("stopped");
    free(row->stop_reason);
    row->stop_reason = xstrdup(stop_reason_name(reason));
    free(row->stop_detail);
    row->stop_detail = xstrdup(detail);
    free(row->recovery_suggestion);
    row->recovery_suggestion =
        xstrdup("The message was not sent: send it again if you still want it answered.");
    json_decref(row->diagnosis);
    diagnosis_facts f = {.reason = reason, .detail = detail, .mode = row->mode};
    row->diagnosis = diagnosis_build(&f);
    row->ended_ms = now_ms;
}

int store_queue_drop(store *s, const store_run *row)
{
    int rc = store_queue_take(s, row->session_id, row->id);
    if (rc < 0) return rc;
    if (rc == 0) {
        snprintf(s->err, sizeof s->err, "run %s is no longer queued", row->id);
        return STORE_CONFLICT;
    }
    return store_run_insert(s, row);
}

evt *store_queue_dropped_event(const store_run *row)
{
    stop_reason reason = STOP_USER_STOPPED;
    stop_reason_parse(row->stop_reason, &reason);
    budget_usage zero = {0};
    evt_origin o = {row->session_id, row->id, row->ended_ms};
    return evt_run_stopped(&o, reason, row->stop_detail, row->recovery_suggestion, row->actions,
                           row->diagnosis, false, &zero);
}

/* Drops one session's queued run in its own transaction: 1 when dropped
 * here, 0 when it no longer needed it. */
static int store_queue__recover_one(store *s, const store_session *ses, int64_t now_ms)
{
    store_run row = {0};
    int rc = store_begin(s);
    if (rc < 0) return rc;
    rc = store_queue_row(s, ses, NULL, &row);
    if (rc == STORE_NOT_FOUND) {
        /* Its mode is gone: the standard mode's limits stand in. */
        store_run_cleanup(&row);
        mode_limits l = mode_presets()[1].limits;
        rc = store_queue_row(s, ses, &l, &row);
    }
    evt *ev = NULL;
    if (rc == 0) {
        store_queue_row_dropped(&row, STOP_INTERRUPTED, STORE_QUEUE_RESTART_DETAIL, now_ms);
        rc = store_queue_drop(s, &row);
    }
    if (rc == 0) {
        ev = store_queue_dropped_event(&row);
        rc = store_event_append(s, &ev, 1);
    }
    evt_unref(ev);
    store_run_cleanup(&row);
    if (rc < 0) {
        store_rollback(s);
        return rc == STORE_CONFLICT ? 0 : rc;
    }
    rc = store_commit(s);
    return rc < 0 ? rc : 1;
}

int store_queue_recover(store *s, int64_t stale_before_ms, int64_t now_ms)
{
    store_num stale;
    const char *p[] = {store__num_i64(&stale, stale_before_ms)};
    store_session *rows = NULL;
    size_t n = 0;
    int rc = stale_before_ms == INT64_MAX
                 ? store__rows(s, &store__session_table,
                               "WHERE queued_run_id IS NOT NULL AND active_run_id IS NULL", 0, NULL,
                               (void **)&rows, &n)
                 : store__rows(s, &store__session_table,
                               "WHERE queued_run_id IS NOT NULL AND active_run_id IS NULL AND "
                               "updated_at < chatplane_ts(?)",
                               1, p, (void **)&rows, &n);
    int dropped = 0;
    for (size_t i = 0; rc >= 0 && i < n; i++) {
        int one = store_queue__recover_one(s, &rows[i], now_ms);
        if (one > 0) {
            dropped++;
        } else if (one < 0) {
            LOG(LOG_WARN, "Cannot drop the queued run of a session.", "session=%s error=\"%s\"",
                rows[i].id, s->err);
            rc = one;
        }
    }
    store_session_list_free(rows, n);
    return rc < 0 ? rc : dropped;
}
