/*
 * engine: runs. It owns every active run of this instance, each an explicit
 * state machine on the loop thread driven by callbacks (model text arrived,
 * model turn done, tool finished, timer fired, stop requested), so one
 * thread drives thousands of runs. Every step is governed by the budget
 * ledger and the guardrails of src/core and recorded as events through the
 * eventlog; rows (runs, messages, tool executions) are written in the same
 * ordered stream.
 */
#ifndef CHATPLANE_ENGINE_H
#define CHATPLANE_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/approval.h"
#include "core/budget.h"
#include "core/control.h"
#include "core/elicit.h"
#include "core/mode.h"
#include "core/stop.h"
#include "engine/llm.h"
#include "engine/toolset.h"
#include "lib/err.h"
#include "store/dbpool.h"
#include "store/eventlog.h"

struct event_base;

typedef struct engine engine;

/* The settings a run follows (docs/config.md); strings borrowed. */
typedef struct engine_options {
    int64_t active_runs;                 /* limits.active_runs: most runs at once */
    int64_t context_tokens;              /* llm.context_tokens: the model context's size */
    const char *system_prompt;           /* llm.system_prompt, or NULL for the built-in one */
    budget_price price;                  /* llm.price_per_mtok */
    const approval_rule *approval_rules; /* approvals.rules, in order */
    size_t approval_nrules;
    int64_t approval_timeout_ms; /* approvals.timeout_seconds; <= 0: 900 s */
} engine_options;

typedef struct engine_deps {
    struct event_base *base;
    eventlog *log;
    dbpool *pool;
    llm *model;
    /* The providers a step may use, primary first (borrowed); NULL: model
     * alone, named "primary". */
    llm_chain *chain;
    toolset *tools;
    engine_options opt;
    const char *instance_id;
    /* Called (may be NULL) once per run: when it has ended and its last
     * write is done, whether or not that write succeeded (status < 0: it
     * failed). A last write the database refused for a while (full,
     * unreachable) is reported at once, with its status; the run then
     * stays registered, holding its session, and its write is tried again
     * until it commits or the engine shuts down (docs/runs.md). */
    void (*on_run_finished)(void *ud, const char *session_id, const char *run_id, int status);
    void *ud;
    /* Other instances share the database (PostgreSQL): a stop or a mode
     * change for a run that another instance owns is sent to it as a
     * control message (engine_control on its side). */
    bool cluster;
    /* A run's start is written by the event log's writer inside one of its
     * batches instead of by a pool thread in a transaction of its own
     * (SQLite, where the two would otherwise take turns at the one write
     * lock; docs/benchmarks.md, fix 18). */
    bool start_in_log;
} engine_deps;

engine *engine_new(const engine_deps *deps);

/* What the engine saw, for GET /api/health (docs/health.md), on the loop
 * thread only: the model providers, primary first, with their health and
 * circuits, and the runs stopped in the last hour. */
llm_chain *engine_chain(const engine *e);
struct health_stops;
const struct health_stops *engine_stops(const engine *e);
/* Registers the engine's metrics on /metrics (the model's first-token time
 * and tokens). Call before threads start. */
void engine_metrics_register(void);
/*
 * Shutting down, in this order: engine_shutdown stops every active run with
 * `interrupted` and refuses new ones; then the caller stops the dbpool (a
 * run whose start was in flight starts and is interrupted at once); then
 * engine_free waits for the runs' last events to commit and frees the
 * engine; then the eventlog may stop.
 */
void engine_shutdown(engine *e);
void engine_free(engine *e);

/* The modes the engine runs with (from chat_budgets, with config
 * overrides); PUT /api/modes updates them through engine_put_mode. */
const mode *engine_mode(engine *e, const char *name);
size_t engine_mode_count(const engine *e);
const mode *engine_mode_at(const engine *e, size_t i);
int engine_load_modes(engine *e, const mode *modes, size_t n);
/* Replaces the mode of that name (an edit that is stored already): active
 * runs of the mode take its new limits at once. With deps.cluster the
 * other instances are told to do the same. */
