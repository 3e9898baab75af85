#include "engine/run_int.h"

#include "lib/loopprio.h"

/* ---- small helpers ---- */

evt_origin run__origin(const run *r)
{
    evt_origin o = {r->session_id, r->id, clock_wall_ms()};
    return o;
}

void run__emit(run *r, evt *ev)
{
    record_event(r->env.rec, ev);
}

void run__status(run *r, run_status s, const char *detail)
{
    evt_origin o = run__origin(r);
    run__emit(r, evt_status(&o, s, detail));
}

void run__budget_event(run *r)
{
    budget_tick(&r->budget, clock_mono_ms());
    budget_new_warnings(&r->budget); /* reported now: the timer need not repeat it */
    evt_origin o = run__origin(r);
    run__emit(r, evt_budget(&o, &r->budget));
}

static void run__on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run *r = arg;
    void (*fn)(run *) = r->kick_fn;
    r->kick_fn = NULL;
    if (fn && r->phase != PHASE_DONE) fn(r);
}

/* Continues with fn from the loop rather than from inside a callback, so
 * that a tool or model that answers synchronously never recurses. */
void run__kick(run *r, void (*fn)(run *))
{
    r->kick_fn = fn;
    event_active(r->kick_ev, EV_TIMEOUT, 0);
}

void run__arm(struct event *ev, int64_t delay_ms)
{
    if (delay_ms < 0) delay_ms = 0;
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)((delay_ms % 1000) * 1000)};
    event_add(ev, &tv);
}

void run__free_calls(run *r)
{
    for (size_t i = 0; i < r->ncalls; i++) {
        free(r->calls[i].id);
        free(r->calls[i].name);
        free(r->calls[i].arguments);
    }
    free(r->calls);
    r->calls = NULL;
    r->ncalls = r->next_call = 0;
    free(r->turn_text);
    r->turn_text = NULL;
}

void run__clear_exec(run *r)
{
    free(r->exec_name);
    r->exec_name = NULL;
    json_decref(r->exec_args);
    r->exec_args = NULL;
    free(r->exec_server);
    free(r->exec_tool);
    r->exec_server = r->exec_tool = NULL;
    free(r->exec_args_error);
    r->exec_args_error = NULL;
    free(r->exec_lost);
    r->exec_lost = NULL;
    r->exec_retried = false;
    free(r->apr_reason);
    r->apr_reason = NULL;
    r->tool = NULL;
    progress_reset(&r->progress);
    if (r->progress_ev) event_del(r->progress_ev);
}

/* Stores a message row and its message event. */
void run__record_message(run *r, const char *message_id, const char *role, const char *content,
                         const json_t *tool_calls, const char *tool_call_id, bool partial)
{
    evt_origin o = run__origin(r);
    store_message m = {
        .id = (char *)message_id,
        .session_id = r->session_id,
        .run_id = r->id,
        .role = (char *)role,
        .content = (char *)content,
        .tool_call_id = (char *)tool_call_id,
        .tool_calls = (json_t *)tool_calls,
        .partial = partial,
        .created_ms = o.ts_ms,
    };
    /* An assistant message names the provider of the call that wrote it. */
    bool assistant = strcmp(role, "assistant") == 0;
    const char *model = assistant ? run__model_label(r) : NULL;
    m.model = (char *)model;
    evt *ev = evt_message(&o, message_id, role, content, tool_calls, tool_call_id, partial);
    evt_message_set_model(ev, model);
    record_message(r->env.rec, &m, ev);
}

/* Fills a store_run that borrows the run's fields; limits/usage/actions
 * are new references the caller releases. */
static void run__row(const run *r, store_run *row)
{
    memset(row, 0, sizeof *row);
    row->id = (char *)r->id;
    row->session_id = r->session_id;
    row->mode = (char *)r->mode.name;
    row->status = r->phase == PHASE_DONE ? "stopped" : "running";
    row->continues = r->continues;
    row->owner_instance = (char *)r->env.instance_id;
    row->limits = mode_limits_to_json(&r->budget.limits);
    row->usage = budget_usage_to_json(&r->budget.usage);
    row->started_ms = r->started_wall_ms;
    row->heartbeat_ms = clock_wall_ms();
    if (r->phase == PHASE_DONE) {
        row->stop_reason = (char *)stop_reason_name(r->reason);
        row->stop_detail = r->detail;
        row->recovery_suggestion = (char *)stop_recovery(r->reason, r->mode.name);
        row->actions = stop_actions(r->reason, r->mode.name);
        if (r->diagnosis_action) json_array_append(row->actions, r->diagnosis_action);
        row->diagnosis = r->diagnosis;
        row->wrapped_up = r->wrapped_up;
        row->ended_ms = r->ended_wall_ms;
    } else {
        row->actions = json_array();
    }
}

