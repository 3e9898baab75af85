/*
 * evt: the typed records of a session's event log (docs/events.md).
 *
 * (The module is named evt, not event, because libevent owns `struct event`
 * and event_new, and the engine and the SSE hub use both.)
 *
 * An event is built on the loop by one of the typed constructors below, gets
 * its seq from the store when it is committed, and is then encoded once
 * (evt_encode) into the one-line JSON that is stored, replayed and sent to
 * every subscriber. The envelope comes first, then the type's fields in the
 * order of docs/events.md:
 *   {"type","seq","session_id","run_id","ts", …fields}
 *
 * Ownership: constructors return a new event with one reference; json_t
 * arguments are borrowed (copied or referenced as needed); strings are
 * copied. evt_unref frees the event when the last reference goes.
 * Reference counting is atomic, so an event may be shared across threads;
 * its fields must not be changed once it is shared.
 */
#ifndef CHATPLANE_EVT_H
#define CHATPLANE_EVT_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/budget.h"
#include "core/guard.h"
#include "core/mode.h"
#include "core/status.h"
#include "core/stop.h"

typedef enum evt_type {
    EVT_MESSAGE,
    EVT_RUN_STARTED,
    EVT_STATUS,
    EVT_TOKEN,
    EVT_TOOL_STARTED,
    EVT_TOOL_PROGRESS,
    EVT_TOOL_FINISHED,
    EVT_BUDGET,
    EVT_GUARDRAIL,
    EVT_ERROR,
    EVT_RUN_STOPPED,
    EVT_APPROVAL_REQUESTED,
    EVT_APPROVAL_DECIDED,
    EVT_REPAIR,
    EVT_SUPERSEDED,
    EVT_INPUT_REQUESTED,
    EVT_INPUT_ANSWERED,
    EVT_RUN_QUEUED,
    EVT__COUNT
} evt_type;

/* The jansson flags of every JSON text the event log writes: compact, with
 * reals printed to 15 significant digits so that 0.1 reads "0.1" and not
 * "0.10000000000000001". Use them wherever the same objects are dumped. */
#define EVT_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* The largest `result` a tool_finished event carries (16 KiB); longer
 * results are cut at a UTF-8 character boundary and marked truncated. */
#define EVT_RESULT_MAX 16384

typedef struct evt {
    _Atomic int refs; /* reference count, changed with atomic operations */
    evt_type type;
    int64_t seq;      /* 0 until the store assigns it */
    int64_t ts_ms;    /* Unix time in milliseconds */
    char *session_id; /* in the event's own block (evt_unref frees it) */
    char *run_id;     /* the same; NULL encodes as null */
    /* id_hash(session_id), worked out once: the token journal, the event
     * log and the hub each find the event's session by it (fix 87 in
     * docs/benchmarks.md) */
    uint64_t session_hash;
    json_t *fields; /* owned: the type's own fields, in documented order; NULL when body is set */
    /* owned: the fields already encoded (the JSON members without braces),
     * which token events carry instead of a jansson tree: one is made for
     * every piece a model streams, and building and freeing the tree cost
     * more than the rest of the event (docs/benchmarks.md, fix 17) */
    char *body;
    size_t body_len;
    char *json; /* owned: the encoded event once evt_encode ran */
    size_t json_len;
} evt;

/* Where and when an event happens; strings are borrowed. */
typedef struct evt_origin {
    const char *session_id;
    const char *run_id;
    int64_t ts_ms;
} evt_origin;

/* Type names of docs/events.md: "message", "run_started", …, "run_stopped". */
const char *evt_type_name(evt_type t);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int evt_type_parse(const char *name, evt_type *out);

/* Builds an event of any type from its fields (a reference is stolen). */
evt *evt_new(evt_type type, const evt_origin *o, json_t *fields);
/* The event's own fields as a new reference, whichever way it carries them
 * (a token event made here carries them encoded, see evt.body); for code
 * off the hot path that reads a field. */
json_t *evt_fields(const evt *e);
evt *evt_ref(evt *e);
void evt_unref(evt *e);

/*
 * Text that comes from models and tools (content, token text, results,
 * errors, details) may hold any bytes: ill-formed UTF-8 is replaced by
 * U+FFFD, since every event must be valid JSON. A NULL string that
 * docs/events.md does not allow to be null encodes as "".
 */

/* role is "user", "assistant" or "tool"; tool_calls (assistant) and
 * tool_call_id (tool) may be NULL and then encode as null. */
evt *evt_message(const evt_origin *o, const char *message_id, const char *role, const char *content,
                 const json_t *tool_calls, const char *tool_call_id, bool partial);
