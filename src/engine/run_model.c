/*
 * run_model: one step's model call, from the context it sends to the turn it
 * hands on (text, tool calls, usage), with retries and their backoff, the
 * move to the next provider when one fails, and the condensation of a
 * context that overflowed (docs/runs.md, Providers and Repairs).
 */
#include "engine/run_int.h"

#include "engine/llm_repair.h"

/* ---- the model call ---- */

/* The model's figures on /metrics; NULL (nothing counted) until
 * run_metrics_register. */
static metrics_family *run__first_token, *run__tokens, *run__repairs;

void run_metrics_register(void)
{
    static const double bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30};
    run__first_token =
        metrics_histogram_new("chatplane_llm_first_token_seconds",
                              "Time from a model request to its first streamed piece.", bounds,
                              (int)(sizeof bounds / sizeof bounds[0]));
    run__tokens = metrics_counter_new("chatplane_llm_tokens_total",
                                      "Model tokens, prompt and completion.", "kind");
    metrics_seed(run__tokens, "prompt");
    metrics_seed(run__tokens, "completion");
    run__repairs = metrics_counter_new("chatplane_repairs_total",
                                       "Repairs the engine made by itself, by action and outcome.",
                                       "action,outcome");
    metrics_seed(run__repairs, "condense_context,ok");
    metrics_seed(run__repairs, "condense_context,failed");
    metrics_seed(run__repairs, "fallback_model,ok");
    metrics_seed(run__repairs, "restart_tool_server,ok");
    metrics_seed(run__repairs, "retry_tool_call,ok");
    llm_chain_metrics_register();
    run__approval_metrics_register();
    run__input_metrics_register();
    run__owner_metrics_register();
}

llm *run__model(const run *r)
{
    return llm_chain_model(r->env.chain, r->prov);
}

const char *run__model_label(const run *r)
{
    return llm_chain_label(r->env.chain, r->prov);
}

void run__repair(run *r, const char *playbook, const char *action, const char *detail, bool ok,
                 json_t *evidence)
{
    evt_origin o = run__origin(r);
    const char *outcome = ok ? "ok" : "failed";
    run__emit(r, evt_repair(&o, playbook, action, detail, outcome, evidence));
    char *series = xasprintf("%s,%s", action, outcome);
    metrics_add(run__repairs, series, 1);
    free(series);
    LOG(LOG_INFO, "the run repaired itself", "run_id=%s action=%s outcome=%s detail=\"%s\"", r->id,
        action, outcome, detail);
    json_decref(evidence);
}

/* Adds "name/model: what" to the failures of this step's providers. */
static void run_model__note(run *r, size_t prov, const char *what)
{
    const char *label = llm_chain_label(r->env.chain, prov);
    if (r->step_errors.len) buf_append_str(&r->step_errors, "; ");
    /* A detail past its cap keeps what fitted: the first failures. */
    size_t room = r->step_errors.cap - r->step_errors.len;
    char *line = xasprintf("%s: %s", label, what);
    size_t n = strlen(line);
    buf_append(&r->step_errors, line, n < room ? n : room);
    free(line);
}

/* The first provider at index from or later that is not resting, noting
 * every resting one skipped; -1 when none is left. */
static int run_model__pick(run *r, size_t from)
{
    llm_chain *c = r->env.chain;
    int64_t now = clock_mono_ms();
    for (size_t i = from; i < llm_chain_size(c); i++) {
        if (!llm_chain_resting(c, i, now)) return (int)i;
        run_model__note(r, i, "resting after failing steps in a row (circuit open)");
    }
    return -1;
}

static void run_model__on_text(void *ud, const char *text, size_t len)
{
    run *r = ud;
    if (r->phase != PHASE_MODEL || len == 0) return;
    bool first = !r->responding;
    /* Past the cap the text is still streamed but no longer kept. */
    buf_append(&r->text, text, len);
    if (!first) {
        evt_origin o = run__origin(r);
        run__emit(r, evt_token(&o, r->message_id, text, len));
        return;
    }
    r->responding = true;
    r->first_token_ns = clock_mono_ns();
    metrics_observe(run__first_token, (double)(r->first_token_ns - r->call_started_ns) / 1e9);
    /* The "responding" status and the answer's first token reach an idle
     * writer together, as one transaction: the first token waited for two
     * commits in a row before (docs/benchmarks.md, fix 77). It is urgent:
     * its wait is the person's. */
    eventlog *log = r->env.rec->log;
    eventlog_hold(log);
    run__status(r, STATUS_RESPONDING, NULL);
    evt_origin o = run__origin(r);
    record_event_urgent(r->env.rec, evt_token(&o, r->message_id, text, len));
    eventlog_release(log);
}

