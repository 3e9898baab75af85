/*
 * store: chatplane's persistent state (docs/storage.md) behind one
 * interface, written once over the db driver (db.h) for SQLite and
 * PostgreSQL alike.
 *
 * A store wraps one db connection and, like it, belongs to one thread at a
 * time. Functions return 0 (or a count) on success and a negative code on
 * failure: STORE_NOT_FOUND, STORE_CONFLICT, or a DB_ERR_* code from db.h
 * (store_errmsg says what happened). Row structs are filled with owned
 * strings and JSON references; release them with their _cleanup function.
 * Times are Unix milliseconds; 0 means NULL for optional times.
 */
#ifndef CHATPLANE_STORE_H
#define CHATPLANE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/evt.h"
#include "core/mode.h"
#include "core/owner_budget.h"
#include "lib/id.h"
#include "store/db.h"

/* Error codes besides the driver's DB_ERR_* (lib/err.h). */
#define STORE_NOT_FOUND ERR_NOT_FOUND
#define STORE_CONFLICT  ERR_CONFLICT /* e.g. a run is already active in the session */
#define STORE_TOO_NEW   ERR_TOO_NEW  /* the schema is newer than this binary */

/* The PostgreSQL notification channels instances share: new events of a
 * session ("session_id:last_seq", sent by store_event_append) and control
 * messages for a run owned by another instance (JSON). */
#define STORE_EVENTS_CHANNEL  "chatplane_events"
#define STORE_CONTROL_CHANNEL "chatplane_control"

typedef struct store store;

/* Opens url (see db_open). err names the URL (password masked) and reason. */
int store_open(const char *url, store **out, char *err, size_t errlen);
void store_close(store *s);
db *store_db(store *s);
/* Sets this connection's page cache to kib KiB (SQLite; a no-op on
 * PostgreSQL). */
int store_set_page_cache(store *s, int kib);
const char *store_errmsg(const store *s);

/*
 * Applies pending migrations, each in its own transaction, under the
 * migration lock; cb (may be NULL) is called for each version applied.
 * A schema newer than the binary gives STORE_TOO_NEW with a message saying
 * which version the database has and which this binary knows.
 */
typedef void (*store_migrate_cb)(void *ud, int version, const char *name);
int store_migrate(store *s, store_migrate_cb cb, void *ud, char *err, size_t errlen);
/* The newest migration version this binary carries. */
int store_schema_latest(void);
/* 0 when the database answers a trivial query. */
int store_ping(store *s);

/* On PostgreSQL sends payload on channel (pg_notify), delivered when the
 * current transaction commits (at once outside one); a no-op on SQLite,
 * where only one instance uses the database. */
int store_notify(store *s, const char *channel, const char *payload);

int store_begin(store *s);
int store_commit(store *s);
/* db_commit_later: the COMMIT travels with the next statement on
 * PostgreSQL, whose failure may then be the COMMIT's. Not for the event
 * log's connection, whose remembered seqs need the COMMIT's own answer. */
int store_commit_later(store *s);
int store_rollback(store *s);
/* A savepoint inside the open transaction, so that one operation of a
 * batch can undo its own writes and leave the others': _undo rolls back to
 * it and _release keeps what was written since; both end it. */
int store_savepoint(store *s);
int store_savepoint_undo(store *s);
int store_savepoint_release(store *s);

/*
 * The rows. Each row type is one list of its columns, and that list is the
 * only place a column is named in C: it declares the struct's fields and
 * drives the SELECT and INSERT column lists, reading a result into the
 * struct, freeing it, and the API object built from it (objects.h). A new
 * column is one line in its list plus its migration; a column that changes
 * after the row is inserted is also named (as COL_<field>) in the column
 * set of the update that writes it.
 *
 * X(field, kind, column, json, default):
 *   field    the struct member;
 *   kind     TEXT: char *, owned;
 *            JSON, JSON_OBJECT, JSON_ARRAY: json_t *, an owned reference,
 *              shown in the API as null, {} and [] respectively when NULL;
 *            BOOL: bool; INT: int; I64: int64_t;
 *            TIME: int64_t Unix milliseconds, always written;
 *            TIME_OPT: the same, where 0 is written as NULL;
 *   column   the table column;
 *   json     the member of the API object, NULL when the API never shows it;
 *   default  the text written instead of a NULL TEXT or JSON field, or NULL.
 * The API object has its members in the order of the list.
 */