static void run__row_release(store_run *row)
{
    json_decref(row->limits);
    json_decref(row->usage);
    json_decref(row->actions);
}

json_t *run_to_json(const run *r)
{
    store_run row;
    run__row(r, &row);
    json_t *o = objects_run(&row);
    run__row_release(&row);
    return o;
}

/* ---- guardrails ---- */

/* Records the verdicts: a warning becomes a guardrail event and a nudge; a
 * stop ends the run. Returns false when the run was stopped. */
bool run__apply_verdicts(run *r, guard_verdict *v, size_t n)
{
    bool go_on = true;
    for (size_t i = 0; i < n; i++) {
        evt_origin o = run__origin(r);
        run__emit(r, evt_guardrail(&o, &v[i]));
        if (v[i].action == GUARD_WARN && v[i].nudge) {
            json_array_append_new(r->notes, json_string(v[i].nudge));
        } else if (v[i].action == GUARD_STOP && go_on) {
            go_on = false;
            r->stop_evidence = json_incref(v[i].evidence);
            run__finish(r, v[i].reason, xstrdup(v[i].detail ? v[i].detail : ""), false);
        }
    }
    for (size_t i = 0; i < n; i++) guard_verdict_cleanup(&v[i]);
    return go_on;
}

bool run__guard_turn(run *r, const char *text, size_t ncalls)
{
    guard_verdict v[GUARD_MAX_VERDICTS];
    size_t n = guard_on_turn(r->guard, (int)r->budget.usage.steps, text, ncalls, v);
    return run__apply_verdicts(r, v, n);
}

/* ---- ending ---- */

/* Hands the ended run to its waiters and to the engine, which frees it. */
static void run__answer_waiters(run *r);

static void run__ended(run *r, int status)
{
    run__answer_waiters(r);
    r->env.on_finished(r->env.ud, r, status);
}

static void run__committed(void *ud, int status, bool queued);

/* Queues the run's last write: the stopped row, the session's release and
 * run_stopped, stamped with the time the run ended (a later try says when
 * the run ended, not when the database took it). */
static void run__write_end(run *r)
{
    store_run row;
    run__row(r, &row);
    evt_origin o = {r->session_id, r->id, r->ended_wall_ms};
    evt *ev = evt_run_stopped(&o, r->reason, r->detail, row.recovery_suggestion, row.actions,
                              r->diagnosis, r->wrapped_up, &r->budget.usage);
    r->end_writing = true;
    record_run(r->env.rec, &row, ev, run__committed, r);
    run__row_release(&row);
}

static void run__on_end_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run *r = arg;
    if (!r->end_writing) run__write_end(r);
}

/* True for a refusal by the database as a whole (full, read-only, busy,
 * unreachable), which a later try can overcome; a run another instance
 * stopped (STORE_CONFLICT) or a missing row cannot be written later. */
static bool run__end_retryable(int status)
{
    return status == DB_ERR_FULL || status == DB_ERR_BUSY || status == DB_ERR_RETRY ||
           status == DB_ERR_CONN;
}

/* Answers every stop request waiting for the run with the run as it ends. */
static void run__answer_waiters(run *r)
{
    if (!r->waiters) return;
    json_t *obj = run_to_json(r);
    for (run_waiter *w = r->waiters, *next; w; w = next) {
        next = w->next;
        w->cb(w->ud, obj);
        free(w);
    }
    r->waiters = NULL;
    json_decref(obj);
}

/*
 * The database refused the run's last write. The run is over for its
 * clients: its end becomes `interrupted` by the refused write (what the
 * run wrote before may be missing from the log, so it cannot claim to have
 * completed), stop requests are answered, and the engine hears of it once
 * (its streams end). The run keeps its session, as the stored row still
 * does, and the write is tried again with backoff until it commits, the
 * database answers that it cannot be written, or the server shuts down.
 */