/* The backoff before retry number n (1-based): 0.5 s * 2^(n-1), capped at
 * 8 s, with "equal jitter" (half fixed, half random); Retry-After wins when
 * given, up to 60 s. */
static int64_t run_model__backoff_ms(int64_t n, int64_t retry_after_ms)
{
    if (retry_after_ms >= 0) return retry_after_ms < 60000 ? retry_after_ms : 60000;
    int64_t base = 500;
    for (int64_t i = 1; i < n && base < 8000; i++) base *= 2;
    if (base > 8000) base = 8000;
    unsigned char rnd[2];
    id_random_bytes(rnd, sizeof rnd);
    int64_t jitter = ((int64_t)rnd[0] << 8 | rnd[1]) % (base / 2 + 1);
    return base / 2 + jitter;
}

static void run_model__call_model(run *r, json_t *messages, int64_t est);

void run__on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run *r = arg;
    if (r->phase == PHASE_RETRY) run_model__call_model(r, NULL, 0);
}

/*
 * Every provider failed this step: the run stops with the reason of the
 * last failure. With one provider the detail is the failure itself (or
 * the retry budget's wording); with several it names each provider's
 * error.
 */
static void run_model__all_failed(run *r, const char *msg, stop_reason reason,
                                  const char *failed_id)
{
    evt_origin o = run__origin(r);
    bool single = llm_chain_size(r->env.chain) == 1;
    run__emit(r, evt_error(&o, "llm_error", msg, false, failed_id));
    char *detail;
    if (reason == STOP_MAX_RETRIES) {
        /* The count in the shared budget wording ("used 1 of 1 retry"). */
        char *used = stop_budget_detail(STOP_MAX_RETRIES, &r->budget.limits, &r->budget.usage);
        detail = single ? xasprintf("the model endpoint kept failing; %s (last: %s)", used, msg)
                        : xasprintf("every model provider failed; %s (%s)", used,
                                    r->step_errors.data ? r->step_errors.data : msg);
        free(used);
    } else {
        detail = single ? xstrdup(msg)
                        : xasprintf("every model provider failed: %s",
                                    r->step_errors.data ? r->step_errors.data : msg);
    }
    run__finish(r, reason, detail, false);
}

/*
 * The step's provider failed for good (a non-retryable error before the
 * first token, or its retries are spent): its failed steps count towards
 * its circuit, and the step moves to the next provider that is not
 * resting, under a new message_id, or the run stops when none is left.
 */
static void run_model__fall_back(run *r, const llm_result *res, const char *msg, stop_reason reason,
                                 const char *failed_id)
{
    llm_chain *c = r->env.chain;
    size_t from = r->prov;
    llm_chain_step_failed(c, from, clock_mono_ms());
    run_model__note(r, from, msg);
    int next = run_model__pick(r, from + 1);
    if (next < 0) {
        run_model__all_failed(r, msg, reason, failed_id);
        return;
    }
    evt_origin o = run__origin(r);
    /* The run goes on: for clients this error is one it survived. */
    run__emit(r, evt_error(&o, "llm_error", msg, true, failed_id));
    const char *from_label = llm_chain_label(c, from), *to_label = llm_chain_label(c, (size_t)next);
    char why[64];
    bool spent = reason == STOP_MAX_RETRIES;
    if (res->http_status > 0 && res->http_status != 200)
        snprintf(why, sizeof why, "%sHTTP %d", spent ? "retries spent, " : "", res->http_status);
    else
        snprintf(why, sizeof why, "%s", spent ? "retries spent" : "its answer was unusable");
    char *detail = xasprintf("%s failed (%s): switching to %s", from_label, why, to_label);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:b}", "from", from_label, "to", to_label, "reason",
                           msg, "retries_spent", spent);
    json_object_set_new(ev, "http_status",
                        res->http_status ? json_integer(res->http_status) : json_null());
    json_object_set_new(ev, "code", res->error_code ? json_string(res->error_code) : json_null());
    run__repair(r, "model_unavailable", "fallback_model", detail, true, ev);
    run__status(r, STATUS_RETRYING, detail);
    free(detail);
    r->prov = (size_t)next;
    r->phase = PHASE_RETRY;
    run__arm(r->retry_ev, 0);
}