void engine_put_mode(engine *e, const mode *m);

/* Error codes of the calls below, all negative. */
#define ENGINE_ERR_RUN_ACTIVE            ERR_RUN_ACTIVE      /* 409 run_active */
#define ENGINE_ERR_NO_RUN                ERR_NO_RUN          /* 409 no_active_run */
#define ENGINE_ERR_NOTHING               ERR_NOTHING         /* 409 nothing_to_continue */
#define ENGINE_ERR_NOTHING_TO_REGENERATE ERR_NO_USER_MESSAGE /* 409 nothing_to_regenerate */
#define ENGINE_ERR_TOO_MANY              ERR_TOO_MANY        /* 429 too_many_runs */
#define ENGINE_ERR_QUEUE_FULL            ERR_QUEUE_FULL      /* 409 queue_full */
#define ENGINE_ERR_UNAVAILABLE           ERR_UNAVAILABLE /* 503: the database failed or shutting down */
#define ENGINE_ERR_NOT_FOUND             ERR_NOT_FOUND /* 404 */
#define ENGINE_ERR_BAD_MODE              ERR_BAD_MODE  /* 400: unknown mode */

/*
 * Called once the run row and its first events are committed (status 0,
 * run is the run object of docs/api.md, Run, borrowed) or when starting failed
 * (status < 0, run NULL).
 */
typedef void (*engine_start_cb)(void *ud, int status, const json_t *run);

/*
 * brief, where a start takes it: a run that starts is given to cb as an
 * object with its "id" alone. A caller that watches the run's events
 * needs nothing else, and the whole object took about 33,000
 * instructions of the loop per run (docs/benchmarks.md, fix 72). A queued
 * run's object is whole either way.
 */

/*
 * Starts a run in session_id for a user message (message non-NULL) or as a
 * continue of the session's last run (message NULL). mode NULL keeps the
 * session's mode; otherwise the session's mode changes to it.
 */
void engine_start_run(engine *e, const char *session_id, const char *message, const char *mode_name,
                      engine_start_cb cb, void *ud);
/* The same with client_note (NULL for none): text a frontend sends along
 * (docs/protocols.md, AG-UI context), added to the run's system note on
 * every step. It lives with the run only: a continue does not carry it. */
void engine_start_run_noted(engine *e, const char *session_id, const char *message,
                            const char *mode_name, const char *client_note, bool brief,
                            engine_start_cb cb, void *ud);
/*
 * Answers the session's last user message again, in place (docs/runs.md,
 * Regenerate): the messages after it are marked superseded (a superseded
 * event lists them, before run_started) and a new run answers it without
 * them. ENGINE_ERR_NOTHING_TO_REGENERATE when the session has no user
 * message. mode as for engine_start_run.
 */
void engine_regenerate_run(engine *e, const char *session_id, const char *mode_name, bool brief,
                           engine_start_cb cb, void *ud);

/*
 * Starts a run for a user message in a session that may have an active
 * run (docs/runs.md, Queue and interrupt): REJECT is engine_start_run;
 * ENQUEUE queues the run behind the active one, whose end (whatever its
 * reason, on whichever instance runs it) starts it: cb gets its object
 * with status "queued", after its run_queued event is committed; with no
 * active run it starts at once, as engine_start_run. INTERRUPT queues the
 * same way and then stops the active run (user_stopped). ENGINE_ERR_
 * QUEUE_FULL when the session has a queued run already.
 */
typedef enum engine_if_active {
    ENGINE_IF_ACTIVE_REJECT,
    ENGINE_IF_ACTIVE_ENQUEUE,
    ENGINE_IF_ACTIVE_INTERRUPT,
} engine_if_active;
void engine_submit_run(engine *e, const char *session_id, const char *message,
                       const char *mode_name, engine_if_active how, bool brief, engine_start_cb cb,
                       void *ud);

