/*
 * hub: the live event streams (docs/events.md, The stream). It keeps the SSE
 * subscribers of every session and fans committed events out to them.
 *
 * Each committed event is framed once ("id: …\nevent: …\ndata: …\n\n")
 * into a reference-counted frame that every subscriber's connection sends
 * by reference, never copied per subscriber. Each session keeps an
 * in-memory tail of its recent frames (at most HUB_TAIL_EVENTS events and
 * HUB_TAIL_BYTES bytes) that serves most reconnects without a query. A
 * replay that reached the end of what the tables hold and still falls
 * short of the tail reads the rest from the token journal
 * (eventlog_held_after), which holds the events the tables do not have
 * yet.
 *
 * A subscriber is registered before its replay starts: it replays from the
 * tail, or from the store through the dbpool in pages of 1000, and then
 * switches to live frames, skipping every seq it already sent, so it sees
 * no gap and no duplicate. A subscriber whose connection holds more than
 * the subscriber buffer of unsent bytes is disconnected; it reconnects with
 * Last-Event-ID and loses nothing. Nobody waits for a slow subscriber.
 * After 15 s without a write a subscriber gets ": ping".
 *
 * A session, and an owner (a token's name), each hold at most a limit of
 * streams at once (limits.subscribers_per_session and
 * limits.subscribers_per_token); a stream over either is refused.
 *
 * Several instances on one PostgreSQL: events another instance committed
 * are announced (hub_notify) and read from the store by seq; a session's
 * frames go out in seq order whoever committed them, with no gap and no
 * duplicate, since the hub delivers each seq once and a local event that
 * comes past a gap waits for the events before it. Missed notifications
 * (the listening connection was lost) are made up by hub_catch_up.
 *
 * Everything runs on the loop thread.
 */
#ifndef CHATPLANE_HUB_H
#define CHATPLANE_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "core/evt.h"
#include "lib/buf.h"
#include "net/http.h"
#include "store/dbpool.h"
#include "store/eventlog.h"

struct event_base;

/* The tail is kept for every session with a stream or a run (up to
 * HUB__SESSIONS_MAX of them), so it stays small: enough for the events
 * published between a client's read of a session and its subscription, or
 * a connection lost for a moment; a client away longer (a reconnect waits
 * the two seconds of HUB_RETRY_MS) reads from the store, about a million
 * events a second. docs/benchmarks.md has the memory figures (fixes 16
 * and 44). */
#define HUB_TAIL_EVENTS 8
#define HUB_TAIL_BYTES  (2u << 10)
#define HUB_PAGE        1000
#define HUB_PING_MS     15000
#define HUB_RETRY_MS    2000
/* How long after a notification the store is read: a burst becomes one
 * read, and this instance's own events are usually published by then. */
#define HUB_NOTIFY_DELAY_MS 10

typedef struct hub hub;
typedef struct hub_sub hub_sub;

/* log, when not NULL, is the event log whose token journal a replay reads
 * (PostgreSQL has none). */
hub *hub_new(struct event_base *base, dbpool *pool, eventlog *log, size_t subscriber_buffer_bytes);
/* Registers the open-stream gauge on /metrics. Call before threads start. */
void hub_metrics_register(void);
/* The most streams one session and one owner may hold (0: no limit, the
 * default). */
void hub_set_limits(hub *h, size_t per_session, size_t per_owner);
/* Ends every stream and frees the hub. Subscribers still waiting for a
 * dbpool query are freed by that query's done callback. */
void hub_free(hub *h);

/* A committed event (seq set, encoded) to fan out; called from the
 * eventlog's publish callback in commit order. */
void hub_publish(hub *h, const evt *ev);

/* Another instance committed the session's events up to seq: sessions
 * with subscribers read what they have not delivered yet. */
void hub_notify(hub *h, const char *session_id, int64_t seq);
/* Notifications may have been missed: every session with subscribers
 * reads the store after its last delivered event, and the tails of the
 * others are forgotten. */
void hub_catch_up(hub *h);

/*
 * Answers r with the session's event stream: "retry: 2000", the events with
 * seq > after, then live events. The caller checked that the session
 * exists (and belongs to owner, NULL when authentication is off). Returns
 * 0 and r is owned by the hub from now on; or -1 when the session or the
 * owner already holds its limit of streams, and the caller answers r.
 */
int hub_subscribe(hub *h, http_req *r, const char *session_id, const char *owner, int64_t after);

/*
 * A run-scoped stream (POST …/runs with Accept: text/event-stream). Call
 * hub_watch before starting the run, so none of its events is missed; then
 * either hub_watch_start with the run id (the hub answers 200 and streams
 * that run's events up to its run_stopped, then ends the response) or
 * hub_watch_cancel (the caller answers r itself). NULL when the session or
 * the owner already holds its limit of streams: the caller answers r.
 */
hub_sub *hub_watch(hub *h, http_req *r, const char *session_id, const char *owner);
void hub_watch_start(hub_sub *s, const char *run_id);

/*
 * Translating streams (docs/protocols.md): the agent protocols send their
 * own frames, made from the same committed events. on_event gets each
 * event's JSON as stored, in seq order, and appends the bytes to send;
 * it returns 0 to go on, non-zero to end the stream after them. on_free
 * frees ud when the stream is gone (also when it never started).
 */
typedef struct hub_xlate {
    const char *content_type; /* of the response; static */
    const char *header_name;  /* one more response header, or NULL; static */
    const char *header_value;
    int (*on_event)(void *ud, const char *json, size_t len, buf *out);
    /* The run ended without a stored run_stopped (hub_run_unrecorded):
     * appends the stream's last bytes. */
    void (*on_unrecorded)(void *ud, buf *out);
    void (*on_free)(void *ud);
    void *ud;
} hub_xlate;

/* hub_watch whose run's events go through x. On NULL, x->on_free was not
 * called: ud is still the caller's. */
hub_sub *hub_watch_as(hub *h, http_req *r, const char *session_id, const char *owner,
                      const hub_xlate *x);
/*
 * Answers r with one run's events from the session's log, from the first
 * (replayed) to the run's run_stopped (live), through x; a reconnect after
 * a dropped connection sees the run from its start again. The caller
 * checked the session as for hub_subscribe. Returns 0 (r and ud are the
 * hub's), or -1 over the stream limits (the caller answers r and keeps ud).
 */
int hub_follow(hub *h, http_req *r, const char *session_id, const char *owner, const char *run_id,
               const hub_xlate *x);
void hub_watch_cancel(hub_sub *s);

/* The names of the owners holding at least one stream: a new array of
 * copies in *out (free each and the array); returns the count. */
size_t hub_owners(const hub *h, char ***out);
/* Ends every started stream of owner (its token was revoked). Returns how
 * many. */
size_t hub_end_owner(hub *h, const char *owner);

/* The run ended but its run_stopped could not be stored (the database
 * refuses writes; it is stored later or recovered at the next start). Its
 * run streams send what they hold, then a comment saying so, and end.
 * The session's streams go on: they get the run_stopped when it is
 * stored. */
void hub_run_unrecorded(hub *h, const char *session_id, const char *run_id);

/* Ends the streams of a deleted session and forgets its tail. */
void hub_session_deleted(hub *h, const char *session_id);

/* Shutting down: from now on a subscriber that would need a store query
 * is ended instead (the read pool is about to stop). Live streams go on. */
void hub_shutdown(hub *h);

/* Ends every stream (at shutdown). */
void hub_close_all(hub *h);

/* Open streams. */
size_t hub_subscriber_count(const hub *h);

#endif