#define STORE__CTYPE_TEXT                             char *
#define STORE__CTYPE_JSON                             json_t *
#define STORE__CTYPE_JSON_OBJECT                      json_t *
#define STORE__CTYPE_JSON_ARRAY                       json_t *
#define STORE__CTYPE_BOOL                             bool
#define STORE__CTYPE_INT                              int
#define STORE__CTYPE_I64                              int64_t
#define STORE__CTYPE_TIME                             int64_t
#define STORE__CTYPE_TIME_OPT                         int64_t
#define STORE__FIELD(field, kind, column, json, dflt) STORE__CTYPE_##kind field;

/* ---- sessions (chat_sessions) ---- */
#define STORE_SESSION_COLUMNS(X)                                                                   \
    X(id, TEXT, "id", "id", NULL)                                                                  \
    X(owner, TEXT, "owner", NULL, NULL)                                                            \
    X(title, TEXT, "title", "title", NULL)                                                         \
    X(mode, TEXT, "mode", "mode", NULL)                                                            \
    X(status, TEXT, "status", "status", "idle")                                                    \
    X(active_run_id, TEXT, "active_run_id", "active_run_id", NULL)                                 \
    X(last_seq, I64, "last_seq", "last_seq", NULL)                                                 \
    X(created_ms, TIME, "created_at", "created_at", NULL)                                          \
    X(updated_ms, TIME, "updated_at", "updated_at", NULL) /* 0 on insert: created_ms */            \
    X(forked_from_session, TEXT, "forked_from_session_id", NULL, NULL)                             \
    X(forked_from_message, TEXT, "forked_from_message_id", NULL, NULL)                             \
    X(queued_run_id, TEXT, "queued_run_id", NULL, NULL)                                            \
    X(queued_message, TEXT, "queued_message", NULL, NULL)                                          \
    X(queued_mode, TEXT, "queued_mode", NULL, NULL)                                                \
    X(queued_ms, TIME_OPT, "queued_at", NULL, NULL)

typedef struct store_session {
    STORE_SESSION_COLUMNS(STORE__FIELD)
} store_session;
void store_session_cleanup(store_session *s);

int store_session_insert(store *s, const store_session *row);
/* owner NULL matches any owner; another owner's session is STORE_NOT_FOUND. */
int store_session_get(store *s, const char *id, const char *owner, store_session *out);
/* Newest first (by created_ms, then id); before_id pages (NULL for the first
 * page). *out is a new array of *n rows; free with store_session_list_free. */
int store_session_list(store *s, const char *owner, int limit, const char *before_id,
                       store_session **out, size_t *n);
void store_session_list_free(store_session *rows, size_t n);
/*
 * As store_session_list, only the sessions whose title or any message
 * contains text (core/search.h: a literal substring, A-Z folded; checked
 * with search_text_check). text NULL or empty is store_session_list. Both
 * backends answer alike; text of SEARCH_INDEXED_MIN characters or more is
 * looked up in the search index of migration 11 (docs/storage.md, Search).
 */
int store_session_search(store *s, const char *owner, const char *text, int limit,
                         const char *before_id, store_session **out, size_t *n);
/* The same answer as store_session_search without asking the index: each
 * of the owner's sessions is read, newest first, until the page is full
 * (as for text too short for the index). For tests and benchmarks. */
int store_session_search_scan(store *s, const char *owner, const char *text, int limit,
                              const char *before_id, store_session **out, size_t *n);
/* SQLite: takes at most max of the titles and messages waiting for the
 * full-text index, oldest first, and copies them into it in short
 * transactions of a few thousand characters each, then merges a little of
 * the index (docs/storage.md, Search). Call outside a transaction. Returns
 * how many of those taken had text to index (a message or session deleted
 * meanwhile is dropped uncounted), or a negative code. PostgreSQL indexes
 * as it writes: 0. */
int store_session_index_pending(store *s, int max);
/* Makes dst a deep copy of src; free it with store_session_cleanup. */
void store_session_copy(store_session *dst, const store_session *src);
/* Writes title, mode and updated_ms. */
int store_session_update(store *s, const store_session *row);
/* Deletes the session and everything that belongs to it. */
int store_session_delete(store *s, const char *id);
/*
 * Inserts row, a fork of the session row->forked_from_session, with a copy
 * of each of that session's messages stored before the message
 * row->forked_from_message (all of them when NULL): the same content,
 * roles, tool calls and times under new ids, without a run, each with its
 * `message` event in the new session's log. Runs in the caller's
 * transaction. Returns the number of messages copied, STORE_NOT_FOUND when
 * forked_from_message is not a user message of the source.
 */
