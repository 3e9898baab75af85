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
 * the text of a user message from a list of parts, and follow the tool
 * calls of a run by their ids.
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

/* Whether s is 1 to 128 characters of [A-Za-z0-9._:-]. */
bool agentproto_thread_valid(const char *s);

/* Writes "ses_" and 24 hex digits of SHA-256(owner, thread_id) into out.
 * owner NULL (authentication off) is the empty owner. */
void agentproto_session_id(const char *owner, const char *thread_id, char out[ID_MAX]);

/* Parses a request body (duplicate keys refused): a new reference, or NULL
 * with "invalid JSON at line L column C: …" in err. */
json_t *agentproto_load(const char *text, size_t len, char *err, size_t errlen);

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

#endif