static void run__diagnose(run *r);

static void run__end_refused(run *r, int status)
{
    if (!r->unrecorded) {
        r->unrecorded = true;
        r->reason = STOP_INTERRUPTED;
        free(r->detail);
        r->detail = xstrdup(RUN_WRITE_FAILED_DETAIL);
        r->wrapped_up = false;
        run__diagnose(r);
        LOG(LOG_ERROR, "the end of a run could not be written; trying again until it is",
            "run_id=%s session_id=%s status=%d", r->id, r->session_id, status);
        run__answer_waiters(r);
        if (r->env.on_unrecorded) r->env.on_unrecorded(r->env.ud, r, status);
    }
    int64_t wait = RUN_END_RETRY_FIRST_MS;
    for (int i = 0; i < r->end_tries && wait < RUN_END_RETRY_MAX_MS; i++) wait *= 2;
    if (wait > RUN_END_RETRY_MAX_MS) wait = RUN_END_RETRY_MAX_MS;
    r->end_tries++;
    run__arm(r->end_retry_ev, wait);
}

static void run__committed(void *ud, int status, bool queued)
{
    run *r = ud;
    r->end_writing = false;
    r->queue_waits = queued;
    if (status < 0 && run__end_retryable(status) && !r->end_last_try) {
        run__end_refused(r, status);
        return;
    }
    if (status < 0)
        LOG(LOG_ERROR, "the end of a run could not be written", "run_id=%s status=%d", r->id,
            status);
    else if (r->unrecorded)
        LOG(LOG_INFO, "the end of a run was written at last", "run_id=%s tries=%d", r->id,
            r->end_tries + 1);
    run__ended(r, status);
}

/* Aborts what is in flight and keeps what it produced so far. */
static void run__abort_in_flight(run *r)
{
    if (r->phase == PHASE_MODEL && r->call) {
        llm_call_abort(run__model(r), r->call);
        r->call = NULL;
        r->call_pending = false;
        /* The partial text of a stopped turn is kept, marked partial, and
         * counted: the model read the prompt and wrote that much (estimated
         * as bytes / 4, as for an answer that reports no usage). */
        if (r->text.len > 0) {
            budget_on_tokens(&r->budget, r->est_prompt_tokens, (int64_t)((r->text.len + 3) / 4));
            run__owner_settle(r, r->est_prompt_tokens, (int64_t)((r->text.len + 3) / 4));
            run__record_message(r, r->message_id, "assistant", r->text.data, NULL, NULL, true);
            json_array_append_new(r->history, context_assistant(r->text.data, NULL));
        }
    }
    if (r->phase == PHASE_APPROVAL) run__cancel_approval(r);
    if (r->phase == PHASE_TOOLS && r->exec_name) {
        run__cancel_input(r, "stop");
        if (r->tool) tool_call_cancel(r->tool);
        r->tool = NULL;
        r->tool_pending = false;
        static const char cancelled[] = "cancelled: the run stopped";
        run__tool_finished(r, TOOL_CANCELLED, cancelled, sizeof cancelled - 1, cancelled, NULL);
    }
    event_del(r->retry_ev);
    event_del(r->deadline_ev);
    event_del(r->warn_ev);
    event_del(r->kick_ev);
}

/* For repeated failures: the tool server of the last failing tool, when it
 * is down now, with how it failed and since when (f borrows from servers). */
static void run__diagnose_server(run *r, diagnosis_facts *f, json_t *servers)
{
    const char *tool = json_string_value(json_object_get(r->stop_evidence, "tool"));
    const tool_def *def = tool ? toolset_find(r->env.tools, tool) : NULL;
    size_t i;
    json_t *s;
    json_array_foreach(servers, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *status = json_string_value(json_object_get(s, "status"));
        if (!def || !name || strcmp(name, def->server) != 0 || !status ||
            strcmp(status, "ready") == 0)
            continue;
        int64_t since = 0;
        const char *at = json_string_value(json_object_get(s, "down_since"));
        if (at && timefmt_parse(at, &since) != 0) since = 0;
        f->server = name;
        f->server_down_since_ms = since;
        f->server_error = json_string_value(json_object_get(s, "last_error"));
        return;
    }
}