int store_session_fork(store *s, const store_session *row);
/* Marks run_id the session's active run (status running) only if none is
 * active: the database enforces one active run per session.
 * STORE_CONFLICT when another run is active. */
int store_session_claim_run(store *s, const char *session_id, const char *run_id, int64_t now_ms);
/* The same, setting the session's title and mode where not NULL in the
 * same write (a run's start that names the session or changes its mode). */
int store_session_claim_run_as(store *s, const char *session_id, const char *run_id, int64_t now_ms,
                               const char *title, const char *new_mode);
/* Clears the active run (status idle) if it is run_id. With queued set,
 * *queued says whether a run waits in the session's queue, read in the
 * same statement (so no queue write can come between); it is true as
 * well when run_id was not the active run, which leaves the queue to be
 * looked at. */
int store_session_release_run(store *s, const char *session_id, const char *run_id, int64_t now_ms,
                              bool *queued);
/* The same inside a transaction, with *queued (1 or 0) set when the
 * answer is read: on PostgreSQL the release is sent ahead and its answer
 * comes with the transaction's next statement (db_exec_later_int), so
 * queued must stay valid until then; a failure may be that statement's. */
int store_session_release_run_later(store *s, const char *session_id, const char *run_id,
                                    int64_t now_ms, int64_t *queued);

/* ---- runs ---- */
/* The stop fields are NULL while the run is running. */
#define STORE_RUN_COLUMNS(X)                                                                       \
    X(id, TEXT, "id", "id", NULL)                                                                  \
    X(session_id, TEXT, "session_id", "session_id", NULL)                                          \
    X(mode, TEXT, "mode", "mode", NULL)                                                            \
    X(status, TEXT, "status", "status", "running")                                                 \
    X(stop_reason, TEXT, "stop_reason", "stop_reason", NULL)                                       \
    X(stop_detail, TEXT, "stop_detail", "stop_detail", NULL)                                       \
    X(recovery_suggestion, TEXT, "recovery_suggestion", "recovery_suggestion", NULL)               \
    X(actions, JSON_ARRAY, "actions", "actions", "[]")                                             \
    X(diagnosis, JSON, "diagnosis", "diagnosis", NULL)                                             \
    X(wrapped_up, BOOL, "wrapped_up", "wrapped_up", NULL)                                          \
    X(limits, JSON_OBJECT, "limits", "limits", NULL)                                               \
    X(usage, JSON_OBJECT, "usage", "usage", NULL)                                                  \
    X(started_ms, TIME, "started_at", "started_at", NULL)                                          \
    X(ended_ms, TIME_OPT, "ended_at", "ended_at", NULL)                                            \
    X(continues, TEXT, "continues", "continues", NULL)                                             \
    X(owner_instance, TEXT, "owner_instance", NULL, NULL)                                          \
    X(heartbeat_ms, TIME_OPT, "heartbeat_at", NULL, NULL)

typedef struct store_run {
    STORE_RUN_COLUMNS(STORE__FIELD)
} store_run;
void store_run_cleanup(store_run *r);

/* Inside a transaction on PostgreSQL, a failure of the insert may be
 * reported by the transaction's next statement instead (db_exec_later). */
int store_run_insert(store *s, const store_run *row);
/* Writes mode, status, stop fields, actions, wrapped_up, limits, usage, ended_ms,
 * only while the stored run is still running: a run that stopped already
 * (another instance may have stopped it as interrupted) is STORE_CONFLICT,
 * so a run is never stopped twice; a missing run is STORE_NOT_FOUND. Inside
 * a transaction on PostgreSQL the update is sent ahead (db_exec_later):
 * either code may come from the transaction's next statement instead, and
 * the transaction has then failed. */
int store_run_update(store *s, const store_run *row);
int store_run_get(store *s, const char *id, store_run *out);
/* Newest first. */
int store_run_list(store *s, const char *session_id, store_run **out, size_t *n);
void store_run_list_free(store_run *rows, size_t n);
/* Makes dst a deep copy of src; free it with store_run_cleanup. */
void store_run_copy(store_run *dst, const store_run *src);
/* The newest run of the session (the first of store_run_list), read by an
 * index whatever the session's length; STORE_NOT_FOUND when it has none. */
int store_run_latest(store *s, const char *session_id, store_run *out);
/* Runs with status running whose heartbeat is older than stale_before_ms
 * (INT64_MAX: all running runs), oldest first. */
