/*
 * agentproto: what the agent protocols (docs/protocols.md) share, used by
 * core/agui and core/aisdk.
 *
 * Thread ids: an AG-UI threadId or an AI SDK chat id names one session of
 * its owner. The session's id is derived from the owner and the thread id,
 * so the same thread always finds the same session, and two owners using
 * the same thread id never share one.
 *
 * Both protocols frame each event or chunk as one SSE "data:" line, take
 * the text of a user message from a list of parts, read a person's answer
 * to an approval as a boolean and an optional reason, and follow the tool
 * calls of a run by their ids. Their translators keep the same state (the
 * open text, the open step, the tool calls waiting for results, the
 * approval a continuation waits for) and open and close text alike, under
 * the names each protocol gives its events (agentproto_dialect).
 */
#ifndef CHATPLANE_AGENTPROTO_H
#define CHATPLANE_AGENTPROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/id.h"

#define AGENTPROTO_THREAD_MAX 128
/* The most bytes of text one user message's parts may join to. */
#define AGENTPROTO_TEXT_MAX ((size_t)1 << 26)

/* Writes a printf-style message into err (nothing when err is NULL or
 * errlen 0): what the readers of request bodies report problems with. */
void agentproto_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An optional string field's value v (borrowed): absent or null sets *out
 * NULL, a string sets it to a new copy. -1 (and *out untouched) for a value
 * of another kind. */
int agentproto_string_opt(const json_t *v, char **out);

#define AGENTPROTO_BAD_APPROVED (-1)
#define AGENTPROTO_BAD_REASON   (-2)

/*
 * Reads a person's answer to an approval from the object o (borrowed):
 * "approved", a boolean, and "reason", an optional string. Returns 0 with
 * *approved (false when need_approved is false and "approved" is no
 * boolean) and *reason (a new string, or NULL); AGENTPROTO_BAD_APPROVED
 * when need_approved and "approved" is no boolean; AGENTPROTO_BAD_REASON
 * when "reason" is neither absent, null nor a string. The outputs are
 * untouched on failure. The caller words the error, which names the place.
 */
int agentproto_decision(const json_t *o, bool need_approved, bool *approved, char **reason);

/* Whether s is 1 to 128 characters of [A-Za-z0-9._:-]. */
bool agentproto_thread_valid(const char *s);

/* Writes "ses_" and 24 hex digits of SHA-256(owner, thread_id) into out.
 * owner NULL (authentication off) is the empty owner. */
void agentproto_session_id(const char *owner, const char *thread_id, char out[ID_MAX]);

/* Parses a request body (duplicate keys refused): a new reference, or NULL
 * with "invalid JSON at line L column C: …" in err. */
json_t *agentproto_load(const char *text, size_t len, char *err, size_t errlen);

/* A protocol's reader of a request body already parsed (borrowed) into
 * out: 0, or -1 with err set. */
typedef int (*agentproto_read_fn)(const json_t *in, void *out, char *err, size_t errlen);
/* Parses text as agentproto_load does and reads it with read into out:
 * read's answer, or -1 when the text is no JSON (read is not called). */
int agentproto_parse(const char *text, size_t len, agentproto_read_fn read, void *out, char *err,
                     size_t errlen);

/* Checks that v is a list of at most max items: 0, or -1 with "WHERE must
 * be a list" or "WHERE holds more than MAX ITEMS" in err. */
int agentproto_list(const json_t *v, const char *where, size_t max, const char *items, char *err,
                    size_t errlen);

/* Appends "data: <v as compact JSON>\n\n" and releases v (a reference is
 * stolen). Returns 0 or BUF_TOOBIG. */
int agentproto_emit(buf *out, json_t *v);

/*
 * The text of a list of parts, [{"type": "text", "text"}…], joined without
 * separator: a new string ("" for no part). NULL with a message in err on
 * a part of another kind ("WHERE[2]: only text parts are supported"), a
 * value that is not a list ("WHERE must be a list") or a text over
 * AGENTPROTO_TEXT_MAX ("WHERE is too long"); where names the list.
 */
char *agentproto_text(const json_t *parts, const char *where, char *err, size_t errlen);