static json_t *run_model__messages(run *r, bool with_tools, int64_t step, int64_t *est);

/* The estimate of everything a call sends besides the history. */
static int64_t run_model__overhead(run *r)
{
    json_t *saved = r->history;
    size_t keep = r->keep_from;
    int64_t est = 0;
    r->history = json_array();
    r->keep_from = 0;
    json_decref(run_model__messages(r, !r->wrap_up, r->budget.usage.steps, &est));
    json_decref(r->history);
    r->history = saved;
    r->keep_from = keep;
    return est;
}

/*
 * The provider said the prompt overflows its context: the oldest turns
 * are dropped until the estimate is at most 70 % of the window the error
 * states (or of the failed prompt's estimate), announced as a repair, and
 * the step is called again; the run keeps the smaller size for its later
 * steps. A third overflow in one step stops the run: condensing again
 * would only loop.
 */
static void run_model__condense(run *r, const llm_overflow *ov, const char *msg)
{
    char a[32], b[32];
    if (r->step_condensed >= LLM_REPAIR_MAX_CONDENSE) {
        /* Whatever words the provider used, the stop's diagnosis is a
         * context overflow. */
        free(r->fail_code);
        r->fail_code = xstrdup("context_length_exceeded");
        evt_origin o = run__origin(r);
        run__emit(r, evt_error(&o, "llm_error", msg, false, NULL));
        char window[64] = "";
        if (ov->window > 0)
            snprintf(window, sizeof window, "; the model's window is %s tokens",
                     llm_repair_thousands(b, ov->window));
        run__finish(r, STOP_LLM_ERROR,
                    xasprintf("the prompt still overflows the model's context after condensing it "
                              "%d times (estimate %s tokens%s): what must stay (the system prompt, "
                              "the first and the current user message, tool calls with their "
                              "results) does not fit; %s",
                              LLM_REPAIR_MAX_CONDENSE,
                              llm_repair_thousands(a, r->est_prompt_tokens), window, msg),
                    false);
        return;
    }
    r->step_condensed++;
    int64_t target = llm_repair_target(ov, r->est_prompt_tokens);
    int64_t overhead = run_model__overhead(r);
    llm_condense_result cr;
    llm_repair_condense(r->history, &r->keep_from, overhead, target, &cr);
    r->learned_limit = target;
    char *detail = xasprintf("dropped %zu of %zu messages, %s → %s tokens",
                             cr.messages_before - cr.messages_after, cr.messages_before,
                             llm_repair_thousands(a, cr.tokens_before),
                             llm_repair_thousands(b, cr.tokens_after));
    json_t *ev =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:i, s:s, s:s}", "messages_before",
                  (json_int_t)cr.messages_before, "messages_after", (json_int_t)cr.messages_after,
                  "tokens_before", (json_int_t)cr.tokens_before, "tokens_after",
                  (json_int_t)cr.tokens_after, "target_tokens", (json_int_t)target, "attempt",
                  r->step_condensed, "provider", run__model_label(r), "reason", msg);
    json_object_set_new(ev, "window_tokens",
                        ov->window > 0 ? json_integer(ov->window) : json_null());
    json_object_set_new(ev, "prompt_tokens",
                        ov->prompt_tokens > 0 ? json_integer(ov->prompt_tokens) : json_null());
    run__repair(r, "context_overflow", "condense_context", detail, cr.reached, ev);
    free(detail);
    r->phase = PHASE_RETRY;
    run__arm(r->retry_ev, 0);
}

