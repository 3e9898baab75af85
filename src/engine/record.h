/*
 * record: the engine's writes. Each function queues one eventlog operation
 * that writes a row (a message, a tool execution, a run) together with the
 * event that announces it, so the row and the event commit in the same
 * transaction and in the order the run produced them. Rows are copied; the
 * event reference is taken.
 */
#ifndef CHATPLANE_RECORD_H
#define CHATPLANE_RECORD_H

#include "store/eventlog.h"
#include "store/store.h"

/* Where writes go, and who hears of a write that failed (on the loop, with
 * the run it belonged to), so that a run that cannot write stops. */
typedef struct recorder {
    eventlog *log;
    void (*on_fail)(void *ud, const char *run_id, int status);
    void *ud;
} recorder;

void record_event(recorder *rec, evt *ev);
/* Records an event somebody waits on (an answer's first token): its batch
 * is not paced (eventlog_submit_urgent). */
void record_event_urgent(recorder *rec, evt *ev);
void record_message(recorder *rec, const store_message *m, evt *ev);
void record_tool_started(recorder *rec, const store_tool_exec *t, evt *ev);
void record_tool_finished(recorder *rec, const store_tool_exec *t, evt *ev);
/* Inserts an approval row (record_approval_requested) or writes its
 * decision, only while it is pending (record_approval_decided); done (may be
 * NULL) runs on the loop after commit with the status. A decision that
 * finds the approval decided already (STORE_CONFLICT) is no failure of the
 * run: its event is dropped and done hears of it. */
void record_approval_requested(recorder *rec, const store_approval *a, evt *ev);
/* Inserts an input row (record_input_requested) or writes its answer, only
 * while it is pending (record_input_answered). done (may be NULL) gets the
 * write's status. An answer that finds the input already answered
 * (STORE_CONFLICT: another instance wrote a person's answer first) is no
 * failure of the run: its event is dropped and done hears of it. */
void record_input_requested(recorder *rec, const store_input *a, evt *ev);
void record_input_answered(recorder *rec, const store_input *a, evt *ev,
                           void (*done)(void *ud, int status), void *ud);
void record_approval_decided(recorder *rec, const store_approval *a, evt *ev,
                             void (*done)(void *ud, int status), void *ud);
/* Writes the run row and, when the run has stopped, releases its session.
 * done (may be NULL) runs on the loop after commit with the status and,
 * for a release, whether a run waits in the session's queue
 * (store_session_release_run; true when the write failed or released
 * nothing, so the queue is looked at as before). */
void record_run(recorder *rec, const store_run *r, evt *ev,
                void (*done)(void *ud, int status, bool queued), void *ud);

#endif