/* Ids as JSON arrays of strings. */
bool agentproto_ids_has(const json_t *ids, const char *id);
/* Removes the first id equal to id, if any. */
void agentproto_ids_drop(json_t *ids, const char *id);
/* Appends the id of each of an assistant message's tool_calls (OpenAI
 * form; calls without an id are skipped). */
void agentproto_ids_add_calls(json_t *ids, const json_t *tool_calls);

/* How a run's stop reason (docs/events.md, run_stopped) ends a protocol's
 * run: as an error, as cancelled, or as done. */
typedef enum agentproto_stop {
    AGENTPROTO_STOP_DONE,
    AGENTPROTO_STOP_ERROR,
    AGENTPROTO_STOP_CANCELLED,
} agentproto_stop;
agentproto_stop agentproto_stop_kind(const char *reason);

/* ---- the translators' shared state ---- */

/* The message of a run that stopped without its run_stopped being stored
 * (the database refused the write). */
#define AGENTPROTO_UNRECORDED_MESSAGE                                                              \
    "the database refused a write, so the run stopped; its end is recorded and shown on the "      \
    "session once the database takes writes again"

/* The names one protocol gives the events of a text message. */
typedef struct agentproto_dialect {
    const char *text_start, *text_delta, *text_end; /* the event types */
    const char *text_key;                           /* the key of the text's id */
    const char *start_role;                         /* the start's "role", or NULL */
} agentproto_dialect;

typedef struct agentproto_xlate {
    const agentproto_dialect *d; /* static, borrowed */
    char *wait_approval;         /* nothing goes out before this approval's decision */
    bool started, ended;
    char *text_id; /* the open text message, or NULL */
    bool step_open;
    json_t *pending; /* ids of the tool calls whose results have not come, in order */
} agentproto_xlate;

/* wait_approval: the approval whose decision the stream starts after, or
 * NULL; copied. */
void agentproto_xlate_init(agentproto_xlate *x, const agentproto_dialect *d,
                           const char *wait_approval);
void agentproto_xlate_cleanup(agentproto_xlate *x);

/* A new event object {"type": type}. */
json_t *agentproto_event(const char *type);

/* Each returns 0 or BUF_TOOBIG. */
/* Ends the open text message, if any. */
int agentproto_text_close(agentproto_xlate *x, buf *out);
/* Opens the text message id, ending another one that is open. */
int agentproto_text_open(agentproto_xlate *x, const char *id, buf *out);
/* A piece of the text of message id; nothing for a NULL or empty text
 * (AG-UI forbids an empty delta). */
int agentproto_text_delta(agentproto_xlate *x, const char *id, const char *text, buf *out);
/* A token event (borrowed): its text, in its message, opened if need be. */
int agentproto_xlate_token(agentproto_xlate *x, const json_t *ev, buf *out);
/* An error event: the failed attempt's text is discarded by chatplane; the
 * protocols cannot take it back, so its message just ends here. */
int agentproto_xlate_error(agentproto_xlate *x, const json_t *ev, buf *out);
/* The text of an assistant message: it ends the message its tokens
 * opened, or, when its tokens were not seen (the run's token events were
 * compacted away), its whole text content goes out at once. */
int agentproto_xlate_text(agentproto_xlate *x, const char *id, const char *content, buf *out);

/* Called for each tool call of an assistant message that has an id: the
 * call's function name and arguments (either may be NULL). */
typedef int (*agentproto_call_fn)(void *ud, const char *id, const char *name, const char *args,
                                  buf *out);
/* The ids of calls (OpenAI form, borrowed) wait for their results; each
 * call with an id goes to fn in order. Returns the first non-zero of fn,
 * or 0. */
int agentproto_xlate_calls(agentproto_xlate *x, const json_t *calls, agentproto_call_fn fn,
                           void *ud, buf *out);

#define AGENTPROTO_PASS    0 /* translate the event */
#define AGENTPROTO_HOLD    1 /* nothing goes out for it */
#define AGENTPROTO_DECIDED 2 /* the awaited decision: the wait is over */
/*
 * While x waits for an approval's decision: a message event is held back
 * with its tool calls followed in pending, run_stopped passes, the awaited
 * approval_decided ends the wait (AGENTPROTO_DECIDED), and any other event
 * is held. AGENTPROTO_PASS when x does not wait.
 */
int agentproto_xlate_wait(agentproto_xlate *x, const char *type, const json_t *ev);

#endif