/* A failed model call: condense an overflowing context, retry the call as
 * the same step, move to the next provider, or end the run. */
static void run_model__model_failed(run *r, const llm_result *res)
{
    evt_origin o = run__origin(r);
    const char *msg = res->error_message ? res->error_message : "the model call failed";
    /* The text this attempt streamed is discarded: its message_id is named
     * in the error event and never becomes a stored message. An attempt
     * that streamed nothing is named by no event, so the error names none. */
    const char *failed_id = r->responding ? r->message_id : NULL;
    r->fail_status = res->http_status;
    free(r->fail_code);
    r->fail_code = res->error_code ? xstrdup(res->error_code) : NULL;
    free(r->fail_text);
    r->fail_text = xstrdup(msg);
    llm_overflow ov;
    llm_chain_count_request(r->env.chain, r->prov, false);
    if (!r->responding && llm_repair_is_overflow(res->http_status, res->error_code, msg, &ov)) {
        run_model__condense(r, &ov, msg);
        return;
    }
    if (!res->retryable) {
        if (!r->responding) {
            run_model__fall_back(r, res, msg, STOP_LLM_ERROR, failed_id);
            return;
        }
        /* After the first token the provider answered: the step is not
         * moved, and the run ends as it always did. */
        llm_chain_step_failed(r->env.chain, r->prov, clock_mono_ms());
        run__emit(r, evt_error(&o, "llm_error", msg, false, failed_id));
        run__finish(r, STOP_LLM_ERROR, xstrdup(msg), false);
        return;
    }
    if (!budget_take_retry(&r->budget)) {
        run_model__fall_back(r, res, msg, STOP_MAX_RETRIES, failed_id);
        return;
    }
    run__emit(r, evt_error(&o, "llm_retryable", msg, true, failed_id));
    int64_t n = r->budget.usage.retries;
    int64_t wait = run_model__backoff_ms(n, res->retry_after_ms);
    char detail[160];
    if (r->budget.limits.retries != MODE_UNLIMITED) {
        snprintf(detail, sizeof detail, "attempt %lld of %lld, waiting %.1f s", (long long)n + 1,
                 (long long)r->budget.limits.retries + 1, (double)wait / 1000.0);
    } else {
        snprintf(detail, sizeof detail, "attempt %lld, waiting %.1f s", (long long)n + 1,
                 (double)wait / 1000.0);
    }
    run__status(r, STATUS_RETRYING, detail);
    r->phase = PHASE_RETRY;
    run__arm(r->retry_ev, wait);
}

/* The OpenAI-form tool_calls of a turn, for the assistant message. */
static json_t *run_model__tool_calls_json(const llm_tool_call *calls, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *fn = json_pack("{s:s, s:s}", "name", calls[i].name ? calls[i].name : "",
                               "arguments", calls[i].arguments ? calls[i].arguments : "");
        if (!fn) fn = json_pack("{s:s, s:s}", "name", "invalid", "arguments", "{}");
        json_array_append_new(a, json_pack("{s:s, s:s, s:o}", "id", calls[i].id ? calls[i].id : "",
                                           "type", "function", "function", fn));
    }
    return a;
}

static void run_model__take_calls(run *r, const llm_result *res)
{
    r->calls = xcalloc(res->ncalls ? res->ncalls : 1, sizeof *r->calls);
    for (size_t i = 0; i < res->ncalls; i++) {
        r->calls[i].id = xstrdup(res->calls[i].id ? res->calls[i].id : "");
        r->calls[i].name = xstrdup(res->calls[i].name ? res->calls[i].name : "");
        r->calls[i].arguments = xstrdup(res->calls[i].arguments ? res->calls[i].arguments : "");
    }
    r->ncalls = res->ncalls;
    r->next_call = 0;
}

/* Reports a turn to the guardrails; returns true when the run goes on. */
bool run__guard_turn(run *r, const char *text, size_t ncalls);

void run__turn_done(run *r)
{
    if (!run__guard_turn(r, r->turn_text, r->ncalls)) return;
    run__free_calls(r);
    run__step(r);
}

/* The model's health (docs/health.md) hears of every call that ended by
 * itself, whatever the run does next; an aborted call says nothing of it. */