int store_run_list_running(store *s, int64_t stale_before_ms, store_run **out, size_t *n);
/* Sets heartbeat_at for every running run owned by instance. */
int store_run_heartbeat(store *s, const char *instance, int64_t now_ms);
/* Sets heartbeat_at of one run if it is still running. Returns 1 when it
 * is, 0 when it stopped or is gone. */
int store_run_beat(store *s, const char *run_id, int64_t now_ms);

/* ---- messages (chat_messages) ---- */
#define STORE_MESSAGE_COLUMNS(X)                                                                   \
    X(id, TEXT, "id", "id", NULL)                                                                  \
    X(session_id, TEXT, "session_id", "session_id", NULL)                                          \
    X(run_id, TEXT, "run_id", "run_id", NULL)                                                      \
    X(role, TEXT, "role", "role", NULL)                                                            \
    X(content, TEXT, "content", "content", "")                                                     \
    X(tool_calls, JSON, "tool_calls", "tool_calls", NULL)                                          \
    X(tool_call_id, TEXT, "tool_call_id", "tool_call_id", NULL)                                    \
    X(partial, BOOL, "partial", "partial", NULL)                                                   \
    X(model, TEXT, "model", "model", NULL)                /* "name/model" on assistant messages */ \
    X(superseded, BOOL, "superseded", "superseded", NULL) /* a regenerated answer replaced it */   \
    X(created_ms, TIME, "created_at", "created_at", NULL)

typedef struct store_message {
    STORE_MESSAGE_COLUMNS(STORE__FIELD)
} store_message;
void store_message_cleanup(store_message *m);

/* As store_run_insert, a failure may be the next statement's. */
int store_message_insert(store *s, const store_message *row);
/* Oldest first. */
int store_message_list(store *s, const char *session_id, store_message **out, size_t *n);
/*
 * For a regenerate (docs/runs.md, Regenerate): marks superseded every
 * message after the session's last user message that is not already, and
 * sets *user_id to that user message's id (caller frees) and *ids to a new
 * array of the ids marked, oldest first. STORE_NOT_FOUND when the session
 * has no user message.
 */
int store_message_supersede(store *s, const char *session_id, char **user_id, json_t **ids);
void store_message_list_free(store_message *rows, size_t n);
/* Makes dst a deep copy of src; free it with store_message_cleanup. */
void store_message_copy(store_message *dst, const store_message *src);
/*
 * The newest messages of the session, oldest first, as a run's model
 * context needs them: read backwards (in pages, by an index) until their
 * costs add up to at least min, and never starting at a tool result, so an
 * assistant message is never parted from its results; all of them when the
 * session holds less. A tool result counts only once the assistant message
 * that made its call is read, since a result answering no call is dropped
 * from the context. cost gives a message's cost (called with ud); NULL
 * counts the bytes of its content, a tool result's at most the
 * CONTEXT_TOOL_RESULT_MAX bytes the model sees of it. *out is a new array
 * of *n rows; free with store_message_list_free.
 */
typedef int64_t (*store_message_cost_fn)(const store_message *m, void *ud);
/* (store_message_list_recent leaves superseded messages out: no model
 * context holds them.) */
int store_message_list_recent(store *s, const char *session_id, int64_t min,
                              store_message_cost_fn cost, void *ud, store_message **out, size_t *n);

/* ---- tool executions ---- */
/* finished_ms and duration_ms are 0 while the tool runs; duration_ms is
 * then written as NULL and shown as null. */
#define STORE_TOOL_EXEC_COLUMNS(X)                                                                 \
    X(id, TEXT, "id", "id", NULL)                                                                  \
    X(session_id, TEXT, "session_id", "session_id", NULL)                                          \
    X(run_id, TEXT, "run_id", "run_id", NULL)                                                      \
    X(step, INT, "step", "step", NULL)                                                             \
    X(server, TEXT, "server", "server", NULL)                                                      \
    X(tool, TEXT, "tool", "tool", NULL)                                                            \
    X(arguments, JSON_OBJECT, "arguments", "arguments", "{}")                                      \
    X(status, TEXT, "status", "status", "running")                                                 \
    X(result, TEXT, "result", "result", NULL)                                                      \
    X(error, TEXT, "error", "error", NULL)                                                         \
    X(started_ms, TIME, "started_at", "started_at", NULL)                                          \
    X(finished_ms, TIME_OPT, "finished_at", "finished_at", NULL)                                   \
    X(duration_ms, I64, "duration_ms", "duration_ms", NULL)

