#include "engine/record.h"

#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/xmalloc.h"

static char *record__dup(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static json_t *record__ref(json_t *v)
{
    return v ? json_deep_copy(v) : NULL;
}

/* ---- messages ---- */

static int record__message_apply(store *s, void *arg)
{
    return store_message_insert(s, arg);
}

static void record__message_done(void *arg, evt *ev, int status)
{
    (void)ev;
    (void)status;
    store_message_cleanup(arg);
    free(arg);
}

void record_message(eventlog *log, const store_message *m, evt *ev)
{
    store_message *c = xcalloc(1, sizeof *c);
    c->id = record__dup(m->id);
    c->session_id = record__dup(m->session_id);
    c->run_id = record__dup(m->run_id);
    c->role = record__dup(m->role);
    c->content = record__dup(m->content);
    c->tool_call_id = record__dup(m->tool_call_id);
    c->tool_calls = record__ref(m->tool_calls);
    c->partial = m->partial;
    c->created_ms = m->created_ms;
    eventlog_op op = {record__message_apply, record__message_done, c, ev};
    eventlog_submit(log, &op);
}

/* ---- tool executions ---- */

static store_tool_exec *record__tool_copy(const store_tool_exec *t)
{
    store_tool_exec *c = xcalloc(1, sizeof *c);
    c->id = record__dup(t->id);
    c->session_id = record__dup(t->session_id);
    c->run_id = record__dup(t->run_id);
    c->server = record__dup(t->server);
    c->tool = record__dup(t->tool);
    c->status = record__dup(t->status);
    c->result = record__dup(t->result);
    c->error = record__dup(t->error);
    c->step = t->step;
    c->arguments = record__ref(t->arguments);
    c->started_ms = t->started_ms;
    c->finished_ms = t->finished_ms;
    c->duration_ms = t->duration_ms;
    return c;
}

static int record__tool_insert_apply(store *s, void *arg)
{
    return store_tool_exec_insert(s, arg);
}

static int record__tool_finish_apply(store *s, void *arg)
{
    return store_tool_exec_finish(s, arg);
}

static void record__tool_done(void *arg, evt *ev, int status)
{
    (void)ev;
    (void)status;
    store_tool_exec_cleanup(arg);
    free(arg);
}

void record_tool_started(eventlog *log, const store_tool_exec *t, evt *ev)
{
    eventlog_op op = {record__tool_insert_apply, record__tool_done, record__tool_copy(t), ev};
    eventlog_submit(log, &op);
}

void record_tool_finished(eventlog *log, const store_tool_exec *t, evt *ev)
{
    eventlog_op op = {record__tool_finish_apply, record__tool_done, record__tool_copy(t), ev};
    eventlog_submit(log, &op);
}

/* ---- runs ---- */

typedef struct record__run_arg {
    store_run row;
    void (*done)(void *ud, int status);
    void *ud;
} record__run_arg;

static int record__run_apply(store *s, void *arg)
{
    record__run_arg *a = arg;
    int rc = store_run_update(s, &a->row);
    if (rc < 0) return rc;
    if (a->row.status && strcmp(a->row.status, "stopped") == 0) {
        rc = store_session_release_run(s, a->row.session_id, a->row.id, clock_wall_ms());
        if (rc < 0 && rc != STORE_NOT_FOUND) return rc;
    }
    return 0;
}

static void record__run_done(void *arg, evt *ev, int status)
{
    (void)ev;
    record__run_arg *a = arg;
    if (a->done) a->done(a->ud, status);
    store_run_cleanup(&a->row);
    free(a);
}

void record_run(eventlog *log, const store_run *r, evt *ev, void (*done)(void *ud, int status),
                void *ud)
{
    record__run_arg *a = xcalloc(1, sizeof *a);
    store_run *c = &a->row;
    c->id = record__dup(r->id);
    c->session_id = record__dup(r->session_id);
    c->mode = record__dup(r->mode);
    c->status = record__dup(r->status);
    c->stop_reason = record__dup(r->stop_reason);
    c->stop_detail = record__dup(r->stop_detail);
    c->recovery_suggestion = record__dup(r->recovery_suggestion);
    c->actions = record__ref(r->actions);
    c->limits = record__ref(r->limits);
    c->usage = record__ref(r->usage);
    c->wrapped_up = r->wrapped_up;
    c->owner_instance = record__dup(r->owner_instance);
    c->continues = record__dup(r->continues);
    c->heartbeat_ms = r->heartbeat_ms;
    c->started_ms = r->started_ms;
    c->ended_ms = r->ended_ms;
    a->done = done;
    a->ud = ud;
    eventlog_op op = {record__run_apply, record__run_done, a, ev};
    eventlog_submit(log, &op);
}

void record_event(eventlog *log, evt *ev)
{
    eventlog_append(log, ev);
}
