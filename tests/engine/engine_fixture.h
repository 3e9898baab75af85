/*
 * engine_fixture: the engine as the runtime assembles it, for the engine
 * and run suites: a SQLite database in a temporary directory of its own,
 * the writer (eventlog) and a read pool on it, a real libevent loop, the
 * built-in tools plus the held tool of scripted_tool.h, and the scripted
 * model of scripted_llm.h. Every committed event is kept, in order, as
 * the JSON object that was stored and published, so tests assert the exact
 * sequence a run produced. The test keeps its own store connection for
 * setting up sessions and reading rows back.
 *
 * The helpers fail the running cmocka test on anything unexpected,
 * naming what they waited for.
 */
#ifndef CHATPLANE_TEST_ENGINE_FIXTURE_H
#define CHATPLANE_TEST_ENGINE_FIXTURE_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "lib/id.h"
#include "scripted_llm.h"
#include "scripted_tool.h"
#include "store/store.h"

struct event_base;
struct event;

typedef struct efix {
    struct event_base *base;
    char dir[PATH_MAX];
    char url[PATH_MAX + 32];
    store *db; /* the test's own connection */
    eventlog *log;
    dbpool *pool;
    struct event *log_ev, *pool_ev;
    scripted_llm *model;
    scripted_tool *held; /* owned by tools */
    toolset *tools;
    engine *e;
    json_t *events; /* every committed event, in commit order */
    /* Runs that finished (on_run_finished), with the status of the last. */
    size_t finished;
    int finished_status;
    /* The last engine_start_run or engine_stop_run answer. */
    bool answered;
    int status;
    json_t *run; /* the run object answered, or NULL */
} efix;

/* Options a test may change before efix_new; efix_default_options gives
 * the ones the suites use (4 active runs, a context of 100000 tokens, a
 * short system prompt, no price, and a rule that allows the held tool
 * hold without asking). */
engine_options efix_default_options(void);

/* Sets everything up with the model playing steps[0..n). The loop has two
 * priorities; the engine's events all have the default, 1. */
efix *efix_new(const scripted_step *steps, size_t n, const engine_options *opt);
/* Shuts the engine down (as the runtime does) and frees everything. */
void efix_free(efix *f);

/* Replaces the engine's modes with the presets, where the mode named
 * m->name becomes *m (or is added after them). */
void efix_set_mode(efix *f, const mode *m);

/* A new idle session in mode_name; its id goes into out. */
void efix_session(efix *f, const char *mode_name, char out[ID_MAX]);

/* Starts a run (message NULL: a continue) and waits for the answer; the
 * status is returned and the run's id copied to run_id (when it started
 * and run_id is not NULL). */
int efix_start(efix *f, const char *session_id, const char *message, const char *mode_name,
               char run_id[ID_MAX]);
/* Only asks for the start; efix_wait_answer waits for its answer and
 * returns the status. */
void efix_start_async(efix *f, const char *session_id, const char *message, const char *mode_name);
int efix_wait_answer(efix *f);
/* Asks for a stop and waits for the answer (f->status, f->run). */
int efix_stop(efix *f, const char *session_id);

/* Runs the loop until pred(f, arg) holds; fails the test after timeout_ms,
 * saying what was awaited. */
void efix_loop_until(efix *f, bool (*pred)(efix *f, const void *arg), const void *arg,
                     int64_t timeout_ms, const char *what);
/* Runs the loop until the run's run_stopped event is committed and the
 * engine has let the run go, then a little longer so that anything the run
 * wrote after it would show. */
void efix_wait_stopped(efix *f, const char *run_id);
/* Runs the loop until the model waits (held or stalled) with a call. */
void efix_wait_model(efix *f);
/* Runs the loop until the held tool has a call in flight. */
void efix_wait_tool(efix *f);

/* The run's events as one line, e.g. "message:user run_started
 * status:thinking token message:assistant budget run_stopped:completed":
 * message:<role>[+calls][:partial], status:<status>, tool_started:<tool>,
 * tool_finished:<tool>:<status>, guardrail:<check>:<action>,
 * error:<code>, run_stopped:<reason>, approval_requested:<tool>,
 * approval_decided:<decision>:<decided_by>, input_requested:<server>,
 * input_answered:<action>:<answered_by>, and the bare type otherwise.
 * Returns a new string. */
char *efix_signature(const efix *f, const char *run_id);
/* Asserts the run's signature. */
void efix_assert_events(const efix *f, const char *run_id, const char *want);
/* The n-th (0-based) event of this type of the run, or NULL (borrowed). */
json_t *efix_event(const efix *f, const char *run_id, const char *type, size_t n);
size_t efix_count(const efix *f, const char *run_id, const char *type);

/* Asserts that the store holds exactly the committed events of the
 * session, byte for byte and in seq order from 1. */
void efix_assert_stored_events(efix *f, const char *session_id);

/* Reads the run's row from the store (fails the test if missing); clean
 * up with store_run_cleanup. */
void efix_run_row(efix *f, const char *run_id, store_run *out);
/* The session's stored messages; free with store_message_list_free. */
void efix_messages(efix *f, const char *session_id, store_message **out, size_t *n);

#endif