typedef struct store_tool_exec {
    STORE_TOOL_EXEC_COLUMNS(STORE__FIELD)
} store_tool_exec;
void store_tool_exec_cleanup(store_tool_exec *t);

int store_tool_exec_insert(store *s, const store_tool_exec *row);
/* Writes status, result, error, finished_ms, duration_ms. */
int store_tool_exec_finish(store *s, const store_tool_exec *row);
/* Oldest first; run_id NULL for every run of the session. */
int store_tool_exec_list(store *s, const char *session_id, const char *run_id,
                         store_tool_exec **out, size_t *n);
void store_tool_exec_list_free(store_tool_exec *rows, size_t n);
/* Makes dst a deep copy of src; free it with store_tool_exec_cleanup. */
void store_tool_exec_copy(store_tool_exec *dst, const store_tool_exec *src);

/* ---- approvals ---- */
/* A tool call asked of a person (docs/runs.md, Approvals). status is
 * pending until decided; decided_by, decision_reason and decided_ms are
 * NULL (0) until then. */
#define STORE_APPROVAL_COLUMNS(X)                                                                  \
    X(id, TEXT, "id", "id", NULL)                                                                  \
    X(session_id, TEXT, "session_id", "session_id", NULL)                                          \
    X(run_id, TEXT, "run_id", "run_id", NULL)                                                      \
    X(execution_id, TEXT, "execution_id", "execution_id", NULL)                                    \
    X(step, INT, "step", "step", NULL)                                                             \
    X(server, TEXT, "server", "server", NULL)                                                      \
    X(tool, TEXT, "tool", "tool", NULL)                                                            \
    X(arguments, JSON_OBJECT, "arguments", "arguments", "{}")                                      \
    X(reason, TEXT, "reason", "reason", "")                                                        \
    X(status, TEXT, "status", "status", "pending")                                                 \
    X(decided_by, TEXT, "decided_by", "decided_by", NULL)                                          \
    X(decision_reason, TEXT, "decision_reason", "decision_reason", NULL)                           \
    X(remember, TEXT, "remember", "remember", "once")                                              \
    X(requested_ms, TIME, "requested_at", "requested_at", NULL)                                    \
    X(decided_ms, TIME_OPT, "decided_at", "decided_at", NULL)                                      \
    X(expires_ms, TIME, "expires_at", "expires_at", NULL)

typedef struct store_approval {
    STORE_APPROVAL_COLUMNS(STORE__FIELD)
} store_approval;
void store_approval_cleanup(store_approval *a);

int store_approval_insert(store *s, const store_approval *row);
/* The approval id of session_id; another session's is STORE_NOT_FOUND. */
int store_approval_get(store *s, const char *session_id, const char *id, store_approval *out);
/* Oldest first; status NULL for every status. */
int store_approval_list(store *s, const char *session_id, const char *status, store_approval **out,
                        size_t *n);
/* store_approval_list of every status in two steps: the query sent ahead
 * (db_exec_later_rows: on PostgreSQL its rows come with the connection's
 * next statement, into *slot, which must stay valid until then), then
 * _take reads them (a negative code when they never came). */
int store_approval_list_later(store *s, const char *session_id, db_result **slot);
int store_approval_list_take(store *s, db_result *slot, store_approval **out, size_t *n);
void store_approval_list_free(store_approval *rows, size_t n);
/* Makes dst a deep copy of src; free it with store_approval_cleanup. */
void store_approval_copy(store_approval *dst, const store_approval *src);
/* Writes status, decided_by, decision_reason, remember and decided_ms only
 * while the stored approval is pending: one of two deciders wins, the
 * other gets STORE_CONFLICT (STORE_NOT_FOUND when there is no such row). */
int store_approval_decide(store *s, const store_approval *row);
/* Marks every pending approval of run_id cancelled by decided_by with
 * reason. Returns the number marked. */
int store_approval_cancel_run(store *s, const char *run_id, const char *decided_by,
                              const char *reason, int64_t now_ms);

/* ---- inputs ---- */
/* A form a tool server asked a person to fill in (docs/runs.md,
 * Questions). status is pending until answered, cancelled or expired;
 * content (an accepted answer), answered_by and answered_ms are NULL (0)
 * until then. answered_by is not part of the API object: the
 * input_answered event carries it. */
