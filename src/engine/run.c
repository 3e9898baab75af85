#include "engine/run.h"

#include <event2/event.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/objects.h"
#include "core/budget.h"
#include "core/context.h"
#include "core/evt.h"
#include "core/guard.h"
#include "core/progress.h"
#include "core/tokens.h"
#include "engine/record.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/redact.h"
#include "lib/xmalloc.h"

#define RUN_TEXT_MAX       (4u << 20) /* the most assistant text one turn may stream */
/* The wait before the next try of a run's last write that the database
 * refused: doubling from the first to the last. */
#define RUN_END_RETRY_FIRST_MS 250
#define RUN_END_RETRY_MAX_MS   2000
#define RUN_SKIPPED_RESULT "skipped: tool-call budget exhausted"
#define RUN_DEFAULT_SYSTEM_PROMPT                                                                  \
    "You are a helpful assistant. Use the tools when they help, and answer plainly when they "     \
    "do not."

typedef enum run_phase {
    PHASE_NEW,
    PHASE_MODEL, /* a model call is in flight */
    PHASE_RETRY, /* waiting to repeat a failed model call */
    PHASE_TOOLS, /* executing the turn's tool calls */
    PHASE_DONE   /* run_stopped recorded; waiting for its commit */
} run_phase;

/* Someone waiting for the run to be stopped and committed. */
typedef struct run_waiter {
    run_object_cb cb;
    void *ud;
    struct run_waiter *next;
} run_waiter;

struct run {
    run_env env;
    char id[ID_MAX];
    char *session_id, *continues;
    mode mode;
    budget budget;
    guard *guard;
    run_phase phase;
    int64_t started_wall_ms, ended_wall_ms;
    char *user_message_id, *user_message;

    json_t *history; /* the conversation as the model sees it */
    size_t keep_from;
    json_t *notes; /* nudges for the next model call */
    json_t *tools; /* the tool list offered, cached */

    bool wrap_up;
    budget_dim wrap_dim;

    /* The model call of the current step. */
    llm_call *call;
    bool call_pending; /* true from llm_call_start until its on_done */
    char message_id[ID_MAX];
    buf text;
    bool responding;
    int64_t call_started_ns;
    int64_t est_prompt_tokens;

    /* The tool calls of the current turn. */
    llm_tool_call *calls;
    size_t ncalls, next_call;
    char *turn_text;
    tool_call *tool;
    bool tool_pending;
    char exec_id[ID_MAX];
    int exec_step;
    char *exec_server, *exec_tool; /* copied: a tool source may replace its list mid-call */
    char *exec_name;
    json_t *exec_args;
    int64_t exec_started_wall_ms, exec_started_mono_ms;
    progress_pace progress;    /* paces the execution's tool_progress events */
    struct event *progress_ev; /* shows a held update when its interval ends */

    /* Timers: the hard deadline, the 80 % seconds warning, the retry wait,
     * and a kick that continues the machine from a fresh loop iteration. */
    struct event *deadline_ev, *warn_ev, *retry_ev, *kick_ev;
    void (*kick_fn)(run *r);

    /* The outcome, once decided. */
    stop_reason reason;
    char *detail;
    bool wrapped_up;
    run_waiter *waiters;

    /* The last write (run_stopped with the run row and the session's
     * release). When the database refuses it, the run is unrecorded: it
     * stays registered, holding its session, and the write is tried again
     * on end_retry_ev until it commits. */
    bool end_writing; /* a write of the end is queued */
    bool unrecorded;
    bool end_last_try; /* shutting down: the write queued is the last one */
    int end_tries;
    struct event *end_retry_ev;
};

static void run__step(run *r);
static void run__finish(run *r, stop_reason reason, char *detail, bool wrapped_up);
static void run__next_tool(run *r);

/* ---- small helpers ---- */

static evt_origin run__origin(const run *r)
{
    evt_origin o = {r->session_id, r->id, clock_wall_ms()};
    return o;
}

static void run__emit(run *r, evt *ev)
{
    record_event(r->env.rec, ev);
}

static void run__status(run *r, run_status s, const char *detail)
{
    evt_origin o = run__origin(r);
    run__emit(r, evt_status(&o, s, detail));
}