/* The stop's diagnosis from what the run saw (docs/runs.md, Diagnosis). */
static void run__diagnose(run *r)
{
    diagnosis_facts f = {
        .reason = r->reason,
        .detail = r->detail,
        .mode = r->mode.name,
        .http_status = r->fail_status,
        .error_code = r->fail_code,
        .error_text = r->fail_text,
        .attempts = (int)r->budget.usage.retries + 1,
        .context_overflow = r->fail_code && strcmp(r->fail_code, "context_length_exceeded") == 0,
        .guard_evidence = r->stop_evidence,
    };
    json_t *servers = NULL;
    if (r->reason == STOP_REPEATED_FAILURES && r->stop_evidence && r->env.tools) {
        servers = toolset_servers_json(r->env.tools);
        run__diagnose_server(r, &f, servers);
    }
    json_decref(r->diagnosis);
    r->diagnosis = diagnosis_build(&f);
    json_decref(r->diagnosis_action);
    r->diagnosis_action = diagnosis_action(&f);
    json_decref(servers);
}

void run__finish(run *r, stop_reason reason, char *detail, bool wrapped_up)
{
    if (r->phase == PHASE_DONE) {
        free(detail);
        return;
    }
    run__abort_in_flight(r);
    /* A call stopped before it streamed anything used nothing the owner
     * pays for, as far as can be known. */
    run__owner_release(r);
    budget_tick(&r->budget, clock_mono_ms());
    r->phase = PHASE_DONE;
    r->reason = reason;
    r->detail = detail ? detail : xstrdup("");
    r->wrapped_up = wrapped_up;
    r->ended_wall_ms = clock_wall_ms();
    run__diagnose(r);
    run__write_end(r);
    LOG(LOG_INFO, "run stopped", "run_id=%s session_id=%s reason=%s", r->id, r->session_id,
        stop_reason_name(reason));
}

void run_abandon(run *r, const char *detail)
{
    if (r->phase == PHASE_DONE) return;
    if (r->phase == PHASE_MODEL && r->call) llm_call_abort(run__model(r), r->call);
    r->call = NULL;
    r->call_pending = false;
    if (r->phase == PHASE_TOOLS && r->tool) tool_call_cancel(r->tool);
    r->tool = NULL;
    r->tool_pending = false;
    event_del(r->retry_ev);
    event_del(r->deadline_ev);
    event_del(r->warn_ev);
    event_del(r->kick_ev);
    event_del(r->approval_ev);
    event_del(r->input_ev);
    r->inp_pending = false;
    budget_tick(&r->budget, clock_mono_ms());
    r->phase = PHASE_DONE;
    r->reason = STOP_INTERRUPTED;
    free(r->detail);
    r->detail = xstrdup(detail);
    r->ended_wall_ms = clock_wall_ms();
    run__diagnose(r);
    LOG(LOG_WARN, "run abandoned: its end is recorded elsewhere", "run_id=%s session_id=%s", r->id,
        r->session_id);
    run__ended(r, STORE_CONFLICT);
}

void run_stop(run *r, stop_reason reason, const char *detail, run_object_cb cb, void *ud)
{
    if (r->unrecorded) {
        /* Its end is decided and waits only for the database: answered now
         * rather than whenever the database takes writes again. */
        if (cb) {
            json_t *obj = run_to_json(r);
            cb(ud, obj);
            json_decref(obj);
        }
        return;
    }
    if (cb) {
        run_waiter *w = xcalloc(1, sizeof *w);
        w->cb = cb;
        w->ud = ud;
        w->next = r->waiters;
        r->waiters = w;
    }
    if (r->phase == PHASE_DONE) return;
    if (reason == STOP_USER_STOPPED) run__status(r, STATUS_STOPPING, NULL);
    run__finish(r, reason, xstrdup(detail), false);
}

void run_last_try(run *r)
{
    if (!r->unrecorded || r->end_last_try) return;
    r->end_last_try = true;
    event_del(r->end_retry_ev);
    if (!r->end_writing) run__write_end(r);
}

bool run_is_unrecorded(const run *r)
{
    return r->unrecorded;
}

bool run_queue_waits(const run *r)
{
    return r->queue_waits;
}

