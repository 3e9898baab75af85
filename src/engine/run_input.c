/*
 * run_input: a question a tool's server asks a person while the call runs
 * (docs/runs.md, Questions): the input it records and announces, the wait
 * that neither the seconds budget nor the call's time-out counts, and its
 * end by an answer (here or stored by another instance), a time-out, a
 * stop, or the call ending first.
 */
#include "engine/run_int.h"

/* How long the waits were; NULL (nothing counted) until
 * run__input_metrics_register. */
static metrics_family *run_input__wait;

void run__input_metrics_register(void)
{
    static const double waits[] = {1, 5, 15, 30, 60, 120, 300, 900};
    run_input__wait = metrics_histogram_new(
        "chatplane_input_wait_seconds",
        "How long tool servers waited for a person's answer to their question.", waits,
        (int)(sizeof waits / sizeof waits[0]));
}

/* When the run's own write lost to a decision stored first, the stored one
 * is read and applied (on_taken). Should that read fail, the time-out
 * fires again after this long and tries once more: its own conditional
 * write cannot win over a stored answer, so it only leads to another
 * read. */
#define RUN_INPUT_TAKEN_RETRY_MS 1000

static int64_t run_input__timeout_ms(const run *r)
{
    int64_t t = r->env.opt->approval_timeout_ms;
    return t > 0 ? t : RUN_APPROVAL_TIMEOUT_MS;
}

/* Fills an input row of the current question that borrows the run's
 * fields; the message and schema are left for the caller. */
static void run_input__row(const run *r, store_input *a, const char *status, const json_t *content,
                           const char *answered_by, int64_t answered_ms)
{
    memset(a, 0, sizeof *a);
    a->id = (char *)r->inp_id;
    a->session_id = r->session_id;
    a->run_id = (char *)r->id;
    a->execution_id = (char *)r->exec_id;
    a->server = r->exec_server;
    a->status = (char *)status;
    a->content = (json_t *)content;
    a->answered_by = (char *)answered_by;
    a->requested_ms = r->inp_requested_wall_ms;
    a->answered_ms = answered_ms;
    a->expires_ms = r->inp_expires_wall_ms;
}

void run__on_tool_input(void *ud, const char *message, const json_t *schema)
{
    run *r = ud;
    /* One question at a time, and only while the call is the run's. */
    if (r->phase != PHASE_TOOLS || !r->tool || r->inp_pending) {
        tool_call_answer(r->tool, "decline", NULL);
        return;
    }
    int64_t now = clock_wall_ms();
    int64_t timeout = run_input__timeout_ms(r);
    id_new(r->inp_id, "inp", now);
    r->inp_requested_wall_ms = now;
    r->inp_expires_wall_ms = now + timeout;
    r->inp_pending = true;
    r->inp_answering = false;
    free(r->inp_message);
    json_decref(r->inp_schema);
    r->inp_message = xstrdup(message);
    r->inp_schema = json_deep_copy(schema);
    store_input a;
    run_input__row(r, &a, "pending", NULL, NULL, 0);
    a.message = (char *)message;
    a.schema = (json_t *)schema;
    evt_origin o = run__origin(r);
    record_input_requested(r->env.rec, &a,
                           evt_input_requested(&o, r->inp_id, r->exec_id, r->exec_server, message,
                                               schema, r->inp_expires_wall_ms));
    run__status(r, STATUS_WAITING_FOR_INPUT, r->exec_name);
    budget_tick(&r->budget, clock_mono_ms());
    r->inp_wait_mono_ms = clock_mono_ms();
    event_del(r->deadline_ev);
    event_del(r->warn_ev);
    run__arm(r->input_ev, timeout);
}

/* The person's part is over: the wait leaves the seconds budget and the
 * deadline moves by as much; the call runs on (status tool_running). */
static void run_input__end_wait(run *r)
{
    event_del(r->input_ev);
    int64_t waited = clock_mono_ms() - r->inp_wait_mono_ms;
    budget_on_wait(&r->budget, waited);
    metrics_observe(run_input__wait, (double)waited / 1000.0);
    r->inp_pending = false;
    r->inp_answering = false;
    run__arm_timers(r);
}

static const char *run_input__action_of(const char *status)
{
    return strcmp(status, "accepted") == 0   ? "accept"
           : strcmp(status, "declined") == 0 ? "decline"
                                             : "cancel";
}

/* The server gets the answer and the run shows the call running again. */
static void run_input__reply(run *r, const char *action, const json_t *content)
{
    run_input__end_wait(r);
    tool_call_answer(r->tool, action, content);
    char detail[160];
    snprintf(detail, sizeof detail, "running %s", r->exec_name);
    run__status(r, STATUS_TOOL_RUNNING, detail);
}