static void run__budget_event(run *r)
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
static void run__kick(run *r, void (*fn)(run *))
{
    r->kick_fn = fn;
    event_active(r->kick_ev, EV_TIMEOUT, 0);
}

static void run__arm(struct event *ev, int64_t delay_ms)
{
    if (delay_ms < 0) delay_ms = 0;
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)((delay_ms % 1000) * 1000)};
    event_add(ev, &tv);
}

static void run__free_calls(run *r)
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

static void run__clear_exec(run *r)
{
    free(r->exec_name);
    r->exec_name = NULL;
    json_decref(r->exec_args);
    r->exec_args = NULL;
    free(r->exec_server);
    free(r->exec_tool);
    r->exec_server = r->exec_tool = NULL;
    r->tool = NULL;
    progress_reset(&r->progress);
    if (r->progress_ev) event_del(r->progress_ev);
}

/* Stores a message row and its message event. */
static void run__record_message(run *r, const char *message_id, const char *role,
                                const char *content, const json_t *tool_calls,
                                const char *tool_call_id, bool partial)
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
    record_message(r->env.rec, &m,
                   evt_message(&o, message_id, role, content, tool_calls, tool_call_id, partial));
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

/* ---- the model call ---- */

/* The model's figures on /metrics; NULL (nothing counted) until
 * run_metrics_register. */
static metrics_family *run__first_token, *run__tokens;

void run_metrics_register(void)
{
    static const double bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30};
    run__first_token = metrics_histogram_new(
        "chatplane_llm_first_token_seconds",
        "Time from a model request to its first streamed piece.", bounds,
        (int)(sizeof bounds / sizeof bounds[0]));
    run__tokens = metrics_counter_new("chatplane_llm_tokens_total",
                                      "Model tokens, prompt and completion.", "kind");
    metrics_seed(run__tokens, "prompt");
    metrics_seed(run__tokens, "completion");
}

