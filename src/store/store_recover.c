/*
 * store_recover: stopping the runs whose instance died, as interrupted,
 * with the events and rows a run that stopped normally would have left.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"
#include "core/diagnosis.h"
#include "core/stop.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store.h"
#include "store/store_int.h"

/* The most assistant text recovery joins into one partial message. */
#define STORE_PARTIAL_MAX          (64u * 1024 * 1024)
#define STORE_INTERRUPTED_DETAIL   "the server stopped while the run was going"
#define STORE_CANCELLED_ERROR      "the server stopped while the tool was running"
#define STORE_APPROVAL_INTERRUPTED "the server stopped while the run waited for this approval"

/* A growable list of events to append together. */
typedef struct event_list {
    evt **evs;
    size_t n;
} event_list;

static void store_recover__event_list_add(event_list *l, evt *e)
{
    l->evs = xrealloc(l->evs, (l->n + 1) * sizeof *l->evs);
    l->evs[l->n++] = e;
}

static void store_recover__event_list_cleanup(event_list *l)
{
    for (size_t i = 0; i < l->n; i++) evt_unref(l->evs[i]);
    free(l->evs);
    memset(l, 0, sizeof *l);
}

/*
 * Marks the run stopped with `interrupted`, if it is still running (and,
 * for a stale_before_ms below INT64_MAX, still stale). Returns 1 when this
 * call stopped it, 0 when another instance got there first.
 */
static json_t *store_recover__diagnosis(const store_run *run)
{
    diagnosis_facts f = {
        .reason = STOP_INTERRUPTED, .detail = STORE_INTERRUPTED_DETAIL, .mode = run->mode};
    return diagnosis_build(&f);
}

static int store_recover__mark_interrupted(store *s, const store_run *run, int64_t stale_before_ms,
                                           int64_t now_ms)
{
    json_t *actions = stop_actions(STOP_INTERRUPTED, run->mode);
    char *actions_text = store__json_text(actions);
    json_t *diagnosis = store_recover__diagnosis(run);
    char *diagnosis_text = store__json_text(diagnosis);
    store_num now, stale;
    const char *p[] = {STORE_INTERRUPTED_DETAIL,
                       stop_recovery(STOP_INTERRUPTED, run->mode),
                       actions_text,
                       diagnosis_text,
                       store__num_i64(&now, now_ms),
                       run->id,
                       store__num_i64(&stale, stale_before_ms)};
#define MARK_SQL                                                                                   \
    "UPDATE runs SET status = 'stopped', stop_reason = 'interrupted', stop_detail = ?, "           \
    "recovery_suggestion = ?, actions = ?, diagnosis = ?, ended_at = chatplane_ts(?) WHERE id = "  \
    "? "                                                                                           \
    "AND status = 'running'"
    int rc = stale_before_ms == INT64_MAX
                 ? store__exec(s, MARK_SQL, 6, p)
                 : store__exec(s, MARK_SQL " AND " STORE__RUN_STALE_COND, 7, p);
#undef MARK_SQL
    free(actions_text);
    free(diagnosis_text);
    json_decref(diagnosis);
    json_decref(actions);
    return rc < 0 ? rc : rc > 0;
}

/* Records the run's unfinished tool executions as cancelled, each with its
 * tool_finished event. */
static int store_recover__cancel_tools(store *s, const store_run *run, int64_t now_ms,
                                       event_list *out)
{
    store_tool_exec *tools = NULL;
    size_t n = 0;
    int rc = store_tool_exec_list(s, run->session_id, run->id, &tools, &n);
    evt_origin o = {run->session_id, run->id, now_ms};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        store_tool_exec *t = &tools[i];
        if (strcmp(t->status, "running") != 0) continue;
        free(t->status);
        free(t->error);
        t->status = xstrdup("cancelled");
        t->error = xstrdup(STORE_CANCELLED_ERROR);
        t->finished_ms = now_ms;
        t->duration_ms = now_ms - t->started_ms;
        rc = store_tool_exec_finish(s, t);
        if (rc == 0)
            store_recover__event_list_add(
                out, evt_tool_finished(&o, t->id, t->step, t->server, t->tool, t->status,
                                       t->result ? t->result : "", t->error, t->duration_ms));
    }
    store_tool_exec_list_free(tools, n);
    return rc;
}

/* Cancels the approvals the run was waiting for, each with its
 * approval_decided event: nobody can answer them once the run is over. */