#define STORE_INPUT_COLUMNS(X)                                                                     \
    X(id, TEXT, "id", "id", NULL)                                                                  \
    X(session_id, TEXT, "session_id", "session_id", NULL)                                          \
    X(run_id, TEXT, "run_id", "run_id", NULL)                                                      \
    X(execution_id, TEXT, "execution_id", "execution_id", NULL)                                    \
    X(server, TEXT, "server", "server", NULL)                                                      \
    X(message, TEXT, "message", "message", "")                                                     \
    X(schema, JSON_OBJECT, "schema", "schema", "{}")                                               \
    X(status, TEXT, "status", "status", "pending")                                                 \
    X(content, JSON, "content", "content", NULL)                                                   \
    X(answered_by, TEXT, "answered_by", NULL, NULL)                                                \
    X(requested_ms, TIME, "requested_at", "requested_at", NULL)                                    \
    X(answered_ms, TIME_OPT, "answered_at", "answered_at", NULL)                                   \
    X(expires_ms, TIME, "expires_at", "expires_at", NULL)

typedef struct store_input {
    STORE_INPUT_COLUMNS(STORE__FIELD)
} store_input;
void store_input_cleanup(store_input *a);

int store_input_insert(store *s, const store_input *row);
/* The input id of session_id; another session's is STORE_NOT_FOUND. */
int store_input_get(store *s, const char *session_id, const char *id, store_input *out);
/* Oldest first; status NULL for every status. */
int store_input_list(store *s, const char *session_id, const char *status, store_input **out,
                     size_t *n);
void store_input_list_free(store_input *rows, size_t n);
/* Makes dst a deep copy of src; free it with store_input_cleanup. */
void store_input_copy(store_input *dst, const store_input *src);
/* Writes status, content, answered_by and answered_ms only while the
 * stored input is pending: one of two answers wins, the other gets
 * STORE_CONFLICT (STORE_NOT_FOUND when there is no such row). */
int store_input_answer(store *s, const store_input *row);
/* Marks every pending input of run_id cancelled by answered_by. Returns the
 * number marked. */
int store_input_cancel_run(store *s, const char *run_id, const char *answered_by, int64_t now_ms);

/*
 * ---- the queued run of a session (docs/runs.md, Queue and interrupt) ----
 * A run sent with if_active enqueue or interrupt waits in the session's
 * queued_* columns until the active run stops; it gets its runs row and
 * its user message only when it starts (or its runs row when it is
 * dropped), so the model never sees a message whose run has not started.
 */
/* Queues run_id with message (mode NULL: the session's mode when it
 * starts) on the session, only while the session has an active run and
 * no queued run: STORE_CONFLICT otherwise (store_errmsg says which),
 * STORE_NOT_FOUND without the session. */
int store_queue_put(store *s, const char *session_id, const char *run_id, const char *message,
                    const char *mode, int64_t now_ms);
/* Clears the session's queued run if it is run_id: 1 when it was, else 0. */
int store_queue_take(store *s, const char *session_id, const char *run_id);
/* The session whose queued run is run_id; STORE_NOT_FOUND when none. */
int store_queue_find(store *s, const char *run_id, store_session *out);
/* Fills *out (caller cleans up) with the session's queued run as a run
 * row with status queued, started_ms the time it was queued and the
 * limits of its mode (limits NULL: read from chat_budgets through s). */
int store_queue_row(store *s, const store_session *ses, const mode_limits *limits, store_run *out);
/* store_run_get, or else the queued run of that id as store_queue_row. */
int store_queue_run_get(store *s, const char *run_id, store_run *out);
/* Makes *row (from store_queue_row) the row of a queued run dropped for
 * reason with detail at now_ms: status stopped, no actions. */
void store_queue_row_dropped(store_run *row, stop_reason reason, const char *detail,
                             int64_t now_ms);
/* Writes the drop of row (store_queue_row_dropped) in the caller's
 * transaction: clears the session's queue if it still holds row->id and
 * inserts the run row. STORE_CONFLICT when the queue no longer holds it
 * (the run started, or was dropped already). */
int store_queue_drop(store *s, const store_run *row);
/* The run_stopped event of a dropped queued run (a new reference). */
evt *store_queue_dropped_event(const store_run *row);
/* Drops, as interrupted, the queued runs of sessions with no active run
 * whose session row did not change since stale_before_ms (INT64_MAX:
 * all), each with its run_stopped event, in one transaction each. Used at
 * start-up after store_recover_interrupted; returns the number dropped. */
