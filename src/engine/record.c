#include "engine/record.h"

#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/xmalloc.h"

/* Every row-carrying op keeps the recorder next to its row copy, so that
 * its done callback can report a failure. */
static void record__failed(recorder *rec, const evt *ev, const char *run_id, int status)
{
    if (status >= 0 || !rec->on_fail) return;
    const char *id = ev && ev->run_id ? ev->run_id : run_id;
    if (id) rec->on_fail(rec->ud, id, status);
}

/* ---- messages ---- */

typedef struct record__message_arg {
    store_message row;
    recorder *rec;
} record__message_arg;

static int record__message_apply(store *s, void *arg)
{
    return store_message_insert(s, &((record__message_arg *)arg)->row);
}

static void record__message_done(void *arg, evt *ev, int status)
{
    record__message_arg *a = arg;
    record__failed(a->rec, ev, a->row.run_id, status);
    store_message_cleanup(&a->row);
    free(a);
}

void record_message(recorder *rec, const store_message *m, evt *ev)
{
    record__message_arg *a = xcalloc(1, sizeof *a);
    a->rec = rec;
    store_message_copy(&a->row, m);
    eventlog_op op = {record__message_apply, record__message_done, a, ev, a->row.session_id, NULL};
    eventlog_submit(rec->log, &op);
}

/* ---- tool executions ---- */

typedef struct record__tool_arg {
    store_tool_exec row;
    recorder *rec;
} record__tool_arg;

static record__tool_arg *record__tool_copy(recorder *rec, const store_tool_exec *t)
{
    record__tool_arg *a = xcalloc(1, sizeof *a);
    a->rec = rec;
    store_tool_exec_copy(&a->row, t);
    return a;
}

static int record__tool_insert_apply(store *s, void *arg)
{
    return store_tool_exec_insert(s, &((record__tool_arg *)arg)->row);
}

static int record__tool_finish_apply(store *s, void *arg)
{
    return store_tool_exec_finish(s, &((record__tool_arg *)arg)->row);
}

static void record__tool_done(void *arg, evt *ev, int status)
{
    record__tool_arg *a = arg;
    record__failed(a->rec, ev, a->row.run_id, status);
    store_tool_exec_cleanup(&a->row);
    free(a);
}

void record_tool_started(recorder *rec, const store_tool_exec *t, evt *ev)
{
    record__tool_arg *a = record__tool_copy(rec, t);
    eventlog_op op = {record__tool_insert_apply, record__tool_done, a, ev, a->row.session_id, NULL};
    eventlog_submit(rec->log, &op);
}

void record_tool_finished(recorder *rec, const store_tool_exec *t, evt *ev)
{
    record__tool_arg *a = record__tool_copy(rec, t);
    eventlog_op op = {record__tool_finish_apply, record__tool_done, a, ev, a->row.session_id, NULL};
    eventlog_submit(rec->log, &op);
}

/* ---- approvals ---- */

typedef struct record__approval_arg {
    store_approval row;
    recorder *rec;
    void (*done)(void *ud, int status);
    void *ud;
} record__approval_arg;

static record__approval_arg *record__approval_copy(recorder *rec, const store_approval *x)
{
    record__approval_arg *a = xcalloc(1, sizeof *a);
    a->rec = rec;
    store_approval_copy(&a->row, x);
    return a;
}

static int record__approval_insert_apply(store *s, void *arg)
{
    return store_approval_insert(s, &((record__approval_arg *)arg)->row);
}

static int record__approval_decide_apply(store *s, void *arg)
{
    return store_approval_decide(s, &((record__approval_arg *)arg)->row);
}

static void record__approval_done(void *arg, evt *ev, int status)
{
    record__approval_arg *a = arg;
    /* A decision stored first by another instance wins; the run applies
     * that one instead (run_approval.c). */
    if (status != STORE_CONFLICT) record__failed(a->rec, ev, a->row.run_id, status);
    if (a->done) a->done(a->ud, status);
    store_approval_cleanup(&a->row);
    free(a);
}

void record_approval_requested(recorder *rec, const store_approval *x, evt *ev)
{
    eventlog_op op = {record__approval_insert_apply,
                      record__approval_done,
                      record__approval_copy(rec, x),
                      ev,
                      NULL,
                      NULL};
    eventlog_submit(rec->log, &op);
}