void run__cancel_input(run *r, const char *by)
{
    if (!r->inp_pending) return;
    store_input a;
    run_input__row(r, &a, "cancelled", NULL, by, clock_wall_ms());
    a.message = r->inp_message;
    a.schema = r->inp_schema;
    evt_origin o = run__origin(r);
    /* A stop or the end of the call wins over nothing: if an answer was
     * stored first, the conditional write loses and is dropped. */
    record_input_answered(r->env.rec, &a, evt_input_answered(&o, r->inp_id, "cancel", by, NULL),
                          NULL, NULL);
    run_input__end_wait(r);
}

/* The run's own write about its question, waiting for its commit. */
typedef struct run_input__write {
    run *r;
    char id[ID_MAX];
    char *action;
    json_t *content;
    engine_input_cb cb;
    void *ud;
    json_t *input; /* the object to answer cb with */
} run_input__write;

static void run_input__written(void *ud, int status)
{
    run_input__write *w = ud;
    run *r = w->r;
    bool current = r->inp_pending && r->inp_answering && strcmp(r->inp_id, w->id) == 0;
    if (status == 0 && current) run_input__reply(r, w->action, w->content);
    if (status == STORE_CONFLICT && current) {
        /* Another instance stored an answer first: that one counts. */
        r->inp_answering = false;
        run__arm(r->input_ev, RUN_INPUT_TAKEN_RETRY_MS);
        if (r->env.on_taken) r->env.on_taken(r->env.ud, r, true, w->id);
    }
    if (w->cb) {
        if (status == 0)
            w->cb(w->ud, 0, w->input);
        else
            w->cb(w->ud, status == STORE_CONFLICT ? ENGINE_ERR_NOT_FOUND : ENGINE_ERR_UNAVAILABLE,
                  NULL);
    }
    json_decref(w->input);
    json_decref(w->content);
    free(w->action);
    free(w);
}

/* Writes the end of the question (status, by answered_by) and waits for
 * the commit before the server hears of it. */
static void run_input__write_end(run *r, const char *status, const char *action,
                                 const json_t *content, const char *answered_by, engine_input_cb cb,
                                 void *ud)
{
    run_input__write *w = xcalloc(1, sizeof *w);
    w->r = r;
    snprintf(w->id, sizeof w->id, "%s", r->inp_id);
    w->action = xstrdup(action);
    w->content = content ? json_deep_copy(content) : NULL;
    w->cb = cb;
    w->ud = ud;
    store_input a;
    run_input__row(r, &a, status, content, answered_by, clock_wall_ms());
    a.message = r->inp_message;
    a.schema = r->inp_schema;
    if (cb) w->input = objects_input(&a);
    r->inp_answering = true;
    event_del(r->input_ev);
    evt_origin o = run__origin(r);
    record_input_answered(r->env.rec, &a,
                          evt_input_answered(&o, r->inp_id, action, answered_by, content),
                          run_input__written, w);
}

void run__on_input_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run *r = arg;
    if (!r->inp_pending || r->inp_answering) return;
    run_input__write_end(r, "expired", "cancel", NULL, "timeout", NULL, NULL);
}

int run_answer_input(run *r, const engine_answer *ans, engine_input_cb cb, void *ud)
{
    if (!r->inp_pending || r->inp_answering || strcmp(r->inp_id, ans->input_id) != 0)
        return ENGINE_ERR_NOT_FOUND;
    /* An accepted answer always carries content, if only {}. */
    json_t *empty = ans->action == ELICIT_ACCEPT && !ans->content ? json_object() : NULL;
    const json_t *content = ans->action != ELICIT_ACCEPT ? NULL : empty ? empty : ans->content;
    run_input__write_end(r, elicit_status_name(elicit_action_status(ans->action)),
                         elicit_action_name(ans->action), content, ans->answered_by, cb, ud);
    json_decref(empty);
    return 0;
}

void run_apply_input(run *r, const store_input *row)
{
    if (!r->inp_pending || r->inp_answering || strcmp(r->inp_id, row->id) != 0 ||
        strcmp(row->status, "pending") == 0)
        return;
    const char *action = run_input__action_of(row->status);
    const json_t *content = strcmp(action, "accept") == 0 ? row->content : NULL;
    evt_origin o = run__origin(r);
    /* The row is written already: only the event is left to record. */
    record_event(r->env.rec,
                 evt_input_answered(&o, row->id, action,
                                    row->answered_by ? row->answered_by : "unknown", content));
    run_input__reply(r, action, content);
}
