/*
 * run: one run as an explicit state machine on the loop thread
 * (docs/runs.md). Private to src/engine/: the engine creates runs and keeps
 * them in its registry; a run calls back when it has finished.
 *
 * Phases: a step starts with the budget check and a model call; text
 * streams as token events; a finished turn either ends the run or executes
 * its tool calls one after another, each checked against the budget and
 * reported to the guardrails; then the next step. A retryable model error
 * waits with backoff and repeats the call as the same step. A stop, a
 * deadline or a guardrail ends the run at any point: what is in flight is
 * aborted, partial text is kept, and exactly one run_stopped is recorded.
 */
#ifndef CHATPLANE_RUN_H
#define CHATPLANE_RUN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/health.h"
#include "core/mode.h"
#include "core/stop.h"
#include "engine/engine.h"
#include "engine/llm.h"
#include "engine/record.h"
#include "engine/toolset.h"
#include "store/eventlog.h"

struct event_base;

typedef struct run run;

/* The detail of a run stopped because the database refused a write. */
#define RUN_WRITE_FAILED_DETAIL "the database refused a write, so the run stopped"

/* What a run uses from the engine; everything borrowed and outliving it. */
typedef struct run_env {
    struct event_base *base;
    recorder *rec;
    llm *model;
    llm_chain *chain; /* the providers, primary first; NULL: model alone */
    toolset *tools;
    const engine_options *opt;
    const char *instance_id;
    /* The read pool, where a model call reserves of its owner's budgets
     * (run_owner_budget.c); NULL: owner budgets are not checked. */
    dbpool *pool;
    /* Called on the loop once the run's run_stopped event is committed
     * (status 0) or failed to be (status < 0); the engine unregisters and
     * frees the run there. */
    void (*on_finished)(void *ud, run *r, int status);
    /* Called on the loop when the database refused the run's last write
     * (status, < 0) for a reason a later try can overcome: the run is over
     * for its clients but stays registered, holding its session, while
     * the write is tried again; on_finished follows once it commits, the
     * database answers that it never can, or run_last_try's write is done. */
    void (*on_unrecorded)(void *ud, run *r, int status);
    /* Called when the run's own write about its approval (input false) or
     * question (input true) lost to a decision stored first by another
     * instance: the engine reads the stored row and hands it to
     * run_apply_approval or run_apply_input. */
    void (*on_taken)(void *ud, run *r, bool input, const char *id);
    void *ud;
} run_env;

typedef struct run_init {
    const char *id;
    const char *session_id;
    const char *continues; /* previous run for a continue, else NULL */
    const mode *mode;
    json_t *history;             /* OpenAI-form messages; reference stolen */
    size_t keep_from;            /* index of the run's user message in history */
    const char *user_message_id; /* the stored user message, or NULL (continue) */
    const char *user_message;
    /* Text a frontend gave for the system note (docs/protocols.md, AG-UI
     * context), added to it on every step; NULL for none. */
    const char *client_note;
    int64_t started_wall_ms;
    /* A regenerate: the ids of the messages it superseded, announced before
     * run_started (borrowed); NULL otherwise. */
    const json_t *superseded;
    /* The session's owner (a token name), whose budgets each model call
     * reserves of; NULL without authentication: no owner budgets. */
    const char *owner;
    /* The session's remembered decisions: model tool name ->
     * {"approve": bool, "reason": string or null, "remember": "session"};
     * reference stolen, may be NULL. */
    json_t *remembered;
    /* The start stored and published the run's first events (its user
     * message, the superseded ids, run_started): run_begin does not emit
     * them again. */
    bool begun;
} run_init;

run *run_new(const run_env *env, const run_init *init);

/* Registers the model's metrics (first-token time, tokens); until then the
 * runs count nothing. Call before any thread starts. */
void run_metrics_register(void);
void run_free(run *r);

/* The events that open a run, in order: its user message (when
 * message_id is set), the superseded ids (when set), run_started
 * (continues: the previous run's id, or NULL). Writes
 * them to out (RUN_FIRST_EVENTS_MAX) and returns how many. */
#define RUN_FIRST_EVENTS_MAX 3
size_t run_first_events(const evt_origin *o, const char *message_id, const char *message,
                        const json_t *superseded, const char *mode_name, const mode_limits *limits,
                        const char *continues, evt *out[RUN_FIRST_EVENTS_MAX]);

/* Records the run's first events (run_first_events), unless the start did
 * (run_init.begun), and starts step 1. */
void run_begin(run *r);

/* Callback with the run object (docs/api.md, Run), borrowed. */
typedef void (*run_object_cb)(void *ud, const json_t *run);

/* Ends the run with reason (user_stopped, interrupted) and detail; cb (may
 * be NULL) gets the stopped run once run_stopped is committed, or at once
 * for an unrecorded run (its end only waits for the database). */
void run_stop(run *r, stop_reason reason, const char *detail, run_object_cb cb, void *ud);

/*
 * Ends the run without writing anything more: its end is already recorded
 * elsewhere (another instance stopped it as interrupted while this one
 * could not heart-beat it). What is in flight is aborted and dropped;
 * waiters get the run object and on_finished runs (status STORE_CONFLICT)
 * before this returns, so r is freed by then.
 */
void run_abandon(run *r, const char *detail);

/* Decides the approval the run waits for: returns 0 and calls cb once the
 * decision is committed, or ENGINE_ERR_NOT_FOUND (cb not called) when the
 * run is not waiting for approval d->approval_id. */
int run_decide(run *r, const engine_decision *d, engine_approval_cb cb, void *ud);
/* Answers the question the run's tool call waits on: returns 0 and calls
 * cb once the answer is committed, or ENGINE_ERR_NOT_FOUND (cb not called)
 * when the run does not wait for input a->input_id. cb gets
 * ENGINE_ERR_NOT_FOUND too when another answer was stored first. */
int run_answer_input(run *r, const engine_answer *a, engine_input_cb cb, void *ud);
/* Applies an answer that is already stored (written by another instance;
 * docs/architecture.md, Several instances): the run announces it and
 * hands it to the tool's server. Does nothing unless the run waits for
 * that input and the row is no longer pending. */
void run_apply_input(run *r, const store_input *row);
/* The same for an approval decided elsewhere. */
void run_apply_approval(run *r, const store_approval *row);
/* A mode change mid-run: new limits and guard thresholds at once. */
void run_set_mode(run *r, const mode *m);

/* The run object as it stands now; a new reference. */
json_t *run_to_json(const run *r);
const char *run_get_id(const run *r);
const char *run_get_session_id(const run *r);
/* The stop reason, once the run is finishing. */
stop_reason run_get_reason(const run *r);
bool run_is_finishing(const run *r);
/* True once the database refused the run's last write (on_unrecorded). */
bool run_is_unrecorded(const run *r);
/* For on_finished: false when the run's last write released its session
 * and saw no run waiting in the session's queue, so there is none to
 * start; true otherwise (one is queued, or the write did not say). */
bool run_queue_waits(const run *r);
/* Shutting down: an unrecorded run's last write is tried once more now,
 * and not again; on_finished follows when it is done, whatever it gave.
 * Does nothing for another run. */
void run_last_try(run *r);

#endif