/* ---- timers ----
 *
 * The seconds timers are due at times of the run's own clock, but libevent
 * adds a delay to the time it cached when the loop iteration began, so a
 * timer armed after other work of that iteration fires early by as long as
 * that work took. Each timer therefore checks the run's clock when it fires
 * and, when early, arms itself again for the rest. Computing the delays
 * against libevent's cached time (event_base_gettimeofday_cached) instead
 * would tie the budget to a clock it does not measure with: that call
 * answers in wall-clock time, which may jump, while the budget counts on
 * the monotonic clock. The check on firing holds whatever the loop did
 * before and whichever clock libevent keeps.
 */

/* When the 80 % seconds warning is due. */
static int64_t run__warn_at(const run *r)
{
    return r->budget.started_ms + r->budget.limits.seconds * 800;
}

/* Arms ev again for the rest of the time until due and returns true when
 * the run's clock has not reached due yet. */
static bool run__early(struct event *ev, int64_t due)
{
    int64_t now = clock_mono_ms();
    if (now >= due) return false;
    run__arm(ev, due - now);
    return true;
}

static void run__on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run *r = arg;
    if (run__early(r->deadline_ev, budget_deadline_ms(&r->budget))) return;
    budget_tick(&r->budget, clock_mono_ms());
    run__finish(r, STOP_MAX_SECONDS,
                stop_budget_detail(STOP_MAX_SECONDS, &r->budget.limits, &r->budget.usage), false);
}

static void run__on_warn(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run *r = arg;
    if (run__early(r->warn_ev, run__warn_at(r))) return;
    budget_tick(&r->budget, clock_mono_ms());
    if (budget_warnings(&r->budget) & ~r->budget.warned) run__budget_event(r);
}

void run__arm_timers(run *r)
{
    event_del(r->deadline_ev);
    event_del(r->warn_ev);
    /* The seconds budget stands still while the run waits for a person. */
    if (r->phase == PHASE_APPROVAL || r->inp_pending) return;
    int64_t deadline = budget_deadline_ms(&r->budget);
    if (deadline == INT64_MAX) return;
    int64_t now = clock_mono_ms();
    run__arm(r->deadline_ev, deadline - now);
    int64_t warn_at = run__warn_at(r);
    if (warn_at > now) run__arm(r->warn_ev, warn_at - now);
}

void run_set_mode(run *r, const mode *m)
{
    if (r->phase == PHASE_DONE) return;
    r->mode = *m;
    budget_set_limits(&r->budget, &m->limits);
    guard_set_thresholds(r->guard, &m->guard);
    run__arm_timers(r);
    /* The run row takes the new mode and limits together with the budget
     * event that announces them, so the API and the event log agree. */
    budget_tick(&r->budget, clock_mono_ms());
    budget_new_warnings(&r->budget);
    store_run row;
    run__row(r, &row);
    evt_origin o = run__origin(r);
    record_run(r->env.rec, &row, evt_budget(&o, &r->budget), NULL, NULL);
    run__row_release(&row);
}

/* ---- life cycle ---- */