static int store_recover__cancel_approvals(store *s, const store_run *run, int64_t now_ms,
                                           event_list *out)
{
    store_approval *rows = NULL;
    size_t n = 0;
    int rc = store_approval_list(s, run->session_id, "pending", &rows, &n);
    evt_origin o = {run->session_id, run->id, now_ms};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (strcmp(rows[i].run_id, run->id) != 0) continue;
        store_recover__event_list_add(out, evt_approval_decided(&o, rows[i].id, "cancelled", "stop",
                                                                STORE_APPROVAL_INTERRUPTED,
                                                                rows[i].remember));
    }
    if (rc == 0) {
        int marked =
            store_approval_cancel_run(s, run->id, "stop", STORE_APPROVAL_INTERRUPTED, now_ms);
        rc = marked < 0 ? marked : 0;
    }
    store_approval_list_free(rows, n);
    return rc;
}

/* Cancels the questions the run's tool servers were waiting on, each with
 * its input_answered event (action cancel, by "stop"): the call they
 * belong to is cancelled with the run. */
static int store_recover__cancel_inputs(store *s, const store_run *run, int64_t now_ms,
                                        event_list *out)
{
    store_input *rows = NULL;
    size_t n = 0;
    int rc = store_input_list(s, run->session_id, "pending", &rows, &n);
    evt_origin o = {run->session_id, run->id, now_ms};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (strcmp(rows[i].run_id, run->id) != 0) continue;
        store_recover__event_list_add(out,
                                      evt_input_answered(&o, rows[i].id, "cancel", "stop", NULL));
    }
    if (rc == 0) {
        int marked = store_input_cancel_run(s, run->id, "stop", now_ms);
        rc = marked < 0 ? marked : 0;
    }
    store_input_list_free(rows, n);
    return rc;
}

/* Saves the text of one assistant message that was still streaming as a
 * partial message, with its `message` event. */
static int store_recover__save_partial(store *s, const store_run *run, const char *message_id,
                                       const char *text, int64_t now_ms, event_list *out)
{
    store_message m = {.id = (char *)message_id,
                       .session_id = run->session_id,
                       .run_id = run->id,
                       .role = "assistant",
                       .content = (char *)text,
                       .partial = true,
                       .created_ms = now_ms};
    int rc = store_message_insert(s, &m);
    if (rc < 0) return rc;
    evt_origin o = {run->session_id, run->id, now_ms};
    store_recover__event_list_add(out,
                                  evt_message(&o, message_id, "assistant", text, NULL, NULL, true));
    return 0;
}

static bool store_recover__message_stored(store *s, const char *run_id, const char *id)
{
    const char *p[] = {id, run_id};
    db_result *r = NULL;
    int rc = store__query(s, "SELECT 1 FROM chat_messages WHERE id = ? AND run_id = ?", 2, p, &r);
    bool found = rc == 0 && db_result_rows(r) > 0;
    db_result_free(r);
    return found;
}

/*
 * Joins the token text of every assistant message the run was streaming
 * that no stored message covers and no error discarded, one partial
 * message per message_id, in the order their first tokens came.
 */
static int store_recover__save_partials(store *s, const store_run *run, int64_t now_ms,
                                        event_list *out)
{
    store_run_log l = {0};
    const char **seen = NULL;
    size_t nseen = 0;
    int rc = store__run_log_read(s, run->session_id, run->id, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const char *id = l.items[i].message_id;
        if (l.items[i].type != EVT_TOKEN || !id || store__name_in(seen, nseen, id)) continue;
        store__name_add(&seen, &nseen, id);
        if (store__name_in(l.stored, l.nstored, id) ||
            store__name_in(l.discarded, l.ndiscarded, id) ||
            store_recover__message_stored(s, run->id, id))
            continue;
        buf text;
        buf_init(&text, STORE_PARTIAL_MAX);
        for (size_t j = i; j < l.n; j++)
            if (l.items[j].type == EVT_TOKEN && l.items[j].message_id && l.items[j].text &&
                strcmp(l.items[j].message_id, id) == 0)
                buf_append_str(&text, l.items[j].text);
        if (text.len) rc = store_recover__save_partial(s, run, id, text.data, now_ms, out);
        buf_cleanup(&text);
    }
    free(seen);
    store__run_log_cleanup(&l);
    return rc;
}