int store_queue_recover(store *s, int64_t stale_before_ms, int64_t now_ms);

/* ---- modes (chat_budgets) ---- */
/* The modes, smallest first as seeded (quick, standard, deep, then others
 * by name). *out is a new array the caller frees with free(). */
int store_mode_list(store *s, mode **out, size_t *n);
int store_mode_get(store *s, const char *name, mode *out);
/* Inserts or replaces the mode. */
int store_mode_put(store *s, const mode *m, int64_t now_ms);

/* ---- events (stream_events) ---- */
/*
 * Appends events inside the caller's transaction: assigns each its seq
 * (per session, gapless, by raising chat_sessions.last_seq), encodes it
 * (evt_encode) and inserts it. On PostgreSQL each session's new last seq
 * is announced on STORE_EVENTS_CHANNEL when the transaction commits. On
 * failure the caller rolls back, and the events' seq fields must be
 * considered meaningless.
 */
int store_event_append(store *s, evt *const *evs, size_t n);
/*
 * On SQLite, within one transaction that the caller opened: remembers the
 * last_seq that the transaction gave the last session it appended to, so
 * that the next events of that session skip reading it (a run's end
 * appends three times to its session). Turned on after BEGIN and off at
 * the transaction's end; turning it on or off forgets what it knew, which
 * the caller also does before a write that may change a session's
 * last_seq or delete a session (one that names no session).
 */
void store_event_seq_memo(store *s, bool on);
/* Forgets every last_seq the connection knows: the memo's, and the cache's
 * of store_event_seq_cache. Before a write that may change any session's
 * last_seq or delete a session. */
void store_event_seq_forget(store *s);
/*
 * On PostgreSQL, makes the connection remember the last_seq of every
 * session it appends to across its transactions (docs/storage.md, Round
 * trips on PostgreSQL): the next append to those sessions raises last_seq
 * without reading it, and fails its transaction with DB_ERR_RETRY if
 * another connection moved one of them on meanwhile (the cache is then
 * forgotten, and the same transaction written again reads them). For the
 * event log's connection, which writes such a batch again. No effect on
 * SQLite.
 */
void store_event_seq_cache(store *s);
/* Stores events that already carry their seqs (those the token journal's
 * file held at a crash, docs/storage.md), inside the caller's transaction: each session's events
 * must follow its last_seq in order without a gap, which they raise; else
 * DB_ERR with a message naming the first that does not. */
int store_event_put(store *s, evt *const *evs, size_t n);
/* Calls cb for every event of the session with seq > after, in seq order,
 * at most limit of them (limit <= 0: no limit). cb returns non-zero to stop.
 * json is the stored encoded event. */
typedef int (*store_event_cb)(void *ud, int64_t seq, const char *type, const char *json,
                              size_t len);
int store_event_after(store *s, const char *session_id, int64_t after, int limit, store_event_cb cb,
                      void *ud);
/* Deletes the token events of a finished run whose assistant message
 * events are stored. Returns the number deleted. */
int store_event_compact(store *s, const char *run_id);

/* ---- API tokens ---- */
/* token_sha256 is 64 lowercase hex digits. The API shows tokens in its own
 * shape (never the hash), so no column has a JSON name. */
#define STORE_TOKEN_COLUMNS(X)                                                                     \
    X(name, TEXT, "name", NULL, NULL)                                                              \
    X(token_sha256, TEXT, "token_sha256", NULL, NULL)                                              \
    X(admin, BOOL, "admin", NULL, NULL)                                                            \
    X(created_ms, TIME, "created_at", NULL, NULL)                                                  \
    X(revoked_ms, TIME_OPT, "revoked_at", NULL, NULL)

typedef struct store_token {
    STORE_TOKEN_COLUMNS(STORE__FIELD)
} store_token;
void store_token_cleanup(store_token *t);

int store_token_insert(store *s, const store_token *row);
/* The unrevoked token with this hash, else STORE_NOT_FOUND. */
int store_token_find(store *s, const char *token_sha256, store_token *out);
int store_token_list(store *s, store_token **out, size_t *n);
void store_token_list_free(store_token *rows, size_t n);
/* Makes dst a deep copy of src; free it with store_token_cleanup. */
void store_token_copy(store_token *dst, const store_token *src);
int store_token_revoke(store *s, const char *name, int64_t now_ms);
/* The number of unrevoked tokens. */
int store_token_count(store *s);

