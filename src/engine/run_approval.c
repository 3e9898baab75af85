/*
 * run_approval: a tool call that waits for a person (docs/runs.md,
 * Approvals): the approval it records and announces, the wait that the
 * seconds budget does not count, and its end by a decision, a remembered
 * decision, a time-out or a stop.
 */
#include "engine/run_int.h"

/* How long the waits were; NULL (nothing counted) until
 * run__approval_metrics_register. */
static metrics_family *run_approval__wait;

void run__approval_metrics_register(void)
{
    static const double waits[] = {1, 5, 15, 30, 60, 120, 300, 900};
    run_approval__wait = metrics_histogram_new(
        "chatplane_approval_wait_seconds", "How long tool calls waited for a person's decision.",
        waits, (int)(sizeof waits / sizeof waits[0]));
}

/* Fills an approval row of the current call that borrows the run's fields. */
static void run_approval__row(const run *r, store_approval *a, const char *status,
                              const char *decided_by, const char *decision_reason,
                              const char *remember, int64_t decided_ms)
{
    memset(a, 0, sizeof *a);
    a->id = (char *)r->apr_id;
    a->session_id = r->session_id;
    a->run_id = (char *)r->id;
    a->execution_id = (char *)r->exec_id;
    a->step = r->exec_step;
    a->server = r->exec_server;
    a->tool = r->exec_tool;
    a->arguments = r->exec_args;
    a->reason = r->apr_reason;
    a->status = (char *)status;
    a->decided_by = (char *)decided_by;
    a->decision_reason = (char *)decision_reason;
    a->remember = (char *)remember;
    a->requested_ms = r->apr_requested_wall_ms;
    a->decided_ms = decided_ms;
    a->expires_ms = r->apr_expires_wall_ms;
}

static int64_t run_approval__timeout_ms(const run *r)
{
    int64_t t = r->env.opt->approval_timeout_ms;
    return t > 0 ? t : RUN_APPROVAL_TIMEOUT_MS;
}

/* An approval row already decided and its approval_decided event, by
 * "remembered", then the call runs or is denied. */
void run__remembered(run *r, const json_t *mem, const char *reason)
{
    bool approve = json_is_true(json_object_get(mem, "approve"));
    const char *why = json_string_value(json_object_get(mem, "reason"));
    const char *remember = json_string_value(json_object_get(mem, "remember"));
    if (!remember) remember = "run";
    int64_t now = clock_wall_ms();
    id_new(r->apr_id, "apr", now);
    r->apr_reason = xstrdup(reason);
    r->apr_requested_wall_ms = now;
    r->apr_expires_wall_ms = now;
    const char *status = approve ? "approved" : "denied";
    store_approval a;
    run_approval__row(r, &a, status, "remembered", why, remember, now);
    evt_origin o = run__origin(r);
    record_approval_requested(
        r->env.rec, &a, evt_approval_decided(&o, r->apr_id, status, "remembered", why, remember));
    if (approve)
        run__execute(r);
    else
        run__deny(r, "remembered", why);
}

/* The approval row and approval_requested, the status
 * waiting_for_approval, and the time-out. The seconds budget stops while
 * the run waits. */
void run__request_approval(run *r, const char *reason, const json_t *annotations)
{
    int64_t now = clock_wall_ms();
    int64_t timeout = run_approval__timeout_ms(r);
    id_new(r->apr_id, "apr", now);
    r->apr_reason = xstrdup(reason);
    r->apr_requested_wall_ms = now;
    r->apr_expires_wall_ms = now + timeout;
    store_approval a;
    run_approval__row(r, &a, "pending", NULL, NULL, "once", 0);
    evt_origin o = run__origin(r);
    record_approval_requested(r->env.rec, &a,
                              evt_approval_requested(&o, r->apr_id, r->exec_id, r->exec_step,
                                                     r->exec_server, r->exec_tool, r->exec_args,
                                                     reason, annotations, r->apr_expires_wall_ms));
    run__status(r, STATUS_WAITING_FOR_APPROVAL, r->exec_name);
    r->phase = PHASE_APPROVAL;
    budget_tick(&r->budget, clock_mono_ms());
    r->apr_wait_mono_ms = clock_mono_ms();
    event_del(r->deadline_ev);
    event_del(r->warn_ev);
    run__arm(r->approval_ev, timeout);
}

/* The wait is over: its time leaves the seconds budget and the deadline
 * moves by as much. */
static void run_approval__end_wait(run *r)
{
    event_del(r->approval_ev);
    int64_t waited = clock_mono_ms() - r->apr_wait_mono_ms;
    budget_on_wait(&r->budget, waited);
    metrics_observe(run_approval__wait, (double)waited / 1000.0);
    r->phase = PHASE_TOOLS;
    run__arm_timers(r);
}

/* Records the end of the wait: the row and approval_decided with status by
 * decided_by. */
static void run_approval__record(run *r, const char *status, const char *decided_by,
                                 const char *reason, const char *remember,
                                 void (*done)(void *ud, int status), void *ud)
{
    int64_t now = clock_wall_ms();
    store_approval a;
    run_approval__row(r, &a, status, decided_by, reason, remember, now);
    evt_origin o = run__origin(r);
    record_approval_decided(
        r->env.rec, &a, evt_approval_decided(&o, r->apr_id, status, decided_by, reason, remember),
        done, ud);
}