void record_approval_decided(recorder *rec, const store_approval *x, evt *ev,
                             void (*done)(void *ud, int status), void *ud)
{
    record__approval_arg *a = record__approval_copy(rec, x);
    a->done = done;
    a->ud = ud;
    eventlog_op op = {record__approval_decide_apply, record__approval_done, a, ev, NULL, NULL};
    eventlog_submit(rec->log, &op);
}

/* ---- inputs ---- */

typedef struct record__input_arg {
    store_input row;
    recorder *rec;
    void (*done)(void *ud, int status);
    void *ud;
} record__input_arg;

static record__input_arg *record__input_copy(recorder *rec, const store_input *x)
{
    record__input_arg *a = xcalloc(1, sizeof *a);
    a->rec = rec;
    store_input_copy(&a->row, x);
    return a;
}

static int record__input_insert_apply(store *s, void *arg)
{
    return store_input_insert(s, &((record__input_arg *)arg)->row);
}

static int record__input_answer_apply(store *s, void *arg)
{
    return store_input_answer(s, &((record__input_arg *)arg)->row);
}

static void record__input_done(void *arg, evt *ev, int status)
{
    record__input_arg *a = arg;
    if (status != STORE_CONFLICT) record__failed(a->rec, ev, a->row.run_id, status);
    if (a->done) a->done(a->ud, status);
    store_input_cleanup(&a->row);
    free(a);
}

void record_input_requested(recorder *rec, const store_input *x, evt *ev)
{
    eventlog_op op = {
        record__input_insert_apply, record__input_done, record__input_copy(rec, x), ev, NULL, NULL};
    eventlog_submit(rec->log, &op);
}

void record_input_answered(recorder *rec, const store_input *x, evt *ev,
                           void (*done)(void *ud, int status), void *ud)
{
    record__input_arg *a = record__input_copy(rec, x);
    a->done = done;
    a->ud = ud;
    eventlog_op op = {record__input_answer_apply, record__input_done, a, ev, NULL, NULL};
    eventlog_submit(rec->log, &op);
}

/* ---- runs ---- */

typedef struct record__run_arg {
    store_run row;
    recorder *rec;
    void (*done)(void *ud, int status, bool queued);
    void *ud;
    int64_t queued; /* set on the writer thread by the release (its answer) */
} record__run_arg;

static int record__run_apply(store *s, void *arg)
{
    record__run_arg *a = arg;
    a->queued = 1;
    int rc = store_run_update(s, &a->row);
    if (rc < 0) return rc;
    if (a->row.status && strcmp(a->row.status, "stopped") == 0) {
        /* On PostgreSQL both go ahead of the commit, which reads their
         * answers (docs/storage.md, Round trips on PostgreSQL). */
        rc = store_session_release_run_later(s, a->row.session_id, a->row.id, clock_wall_ms(),
                                             &a->queued);
        if (rc < 0) return rc;
    }
    return 0;
}

/* A run row written with a done callback (the run's last write) reports
 * its own outcome there; any other run row that fails is a failed write of
 * the run like every other (docs/architecture.md). */
static void record__run_done(void *arg, evt *ev, int status)
{
    record__run_arg *a = arg;
    if (a->done)
        a->done(a->ud, status, status < 0 || a->queued != 0);
    else
        record__failed(a->rec, ev, a->row.id, status);
    store_run_cleanup(&a->row);
    free(a);
}

void record_run(recorder *rec, const store_run *r, evt *ev,
                void (*done)(void *ud, int status, bool queued), void *ud)
{
    record__run_arg *a = xcalloc(1, sizeof *a);
    a->rec = rec;
    store_run_copy(&a->row, r);
    a->done = done;
    a->ud = ud;
    eventlog_op op = {record__run_apply, record__run_done, a, ev, a->row.session_id, NULL};
    eventlog_submit(rec->log, &op);
}

static void record__event_done(void *arg, evt *ev, int status)
{
    record__failed(arg, ev, NULL, status);
}

void record_event(recorder *rec, evt *ev)
{
    eventlog_op op = {NULL, record__event_done, rec, ev, NULL, NULL};
    eventlog_submit(rec->log, &op);
}

void record_event_urgent(recorder *rec, evt *ev)
{
    eventlog_op op = {NULL, record__event_done, rec, ev, NULL, NULL};
    eventlog_submit_urgent(rec->log, &op);
}