/* The usage a run had recorded, for its run_stopped event. */
static void store_recover__usage_from_json(const json_t *u, budget_usage *out)
{
    memset(out, 0, sizeof *out);
    out->steps = json_integer_value(json_object_get(u, "steps"));
    out->seconds = json_number_value(json_object_get(u, "seconds"));
    out->tokens = json_integer_value(json_object_get(u, "tokens"));
    out->tool_calls = json_integer_value(json_object_get(u, "tool_calls"));
    out->retries = json_integer_value(json_object_get(u, "retries"));
    out->cost_usd = json_number_value(json_object_get(u, "cost_usd"));
    out->waiting_seconds = json_number_value(json_object_get(u, "waiting_seconds"));
}

/* Stops one interrupted run in its own transaction. Returns 1 when it was
 * stopped here, 0 when it no longer needed it. */
static int store_recover__recover_run(store *s, const store_run *run, int64_t stale_before_ms,
                                      int64_t now_ms)
{
    event_list evs = {0};
    int rc = store_begin(s);
    if (rc < 0) return rc;
    int marked = store_recover__mark_interrupted(s, run, stale_before_ms, now_ms);
    rc = marked;
    if (marked == 1) rc = store_recover__cancel_approvals(s, run, now_ms, &evs);
    if (marked == 1 && rc == 0) rc = store_recover__cancel_inputs(s, run, now_ms, &evs);
    if (marked == 1 && rc == 0) rc = store_recover__cancel_tools(s, run, now_ms, &evs);
    if (marked == 1 && rc == 0) rc = store_recover__save_partials(s, run, now_ms, &evs);
    if (marked == 1 && rc == 0) {
        budget_usage usage;
        store_recover__usage_from_json(run->usage, &usage);
        json_t *actions = stop_actions(STOP_INTERRUPTED, run->mode);
        json_t *diagnosis = store_recover__diagnosis(run);
        evt_origin o = {run->session_id, run->id, now_ms};
        store_recover__event_list_add(
            &evs, evt_run_stopped(&o, STOP_INTERRUPTED, STORE_INTERRUPTED_DETAIL,
                                  stop_recovery(STOP_INTERRUPTED, run->mode), actions, diagnosis,
                                  false, &usage));
        json_decref(actions);
        json_decref(diagnosis);
        rc = store_event_append(s, evs.evs, evs.n);
    }
    if (marked == 1 && rc == 0)
        rc = store_session_release_run(s, run->session_id, run->id, now_ms, NULL);
    store_recover__event_list_cleanup(&evs);
    if (rc < 0 || marked != 1) {
        db_rollback(s->d);
        return rc < 0 ? rc : 0;
    }
    rc = store_commit(s);
    return rc < 0 ? rc : 1;
}

/*
 * A run that cannot be recovered (its rows are inconsistent) is logged and
 * left for the next start, so that it never blocks the others; a database
 * that cannot be written at all ends the loop with its error.
 */
int store_recover_interrupted(store *s, int64_t stale_before_ms, int64_t now_ms)
{
    store_run *runs = NULL;
    size_t n = 0;
    int rc = store_run_list_running(s, stale_before_ms, &runs, &n);
    int stopped = 0;
    for (size_t i = 0; rc >= 0 && i < n; i++) {
        int one = store_recover__recover_run(s, &runs[i], stale_before_ms, now_ms);
        if (one > 0) {
            stopped++;
        } else if (one == DB_ERR_BUSY || one == DB_ERR_RETRY || one == DB_ERR_FULL ||
                   one == DB_ERR_CONN) {
            rc = one;
        } else if (one < 0) {
            LOG(LOG_WARN, "Cannot stop an interrupted run.", "run=%s error=\"%s\"", runs[i].id,
                s->err);
        }
    }
    store_run_list_free(runs, n);
    /* A queued run waited for a run that is over now: nobody asked for it
     * to start after a restart, so it is dropped (docs/runs.md, Queue and
     * interrupt). */
    if (rc >= 0) {
        int dropped = store_queue_recover(s, stale_before_ms, now_ms);
        if (dropped < 0)
            LOG(LOG_WARN, "Cannot drop the queued runs of stopped runs.", "error=\"%s\"", s->err);
        else if (dropped > 0)
            LOG(LOG_INFO, "Dropped the queued runs of stopped runs.", "runs=%d", dropped);
    }
    /* What the stopped runs (or runs whose process died after they
     * stopped) held of their owners' budgets goes back. */
    if (rc >= 0) {
        int freed = store_usage_release_stale(s);
        if (freed < 0)
            LOG(LOG_WARN, "Cannot give back the budget holds of stopped runs.", "error=\"%s\"",
                s->err);
        else if (freed > 0)
            LOG(LOG_INFO, "Gave back the budget holds of stopped runs.", "holds=%d", freed);
    }
    return rc < 0 ? rc : stopped;
}