/*
 * Requests a stop of the session's active run. cb gets the run object
 * after the write of the run's end (its run_stopped event and row) is done:
 * status stopped, with the reason it stopped for (user_stopped, unless it
 * was already ending for another reason). Without an active run cb gets a
 * negative ENGINE_ERR_* and NULL. With deps.cluster, a run that another
 * instance owns is stopped by a control message to its owner; cb then gets
 * the run once it has stopped, or as it is after ENGINE_REMOTE_WAIT_MS.
 */
#define ENGINE_REMOTE_WAIT_MS 2000
void engine_stop_run(engine *e, const char *session_id, engine_start_cb cb, void *ud);

/*
 * A person's decision on an approval of the session (docs/runs.md,
 * Approvals). Strings are borrowed for the call.
 */
typedef struct engine_decision {
    const char *approval_id;
    bool approve;
    const char *reason; /* may be NULL */
    approval_remember remember;
    const char *decided_by; /* the owner's name, or "local" without authentication */
} engine_decision;
/* Called with status 0 and the decided approval object (docs/api.md,
 * Approvals; borrowed) once the decision is committed, or with a negative
 * ENGINE_ERR_* and NULL: ENGINE_ERR_NOT_FOUND when no run of this instance
 * waits for that approval (the caller then reads the stored one). */
typedef void (*engine_approval_cb)(void *ud, int status, const json_t *approval);
void engine_decide_approval(engine *e, const char *session_id, const engine_decision *d,
                            engine_approval_cb cb, void *ud);

/*
 * A person's answer to a question of the session (docs/runs.md,
 * Questions). content was checked against the input's schema. Strings are
 * borrowed for the call.
 */
typedef struct engine_answer {
    const char *input_id;
    elicit_action action;
    const json_t *content;   /* accept only; NULL otherwise */
    const char *answered_by; /* the owner's name, or "local" without authentication */
} engine_answer;
/* Called with status 0 and the answered input object (docs/api.md,
 * Inputs; borrowed) once the answer is committed, or with a negative
 * ENGINE_ERR_* and NULL: ENGINE_ERR_NOT_FOUND when no run of this instance
 * waits for that input or another answer was stored first (the caller
 * then reads the stored one). */
typedef void (*engine_input_cb)(void *ud, int status, const json_t *input);
void engine_answer_input(engine *e, const char *session_id, const engine_answer *a,
                         engine_input_cb cb, void *ud);

/*
 * A decision made on an instance that does not own the run (docs/
 * architecture.md, Several instances). On a pool thread, with that
 * thread's store: engine_owner_elsewhere returns 1 and sets *owner (a new
 * string) when run_id is running on another instance than `instance`, 0
 * when it is not, or a negative store code. The caller then writes the
 * decision with the store's conditional update, and when it won,
 * engine_send_decided tells the owner (a control message), which reads the
 * stored decision and applies it to the run. Returns 0 or DB_ERR.
 */
int engine_owner_elsewhere(store *st, const char *instance, const char *run_id, char **owner);
int engine_send_decided(store *st, const char *owner, const char *run_id, bool input,
                        const char *id);
/* This instance's id, and whether other instances share its database. */
const char *engine_instance_id(const engine *e);
bool engine_clustered(const engine *e);

/* A mode change of a session: an active run's limits and guard thresholds
 * change at once (a `budget` event follows), also when another instance
 * owns the run (deps.cluster). */
void engine_session_mode_changed(engine *e, const char *session_id, const char *mode_name);

/*
 * A control message from another instance (core/control.h, decoded from a
 * STORE_CONTROL_CHANNEL notification): stop or mode for a run this
 * instance owns, or put_mode for every instance but the sender. Messages
 * for other instances, for runs this instance no longer has, and of other
 * kinds are ignored.
 */
void engine_control(engine *e, const control_msg *m);

/*
 * Heart-beats this instance's active runs (heartbeat_at) through pool. A
 * run whose row is no longer running was stopped by another instance
 * (interrupted, while this one could not beat it): it is abandoned here
 * without writing anything more. At most one heartbeat is in flight.
 */
void engine_heartbeat(engine *e, dbpool *pool);

/* The active run of a session on this instance, or NULL. */
const char *engine_active_run_id(const engine *e, const char *session_id);
size_t engine_active_count(const engine *e);

#endif