static void run_model__note_health(run *r, const llm_result *res)
{
    if (!r->env.chain) return;
    int64_t first_ms = r->responding ? (r->first_token_ns - r->call_started_ns) / 1000000 : -1;
    llm_chain_record(r->env.chain, r->prov, clock_wall_ms(), res->ok, first_ms,
                     res->ok ? NULL : res->error_message);
}

static void run_model__model_done(run *r, const llm_result *res)
{
    r->call_pending = false;
    r->call = NULL;
    run_model__note_health(r, res);
    if (r->phase != PHASE_MODEL) return;
    if (!res->ok) {
        run__owner_release(r);
        run_model__model_failed(r, res);
        return;
    }
    llm_chain_count_request(r->env.chain, r->prov, true);
    llm_chain_step_ok(r->env.chain, r->prov, clock_mono_ms());
    /* Tokens as reported, else estimated from the bytes. */
    int64_t prompt = res->prompt_tokens >= 0 ? res->prompt_tokens : r->est_prompt_tokens;
    int64_t completion = res->completion_tokens;
    if (completion < 0) {
        size_t bytes = res->text_len;
        for (size_t i = 0; i < res->ncalls; i++)
            bytes += (res->calls[i].arguments ? strlen(res->calls[i].arguments) : 0) +
                     (res->calls[i].name ? strlen(res->calls[i].name) : 0);
        completion = tokens_estimate(bytes);
    }
    /* Each provider's tokens cost its own price when it has one. */
    const budget_price *own = llm_chain_price(r->env.chain, r->prov);
    budget_price saved = r->budget.price;
    if (own) r->budget.price = *own;
    budget_on_tokens(&r->budget, prompt, completion);
    run__owner_settle(r, prompt, completion);
    r->budget.price = saved;
    if (prompt > 0) metrics_add(run__tokens, "prompt", (double)prompt);
    if (completion > 0) metrics_add(run__tokens, "completion", (double)completion);
    /* The nudges reached the model: each is said once. */
    json_array_clear(r->notes);

    const char *text = res->text ? res->text : "";
    /* Tool calls on a wrap-up step (no tools were offered) are ignored. */
    size_t ncalls = r->wrap_up ? 0 : res->ncalls;
    json_t *calls_json = ncalls ? run_model__tool_calls_json(res->calls, ncalls) : NULL;
    if (*text || ncalls) {
        run__record_message(r, r->message_id, "assistant", text, calls_json, NULL, false);
        json_array_append_new(r->history, context_assistant(text, calls_json));
    }
    json_decref(calls_json);
    run__budget_event(r);
    buf_reset(&r->text);

    if (ncalls == 0) {
        bool empty = strspn(text, " \t\r\n") == strlen(text);
        if (r->wrap_up) {
            run__finish(r, budget_dim_reason(r->wrap_dim),
                        stop_budget_detail(budget_dim_reason(r->wrap_dim), &r->budget.limits,
                                           &r->budget.usage),
                        true);
            return;
        }
        if (!empty) {
            run__finish(r, STOP_COMPLETED,
                        xasprintf("answered in %lld step%s with %lld tool call%s",
                                  (long long)r->budget.usage.steps,
                                  r->budget.usage.steps == 1 ? "" : "s",
                                  (long long)r->budget.usage.tool_calls,
                                  r->budget.usage.tool_calls == 1 ? "" : "s"),
                        false);
            return;
        }
        if (run__guard_turn(r, text, 0)) run__kick(r, run__step);
        return;
    }
    run_model__take_calls(r, res);
    r->turn_text = xstrdup(text);
    r->phase = PHASE_TOOLS;
    run__kick(r, run__next_tool);
}

/* The answer, its budget and, when they end the run, its stopped row reach
 * an idle writer together, as one transaction. */
static void run_model__on_model_done(void *ud, const llm_result *res)
{
    run *r = ud;
    eventlog *log = r->env.rec->log;
    eventlog_hold(log);
    run_model__model_done(r, res);
    eventlog_release(log);
}

static const llm_callbacks run_model__llm_cb = {run_model__on_text, run_model__on_model_done};