/* ---- budgets per owner and period (owner_budgets, owner_usage) ---- */
/* One budget of an owner (docs/owner-budgets.md): dimension "tokens" or
 * "cost_usd", period "day", "week" or "month", limit_amount in tokens or
 * micro-dollars. The API shows it with its usage (store_usage_read). */
#define STORE_OWNER_BUDGET_COLUMNS(X)                                                              \
    X(owner, TEXT, "owner", NULL, NULL)                                                            \
    X(dimension, TEXT, "dimension", NULL, NULL)                                                    \
    X(period, TEXT, "period", NULL, NULL)                                                          \
    X(limit_amount, I64, "limit_amount", NULL, NULL)

typedef struct store_owner_budget {
    STORE_OWNER_BUDGET_COLUMNS(STORE__FIELD)
} store_owner_budget;
void store_owner_budget_cleanup(store_owner_budget *b);

/* The budgets of owner (NULL: of every owner), by owner, dimension and
 * period. *out is a new array; free with store_owner_budget_list_free. */
int store_owner_budget_list(store *s, const char *owner, store_owner_budget **out, size_t *n);
void store_owner_budget_list_free(store_owner_budget *rows, size_t n);
/* Makes dst a deep copy of src; free it with store_owner_budget_cleanup. */
void store_owner_budget_copy(store_owner_budget *dst, const store_owner_budget *src);
/* Replaces the budgets of owner with b[0..n) (n 0: none), in one
 * transaction of its own. Usage already counted stays. */
int store_owner_budget_set(store *s, const char *owner, const owner_budget_spec *b, size_t n);

/* What a model call holds of its owner's budgets: the budgets as read when
 * it was reserved (with the usage of their periods then) and the amount
 * held of each. Settled or released against those periods, so a call that
 * crosses midnight counts in the day it started. */
typedef struct store_usage_hold {
    char id[ID_MAX]; /* names the hold's rows in owner_holds */
    size_t n;
    owner_budget_state st[OWNER_BUDGET_MAX];
    int64_t amount[OWNER_BUDGET_MAX];
} store_usage_hold;

/*
 * Before a model call of run_id, in one transaction of its own: reads
 * owner's budgets and the usage of their periods at now_ms, locking the
 * usage rows (a row lock on PostgreSQL, the write lock on SQLite), decides
 * with owner_budget_decide, and unless *plan says stop adds the
 * reservation to each row and records it in owner_holds under run_id. So
 * two calls, on any instances, never both pass on the same room. *hold
 * says what to settle; hold->n is 0 when the owner has no budgets (plan
 * then passes max_completion through).
 */
int store_usage_reserve(store *s, const char *owner, const char *run_id, int64_t now_ms,
                        int64_t est_prompt, int64_t max_completion, const budget_price *price,
                        owner_budget_plan *plan, store_usage_hold *hold);
/* After the call: moves the hold into used as what the call used (its
 * tokens, or their price at price), in one transaction. hold->st[i].used
 * and .reserved become the rows' values after it. A hold given back
 * meanwhile (store_usage_release_stale) adds the use without taking the
 * hold off twice. */
int store_usage_settle(store *s, const char *owner, store_usage_hold *hold, int64_t prompt,
                       int64_t completion, const budget_price *price);
/* The call failed or its run stopped: gives the hold back unused. */
int store_usage_release(store *s, const char *owner, store_usage_hold *hold);
/* Gives back every hold whose run is not running (its process died during
 * the call, or its release never ran), in one transaction; part of
 * store_recover_interrupted. Returns the number of hold rows given back. */
int store_usage_release_stale(store *s);
/* The budgets of owner with the usage of their periods at now_ms (0 for a
 * period without a row), at most max of them into out; *n is how many. */
int store_usage_read(store *s, const char *owner, int64_t now_ms, owner_budget_state *out,
                     size_t max, size_t *n);

/* ---- crash recovery ---- */
/*
 * Stops with `interrupted` every run still marked running whose heartbeat is
 * older than stale_before_ms (INT64_MAX: every running run, as on SQLite at
 * start-up): appends an error-free run_stopped event (after a `message`
 * event with partial: true holding the assistant text of the run's token
 * events that no stored message covers, saved as a partial message), marks
 * the run stopped and releases the session. Each run in its own
 * transaction. Then gives back the owner budget holds of every run that
 * is not running (store_usage_release_stale). Returns the number of runs
 * stopped.
 */
int store_recover_interrupted(store *s, int64_t stale_before_ms, int64_t now_ms);

#endif
