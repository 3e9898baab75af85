/*
 * pgnotify: the listening side of PostgreSQL notifications, on the event
 * loop. Instances that share one database tell each other through it that
 * a session has new events (STORE_EVENTS_CHANNEL) and pass control
 * messages for runs (STORE_CONTROL_CHANNEL); see store.h.
 *
 * One dedicated libpq connection, never blocking the loop: it connects
 * with PQconnectStartParams/PQconnectPoll, sends LISTEN for both channels,
 * then reads notifications (PQconsumeInput, PQnotifies) whenever its socket
 * becomes readable. A connection that is lost, or cannot be made within
 * PGNOTIFY_CONNECT_TIMEOUT_MS, is tried again after a backoff of 0.5 s
 * doubling to 5 s. Notifications sent while it was down are lost, so each
 * time it is listening again on_up runs: the caller catches up from the
 * store.
 *
 * Everything, callbacks included, runs on the loop thread.
 */
#ifndef CHATPLANE_PGNOTIFY_H
#define CHATPLANE_PGNOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define PGNOTIFY_CONNECT_TIMEOUT_MS 10000
#define PGNOTIFY_BACKOFF_MIN_MS     500
#define PGNOTIFY_BACKOFF_MAX_MS     5000
#define PGNOTIFY_SESSION_MAX        128 /* longest session id in an events payload */

typedef struct pgnotify pgnotify;

typedef struct pgnotify_handlers {
    /* A session's events up to seq are committed. */
    void (*on_events)(void *ud, const char *session_id, int64_t seq);
    /* A control message: its text, as sent. */
    void (*on_control)(void *ud, const char *payload);
    /* Listening, first or again after a loss. */
    void (*on_up)(void *ud);
    void *ud;
} pgnotify_handlers;

/* Starts listening on url (a postgres:// URL or libpq conninfo); connecting
 * begins at once and goes on in the background. Handlers may be NULL. */
pgnotify *pgnotify_start(struct event_base *base, const char *url, const pgnotify_handlers *h);
/* Closes the connection and frees n (NULL is fine). */
void pgnotify_stop(pgnotify *n);
/* True while the connection is up and listening. */
bool pgnotify_is_up(const pgnotify *n);

/* Parses an events payload "session_id:seq" (seq a positive decimal, the
 * session id non-empty and shorter than len). Returns 0 or -1. */
int pgnotify_parse_events(const char *payload, char *session_id, size_t len, int64_t *seq);

#endif