static void run__on_text(void *ud, const char *text, size_t len)
{
    run *r = ud;
    if (r->phase != PHASE_MODEL || len == 0) return;
    if (!r->responding) {
        r->responding = true;
        metrics_observe(run__first_token, (double)(clock_mono_ns() - r->call_started_ns) / 1e9);
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
static int64_t run__backoff_ms(int64_t n, int64_t retry_after_ms)
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

static void run__call_model(run *r);

static void run__on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run *r = arg;
    if (r->phase == PHASE_RETRY) run__call_model(r);
}

/* A failed model call: retry it as the same step, or end the run. */
static void run__model_failed(run *r, const llm_result *res)
{
    evt_origin o = run__origin(r);
    const char *msg = res->error_message ? res->error_message : "the model call failed";
    /* The text this attempt streamed is discarded: its message_id is named
     * in the error event and never becomes a stored message. An attempt
     * that streamed nothing is named by no event, so the error names none. */
    const char *failed_id = r->responding ? r->message_id : NULL;
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
    int64_t wait = run__backoff_ms(n, res->retry_after_ms);
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
static json_t *run__tool_calls_json(const llm_tool_call *calls, size_t n)
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

static void run__take_calls(run *r, const llm_result *res)
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
static bool run__guard_turn(run *r, const char *text, size_t ncalls);

static void run__turn_done(run *r)
{
    if (!run__guard_turn(r, r->turn_text, r->ncalls)) return;
    run__free_calls(r);
    run__step(r);
}

static void run__on_model_done(void *ud, const llm_result *res)
{
    run *r = ud;
    r->call_pending = false;
    r->call = NULL;
    if (r->phase != PHASE_MODEL) return;
    if (!res->ok) {
        run__model_failed(r, res);
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
    json_t *calls_json = ncalls ? run__tool_calls_json(res->calls, ncalls) : NULL;
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
    run__take_calls(r, res);
    r->turn_text = xstrdup(text);
    r->phase = PHASE_TOOLS;
    run__kick(r, run__next_tool);
}

static const llm_callbacks run__llm_cb = {run__on_text, run__on_model_done};

/* Builds the messages of this step's call; returns a new array. */
static json_t *run__messages(run *r, bool with_tools, int64_t step, int64_t *est)
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
    json_t *m = context_build(&p, est);
    json_decref(notes);
    free(note);
    return m;
}

static void run__call_model(run *r)
{
    int64_t est = 0;
    bool with_tools = !r->wrap_up && json_array_size(r->tools) > 0;
    json_t *messages = run__messages(r, !r->wrap_up, r->budget.usage.steps, &est);
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
    llm_call *c = llm_call_start(r->env.model, &req, &run__llm_cb, r);
    if (r->call_pending) r->call = c;
    json_decref(messages);
}

/* Starts the next step, or ends the run when the budget says so. */
static void run__step(run *r)
{
    if (r->phase == PHASE_DONE) return;
    int64_t now = clock_mono_ms(), est = 0;
    json_t *probe = run__messages(r, true, r->budget.usage.steps + 1, &est);
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
    run__call_model(r);
}

/* ---- guardrails ---- */

/* Records the verdicts: a warning becomes a guardrail event and a nudge; a
 * stop ends the run. Returns false when the run was stopped. */
static bool run__apply_verdicts(run *r, guard_verdict *v, size_t n)
{
    bool go_on = true;
    for (size_t i = 0; i < n; i++) {
        evt_origin o = run__origin(r);
        run__emit(r, evt_guardrail(&o, &v[i]));
        if (v[i].action == GUARD_WARN && v[i].nudge) {
            json_array_append_new(r->notes, json_string(v[i].nudge));
        } else if (v[i].action == GUARD_STOP && go_on) {
            go_on = false;
            run__finish(r, v[i].reason, xstrdup(v[i].detail ? v[i].detail : ""), false);
        }
    }
    for (size_t i = 0; i < n; i++) guard_verdict_cleanup(&v[i]);
    return go_on;
}

static bool run__guard_turn(run *r, const char *text, size_t ncalls)
{
    guard_verdict v[GUARD_MAX_VERDICTS];
    size_t n = guard_on_turn(r->guard, (int)r->budget.usage.steps, text, ncalls, v);
    return run__apply_verdicts(r, v, n);
}

/* ---- tools ---- */

static void run__tool_row(const run *r, store_tool_exec *t, const char *status, const char *result,
                          size_t result_len, const char *error)
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

static void run__emit_progress(run *r, progress_update *u)
{
    redact_in_place(&u->message);
    evt_origin o = run__origin(r);
    run__emit(r, evt_tool_progress(&o, r->exec_id, u->progress, u->total, u->message));
    free(u->message);
}

/* Records a finished execution: its event and row, the tool message the
 * model sees, a budget event, and the guardrails' verdicts. Returns false
 * when the run stopped. */
static bool run__tool_finished(run *r, tool_status st, const char *raw, size_t raw_len,
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
    if (progress_drain(&r->progress, &u)) run__emit_progress(r, &u);

    store_tool_exec t;
    run__tool_row(r, &t, status, stored, keep, error);
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
    if (st != TOOL_CANCELLED)
        n = guard_on_tool_result(r->guard, r->exec_step, r->exec_name, r->exec_args, status,
                                 error && st != TOOL_OK ? error : text, v);
    free(text);
    free(error);
    run__clear_exec(r);
    return run__apply_verdicts(r, v, n);
}

/* Shows the held progress update if its interval has ended, or arms the
 * timer for when it does (docs/mcp.md, Progress). */
static void run__pace_progress(run *r)
{
    int64_t now = clock_mono_ms();
    progress_update u;
    if (progress_take(&r->progress, now, &u)) {
        run__emit_progress(r, &u);
        return;
    }
    int64_t due = progress_due(&r->progress);
    if (due >= 0 && !evtimer_pending(r->progress_ev, NULL)) {
        struct timeval tv = {(time_t)((due - now) / 1000),
                             (suseconds_t)((due - now) % 1000 * 1000)};
        evtimer_add(r->progress_ev, &tv);
    }
}

static void run__on_progress_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run__pace_progress(arg);
}

static void run__on_tool_progress(void *ud, double value, double total, const char *message)
{
    run *r = ud;
    if (r->phase != PHASE_TOOLS) return;
    progress_offer(&r->progress, value, total, message);
    run__pace_progress(r);
}

static void run__on_tool_done(void *ud, const tool_result *res)
{
    run *r = ud;
    r->tool_pending = false;
    r->tool = NULL;
    if (r->phase != PHASE_TOOLS) return;
    const llm_tool_call *c = &r->calls[r->next_call - 1];
    if (run__tool_finished(r, res->status, res->text ? res->text : "", res->text_len, res->error,
                           c->id))
        run__kick(r, run__next_tool);
}

static const tool_callbacks run__tool_cb = {run__on_tool_progress, run__on_tool_done};

/* Answers a tool call that does not run (budget exhausted) so that the
 * model still gets a result for every call it made. */
static void run__skip_call(run *r, const llm_tool_call *c)
{
    char mid[ID_MAX];
    id_new(mid, "msg", clock_wall_ms());
    run__record_message(r, mid, "tool", RUN_SKIPPED_RESULT, NULL, c->id, false);
    json_array_append_new(r->history,
                          context_tool(c->id, RUN_SKIPPED_RESULT, strlen(RUN_SKIPPED_RESULT)));
}

static void run__next_tool(run *r)
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
        run__skip_call(r, c);
        run__kick(r, run__next_tool);
        return;
    }

    /* The execution starts: it is counted, recorded, and shown. */
    json_error_t je;
    json_t *args = json_loads(*c->arguments ? c->arguments : "{}", JSON_DECODE_ANY, &je);
    bool args_ok = args && json_is_object(args);
    r->exec_args = args_ok ? args : json_object();
    if (!args_ok) json_decref(args);
    r->exec_name = xstrdup(c->name);
    const tool_def *def = toolset_find(r->env.tools, c->name);
    r->exec_server = xstrdup(def ? def->server : "unknown");
    r->exec_tool = xstrdup(def ? def->tool : c->name);
    r->exec_step = (int)r->budget.usage.steps;
    r->exec_started_wall_ms = clock_wall_ms();
    r->exec_started_mono_ms = clock_mono_ms();
    id_new(r->exec_id, "exe", r->exec_started_wall_ms);
    budget_on_tool_call(&r->budget);

    store_tool_exec t;
    run__tool_row(r, &t, "running", NULL, 0, NULL);
    evt_origin o = run__origin(r);
    record_tool_started(
        r->env.rec, &t,
        evt_tool_started(&o, r->exec_id, r->exec_step, t.server, t.tool, r->exec_args));
    char detail[160];
    snprintf(detail, sizeof detail, "running %s", c->name);
    run__status(r, STATUS_TOOL_RUNNING, detail);

    if (!args_ok) {
        char *msg = xasprintf("invalid JSON arguments for %s: %s", c->name,
                              args ? "arguments must be a JSON object" : je.text);
        bool go_on = run__tool_finished(r, TOOL_ERROR, msg, strlen(msg), msg, c->id);
        free(msg);
        if (go_on) run__kick(r, run__next_tool);
        return;
    }
    r->tool_pending = true;
    tool_call *h = toolset_call(r->env.tools, c->name, r->exec_args, 0, &run__tool_cb, r);
    if (r->tool_pending) r->tool = h;
}

