/*
 * run_tool: the tool calls of one turn, one after another: the budget's
 * check, the call, its paced progress, and the finished execution.
 */
#include "engine/run_int.h"

/* ---- tools ---- */

static void run_tool__tool_row(const run *r, store_tool_exec *t, const char *status,
                               const char *result, size_t result_len, const char *error)
{
    memset(t, 0, sizeof *t);
    t->id = (char *)r->exec_id;
    t->session_id = r->session_id;
    t->run_id = (char *)r->id;
    t->server = r->exec_server;
    t->tool = r->exec_tool;
    t->status = (char *)status;
    t->result = (char *)result;
    (void)result_len;
    t->error = (char *)error;
    t->step = r->exec_step;
    t->arguments = r->exec_args;
    t->started_ms = r->exec_started_wall_ms;
}

static void run_tool__emit_progress(run *r, progress_update *u)
{
    redact_in_place(&u->message);
    evt_origin o = run__origin(r);
    run__emit(r, evt_tool_progress(&o, r->exec_id, u->progress, u->total, u->message));
    free(u->message);
}

/* Records a finished execution: its event and row, the tool message the
 * model sees, a budget event, and the guardrails' verdicts. Returns false
 * when the run stopped. */
bool run__tool_finished(run *r, tool_status st, const char *raw, size_t raw_len,
                        const char *raw_error, const char *call_id)
{
    int64_t now_wall = clock_wall_ms();
    int64_t duration = clock_mono_ms() - r->exec_started_mono_ms;
    const char *status = tool_status_name(st);
    /* A tool server's text may echo a secret (docs/security.md): it is
     * masked before it is cut, so a cut fragment is masked too, and the
     * masked text is what is stored, shown and sent to the model. */
    size_t len;
    char *text = redact_string(raw, raw_len, &len);
    char *error = raw_error ? redact_string(raw_error, strlen(raw_error), NULL) : NULL;
    size_t keep = len < TOOL_RESULT_MAX ? len : TOOL_RESULT_MAX;
    char *stored = xstrndup(text, keep);

    /* The last update the tool reported is shown before its end, even when
     * its interval has not ended yet. */
    progress_update u;
    if (progress_drain(&r->progress, &u)) run_tool__emit_progress(r, &u);

    store_tool_exec t;
    run_tool__tool_row(r, &t, status, stored, keep, error);
    t.finished_ms = now_wall;
    t.duration_ms = duration;
    evt_origin o = run__origin(r);
    record_tool_finished(r->env.rec, &t,
                         evt_tool_finished(&o, r->exec_id, r->exec_step, t.server, t.tool, status,
                                           stored, error, duration));

    if (st != TOOL_CANCELLED) {
        json_t *m = context_tool(call_id, text, len);
        char mid[ID_MAX];
        id_new(mid, "msg", now_wall);
        run__record_message(r, mid, "tool", json_string_value(json_object_get(m, "content")), NULL,
                            call_id, false);
        json_array_append_new(r->history, m);
        run__budget_event(r);
    }
    free(stored);

    /* The execution is over before the verdicts apply: a stop they cause
     * must not find it still in flight. */
    guard_verdict v[GUARD_MAX_VERDICTS];
    size_t n = 0;
    /* A denial is no failure of the tool: the guardrails never see it. */
    if (st != TOOL_CANCELLED && st != TOOL_DENIED)
        n = guard_on_tool_result(r->guard, r->exec_step, r->exec_name, r->exec_args, status,
                                 error && st != TOOL_OK ? error : text, v);
    free(text);
    free(error);
    run__clear_exec(r);
    return run__apply_verdicts(r, v, n);
}

/* Shows the held progress update if its interval has ended, or arms the
 * timer for when it does (docs/mcp.md, Progress). */
static void run_tool__pace_progress(run *r)
{
    int64_t now = clock_mono_ms();
    progress_update u;
    if (progress_take(&r->progress, now, &u)) {
        run_tool__emit_progress(r, &u);
        return;
    }
    int64_t due = progress_due(&r->progress);
    if (due >= 0 && !evtimer_pending(r->progress_ev, NULL)) {
        struct timeval tv = {(time_t)((due - now) / 1000),
                             (suseconds_t)((due - now) % 1000 * 1000)};
        evtimer_add(r->progress_ev, &tv);
    }
}

void run__on_progress_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_tool__pace_progress(arg);
}