/* Builds the messages of this step's call; returns a new array. */
static json_t *run_model__messages(run *r, bool with_tools, int64_t step, int64_t *est)
{
    char *note = context_budget_note(&r->budget, step, clock_mono_ms());
    json_t *notes = json_deep_copy(r->notes);
    if (!with_tools) json_array_append_new(notes, json_string(CONTEXT_WRAP_UP_NOTE));
    const char *sys =
        r->env.opt->system_prompt ? r->env.opt->system_prompt : RUN_DEFAULT_SYSTEM_PROMPT;
    context_params p = {
        .system_prompt = sys,
        .budget_note = note,
        .history = r->history,
        .keep_from = r->keep_from,
        .notes = notes,
        .context_tokens = r->learned_limit > 0 && r->learned_limit < r->env.opt->context_tokens
                              ? r->learned_limit
                              : r->env.opt->context_tokens,
        .reserved_tokens = with_tools ? r->tool_tokens : 0,
    };
    p.client_note = r->client_note;
    json_t *m = context_build(&p, est);
    json_decref(notes);
    free(note);
    return m;
}

/* Sends the call, once the owner's budgets allow it; takes messages. */
static void run_model__send(run *r, json_t *messages, int64_t max_completion_tokens)
{
    bool with_tools = !r->wrap_up && json_array_size(r->tools) > 0;
    llm_request req = {
        .messages = messages,
        .tools = with_tools ? r->tools : NULL,
        .tools_text = with_tools ? json_string_value(r->tools_text) : NULL,
        .max_completion_tokens = max_completion_tokens,
    };
    id_new(r->message_id, "msg", clock_wall_ms());
    buf_reset(&r->text);
    r->responding = false;
    run__status(r, STATUS_THINKING, NULL);
    r->call_started_ns = clock_mono_ns();
    r->call_pending = true;
    llm_call *c = llm_call_start(run__model(r), &req, &run_model__llm_cb, r);
    if (r->call_pending) r->call = c;
    json_decref(messages);
}

/* Calls the model with messages built for this step, or builds them when
 * messages is NULL; takes messages. */
static void run_model__call_model(run *r, json_t *messages, int64_t est)
{
    if (!messages) messages = run_model__messages(r, !r->wrap_up, r->budget.usage.steps, &est);
    r->est_prompt_tokens = est;
    r->phase = PHASE_MODEL;
    /* The owner's budgets may cap the call or stop the run first. */
    run__owner_reserve(r, messages, est, budget_max_completion_tokens(&r->budget, est),
                       run_model__send);
}

/* Starts the next step, or ends the run when the budget says so. */
void run__step(run *r)
{
    if (r->phase == PHASE_DONE) return;
    int64_t now = clock_mono_ms(), est = 0;
    /* The messages of the next step, built to check the budget, are the
     * ones sent unless the step wraps up, which sends no tools. */
    json_t *probe = run_model__messages(r, true, r->budget.usage.steps + 1, &est);
    budget_decision d = budget_check_step(&r->budget, now, est);
    if (d.verdict == BUDGET_STOP) {
        json_decref(probe);
        stop_reason reason = budget_dim_reason(d.dim);
        run__finish(r, reason, stop_budget_detail(reason, &r->budget.limits, &r->budget.usage),
                    false);
        return;
    }
    if (d.verdict == BUDGET_WRAP_UP) {
        r->wrap_up = true;
        r->wrap_dim = d.dim;
    }
    if (r->wrap_up) {
        json_decref(probe);
        probe = NULL;
    }
    /* Each step starts from the primary; providers that rest are skipped. */
    buf_reset(&r->step_errors);
    r->step_condensed = 0;
    int first = run_model__pick(r, 0);
    if (first < 0) {
        evt_origin o = run__origin(r);
        char *detail = xasprintf("every model provider is resting after failing steps in a row: %s",
                                 r->step_errors.data ? r->step_errors.data : "");
        json_decref(probe);
        run__emit(r, evt_error(&o, "llm_error", detail, false, NULL));
        run__finish(r, STOP_LLM_ERROR, detail, false);
        return;
    }
    r->prov = (size_t)first;
    budget_on_step(&r->budget);
    run_model__call_model(r, probe, est);
}
