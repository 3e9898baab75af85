/*
 * eventlog: the writer thread. Everything chatplane writes goes through it
 * in order: events, and the row changes that go with them (a run stopping,
 * a message stored). The writer commits queued operations in batches (one
 * transaction per batch) and only then hands them back to the loop thread,
 * so an event is published to subscribers only after it is committed.
 *
 * Batching is group commit: when the writer is free it takes everything
 * queued (at most EVENTLOG_BATCH_MAX events) and commits it at once, so a
 * lone event is committed without waiting, and under load a batch closes
 * when the previous commit finishes. A busy writer is also paced: when
 * work came in while it wrote a batch, the next one begins no sooner than
 * EVENTLOG_PACE_NS (eventlog_set_pace) after the previous one began, so
 * that under load many events share a transaction (and one wake-up of
 * each thread) instead of each paying its own. Work the writer waited for
 * is committed at once, so a quiet server adds nothing; a busy one adds at
 * most that interval to an event's way out.
 *
 * Threads: eventlog_submit/eventlog_append and eventlog_drain are called on
 * the loop thread; apply callbacks run on the writer thread with its own
 * store connection, or on the loop thread with that same connection while
 * the writer waits (eventlog_write_here); done callbacks run on the loop
 * thread inside eventlog_drain or eventlog_write_here, in submission
 * order. eventlog_fd becomes readable when there is something to drain.
 */
#ifndef CHATPLANE_EVENTLOG_H
#define CHATPLANE_EVENTLOG_H

#include "core/evt.h"
#include "store/store.h"

#define EVENTLOG_BATCH_MAX 1000
/* The writer's page cache, in KiB: four times what other connections keep
 * (docs/benchmarks.md, fix 43). */
#define EVENTLOG_PAGE_CACHE_KIB 512
/* The most a batch takes when the writer was idle: the first events of a
 * burst are committed (and published) without waiting for a long batch. */
#define EVENTLOG_QUIET_BATCH_MAX 16
/* The least time between the starts of two commits unless set otherwise
 * (store.commit_interval_us; docs/benchmarks.md has the figures behind
 * it). */
#define EVENTLOG_PACE_NS 1000000
/* Events the token journal holds past which a batch of the writer is
 * followed by a transaction that stores them all (STORE_JOURNAL_SHARED
 * is 8,192; docs/benchmarks.md, fix 76). */
#define EVENTLOG_JOURNAL_STORE_AT 2048
/* While the writer is busy, the loop journals a session's token itself
 * only if it journaled none of that session's for this long: a faster
 * stream's tokens share the writer's appends (docs/storage.md, The token
 * journal). */
#define EVENTLOG_LOOP_PACE_NS 1000000
/* How many times a batch the database rolled back (DB_ERR_RETRY) is written. */
#define EVENTLOG_RETRY_MAX 3
/* A batch whose connection was lost is written again once it is back,
 * trying every EVENTLOG_RECONNECT_PAUSE_MS doubling to
 * EVENTLOG_RECONNECT_PAUSE_MAX_MS, until the connection has been lost
 * this long; its operations fail after that. */
#define EVENTLOG_RECONNECT_MAX_MS       30000
#define EVENTLOG_RECONNECT_PAUSE_MS     50
#define EVENTLOG_RECONNECT_PAUSE_MAX_MS 1000

typedef struct eventlog eventlog;

/*
 * One queued write. apply (may be NULL for a pure event) runs on the writer
 * inside the batch transaction; a negative return fails the whole batch.
 * A batch that failed because of one op is written again one op per
 * transaction, and a batch whose connection was lost is written again once
 * it is back (EVENTLOG_RECONNECT_MAX_MS), so apply may run several times
 * and must only write through s.
 * ev (may be NULL) is appended after apply. done (may be NULL) runs on the
 * loop thread with status 0 when committed, negative when the batch failed
 * (ev->seq is then meaningless). The eventlog takes the op's reference to ev.
 * session_id (may be NULL) names the one session an apply reads or writes,
 * when it touches no other: the token journal may then take the tokens of
 * other sessions that share its batch (docs/storage.md, The token
 * journal). An apply without it may touch any session, and its batch's
 * tokens all go to the transaction. It must stay valid until done runs.
 * emitted (may be NULL) is asked, right after an apply that succeeded,
 * for events the apply made: *evs set to n of them, still owned by arg.
 * They are stored in the same transaction, before ev, and published after
 * done, in their order (a run's start stores its first events in its own
 * transaction: docs/storage.md, Writing on the loop). The log takes
 * references of its own.
 */