static void run_tool__on_tool_progress(void *ud, double value, double total, const char *message)
{
    run *r = ud;
    if (r->phase != PHASE_TOOLS) return;
    progress_offer(&r->progress, value, total, message);
    run_tool__pace_progress(r);
}

static void run_tool__repair_crash(run *r);

static void run_tool__on_tool_done(void *ud, const tool_result *res)
{
    run *r = ud;
    r->tool_pending = false;
    r->tool = NULL;
    if (r->phase != PHASE_TOOLS) return;
    /* The call ended while its server still waited for a person. */
    run__cancel_input(r, "tool");
    /* A crashed server is repaired from a fresh loop turn, not from inside
     * the tool source that is still taking its connection apart. */
    if (res->server_lost && !r->exec_lost) {
        r->exec_lost = xstrdup(res->error ? res->error : "the tool server ended during the call");
        run__kick(r, run_tool__repair_crash);
        return;
    }
    const llm_tool_call *c = &r->calls[r->next_call - 1];
    if (run__tool_finished(r, res->status, res->text ? res->text : "", res->text_len, res->error,
                           c->id))
        run__kick(r, run__next_tool);
}

static const tool_callbacks run_tool__tool_cb = {run_tool__on_tool_progress, run_tool__on_tool_done,
                                                 run__on_tool_input};

/*
 * The tool server died during the call (docs/runs.md, Repairs): it is
 * started again at once, and a call that only reads (readOnlyHint) or may
 * be repeated (idempotentHint) is made once more on the new connection;
 * any other call ends with the error, since running a destructive call
 * twice is worse than telling the model it failed.
 */
static void run_tool__repair_crash(run *r)
{
    if (r->phase != PHASE_TOOLS) return;
    const llm_tool_call *c = &r->calls[r->next_call - 1];
    const tool_def *def = toolset_find(r->env.tools, c->name);
    bool repeatable = def && (def->read_only ||
                              json_is_true(json_object_get(def->annotations, "idempotentHint")));
    json_t *info = toolset_restart_server(r->env.tools, r->exec_server);
    json_decref(info);
    char *detail = xasprintf("the tool server %s ended during %s (%s); started it again",
                             r->exec_server, r->exec_name, r->exec_lost);
    run__repair(r, "tool_server_crashed", "restart_tool_server", detail, info != NULL,
                json_pack("{s:s, s:s, s:s}", "server", r->exec_server, "tool", r->exec_name,
                          "error", r->exec_lost));
    free(detail);
    if (repeatable && !r->exec_retried && info) {
        r->exec_retried = true;
        detail = xasprintf("%s %s, so it was called again", r->exec_name,
                           def->read_only ? "only reads" : "may be repeated");
        run__repair(r, "tool_server_crashed", "retry_tool_call", detail, true,
                    json_pack("{s:s, s:s, s:b}", "server", r->exec_server, "tool", r->exec_name,
                              "read_only", def->read_only));
        free(detail);
        free(r->exec_lost);
        r->exec_lost = NULL;
        r->tool_pending = true;
        tool_call *h = toolset_call(r->env.tools, c->name, r->exec_args, 0, &run_tool__tool_cb, r);
        if (r->tool_pending) r->tool = h;
        return;
    }
    char *msg = xstrdup(r->exec_lost);
    if (run__tool_finished(r, TOOL_ERROR, msg, strlen(msg), msg, c->id))
        run__kick(r, run__next_tool);
    free(msg);
}

/* Answers a tool call that does not run (budget exhausted) so that the
 * model still gets a result for every call it made. */
static void run_tool__skip_call(run *r, const llm_tool_call *c)
{
    char mid[ID_MAX];
    id_new(mid, "msg", clock_wall_ms());
    run__record_message(r, mid, "tool", RUN_SKIPPED_RESULT, NULL, c->id, false);
    json_array_append_new(r->history,
                          context_tool(c->id, RUN_SKIPPED_RESULT, strlen(RUN_SKIPPED_RESULT)));
}

static void run_tool__prepare_exec(run *r, const llm_tool_call *c);

