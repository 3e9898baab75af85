/*
 * llm_plain: the model client's own transport for plain HTTP to an address
 * given by number (or localhost), on the libevent loop (docs/providers.md,
 * The model connection).
 *
 * A model on the same machine or network is where the relay's own cost
 * shows most: libcurl checks the socket again after each read (one more
 * system call per token) and holds about 13 KiB per call. This transport
 * reads each piece with one recv into the loop's stack, parses it with
 * core/http_reply and hands the body on, and keeps idle connections for
 * the next call. Everything else (TLS, names to resolve, proxies, user
 * and password in the URL) stays with libcurl: llm_plain_new declines such
 * URLs.
 *
 * Callbacks run from the loop, never from inside llm_plain_post or
 * llm_plain_cancel. on_end is the last one; after llm_plain_cancel none
 * runs.
 */
#ifndef CHATPLANE_LLM_PLAIN_H
#define CHATPLANE_LLM_PLAIN_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

typedef struct llm_plain llm_plain;
typedef struct llm_plain_call llm_plain_call;

/* How a call ended (on_end). */
#define LLM_PLAIN_OK      0 /* the whole response came */
#define LLM_PLAIN_CONNECT 1 /* no connection: why is the system's reason */
#define LLM_PLAIN_BROKEN  2 /* the connection failed or closed early */
#define LLM_PLAIN_BAD     3 /* the answer is not an HTTP response: why says how */
#define LLM_PLAIN_STOPPED 4 /* on_body asked to stop */

/* Idle connections kept for later calls, at most. */
#define LLM_PLAIN_IDLE_MAX 256
/* Bytes read at most in one turn of the loop for one call: a burst is
 * relayed piece by piece between the other calls' events and commits. */
#define LLM_PLAIN_READ_MAX (16 * 1024)
/* When more bytes wait behind the first piece of an answer's body (a
 * burst), the connection is left unread this long (µs): on two cores the
 * loop parsing the rest of the burst competed with the event log's writer
 * storing the first token, which the person waits for (docs/runs.md, The
 * model connection). */
#define LLM_PLAIN_FIRST_PAUSE_US 1000

typedef struct llm_plain_cb {
    void (*on_status)(void *ud, int status);
    void (*on_header)(void *ud, const char *name, size_t name_len, const char *value,
                      size_t value_len);
    /* Body bytes; false ends the call (LLM_PLAIN_STOPPED). */
    bool (*on_body)(void *ud, const char *data, size_t len);
    /* The end: code is one of LLM_PLAIN_*, why a reason for failures. */
    void (*on_end)(void *ud, int code, const char *why);
    /* Around every batch of callbacks from one event of the loop, so the
     * caller can defer freeing what a callback is inside of. Optional. */
    void (*enter)(void *owner_ud);
    void (*leave)(void *owner_ud);
} llm_plain_cb;

/* A transport for url, or NULL when it is not for this transport: not
 * http://, a host that is not an address or localhost, a user or password
 * in it, a fragment or bytes a URL must escape, or a proxy set in the
 * environment (http_proxy, all_proxy, ALL_PROXY). *path_out (when not NULL)
 * gets the request target, a new string. */
llm_plain *llm_plain_new(struct event_base *base, const char *url, char **path_out);
/* The Host header's value for the URL the transport was made for. */
const char *llm_plain_host(const llm_plain *p);
/* Frees the transport, its idle connections and every call still open,
 * without callbacks. */
void llm_plain_free(llm_plain *p);

/*
 * Sends req (the whole request: head and body; taken over, freed once
 * the answer starts) on an idle connection or a new one, at once when the
 * socket takes it, else from the loop. A connection that was idle and
 * closes before any byte of the answer is replaced by a new one once.
 * cb and ud stay with the call; owner_ud goes to enter and leave. Until
 * the first piece of the answer's body, the call's reads have the loop's
 * first priority, after it the streams' (lib/loopprio.h).
 */
llm_plain_call *llm_plain_post(llm_plain *p, char *req, size_t req_len, const llm_plain_cb *cb,
                               void *ud, void *owner_ud);
/* Ends a call at once: its connection is closed, no callback runs. */
void llm_plain_cancel(llm_plain_call *c);

#endif