typedef struct eventlog_op {
    int (*apply)(store *s, void *arg);
    void (*done)(void *arg, evt *ev, int status);
    void *arg;
    evt *ev;
    const char *session_id;
    size_t (*emitted)(void *arg, evt *const **evs);
} eventlog_op;

/* Called on the loop thread, in commit order, for every committed evt
 * (after its op's done). */
typedef void (*eventlog_publish_cb)(void *ud, evt *ev);

/* Starts the writer thread on its own connection to url. */
int eventlog_start(const char *url, eventlog_publish_cb publish, void *ud, eventlog **out,
                   char *err, size_t errlen);
/* Commits everything queued, stops the thread, runs the remaining done and
 * publish callbacks, and frees the log. */
void eventlog_stop(eventlog *log);

void eventlog_submit(eventlog *log, const eventlog_op *op);
/* Submits an op somebody waits on to begin (a run's start, an answer's
 * first token): a writer waiting out the pace takes its batch at once. */
void eventlog_submit_urgent(eventlog *log, const eventlog_op *op);
/* Shorthand for an op that only appends ev (reference taken). */
void eventlog_append(eventlog *log, evt *ev);
/*
 * Lets the loop write what an idle writer would be woken for (SQLite,
 * docs/storage.md, Writing on the loop): a submission that finds the
 * writer waiting leaves it asleep and calls kick(ud) once, and the loop's
 * owner then calls eventlog_write_here from a callback of its own, where
 * nothing of the caller's is on the stack. A kick that returns false
 * declines (the loop is busy): the writer is woken as without it. NULL
 * turns it off.
 */
void eventlog_set_here(eventlog *log, bool (*kick)(void *ud), void *ud);
/*
 * Lets the loop time the token journal (SQLite, docs/storage.md, Writing
 * on the loop): a token journaled while the writer waits with no time
 * limit leaves it asleep and calls arm(ud, ms) on the loop thread, once
 * until the journal is stored; the loop's owner then calls
 * eventlog_journal_timer_fired ms later. NULL turns it off (and an idle
 * writer times the journal itself again).
 */
void eventlog_set_journal_timer(eventlog *log, void (*arm)(void *ud, int64_t ms), void *ud);
/* Called on the loop thread when the timer fires: once neither the writer
 * nor the loop committed for the journal's idle time
 * (eventlog_set_journal_idle), wakes the writer to store what the journal
 * holds at once; earlier, arms the timer again for the rest. */
void eventlog_journal_timer_fired(eventlog *log);
/* Writes a batch of what is pending on the loop thread, with the writer's
 * connection, while the writer still waits; otherwise leaves it to the
 * writer (and wakes it). Runs the batch's done and publish callbacks. */
void eventlog_write_here(eventlog *log);
/* Between a hold and its release, submissions wake an idle writer once, at
 * the release, so operations that belong together (a run's end: its
 * answer, its budget and its stopped row) go into one transaction instead
 * of the first alone. Loop thread only; holds nest. */
void eventlog_hold(eventlog *log);
void eventlog_release(eventlog *log);

/* Calls cb for each event of the session that the token journal holds
 * with a seq above after, in seq order (store_journal_held_after): the
 * published events that the tables may not hold yet. Returns how many. */
int eventlog_held_after(eventlog *log, const char *session_id, int64_t after, store_event_cb cb,
                        void *ud);

/* The fd that becomes readable when committed work waits for drain. */
int eventlog_fd(const eventlog *log);
/* Runs done and publish callbacks of committed batches. */
void eventlog_drain(eventlog *log);
/* Blocks until everything submitted so far is committed to the tables
 * (the token journal's events too) and drained. */
void eventlog_flush(eventlog *log);

/* Figures for /metrics and benchmarks: committed transactions, committed
 * events, ops that failed, and the time spent writing transactions. */
typedef struct eventlog_stats {
    uint64_t batches, events, failures;
    uint64_t commit_ns_total;
} eventlog_stats;
void eventlog_get_stats(const eventlog *log, eventlog_stats *out);
/* Called on the writer thread after every commit with its duration. */
void eventlog_set_commit_observer(eventlog *log, void (*cb)(void *ud, double seconds), void *ud);
/* Sets the least time between the starts of two commits; 0 commits each
 * batch as soon as the writer is free. */
void eventlog_set_pace(eventlog *log, int64_t ns);
/* Sets how long the writer waits with nothing to do before it stores what
 * the token journal holds (STORE_JOURNAL_IDLE_MS unless set; at least 1).
 * A wait already begun keeps its deadline. */
void eventlog_set_journal_idle(eventlog *log, int64_t ms);

#endif
