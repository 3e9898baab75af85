/*
 * run_model: one step's model call, from the context it sends to the turn it
 * hands on (text, tool calls, usage), with retries and their backoff.
 */
#include "engine/run_int.h"

/* ---- the model call ---- */

/* The model's figures on /metrics; NULL (nothing counted) until
 * run_metrics_register. */
static metrics_family *run__first_token, *run__tokens;

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
    run__approval_metrics_register();
}

static void run_model__on_text(void *ud, const char *text, size_t len)
{
    run *r = ud;
    if (r->phase != PHASE_MODEL || len == 0) return;
    if (!r->responding) {
        r->responding = true;
        r->first_token_ns = clock_mono_ns();
        metrics_observe(run__first_token, (double)(r->first_token_ns - r->call_started_ns) / 1e9);
        run__status(r, STATUS_RESPONDING, NULL);
    }
    /* Past the cap the text is still streamed but no longer kept. */
    buf_append(&r->text, text, len);
    evt_origin o = run__origin(r);
    run__emit(r, evt_token(&o, r->message_id, text, len));
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

static void run_model__call_model(run *r);

void run__on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run *r = arg;
    if (r->phase == PHASE_RETRY) run_model__call_model(r);
}

/* A failed model call: retry it as the same step, or end the run. */
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
    if (!res->retryable) {
        run__emit(r, evt_error(&o, "llm_error", msg, false, failed_id));
        run__finish(r, STOP_LLM_ERROR, xstrdup(msg), false);
        return;
    }
    if (!budget_take_retry(&r->budget)) {
        run__emit(r, evt_error(&o, "llm_error", msg, false, failed_id));
        /* The count in the shared budget wording ("used 1 of 1 retry"). */
        char *used = stop_budget_detail(STOP_MAX_RETRIES, &r->budget.limits, &r->budget.usage);
        run__finish(r, STOP_MAX_RETRIES,
                    xasprintf("the model endpoint kept failing; %s (last: %s)", used, msg), false);
        free(used);
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
    if (!r->env.model_health) return;
    int64_t first_ms = r->responding ? (r->first_token_ns - r->call_started_ns) / 1000000 : -1;
    health_window_record(r->env.model_health, clock_wall_ms(), res->ok, first_ms,
                         res->ok ? NULL : res->error_message);
}

static void run_model__on_model_done(void *ud, const llm_result *res)
{
    run *r = ud;
    r->call_pending = false;
    r->call = NULL;
    run_model__note_health(r, res);
    if (r->phase != PHASE_MODEL) return;
    if (!res->ok) {
        run_model__model_failed(r, res);
        return;
    }
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
    budget_on_tokens(&r->budget, prompt, completion);
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
        .context_tokens = r->env.opt->context_tokens,
        .reserved_tokens = with_tools ? context_estimate_tokens(r->tools) : 0,
    };
    p.client_note = r->client_note;
    json_t *m = context_build(&p, est);
    json_decref(notes);
    free(note);
    return m;
}

static void run_model__call_model(run *r)
{
    int64_t est = 0;
    bool with_tools = !r->wrap_up && json_array_size(r->tools) > 0;
    json_t *messages = run_model__messages(r, !r->wrap_up, r->budget.usage.steps, &est);
    r->est_prompt_tokens = est;
    llm_request req = {
        .messages = messages,
        .tools = with_tools ? r->tools : NULL,
        .max_completion_tokens = budget_max_completion_tokens(&r->budget, est),
    };
    id_new(r->message_id, "msg", clock_wall_ms());
    buf_reset(&r->text);
    r->responding = false;
    r->phase = PHASE_MODEL;
    run__status(r, STATUS_THINKING, NULL);
    r->call_started_ns = clock_mono_ns();
    r->call_pending = true;
    llm_call *c = llm_call_start(r->env.model, &req, &run_model__llm_cb, r);
    if (r->call_pending) r->call = c;
    json_decref(messages);
}

/* Starts the next step, or ends the run when the budget says so. */
void run__step(run *r)
{
    if (r->phase == PHASE_DONE) return;
    int64_t now = clock_mono_ms(), est = 0;
    json_t *probe = run_model__messages(r, true, r->budget.usage.steps + 1, &est);
    json_decref(probe);
    budget_decision d = budget_check_step(&r->budget, now, est);
    if (d.verdict == BUDGET_STOP) {
        stop_reason reason = budget_dim_reason(d.dim);
        run__finish(r, reason, stop_budget_detail(reason, &r->budget.limits, &r->budget.usage),
                    false);
        return;
    }
    if (d.verdict == BUDGET_WRAP_UP) {
        r->wrap_up = true;
        r->wrap_dim = d.dim;
    }
    budget_on_step(&r->budget);
    run_model__call_model(r);
}