void run__cancel_approval(run *r)
{
    run_approval__end_wait(r);
    run_approval__record(r, "cancelled", "stop", NULL, "once", NULL, NULL);
    run__clear_exec(r);
}

/* Acts on a decision that is stored: the call runs, is denied, or (the
 * approval expired) the run stops. A decision reaching beyond the call is
 * remembered. */
static void run_approval__act(run *r, const char *status, const char *decided_by,
                              const char *reason, const char *remember)
{
    run_approval__end_wait(r);
    approval_remember rem = APPROVAL_ONCE;
    approval_remember_parse(remember, &rem);
    bool approve = strcmp(status, "approved") == 0;
    if (rem != APPROVAL_ONCE && (approve || strcmp(status, "denied") == 0)) {
        json_object_set_new(r->remembered, r->exec_name,
                            json_pack("{s:b, s:o, s:s}", "approve", approve, "reason",
                                      reason ? json_string(reason) : json_null(), "remember",
                                      remember));
    }
    if (approve) {
        run__execute(r);
    } else if (strcmp(status, "denied") == 0) {
        run__deny(r, decided_by, reason);
    } else {
        char *detail = xasprintf("nobody answered the approval for %s within %lld s", r->exec_name,
                                 (long long)(run_approval__timeout_ms(r) / 1000));
        /* The execution never started: nothing is left in flight. */
        run__clear_exec(r);
        run__finish(r, STOP_APPROVAL_TIMEOUT, detail, false);
    }
}

/* The run's own write of a decision (or of the expiry), waiting for its
 * commit: only a stored decision is acted on. */
typedef struct run_approval__decider {
    run *r;
    char id[ID_MAX];
    char *status, *decided_by, *reason, *remember;
    engine_approval_cb cb;
    void *ud;
    json_t *approval;
} run_approval__decider;

static void run_approval__decided(void *ud, int status)
{
    run_approval__decider *d = ud;
    run *r = d->r;
    bool current = r->phase == PHASE_APPROVAL && r->apr_deciding && strcmp(r->apr_id, d->id) == 0;
    if (current) r->apr_deciding = false;
    if (status == 0 && current)
        run_approval__act(r, d->status, d->decided_by, d->reason, d->remember);
    /* Another instance stored a decision first: that one counts. Should
     * reading it fail, the time-out fires again in a second and leads to
     * another read (its own write cannot win over a stored decision). */
    if (status == STORE_CONFLICT && current) {
        run__arm(r->approval_ev, 1000);
        if (r->env.on_taken) r->env.on_taken(r->env.ud, r, false, d->id);
    }
    if (d->cb) {
        if (status == 0)
            d->cb(d->ud, 0, d->approval);
        else
            d->cb(d->ud, status == STORE_CONFLICT ? ENGINE_ERR_NOT_FOUND : ENGINE_ERR_UNAVAILABLE,
                  NULL);
    }
    json_decref(d->approval);
    free(d->status);
    free(d->decided_by);
    free(d->reason);
    free(d->remember);
    free(d);
}

/* Writes the decision and waits for its commit; the time-out no longer
 * runs, but the wait goes on until the commit says who won. */
static void run_approval__decide(run *r, const char *status, const char *decided_by,
                                 const char *reason, const char *remember, engine_approval_cb cb,
                                 void *ud)
{
    run_approval__decider *w = xcalloc(1, sizeof *w);
    w->r = r;
    snprintf(w->id, sizeof w->id, "%s", r->apr_id);
    w->status = xstrdup(status);
    w->decided_by = xstrdup(decided_by);
    w->reason = reason ? xstrdup(reason) : NULL;
    w->remember = xstrdup(remember);
    w->cb = cb;
    w->ud = ud;
    if (cb) {
        store_approval a;
        run_approval__row(r, &a, status, decided_by, reason, remember, clock_wall_ms());
        w->approval = objects_approval(&a);
    }
    r->apr_deciding = true;
    event_del(r->approval_ev);
    run_approval__record(r, status, decided_by, reason, remember, run_approval__decided, w);
}

void run__on_approval_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run *r = arg;
    if (r->phase != PHASE_APPROVAL || r->apr_deciding) return;
    run_approval__decide(r, "expired", "timeout", NULL, "once", NULL, NULL);
}

int run_decide(run *r, const engine_decision *d, engine_approval_cb cb, void *ud)
{
    if (r->phase != PHASE_APPROVAL || r->apr_deciding || strcmp(r->apr_id, d->approval_id) != 0)
        return ENGINE_ERR_NOT_FOUND;
    run_approval__decide(r, d->approve ? "approved" : "denied", d->decided_by,
                         d->reason && *d->reason ? d->reason : NULL,
                         approval_remember_name(d->remember), cb, ud);
    return 0;
}

void run_apply_approval(run *r, const store_approval *row)
{
    if (r->phase != PHASE_APPROVAL || r->apr_deciding || strcmp(r->apr_id, row->id) != 0 ||
        strcmp(row->status, "pending") == 0)
        return;
    const char *by = row->decided_by ? row->decided_by : "unknown";
    const char *remember = row->remember ? row->remember : "once";
    evt_origin o = run__origin(r);
    /* The row is written already: only the event is left to record. */
    record_event(r->env.rec, evt_approval_decided(&o, row->id, row->status, by,
                                                  row->decision_reason, remember));
    run_approval__act(r, row->status, by, row->decision_reason, remember);
}