void run__next_tool(run *r)
{
    if (r->phase != PHASE_TOOLS) return;
    if (r->next_call >= r->ncalls) {
        run__turn_done(r);
        return;
    }
    const llm_tool_call *c = &r->calls[r->next_call++];
    budget_decision d = budget_check_tool(&r->budget, clock_mono_ms());
    if (d.verdict == BUDGET_STOP) {
        stop_reason reason = budget_dim_reason(d.dim);
        run__finish(r, reason, stop_budget_detail(reason, &r->budget.limits, &r->budget.usage),
                    false);
        return;
    }
    if (d.verdict == BUDGET_SKIP) {
        run_tool__skip_call(r, c);
        run__kick(r, run__next_tool);
        return;
    }

    run_tool__prepare_exec(r, c);
    const tool_def *def = toolset_find(r->env.tools, c->name);
    /* A call that cannot run anyway (an unknown tool, unusable arguments)
     * is not asked about: it ends with its error at once. */
    if (!def || r->exec_args_error) {
        run__execute(r);
        return;
    }
    char reason[APPROVAL_REASON_MAX];
    approval_action act =
        approval_decide(r->env.opt->approval_rules, r->env.opt->approval_nrules, r->mode.approval,
                        r->mode.name, c->name, def->read_only, reason, sizeof reason);
    if (act == APPROVAL_ALLOW) {
        run__execute(r);
    } else if (act == APPROVAL_DENY) {
        run__deny(r, reason, NULL);
    } else {
        const json_t *mem = json_object_get(r->remembered, c->name);
        if (mem)
            run__remembered(r, mem, reason);
        else
            run__request_approval(r, reason, def->annotations);
    }
}

/* Fills the execution's fields for call c; nothing is counted or recorded
 * yet. */
static void run_tool__prepare_exec(run *r, const llm_tool_call *c)
{
    json_error_t je;
    json_t *args = json_loads(*c->arguments ? c->arguments : "{}", JSON_DECODE_ANY, &je);
    bool args_ok = args && json_is_object(args);
    r->exec_args = args_ok ? args : json_object();
    if (!args_ok) {
        r->exec_args_error = xasprintf("invalid JSON arguments for %s: %s", c->name,
                                       args ? "arguments must be a JSON object" : je.text);
        json_decref(args);
    }
    r->exec_name = xstrdup(c->name);
    const tool_def *def = toolset_find(r->env.tools, c->name);
    r->exec_server = xstrdup(def ? def->server : "unknown");
    r->exec_tool = xstrdup(def ? def->tool : c->name);
    r->exec_step = (int)r->budget.usage.steps;
    id_new(r->exec_id, "exe", clock_wall_ms());
}

/* Records the execution's start: its row, tool_started, and the clocks its
 * duration is measured from. */
static void run_tool__record_start(run *r)
{
    r->exec_started_wall_ms = clock_wall_ms();
    r->exec_started_mono_ms = clock_mono_ms();
    store_tool_exec t;
    run_tool__tool_row(r, &t, "running", NULL, 0, NULL);
    evt_origin o = run__origin(r);
    record_tool_started(
        r->env.rec, &t,
        evt_tool_started(&o, r->exec_id, r->exec_step, t.server, t.tool, r->exec_args));
}

void run__execute(run *r)
{
    const llm_tool_call *c = &r->calls[r->next_call - 1];
    r->phase = PHASE_TOOLS;
    budget_on_tool_call(&r->budget);
    run_tool__record_start(r);
    char detail[160];
    snprintf(detail, sizeof detail, "running %s", c->name);
    run__status(r, STATUS_TOOL_RUNNING, detail);

    if (r->exec_args_error) {
        char *msg = xstrdup(r->exec_args_error);
        bool go_on = run__tool_finished(r, TOOL_ERROR, msg, strlen(msg), msg, c->id);
        free(msg);
        if (go_on) run__kick(r, run__next_tool);
        return;
    }
    r->tool_pending = true;
    tool_call *h = toolset_call(r->env.tools, c->name, r->exec_args, 0, &run_tool__tool_cb, r);
    if (r->tool_pending) r->tool = h;
}

/*
 * A tool_started and a tool_finished with status denied and the error
 * "denied by WHO" or "denied by WHO: REASON", and the model is told not to
 * retry the call. A denied call uses no tool-call budget, since nothing
 * ran.
 */
void run__deny(run *r, const char *who, const char *reason)
{
    const llm_tool_call *c = &r->calls[r->next_call - 1];
    r->phase = PHASE_TOOLS;
    run_tool__record_start(r);
    char *error = reason && *reason ? xasprintf("denied by %s: %s", who, reason)
                                    : xasprintf("denied by %s", who);
    char *text = approval_denied_result(reason && *reason ? reason : error);
    bool go_on = run__tool_finished(r, TOOL_DENIED, text, strlen(text), error, c->id);
    free(text);
    free(error);
    if (go_on) run__kick(r, run__next_tool);
}