run *run_new(const run_env *env, const run_init *init)
{
    run *r = xcalloc(1, sizeof *r);
    r->env = *env;
    r->queue_waits = true;
    snprintf(r->id, sizeof r->id, "%s", init->id);
    r->session_id = xstrdup(init->session_id);
    r->continues = init->continues ? xstrdup(init->continues) : NULL;
    r->mode = *init->mode;
    r->started_wall_ms = init->started_wall_ms;
    budget_init(&r->budget, &init->mode->limits, &env->opt->price, clock_mono_ms());
    r->guard = guard_new(&init->mode->guard);
    r->history = init->history;
    r->keep_from = init->keep_from;
    r->notes = json_array();
    r->tools = toolset_openai_tools_counted(env->tools, &r->tool_tokens, &r->tools_text);
    r->user_message_id = init->user_message_id ? xstrdup(init->user_message_id) : NULL;
    r->user_message = init->user_message ? xstrdup(init->user_message) : NULL;
    r->client_note = init->client_note ? xstrdup(init->client_note) : NULL;
    r->superseded = init->superseded ? json_deep_copy(init->superseded) : NULL;
    r->begun = init->begun;
    buf_init(&r->text, RUN_TEXT_MAX);
    r->deadline_ev = evtimer_new(env->base, run__on_deadline, r);
    r->warn_ev = evtimer_new(env->base, run__on_warn, r);
    r->retry_ev = evtimer_new(env->base, run__on_retry_timer, r);
    r->kick_ev = event_new(env->base, -1, 0, run__on_kick, r);
    /* A run's next step goes before the streams' relaying (lib/loopprio.h);
     * on a loop of one priority (a test's) this changes nothing. */
    (void)event_priority_set(r->kick_ev, LOOPPRIO_START);
    progress_init(&r->progress, PROGRESS_INTERVAL_MS);
    r->progress_ev = evtimer_new(env->base, run__on_progress_timer, r);
    r->end_retry_ev = evtimer_new(env->base, run__on_end_retry, r);
    r->approval_ev = evtimer_new(env->base, run__on_approval_timer, r);
    r->input_ev = evtimer_new(env->base, run__on_input_timer, r);
    r->remembered = init->remembered ? init->remembered : json_object();
    if (!r->env.chain) {
        /* A run made without the engine's chain uses its model alone. */
        r->own_chain = llm_chain_new(LLM_CHAIN_REST_MS_DEFAULT);
        llm_chain_add(r->own_chain, "primary", env->model, false, NULL);
        r->env.chain = r->own_chain;
    }
    buf_init(&r->step_errors, RUN_STEP_ERRORS_MAX);
    r->owner = init->owner ? xstrdup(init->owner) : NULL;
    return r;
}

size_t run_first_events(const evt_origin *o, const char *message_id, const char *message,
                        const json_t *superseded, const char *mode_name, const mode_limits *limits,
                        const char *continues, evt *out[RUN_FIRST_EVENTS_MAX])
{
    size_t n = 0;
    if (message_id) out[n++] = evt_message(o, message_id, "user", message, NULL, NULL, false);
    if (superseded) out[n++] = evt_superseded(o, superseded);
    out[n++] = evt_run_started(o, mode_name, limits, continues);
    return n;
}

void run_begin(run *r)
{
    if (!r->begun) {
        evt_origin o = run__origin(r);
        evt *first[RUN_FIRST_EVENTS_MAX];
        size_t n = run_first_events(&o, r->user_message_id, r->user_message, r->superseded,
                                    r->mode.name, &r->budget.limits, r->continues, first);
        for (size_t i = 0; i < n; i++) run__emit(r, first[i]);
    }
    run__arm_timers(r);
    LOG(LOG_INFO, "run started", "run_id=%s session_id=%s mode=%s", r->id, r->session_id,
        r->mode.name);
    run__kick(r, run__step);
}

void run_free(run *r)
{
    if (!r) return;
    for (run_waiter *w = r->waiters, *next; w; w = next) {
        next = w->next;
        free(w);
    }
    event_free(r->deadline_ev);
    event_free(r->warn_ev);
    event_free(r->retry_ev);
    event_free(r->kick_ev);
    event_free(r->end_retry_ev);
    event_free(r->approval_ev);
    event_free(r->input_ev);
    free(r->inp_message);
    json_decref(r->inp_schema);
    run__owner_detach(r);
    json_decref(r->remembered);
    run__free_calls(r);
    run__clear_exec(r);
    progress_cleanup(&r->progress);
    if (r->progress_ev) event_free(r->progress_ev);
    guard_free(r->guard);
    json_decref(r->history);
    json_decref(r->notes);
    json_decref(r->tools);
    json_decref(r->tools_text);
    buf_cleanup(&r->text);
    free(r->session_id);
    free(r->continues);
    free(r->detail);
    json_decref(r->diagnosis);
    json_decref(r->diagnosis_action);
    json_decref(r->stop_evidence);
    free(r->fail_code);
    free(r->fail_text);
    free(r->user_message_id);
    free(r->user_message);
    buf_cleanup(&r->step_errors);
    llm_chain_free(r->own_chain);
    free(r->client_note);
    json_decref(r->superseded);
    free(r);
}

const char *run_get_id(const run *r)
{
    return r->id;
}

const char *run_get_session_id(const run *r)
{
    return r->session_id;
}

stop_reason run_get_reason(const run *r)
{
    return r->reason;
}

bool run_is_finishing(const run *r)
{
    return r->phase == PHASE_DONE;
}
