/*
 * run_int: what the files of one run's state machine share (run.c: the
 * life cycle, helpers, guardrails, ending and timers; run_model.c: the model
 * call; run_tool.c: the turn's tool calls). Nothing outside them includes
 * it (docs/architecture.md, Runs).
 */
#ifndef CHATPLANE_RUN_INT_H
#define CHATPLANE_RUN_INT_H

#include "engine/run.h"

#include <event2/event.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/objects.h"
#include "core/budget.h"
#include "core/context.h"
#include "core/diagnosis.h"
#include "core/timefmt.h"
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

#define RUN_TEXT_MAX (4u << 20) /* the most assistant text one turn may stream */
/* The wait before the next try of a run's last write that the database
 * refused: doubling from the first to the last. */
#define RUN_END_RETRY_FIRST_MS 250
#define RUN_END_RETRY_MAX_MS   2000
#define RUN_SKIPPED_RESULT     "skipped: tool-call budget exhausted"
/* The most the failures of one step's providers take in a stop's detail. */
#define RUN_STEP_ERRORS_MAX     4096
#define RUN_APPROVAL_TIMEOUT_MS (900 * 1000) /* approvals.timeout_seconds by default */
#define RUN_DEFAULT_SYSTEM_PROMPT                                                                  \
    "You are a helpful assistant. Use the tools when they help, and answer plainly when they "     \
    "do not."

typedef enum run_phase {
    PHASE_NEW,
    PHASE_MODEL,    /* a model call is in flight */
    PHASE_RETRY,    /* waiting to repeat a failed model call */
    PHASE_TOOLS,    /* executing the turn's tool calls */
    PHASE_APPROVAL, /* a tool call of the turn waits for a person's decision */
    PHASE_DONE      /* run_stopped recorded; waiting for its commit */
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
    char *client_note; /* run_init.client_note, or NULL */

    json_t *history; /* the conversation as the model sees it */
    size_t keep_from;
    json_t *notes;       /* nudges for the next model call */
    json_t *tools;       /* the tool list offered, cached */
    json_t *tools_text;  /* its compact JSON text, a JSON string, cached */
    int64_t tool_tokens; /* the estimate of tools, which stay the same all run */

    bool wrap_up;
    budget_dim wrap_dim;

    /* The provider of the current step (an index into env.chain), what
     * each provider that failed this step said ("name/model: message",
     * joined by "; "), the context condensations of this step, and the
     * prompt estimate a condensation left the run to stay under (0: none). */
    size_t prov;
    buf step_errors;
    int step_condensed;
    int64_t learned_limit;
    llm_chain *own_chain; /* made when env.chain was NULL */

    /* The model call of the current step. */
    llm_call *call;
    bool call_pending; /* true from llm_call_start until its on_done */
    char message_id[ID_MAX];
    buf text;
    bool responding;
    int64_t call_started_ns;
    int64_t first_token_ns; /* when the call's first piece of text came, if responding */
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
    char *exec_args_error;     /* why the arguments are unusable, or NULL */
    bool exec_retried;         /* the call was repeated after its server crashed */
    char *exec_lost;           /* the error of a call whose server crashed, until repaired */
    progress_pace progress;    /* paces the execution's tool_progress events */
    struct event *progress_ev; /* shows a held update when its interval ends */

    /* The approval the current call waits for (PHASE_APPROVAL). */
    char apr_id[ID_MAX];
    char *apr_reason;
    int64_t apr_requested_wall_ms, apr_expires_wall_ms, apr_wait_mono_ms;
    struct event *approval_ev; /* the approval's time-out */
    /* Its decision (or expiry) is being written: the run waits for the
     * commit to learn whether it won over one stored by another instance. */
    bool apr_deciding;
    /* Decisions that reach beyond one call: model tool name -> {"approve",
     * "reason", "remember"}; the session's come from the store. */
    json_t *remembered;
    json_t *superseded; /* a regenerate's superseded message ids, until announced */
    bool begun;         /* run_init.begun: its first events are out already */

    /* The question the current call's server waits on (docs/runs.md,
     * Questions): asked while inp_pending; inp_answering while its answer
     * (or its expiry) is being written and the run waits for the commit to
     * learn whether it won. */
    bool inp_pending, inp_answering;
    char inp_id[ID_MAX];
    char *inp_message;  /* the question's text, for the input object */
    json_t *inp_schema; /* its form */
    int64_t inp_requested_wall_ms, inp_expires_wall_ms, inp_wait_mono_ms;
    struct event *input_ev; /* the question's time-out */

    /* Timers: the hard deadline, the 80 % seconds warning, the retry wait,
     * and a kick that continues the machine from a fresh loop iteration. */
    struct event *deadline_ev, *warn_ev, *retry_ev, *kick_ev;
    void (*kick_fn)(run *r);

    /* What the last failed model call said, and the evidence of the
     * guardrail that stopped the run: the facts of the stop's diagnosis. */
    int fail_status;
    char *fail_code, *fail_text;
    json_t *stop_evidence;

    /* The owner's budgets (run_owner_budget.c): the owner, or NULL; the
     * reservation being made, and the one the call in flight holds. */
    char *owner;
    struct run_owner_job *owner_job;
    struct store_usage_hold *owner_hold;

    /* The outcome, once decided. */
    stop_reason reason;
    char *detail;
    json_t *diagnosis;        /* NULL for completed and user_stopped */
    json_t *diagnosis_action; /* an action the diagnosis adds (restart a server), or NULL */
    bool wrapped_up;
    run_waiter *waiters;

    /* The last write (run_stopped with the run row and the session's
     * release). When the database refuses it, the run is unrecorded: it
     * stays registered, holding its session, and the write is tried again
     * on end_retry_ev until it commits. */
    bool end_writing; /* a write of the end is queued */
    bool unrecorded;
    bool end_last_try; /* shutting down: the write queued is the last one */
    /* What the end's write read of the session's queue: false only when it
     * released the session and no run was queued (run_queue_waits). */
    bool queue_waits;
    int end_tries;
    struct event *end_retry_ev;
};