/* ---- ending ---- */

/* Hands the ended run to its waiters and to the engine, which frees it. */
static void run__answer_waiters(run *r);

static void run__ended(run *r, int status)
{
    run__answer_waiters(r);
    r->env.on_finished(r->env.ud, r, status);
}

static void run__committed(void *ud, int status);

/* Queues the run's last write: the stopped row, the session's release and
 * run_stopped, stamped with the time the run ended (a later try says when
 * the run ended, not when the database took it). */
static void run__write_end(run *r)
{
    store_run row;
    run__row(r, &row);
    evt_origin o = {r->session_id, r->id, r->ended_wall_ms};
    evt *ev = evt_run_stopped(&o, r->reason, r->detail, row.recovery_suggestion, row.actions,
                              r->wrapped_up, &r->budget.usage);
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
static void run__end_refused(run *r, int status)
{
    if (!r->unrecorded) {
        r->unrecorded = true;
        r->reason = STOP_INTERRUPTED;
        free(r->detail);
        r->detail = xstrdup(RUN_WRITE_FAILED_DETAIL);
        r->wrapped_up = false;
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

static void run__committed(void *ud, int status)
{
    run *r = ud;
    r->end_writing = false;
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
        llm_call_abort(r->env.model, r->call);
        r->call = NULL;
        r->call_pending = false;
        /* The partial text of a stopped turn is kept, marked partial, and
         * counted: the model read the prompt and wrote that much (estimated
         * as bytes / 4, as for an answer that reports no usage). */
        if (r->text.len > 0) {
            budget_on_tokens(&r->budget, r->est_prompt_tokens, (int64_t)((r->text.len + 3) / 4));
            run__record_message(r, r->message_id, "assistant", r->text.data, NULL, NULL, true);
            json_array_append_new(r->history, context_assistant(r->text.data, NULL));
        }
    }
    if (r->phase == PHASE_TOOLS && r->exec_name) {
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

static void run__finish(run *r, stop_reason reason, char *detail, bool wrapped_up)
{
    if (r->phase == PHASE_DONE) {
        free(detail);
        return;
    }
    run__abort_in_flight(r);
    budget_tick(&r->budget, clock_mono_ms());
    r->phase = PHASE_DONE;
    r->reason = reason;
    r->detail = detail ? detail : xstrdup("");
    r->wrapped_up = wrapped_up;
    r->ended_wall_ms = clock_wall_ms();
    run__write_end(r);
    LOG(LOG_INFO, "run stopped", "run_id=%s session_id=%s reason=%s", r->id, r->session_id,
        stop_reason_name(reason));
}

void run_abandon(run *r, const char *detail)
{
    if (r->phase == PHASE_DONE) return;
    if (r->phase == PHASE_MODEL && r->call) llm_call_abort(r->env.model, r->call);
    r->call = NULL;
    r->call_pending = false;
    if (r->phase == PHASE_TOOLS && r->tool) tool_call_cancel(r->tool);
    r->tool = NULL;
    r->tool_pending = false;
    event_del(r->retry_ev);
    event_del(r->deadline_ev);
    event_del(r->warn_ev);
    event_del(r->kick_ev);
    budget_tick(&r->budget, clock_mono_ms());
    r->phase = PHASE_DONE;
    r->reason = STOP_INTERRUPTED;
    free(r->detail);
    r->detail = xstrdup(detail);
    r->ended_wall_ms = clock_wall_ms();
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

/* Arms the deadline and the 80 % warning for the current seconds limit. */
static void run__arm_timers(run *r)
{
    event_del(r->deadline_ev);
    event_del(r->warn_ev);
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
    r->tools = toolset_openai_tools(env->tools);
    r->user_message_id = init->user_message_id ? xstrdup(init->user_message_id) : NULL;
    r->user_message = init->user_message ? xstrdup(init->user_message) : NULL;
    buf_init(&r->text, RUN_TEXT_MAX);
    r->deadline_ev = evtimer_new(env->base, run__on_deadline, r);
    r->warn_ev = evtimer_new(env->base, run__on_warn, r);
    r->retry_ev = evtimer_new(env->base, run__on_retry_timer, r);
    r->kick_ev = event_new(env->base, -1, 0, run__on_kick, r);
    progress_init(&r->progress, PROGRESS_INTERVAL_MS);
    r->progress_ev = evtimer_new(env->base, run__on_progress_timer, r);
    r->end_retry_ev = evtimer_new(env->base, run__on_end_retry, r);
    return r;
}

void run_begin(run *r)
{
    evt_origin o = run__origin(r);
    if (r->user_message_id) {
        run__emit(r,
                  evt_message(&o, r->user_message_id, "user", r->user_message, NULL, NULL, false));
    }
    run__emit(r, evt_run_started(&o, r->mode.name, &r->budget.limits, r->continues));
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
    run__free_calls(r);
    run__clear_exec(r);
    progress_cleanup(&r->progress);
    if (r->progress_ev) event_free(r->progress_ev);
    guard_free(r->guard);
    json_decref(r->history);
    json_decref(r->notes);
    json_decref(r->tools);
    buf_cleanup(&r->text);
    free(r->session_id);
    free(r->continues);
    free(r->detail);
    free(r->user_message_id);
    free(r->user_message);
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

bool run_is_finishing(const run *r)
{
    return r->phase == PHASE_DONE;
}