/* Sets the model ("name/model") of an assistant message event, whose
 * model is null until then; NULL leaves it null. */
void evt_message_set_model(evt *e, const char *model);
/* A repair the engine made by itself (docs/events.md, repair): outcome is
 * "ok" or "failed"; evidence (may be NULL: {}) is copied. */
evt *evt_repair(const evt_origin *o, const char *playbook, const char *action, const char *detail,
                const char *outcome, const json_t *evidence);
/* message_ids: the ids a regenerate marked superseded, oldest first. */
evt *evt_superseded(const evt_origin *o, const json_t *message_ids);
/* A run sent while another works, waiting for it to stop (docs/events.md,
 * run_queued): the message it will send and its mode (NULL: the session's
 * mode when it starts, encoded as null); interrupt when the active run was
 * asked to stop for it. */
evt *evt_run_queued(const evt_origin *o, const char *message, const char *mode_name,
                    bool interrupt);
/* continues is the previous run's id for a continue, else NULL. */
evt *evt_run_started(const evt_origin *o, const char *mode_name, const mode_limits *limits,
                     const char *continues);
/* detail may be NULL (encodes as null). */
evt *evt_status(const evt_origin *o, run_status status, const char *detail);
evt *evt_token(const evt_origin *o, const char *message_id, const char *text, size_t len);
evt *evt_tool_started(const evt_origin *o, const char *execution_id, int step, const char *server,
                      const char *tool, const json_t *arguments);
/* total < 0 and message NULL encode as null; a progress or total that
 * holds a whole number encodes as an integer. */
evt *evt_tool_progress(const evt_origin *o, const char *execution_id, double progress, double total,
                       const char *message);
/* status is "ok", "error", "timeout" or "cancelled"; result is cut to
 * EVT_RESULT_MAX bytes (truncated: true then); error may be NULL. */
evt *evt_tool_finished(const evt_origin *o, const char *execution_id, int step, const char *server,
                       const char *tool, const char *status, const char *result, const char *error,
                       int64_t duration_ms);
/* limits, usage and the dimensions currently past 80 % as warnings. */
evt *evt_budget(const evt_origin *o, const budget *b);
evt *evt_guardrail(const evt_origin *o, const guard_verdict *v);
/* message_id may be NULL (encodes as null). */
evt *evt_error(const evt_origin *o, const char *code, const char *message, bool retryable,
               const char *message_id);
/* diagnosis NULL (completed, user_stopped) leaves the member out. */
evt *evt_run_stopped(const evt_origin *o, stop_reason reason, const char *detail,
                     const char *recovery_suggestion, const json_t *actions,
                     const json_t *diagnosis, bool wrapped_up, const budget_usage *usage);
/* annotations may be NULL (null); expires_ms is a wall-clock time. */
evt *evt_approval_requested(const evt_origin *o, const char *approval_id, const char *execution_id,
                            int step, const char *server, const char *tool, const json_t *arguments,
                            const char *reason, const json_t *annotations, int64_t expires_ms);
/* reason may be NULL (null). */
evt *evt_approval_decided(const evt_origin *o, const char *approval_id, const char *decision,
                          const char *decided_by, const char *reason, const char *remember);
/* A tool server's question (docs/runs.md, Questions): the form's message
 * and schema; expires_ms is a wall-clock time. */
evt *evt_input_requested(const evt_origin *o, const char *input_id, const char *execution_id,
                         const char *server, const char *message, const json_t *schema,
                         int64_t expires_ms);
/* action is "accept", "decline" or "cancel"; content (an accepted answer)
 * is left out when NULL. */
evt *evt_input_answered(const evt_origin *o, const char *input_id, const char *action,
                        const char *answered_by, const json_t *content);

/* Encodes the event (its seq must be set) into e->json, once; later calls
 * return at once. Returns 0, or -1 when seq is not set or the text would
 * pass 64 MiB. Encode an event before sharing it: two threads must not
 * encode the same event at once. */
int evt_encode(evt *e);

/*
 * Parses one encoded event (as evt_encode writes it) back into a new evt
 * whose json is the given text and whose fields are every key outside the
 * envelope, in their order. Returns NULL and writes a message naming the
 * problem into err (which may be NULL) on bad input: "invalid JSON at line L
 * column C: …", "an event must be a JSON object", "type must be a string",
 * "unknown event type \"x\"", "seq must be a positive integer",
 * "session_id must be a string", "run_id must be a string or null",
 * "ts must be an RFC 3339 time".
 */
evt *evt_parse(const char *json, size_t len, char *err, size_t errlen);

#endif