evt_origin run__origin(const run *r);

/* The provider of the current step, and its "name/model" (run_model.c). */
llm *run__model(const run *r);
const char *run__model_label(const run *r);

void run__emit(run *r, evt *ev);

void run__status(run *r, run_status s, const char *detail);

void run__budget_event(run *r);

/* Continues with fn from the loop rather than from inside a callback, so
 * that a tool or model that answers synchronously never recurses. */
void run__kick(run *r, void (*fn)(run *));

void run__arm(struct event *ev, int64_t delay_ms);

void run__free_calls(run *r);

void run__clear_exec(run *r);

/* Stores a message row and its message event. */
void run__record_message(run *r, const char *message_id, const char *role, const char *content,
                         const json_t *tool_calls, const char *tool_call_id, bool partial);

/* Records the verdicts: a warning becomes a guardrail event and a nudge; a
 * stop ends the run. Returns false when the run was stopped. */
bool run__apply_verdicts(run *r, guard_verdict *v, size_t n);

/* Announces a repair (a repair event, the chatplane_repairs_total count and
 * a log line); evidence is stolen. */
void run__repair(run *r, const char *playbook, const char *action, const char *detail, bool ok,
                 json_t *evidence);
bool run__guard_turn(run *r, const char *text, size_t ncalls);

void run__on_retry_timer(evutil_socket_t fd, short what, void *arg);

void run__turn_done(run *r);

/* Starts the next step, or ends the run when the budget says so. */
void run__step(run *r);

/* Records a finished execution: its event and row, the tool message the
 * model sees, a budget event, and the guardrails' verdicts. Returns false
 * when the run stopped. */
bool run__tool_finished(run *r, tool_status st, const char *raw, size_t raw_len,
                        const char *raw_error, const char *call_id);

void run__on_progress_timer(evutil_socket_t fd, short what, void *arg);

void run__next_tool(run *r);

void run__finish(run *r, stop_reason reason, char *detail, bool wrapped_up);

/* Arms the deadline and the 80 % warning for the current seconds limit;
 * nothing while the run waits for a person. */
void run__arm_timers(run *r);

/* Runs the prepared call (run_tool.c): it is counted, recorded, shown and
 * made. */
void run__execute(run *r);
/* Records the prepared call as denied by who, with the person's reason or
 * NULL, without running it (run_tool.c). */
void run__deny(run *r, const char *who, const char *reason);

/* Approvals (run_approval.c). The prepared call is answered by a
 * remembered decision mem, or asked with reason. */
void run__remembered(run *r, const json_t *mem, const char *reason);
void run__request_approval(run *r, const char *reason, const json_t *annotations);
/* A stop while waiting: the approval is cancelled and the call dropped. */
void run__cancel_approval(run *r);
void run__on_approval_timer(evutil_socket_t fd, short what, void *arg);
void run__approval_metrics_register(void);

/* Questions (run_input.c). The tool_callbacks on_input of a call. */
void run__on_tool_input(void *ud, const char *message, const json_t *schema);
/* The question ends with its call: a stop cancels it (answered_by "stop"),
 * a call that ended first cancels it (answered_by "tool"). */
void run__cancel_input(run *r, const char *by);
void run__on_input_timer(evutil_socket_t fd, short what, void *arg);
void run__input_metrics_register(void);

/* Owner budgets (run_owner_budget.c). Before a model call: reserves what
 * the call may use of the owner's budgets, then calls go with the messages
 * (reference handed over) and the completion cap, capped by what the owner
 * has left; or stops the run with owner_budget. Without an owner go runs
 * at once. */
typedef void (*run_owner_go)(run *r, json_t *messages, int64_t max_completion_tokens);
void run__owner_reserve(run *r, json_t *messages, int64_t est_prompt, int64_t max_completion,
                        run_owner_go go);
/* The call ended: what it used replaces what it held, at the run's
 * budget price as it stands (the provider's own during the call). */
void run__owner_settle(run *r, int64_t prompt_tokens, int64_t completion_tokens);
/* The call failed or the run stops: what it held is given back. */
void run__owner_release(run *r);
/* The run is freed: a reservation still being made is released when it
 * comes back. */
void run__owner_detach(run *r);
void run__owner_metrics_register(void);

#endif
