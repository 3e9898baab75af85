/*
 * eventlog: the writer thread (see eventlog.h).
 *
 * Two queues under one mutex: `pending` holds submitted operations the
 * writer has not taken yet, `done` holds operations whose batch finished
 * (committed or failed) and that wait for eventlog_drain on the loop
 * thread. The writer takes everything pending (up to EVENTLOG_BATCH_MAX
 * operations), writes it in one transaction, moves it to `done` and wakes
 * the loop through an eventfd. Nothing reaches a publish callback before
 * its transaction committed.
 *
 * A batch that fails because of one operation (a constraint, a session
 * that was deleted, an apply that refused) is written again one operation
 * per transaction, so only the operations that fail on their own report
 * failure. A batch that fails because of the database as a whole (busy,
 * full or read-only) fails every operation in it at once.
 *
 * A batch whose connection was lost (PostgreSQL restarted or unreachable)
 * is written again once the connection is back, waiting with backoff for
 * at most EVENTLOG_RECONNECT_MAX_MS from the moment it was lost; only then
 * do its operations fail. A lost answer to COMMIT leaves it unknown whether
 * the batch committed, so before writing it again the writer reads back
 * its first event: the row at that event's session and seq holds the very
 * same encoded text (which carries the seq and the time in milliseconds)
 * only if this batch put it there. The batch is then either reported
 * committed or written again, never twice.
 */
#include "store/eventlog.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/id.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store_journal.h"

/*
 * A session with operations submitted that the loop has not handed out
 * yet, and how many: the loop appends a token of a session to the journal
 * itself only while it has none, so that the session's events are still
 * published in order (eventlog__submit_inline).
 */
typedef struct eventlog_owed {
    struct eventlog_owed *next;
    size_t n;
    size_t bucket;
    char id[];
} eventlog_owed;

#define EVENTLOG__OWED_BUCKETS 1024

typedef struct eventlog_item {
    eventlog_op op;
    int status;
    bool journaled;         /* the token journal took it (eventlog__journal_part) */
    bool urgent;            /* submitted with eventlog_submit_urgent */
    bool unscoped;          /* an apply that names no session: it may write to any */
    eventlog_owed *owed[2]; /* the sessions it writes to, counted in eventlog.owed */
    evt **emitted;          /* the events its apply made (op.emitted), referenced */
    size_t nemitted;
    struct eventlog_item *next;
} eventlog_item;

typedef struct eventlog_queue {
    eventlog_item *head, *tail;
} eventlog_queue;

struct eventlog {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work;     /* the writer waits here for operations or stop */
    pthread_cond_t finished; /* eventlog_flush waits here for the writer */
    eventlog_queue pending;
    eventlog_queue done;
    uint64_t submitted;    /* operations ever submitted */
    uint64_t finished_ops; /* operations ever moved to done */
    bool stopping;
    int efd;
    store *st; /* the writer's connection, used only by the writer thread */
    eventlog_publish_cb publish;
    void *ud;
    eventlog_stats stats;
    void (*observer)(void *ud, double seconds);
    void *observer_ud;
    int64_t conn_lost_ms;    /* when the connection was lost (monotonic), 0 while it is up */
    int64_t last_commit_ns;  /* when the writer last began a batch (monotonic) */
    int64_t pace_ns;         /* the least time between two batches' starts */
    int64_t journal_idle_ms; /* how long the writer idles before it stores the journal */
    bool busy;               /* work came in while the last batch was written */
    bool writer_idle;        /* the writer waits on work and has not been signalled */
    bool writer_timed;       /* it waits at most journal_idle_ms (the journal holds events) */
    bool pacing;             /* the writer waits out the pace before taking a batch */
    bool urgent;             /* an urgent operation is pending */
    bool jumped;             /* the last batch was urgent operations taken ahead of the rest */
    bool wake_unsent;        /* a batch's wake-up of the loop is being written */
    /* Writing on the loop (eventlog_set_here): the loop's owner is asked
     * (here_kick) to call eventlog_write_here; here_busy while the loop
     * writes with the writer's connection, which the writer then leaves
     * alone (writer_waits_here: it waits for the loop to finish). */
    bool (*here_kick)(void *ud);
    void *here_ud;
    bool here_kicked;
    bool here_busy;
    bool writer_waits_here;
    /* The loop's timer for the token journal (eventlog_set_journal_timer):
     * while it is set, a token journaled while the writer waits untimed
     * arms it (and marks the writer timed) instead of waking the writer. */
    void (*journal_arm)(void *ud, int64_t ms);
    void *journal_ud;
    bool journal_due; /* the loop's timer found the pause over: store it now */
    /* The store that follows a batch (EVENTLOG_JOURNAL_STORE_AT) failed:
     * not tried again until a batch commits. Writer thread only. */
    bool journal_store_failed;
    bool draining;  /* the loop's thread only: eventlog_drain is handing out a batch */
    int held;       /* the loop's thread only: eventlog_hold's depth */
    bool wake_owed; /* the loop's thread only: a wake-up a hold put off */
    eventlog_owed *owed[EVENTLOG__OWED_BUCKETS]; /* sessions with operations not handed out */
    size_t unscoped; /* operations not handed out that name no session */
};

static void eventlog__queue_push(eventlog_queue *q, eventlog_item *it)
{
    it->next = NULL;
    if (q->tail) {
        q->tail->next = it;
    } else {
        q->head = it;
    }
    q->tail = it;
}

/* Moves every item of src to the end of dst. */
static void eventlog__queue_splice(eventlog_queue *dst, eventlog_queue *src)
{
    if (!src->head) return;
    if (dst->tail) {
        dst->tail->next = src->head;
    } else {
        dst->head = src->head;
    }
    dst->tail = src->tail;
    src->head = src->tail = NULL;
}

/* ------------------------------------------------------------------------
 * Operations not handed out yet, by session (under log->mu)
 */

/* The operations owed for a session whose id hashes to hash (id_hash). */
static eventlog_owed *eventlog__owed_hashed(const eventlog *log, const char *id, uint64_t hash)
{
    for (eventlog_owed *o = log->owed[hash % EVENTLOG__OWED_BUCKETS]; o; o = o->next)
        if (strcmp(o->id, id) == 0) return o;
    return NULL;
}

/* Counts one more operation owed for the session id, whose hash is given:
 * an event's is worked out once, when it is made (evt.session_hash). */
static eventlog_owed *eventlog__owe(eventlog *log, const char *id, uint64_t hash)
{
    eventlog_owed *o = eventlog__owed_hashed(log, id, hash);
    if (!o) {
        size_t len = strlen(id);
        o = xmalloc(sizeof *o + len + 1);
        memcpy(o->id, id, len + 1);
        o->n = 0;
        o->bucket = (size_t)(hash % EVENTLOG__OWED_BUCKETS);
        o->next = log->owed[o->bucket];
        log->owed[o->bucket] = o;
    }
    o->n++;
    return o;
}

static void eventlog__repay(eventlog *log, eventlog_owed *o)
{
    if (--o->n > 0) return;
    eventlog_owed **pp = &log->owed[o->bucket];
    while (*pp != o) pp = &(*pp)->next;
    *pp = o->next;
    free(o);
}

/* Counts a submitted item against the sessions it writes to. */
static void eventlog__hold(eventlog *log, eventlog_item *it)
{
    const char *named = it->op.session_id;
    const char *of_ev = it->op.ev ? it->op.ev->session_id : NULL;
    if (it->op.apply && !named) {
        it->unscoped = true;
        log->unscoped++;
        return;
    }
    if (named) it->owed[0] = eventlog__owe(log, named, id_hash(named));
    if (of_ev && (!named || strcmp(named, of_ev) != 0))
        it->owed[1] = eventlog__owe(log, of_ev, it->op.ev->session_hash);
}

/* The item was handed out. */
static void eventlog__release(eventlog *log, eventlog_item *it)
{
    if (it->unscoped) log->unscoped--;
    for (int i = 0; i < 2; i++)
        if (it->owed[i]) eventlog__repay(log, it->owed[i]);
}

/* Takes at most max items from the front of q into batch; returns how many. */
static size_t eventlog__queue_take(eventlog_queue *q, eventlog_queue *batch, size_t max)
{
    size_t n = 0;
    batch->head = batch->tail = NULL;
    while (q->head && n < max) {
        eventlog_item *it = q->head;
        q->head = it->next;
        eventlog__queue_push(batch, it);
        n++;
    }
    if (!q->head) q->tail = NULL;
    return n;
}

/* Whether an urgent item may be written before the items queued ahead of
 * it: when it names its sessions and nothing else not handed out yet
 * writes to them (under log->mu). */
static bool eventlog__may_jump(const eventlog *log, const eventlog_item *it)
{
    if (it->unscoped || log->unscoped > 0) return false;
    for (int i = 0; i < 2; i++)
        if (it->owed[i] && it->owed[i]->n > 1) return false;
    return it->owed[0] || it->owed[1];
}

/*
 * When more than max items are pending, takes into batch the urgent ones
 * that may go ahead of the rest (eventlog__may_jump), at most max, and
 * returns how many; 0 means the queue is taken in order. A run's start or
 * an answer's first token queued behind a thousand other sessions' events
 * then commits in a small transaction of its own instead of after all of
 * them: events of different sessions have no order between them, and
 * each session's own keep theirs (docs/architecture.md, One loop, two
 * kinds of database threads).
 * Clears log->urgent unless an urgent item had to stay (under log->mu).
 */
static size_t eventlog__take_urgent(eventlog *log, eventlog_queue *batch, size_t max)
{
    size_t queued = 0;
    for (const eventlog_item *it = log->pending.head; it && queued <= max; it = it->next) queued++;
    if (queued <= max) return 0;
    size_t n = 0;
    bool stays = false;
    batch->head = batch->tail = NULL;
    eventlog_item **pp = &log->pending.head, *prev = NULL;
    while (*pp) {
        eventlog_item *it = *pp;
        if (!it->urgent || n == max || !eventlog__may_jump(log, it)) {
            stays = stays || it->urgent;
            prev = it;
            pp = &it->next;
            continue;
        }
        *pp = it->next;
        if (log->pending.tail == it) log->pending.tail = prev;
        eventlog__queue_push(batch, it);
        n++;
    }
    log->urgent = stays;
    return n;
}

/* ------------------------------------------------------------------------
 * The writer thread
 */

/* Drops the events an earlier try of it.apply made. */
static void eventlog__drop_emitted(eventlog_item *it)
{
    for (size_t i = 0; i < it->nemitted; i++) evt_unref(it->emitted[i]);
    free(it->emitted);
    it->emitted = NULL;
    it->nemitted = 0;
}

/* Takes the events it.apply made and stores them; 0 or a store error. */
static int eventlog__store_emitted(store *st, eventlog_item *it)
{
    evt *const *evs = NULL;
    size_t k = it->op.emitted(it->op.arg, &evs);
    if (k == 0) return 0;
    it->emitted = xmalloc(k * sizeof *it->emitted);
    for (size_t i = 0; i < k; i++) it->emitted[i] = evt_ref(evs[i]);
    it->nemitted = k;
    return store_event_append(st, it->emitted, k);
}

/*
 * Writes the n items from first in one transaction: each apply runs after
 * every event queued before it is appended, so an operation sees the
 * writes of those before it; runs of plain events go in as one multi-row
 * append; the events an apply makes (op.emitted) go in right after it.
 * Returns 0 when committed, else a negative code (rolled back,
 * except that a connection lost at COMMIT, *at_commit, may have committed).
 */
static int eventlog__commit_ops(store *st, eventlog_item *first, size_t n, bool *at_commit)
{
    *at_commit = false;
    evt **evs = xmalloc(n * sizeof *evs);
    size_t nev = 0;
    /* A batch of token events (and "responding" statuses) only goes to
     * the token journal when it takes them (store_journal.h): no
     * transaction. */
    eventlog_item *it = first;
    while (nev < n && !it->op.apply && it->op.ev && store_journal_takes(it->op.ev)) {
        evs[nev++] = it->op.ev;
        it = it->next;
    }
    int rc = nev == n ? store_journal_append(st, evs, nev) : 0;
    if (rc != 0) {
        free(evs);
        return rc < 0 ? rc : 0;
    }
    nev = 0;
    rc = store_begin(st);
    store_event_seq_memo(st, true);
    it = first;
    for (size_t i = 0; rc == 0 && i < n; i++, it = it->next) {
        if (it->op.apply) {
            rc = store_event_append(st, evs, nev);
            nev = 0;
            /* An apply that names no session may write to any (a fork, a
             * deletion): the last_seq remembered may no longer hold. */
            if (!it->op.session_id) store_event_seq_forget(st);
            store_journal_op(st, true);
            /* Only a negative return fails; an apply may return a count. */
            int applied = rc == 0 ? it->op.apply(st, it->op.arg) : 0;
            store_journal_op(st, false);
            if (applied < 0) rc = applied;
            eventlog__drop_emitted(it);
            if (rc == 0 && it->op.emitted) rc = eventlog__store_emitted(st, it);
        }
        if (rc == 0 && it->op.ev) evs[nev++] = it->op.ev;
    }
    if (rc == 0) rc = store_event_append(st, evs, nev);
    if (rc == 0) {
        rc = store_commit(st);
        *at_commit = rc < 0;
    }
    if (rc < 0) store_rollback(st);
    store_event_seq_memo(st, false);
    store_journal_end(st, rc == 0);
    free(evs);
    return rc;
}

/* Stores what the token journal holds in a transaction of its own: when
 * the writer has been idle for journal_idle_ms, after a batch that leaves
 * it holding more than EVENTLOG_JOURNAL_STORE_AT, and when it stops.
 * Returns 0, or the store's error (the events stay in the journal). */
static int eventlog__flush_journal(eventlog *log)
{
    if (store_journal_pending(log->st) == 0) return 0;
    int rc = store_begin(log->st);
    if (rc == 0) rc = store_journal_flush(log->st);
    if (rc == 0) rc = store_commit(log->st);
    if (rc < 0) {
        store_rollback(log->st);
        LOG(LOG_WARN, "Cannot store the token journal's events yet; the next batch tries again.",
            "events=%zu code=%d error=\"%s\"", store_journal_pending(log->st), rc,
            store_errmsg(log->st));
    }
    store_journal_end(log->st, rc == 0);
    return rc;
}

/* True for failures of the database as a whole rather than of one
 * operation: writing operations one by one would only fail again. */
static bool eventlog__global_failure(int rc)
{
    return rc == DB_ERR_BUSY || rc == DB_ERR_RETRY || rc == DB_ERR_FULL || rc == DB_ERR_CONN;
}

/* The event a lost COMMIT may have stored, and whether the store has it. */
typedef struct event_probe {
    const evt *ev;
    bool same;
} event_probe;

static int eventlog__probe_event(void *ud, int64_t seq, const char *type, const char *json,
                                 size_t len)
{
    (void)type;
    event_probe *p = ud;
    p->same = seq == p->ev->seq && len == p->ev->json_len && memcmp(json, p->ev->json, len) == 0;
    return 1;
}

/*
 * After a connection lost at COMMIT: 1 when the batch of n items from
 * first committed, 0 when it did not, or a negative code when the
 * database cannot tell yet. DB_ERR when nothing can tell: the batch holds
 * no event.
 */
static int eventlog__batch_committed(store *st, eventlog_item *first, size_t n)
{
    event_probe p = {NULL, false};
    for (size_t i = 0; !p.ev && i < n; i++, first = first->next)
        if (first->op.ev && first->op.ev->json) p.ev = first->op.ev;
    if (!p.ev) return DB_ERR;
    int rc = store_event_after(st, p.ev->session_id, p.ev->seq - 1, 1, eventlog__probe_event, &p);
    if (rc < 0) return rc;
    return p.same ? 1 : 0;
}

static size_t eventlog__count_events(const eventlog_item *it, size_t n, int status)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++, it = it->next)
        if (it->status == status) k += (it->op.ev != NULL) + it->nemitted;
    return k;
}

/*
 * The connection was lost while n items from first were written: waits
 * for it with backoff (the driver reconnects on the next statement) and
 * writes them again, first making sure that a batch whose COMMIT went
 * unanswered did not commit after all. Gives up once the connection has
 * been lost for EVENTLOG_RECONNECT_MAX_MS, counted from the first batch
 * that lost it, so that a database that stays away fails later batches at
 * their first try instead of stalling each one.
 */
static int eventlog__write_reconnected(eventlog *log, eventlog_item *first, size_t n,
                                       bool at_commit)
{
    if (log->conn_lost_ms == 0) log->conn_lost_ms = clock_mono_ms();
    LOG(LOG_WARN, "Event log batch lost its database connection; writing it again once it is back.",
        "ops=%zu at_commit=%d error=\"%s\"", n, at_commit, store_errmsg(log->st));
    int rc = DB_ERR_CONN;
    int64_t pause = EVENTLOG_RECONNECT_PAUSE_MS;
    int tries = 0;
    while ((rc == DB_ERR_CONN || rc == DB_ERR_RETRY) &&
           clock_mono_ms() - log->conn_lost_ms < EVENTLOG_RECONNECT_MAX_MS) {
        clock_sleep_ms(pause);
        pause = pause * 2 < EVENTLOG_RECONNECT_PAUSE_MAX_MS ? pause * 2
                                                            : EVENTLOG_RECONNECT_PAUSE_MAX_MS;
        tries++;
        if (at_commit) {
            int found = eventlog__batch_committed(log->st, first, n);
            if (found == DB_ERR_CONN) continue;
            if (found < 0) {
                LOG(LOG_ERROR, "Cannot tell whether an event log batch committed.",
                    "ops=%zu code=%d error=\"%s\"", n, found, store_errmsg(log->st));
                return DB_ERR_CONN;
            }
            at_commit = false;
            if (found == 1) {
                rc = 0;
                break;
            }
        }
        rc = eventlog__commit_ops(log->st, first, n, &at_commit);
    }
    if (rc != DB_ERR_CONN) log->conn_lost_ms = 0;
    if (rc == 0)
        LOG(LOG_INFO, "Event log batch written after the connection came back.", "ops=%zu tries=%d",
            n, tries);
    return rc;
}

/* Writes n items from first in one transaction as commit_ops does, and
 * again when the database asks for it or the connection comes back. */
static int eventlog__write_ops(eventlog *log, eventlog_item *first, size_t n)
{
    bool at_commit;
    int rc = eventlog__commit_ops(log->st, first, n, &at_commit);
    /* A batch PostgreSQL rolled back to break a deadlock (or a
     * serialization failure) is written again: the other transaction has
     * then gone ahead, and the second attempt normally commits. */
    for (int tries = 1; rc == DB_ERR_RETRY && tries < EVENTLOG_RETRY_MAX; tries++) {
        LOG(LOG_WARN, "Event log batch rolled back by the database; writing it again.",
            "ops=%zu attempt=%d error=\"%s\"", n, tries + 1, store_errmsg(log->st));
        rc = eventlog__commit_ops(log->st, first, n, &at_commit);
    }
    if (rc == DB_ERR_CONN) return eventlog__write_reconnected(log, first, n, at_commit);
    log->conn_lost_ms = 0;
    return rc;
}

/*
 * The token journal takes the token events (and "responding" statuses) of
 * a batch whose sessions have room for all of theirs, however many
 * sessions the batch holds, and those items leave the batch for *taken
 * with their status set. A session that another operation of the batch
 * writes to (an event of another type, or an apply that names it) keeps
 * its tokens in the transaction, where they keep their order with that
 * write; an apply that names no session keeps every token there. So a
 * batch that stores a few runs' answers and starts others does not also
 * insert the tokens that every other streaming run sent meanwhile
 * (docs/benchmarks.md, fix 36). What is left (those sessions, and
 * sessions whose journal is full or that it does not know) goes to a
 * transaction, which stores those sessions' journaled events too
 * (docs/storage.md, The token journal). Returns the items left, or a
 * store error.
 */
static uint64_t eventlog__write_rest(eventlog *log, eventlog_queue *batch, size_t n);

static int eventlog__cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* True for an item the token journal may take. */
static bool eventlog__is_token(const eventlog_item *it)
{
    return !it->op.apply && it->op.ev && store_journal_takes(it->op.ev);
}

/*
 * Fills written with the sessions the items other than tokens write to
 * (sorted, for bsearch) and returns how many, or -1 when an apply may
 * write to any session.
 */
static long eventlog__written_sessions(const eventlog_queue *batch, const char **written)
{
    size_t k = 0;
    for (const eventlog_item *it = batch->head; it; it = it->next) {
        if (eventlog__is_token(it)) continue;
        if (it->op.apply && !it->op.session_id) return -1;
        if (it->op.apply) written[k++] = it->op.session_id;
        if (it->op.ev) written[k++] = it->op.ev->session_id;
    }
    qsort(written, k, sizeof *written, eventlog__cmp_str);
    return (long)k;
}

static long eventlog__journal_part(eventlog *log, eventlog_queue *batch, size_t n,
                                   eventlog_queue *taken)
{
    taken->head = taken->tail = NULL;
    if (n < 2) return (long)n;
    const char **written = xmalloc(2 * n * sizeof *written);
    long nw = eventlog__written_sessions(batch, written);
    evt **evs = xmalloc(n * sizeof *evs);
    eventlog_item **items = xmalloc(n * sizeof *items);
    size_t m = 0;
    for (eventlog_item *it = batch->head; nw >= 0 && it; it = it->next) {
        if (!eventlog__is_token(it)) continue;
        const char *sid = it->op.ev->session_id;
        if (nw > 0 && bsearch(&sid, written, (size_t)nw, sizeof *written, eventlog__cmp_str))
            continue;
        items[m] = it;
        evs[m++] = it->op.ev;
    }
    free(written);
    bool *in = xmalloc((m ? m : 1) * sizeof *in);
    int k = m > 0 ? store_journal_append_part(log->st, evs, m, in) : 0;
    free(evs);
    if (k <= 0) {
        free(items);
        free(in);
        return k < 0 ? k : (long)n;
    }
    for (size_t i = 0; i < m; i++) items[i]->journaled = in[i];
    free(items);
    free(in);
    eventlog_queue rest = {NULL, NULL};
    for (eventlog_item *it = batch->head, *next; it; it = next) {
        next = it->next;
        if (it->journaled) it->status = 0;
        eventlog__queue_push(it->journaled ? taken : &rest, it);
    }
    *batch = rest;
    return (long)n - k;
}

/* Writes a batch and sets every item's status; returns the transactions
 * committed. */
static uint64_t eventlog__write_batch(eventlog *log, eventlog_queue *batch, size_t n)
{
    eventlog_queue taken;
    long left = eventlog__journal_part(log, batch, n, &taken);
    if (left < 0) {
        for (eventlog_item *it = batch->head; it; it = it->next) it->status = (int)left;
        LOG(LOG_WARN, "Event log batch failed.", "ops=%zu code=%ld error=\"%s\"", n, left,
            store_errmsg(log->st));
        return 0;
    }
    uint64_t commits = left > 0 ? eventlog__write_rest(log, batch, (size_t)left) : 1;
    eventlog__queue_splice(&taken, batch);
    *batch = taken;
    return commits;
}

/* Writes the items of batch in one transaction (or the token journal) and
 * sets every item's status; returns the transactions committed. */
static uint64_t eventlog__write_rest(eventlog *log, eventlog_queue *batch, size_t n)
{
    int rc = eventlog__write_ops(log, batch->head, n);
    for (eventlog_item *it = batch->head; it; it = it->next) it->status = rc;
    if (rc == 0) return 1;
    LOG(LOG_WARN, "Event log batch failed.", "ops=%zu code=%d error=\"%s\"", n, rc,
        store_errmsg(log->st));
    if (n == 1 || eventlog__global_failure(rc)) return 0;
    uint64_t commits = 0;
    for (eventlog_item *it = batch->head; it; it = it->next) {
        it->status = eventlog__write_ops(log, it, 1);
        if (it->status == 0) commits++;
    }
    return commits;
}

static void eventlog__wake_loop(eventlog *log)
{
    uint64_t one = 1;
    while (write(log->efd, &one, sizeof one) < 0 && errno == EINTR) continue;
}

/* Waits for work; returns false when stopping with nothing left to write.
 * *idle is set (and *n is 0) when the token journal has waited
 * journal_idle_ms with no work coming. */
static bool eventlog__next_batch(eventlog *log, eventlog_queue *batch, size_t *n, bool *idle)
{
    *idle = false;
    pthread_mutex_lock(&log->mu);
    /* Work that came in while the previous batch was written means the
     * writer is busy: this batch is paced. Work the writer had to wait for
     * is committed at once. */
    bool busy = log->busy;
    bool deadline = false;
    struct timespec until;
    while ((!log->pending.head || log->here_busy) && !log->stopping) {
        if (log->here_busy) {
            /* The loop writes with this thread's connection. */
            log->writer_waits_here = true;
            pthread_cond_wait(&log->work, &log->mu);
            continue;
        }
        if (log->journal_due) {
            log->journal_due = false;
            log->writer_idle = false;
            pthread_mutex_unlock(&log->mu);
            *n = 0;
            *idle = true;
            return true;
        }
        /* Read under the lock: the loop may add to the journal while the
         * writer waits (eventlog__submit_inline). */
        bool timed = store_journal_pending(log->st) > 0;
        log->writer_idle = true;
        log->writer_timed = timed;
        if (!timed) {
            pthread_cond_wait(&log->work, &log->mu);
            continue;
        }
        if (!deadline) {
            clock_deadline(&until, log->journal_idle_ms);
            deadline = true;
        }
        if (pthread_cond_timedwait(&log->work, &log->mu, &until) == ETIMEDOUT &&
            !log->pending.head && !log->stopping && !log->here_busy) {
            log->writer_idle = false;
            pthread_mutex_unlock(&log->mu);
            *n = 0;
            *idle = true;
            return true;
        }
    }
    log->writer_idle = false;
    /* Paced: a batch closes no sooner than the pace after the previous one
     * began. What the loop submits meanwhile wakes nobody and joins this
     * batch, except an urgent operation, which ends the wait: somebody
     * waits on it to begin. A writer told to stop writes what is left at
     * once. */
    int64_t wait = log->last_commit_ns + log->pace_ns - clock_mono_ns();
    if (busy && wait > 0) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)wait;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        log->pacing = true;
        while (!log->urgent && !log->stopping &&
               pthread_cond_timedwait(&log->work, &log->mu, &until) != ETIMEDOUT)
            continue;
        log->pacing = false;
    }
    /* Urgent operations go ahead of the rest at most once in a row: under
     * a steady flow of them (a thousand starts a second, each with its
     * first token), the rest would otherwise wait as long as the flow
     * lasts, and with it every token of their sessions, which follows
     * them to the writer (docs/benchmarks.md, fix 64). */
    *n = log->urgent && !log->jumped ? eventlog__take_urgent(log, batch, EVENTLOG_QUIET_BATCH_MAX)
                                     : 0;
    log->jumped = *n > 0;
    if (*n == 0) {
        *n = eventlog__queue_take(&log->pending, batch,
                                  busy ? EVENTLOG_BATCH_MAX : EVENTLOG_QUIET_BATCH_MAX);
        /* An urgent operation past the batch's limit waits for the next. */
        if (!log->pending.head) log->urgent = false;
    }
    /* A commit restarts the journal's pause. */
    log->journal_due = false;
    pthread_mutex_unlock(&log->mu);
    return *n > 0;
}

/* A written batch's figures, counted before the lock is taken. */
typedef struct eventlog_tally {
    size_t n, ok_events, failed_ops;
    uint64_t commits, ns;
} eventlog_tally;

static eventlog_tally eventlog__tally(const eventlog_queue *batch, size_t n, uint64_t commits,
                                      uint64_t ns)
{
    eventlog_tally t = {n, eventlog__count_events(batch->head, n, 0), 0, commits, ns};
    for (const eventlog_item *it = batch->head; it; it = it->next)
        if (it->status != 0) t.failed_ops++;
    return t;
}

/* Records a written batch's figures (under log->mu). */
static void eventlog__count_batch(eventlog *log, const eventlog_tally *t)
{
    log->finished_ops += t->n;
    log->stats.batches += t->commits;
    log->stats.events += t->ok_events;
    log->stats.failures += t->failed_ops;
    log->stats.commit_ns_total += t->ns;
}

/* Hands a written batch to the loop thread and records its figures. */
static void eventlog__finish_batch(eventlog *log, eventlog_queue *batch, size_t n, uint64_t commits,
                                   uint64_t ns)
{
    eventlog_tally tally = eventlog__tally(batch, n, commits, ns);
    pthread_mutex_lock(&log->mu);
    /* A loop that has batches waiting has been woken already and takes
     * this one with them: one write to the eventfd (and one wake-up) per
     * drain, not per batch. */
    bool wake = log->done.head == NULL;
    /* Decided here, as the batch is handed back: what is submitted from
     * now on came after it was written. */
    log->busy = log->pending.head != NULL;
    eventlog__count_batch(log, &tally);
    eventlog__queue_splice(&log->done, batch);
    void (*observer)(void *, double) = log->observer;
    void *observer_ud = log->observer_ud;
    log->wake_unsent = wake;
    pthread_cond_broadcast(&log->finished);
    pthread_mutex_unlock(&log->mu);
    /* The loop is woken once the lock is free: woken under it, the loop
     * ran at once on this core, found the lock held and waited for it, two
     * more switches per batch (docs/benchmarks.md, fix 53). A flush waits
     * for the wake-up to be written, so that it consumes it and leaves the
     * fd quiet. */
    if (wake) {
        eventlog__wake_loop(log);
        pthread_mutex_lock(&log->mu);
        log->wake_unsent = false;
        pthread_cond_broadcast(&log->finished);
        pthread_mutex_unlock(&log->mu);
    }
    if (observer && commits) observer(observer_ud, (double)ns / 1e9);
}

static void *eventlog__writer_main(void *arg)
{
    eventlog *log = arg;
    eventlog_queue batch;
    size_t n;
    bool idle;
    while (eventlog__next_batch(log, &batch, &n, &idle)) {
        if (idle) {
            /* A commit too: the journal's next pause counts from it. */
            log->last_commit_ns = clock_mono_ns();
            eventlog__flush_journal(log);
            continue;
        }
        uint64_t t0 = (uint64_t)clock_mono_ns();
        log->last_commit_ns = (int64_t)t0;
        uint64_t commits = eventlog__write_batch(log, &batch, n);
        eventlog__finish_batch(log, &batch, n, commits, (uint64_t)clock_mono_ns() - t0);
        /* With many sessions streaming, the journal's shared room leaves
         * each only a few tokens, and the token that finds none waits for
         * a batch of this thread, whatever else is in it: at 1,000 runs
         * about every ninth token, and a long batch stalled every stream
         * with one due (docs/benchmarks.md, fix 76). So once it holds a
         * quarter of that room it is stored, in a transaction of its own,
         * while the loop goes on appending. A store that failed is not
         * tried again until a batch commits: a full disk would fail it
         * after every batch, with a warning each time. */
        if (commits > 0) log->journal_store_failed = false;
        if (!log->journal_store_failed &&
            store_journal_pending(log->st) > EVENTLOG_JOURNAL_STORE_AT) {
            log->last_commit_ns = clock_mono_ns();
            log->journal_store_failed = eventlog__flush_journal(log) < 0;
        }
    }
    /* A stopped server leaves nothing in the journal. */
    eventlog__flush_journal(log);
    return NULL;
}

/* ------------------------------------------------------------------------
 * The loop side
 */

int eventlog_start(const char *url, eventlog_publish_cb publish, void *ud, eventlog **out,
                   char *err, size_t errlen)
{
    *out = NULL;
    store *st = NULL;
    int rc = store_open(url, &st, err, errlen);
    if (rc < 0) return rc;
    rc = store_set_page_cache(st, EVENTLOG_PAGE_CACHE_KIB);
    if (rc == 0) rc = store_journal_attach(st, url);
    if (rc < 0) {
        snprintf(err, errlen, "%s", store_errmsg(st));
        store_close(st);
        return rc;
    }
    /* A batch whose remembered last_seq is out of date fails as
     * DB_ERR_RETRY, and is written again (eventlog__write_ops). */
    store_event_seq_cache(st);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) {
        snprintf(err, errlen, "cannot create the event log's eventfd: %s", strerror(errno));
        store_close(st);
        return DB_ERR;
    }
    eventlog *log = xcalloc(1, sizeof *log);
    log->st = st;
    log->efd = efd;
    log->publish = publish;
    log->ud = ud;
    log->pace_ns = EVENTLOG_PACE_NS;
    log->journal_idle_ms = STORE_JOURNAL_IDLE_MS;
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->work, NULL);
    pthread_cond_init(&log->finished, NULL);
    rc = pthread_create(&log->thread, NULL, eventlog__writer_main, log);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the event log's writer thread: %s", strerror(rc));
        pthread_cond_destroy(&log->finished);
        pthread_cond_destroy(&log->work);
        pthread_mutex_destroy(&log->mu);
        close(efd);
        store_close(st);
        free(log);
        return DB_ERR;
    }
    *out = log;
    return 0;
}

void eventlog_stop(eventlog *log)
{
    if (!log) return;
    pthread_mutex_lock(&log->mu);
    log->stopping = true;
    pthread_cond_signal(&log->work);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->thread, NULL);
    eventlog_drain(log);
    store_close(log->st);
    for (size_t b = 0; b < EVENTLOG__OWED_BUCKETS; b++)
        while (log->owed[b]) {
            eventlog_owed *o = log->owed[b];
            log->owed[b] = o->next;
            free(o);
        }
    close(log->efd);
    pthread_cond_destroy(&log->finished);
    pthread_cond_destroy(&log->work);
    pthread_mutex_destroy(&log->mu);
    free(log);
}

/* Wakes the writer, waiting for work, for what was submitted; inside a
 * hold, at its release instead. */
static void eventlog__wake_writer(eventlog *log)
{
    if (log->held > 0)
        log->wake_owed = true;
    else
        pthread_cond_signal(&log->work);
}

void eventlog_hold(eventlog *log)
{
    log->held++;
}

/* Gives the writer the wake-up a hold put off, if any. */
static void eventlog__pay_wake(eventlog *log)
{
    if (!log->wake_owed) return;
    log->wake_owed = false;
    pthread_cond_signal(&log->work);
}

void eventlog_release(eventlog *log)
{
    if (--log->held == 0) eventlog__pay_wake(log);
}

/*
 * A token (or "responding" status) of a session with nothing submitted
 * that the loop has not handed out yet is written to the token journal by
 * the loop itself and published at once, whether the writer waits or
 * writes a batch of other sessions' operations: the session's earlier
 * events are all published, and the journal's lock keeps the writer's use
 * of it apart (store_journal_try_append waits for that lock, which is
 * held only for copies in memory, and declines a session whose held
 * events the writer's transaction stores). While the writer is busy, a
 * burst goes to it: the loop takes a session's token only
 * EVENTLOG_LOOP_PACE_NS after the last it took, except the answer's first
 * (urgent) and the status before it.
 * An operation that names no session may write to any: while one is not
 * handed out, every token goes through the writer. Not while
 * eventlog_drain hands out a batch: an event submitted from a done
 * callback would be published before the event of that callback. A token
 * then costs no wake-up of the writer and none of the loop, and waits for
 * no batch of other sessions (docs/benchmarks.md, fixes 21 and 38). False
 * when the event must go through the writer.
 */
static bool eventlog__submit_inline(eventlog *log, const eventlog_op *op, bool urgent)
{
    if (op->apply || !op->ev || !store_journal_takes(op->ev) || log->draining) return false;
    evt *ev = op->ev;
    pthread_mutex_lock(&log->mu);
    bool clear = !log->stopping && log->unscoped == 0 &&
                 !eventlog__owed_hashed(log, ev->session_id, ev->session_hash);
    /* A session's burst (a model sending faster than the writer commits)
     * goes to the writer, whose one append takes all it queued, except its
     * first token and the status before it: their wait is the person's. */
    int64_t paced_ns =
        log->writer_idle || urgent || ev->type == EVT_STATUS ? 0 : EVENTLOG_LOOP_PACE_NS;
    int rc = clear ? store_journal_try_append(log->st, ev, paced_ns) : 0;
    /* A writer waiting without a time limit must learn that the journal
     * holds events now, so that it stores them after a pause; or the
     * loop's timer pauses for it, and the writer sleeps on. A busy one
     * looks at the journal before it waits again. */
    bool untimed = rc == 1 && log->writer_idle && !log->writer_timed;
    bool arm = untimed && log->journal_arm;
    bool wake = untimed && !arm;
    if (rc == 1) {
        log->submitted++;
        log->finished_ops++;
        log->stats.batches++;
        log->stats.events++;
        if (wake) log->writer_idle = false;
        if (arm) log->writer_timed = true;
    }
    pthread_mutex_unlock(&log->mu);
    if (rc != 1) return false;
    if (wake) eventlog__wake_writer(log);
    if (arm) log->journal_arm(log->journal_ud, log->journal_idle_ms);
    if (op->done) op->done(op->arg, ev, 0);
    if (log->publish) log->publish(log->ud, ev);
    evt_unref(ev);
    return true;
}

/* Whether a writer left asleep with work pending (eventlog_set_here) is to
 * be woken now, marking it busy if so: when the loop's owner declines the
 * work (declined, which also ends the kick), or before somebody waits on
 * the writer. The caller signals it, outside the lock. */
static bool eventlog__rouse_idle_writer(eventlog *log, bool declined)
{
    pthread_mutex_lock(&log->mu);
    if (declined) log->here_kicked = false;
    bool wake = log->writer_idle && log->pending.head;
    if (wake) log->writer_idle = false;
    pthread_mutex_unlock(&log->mu);
    return wake;
}

/* The loop's owner declined to write (it is busy): the writer is woken
 * for the work after all, as it would have been. */
static void eventlog__decline_here(eventlog *log)
{
    if (eventlog__rouse_idle_writer(log, true)) eventlog__wake_writer(log);
}

static void eventlog__submit(eventlog *log, const eventlog_op *op, bool urgent)
{
    if (eventlog__submit_inline(log, op, urgent)) return;
    eventlog_item *it = xcalloc(1, sizeof *it);
    it->op = *op;
    it->urgent = urgent;
    pthread_mutex_lock(&log->mu);
    eventlog__hold(log, it);
    eventlog__queue_push(&log->pending, it);
    log->submitted++;
    /* Work an idle writer would be woken for is written by the loop, when
     * its owner lets it (eventlog_set_here): the writer sleeps on. */
    bool here = log->here_kick && log->writer_idle;
    bool kick = here && !log->here_kicked;
    if (kick) log->here_kicked = true;
    bool wake = !here && (log->writer_idle || (urgent && log->pacing && !log->urgent));
    if (!here) log->writer_idle = false;
    if (urgent) log->urgent = true;
    pthread_mutex_unlock(&log->mu);
    if (kick && !log->here_kick(log->here_ud)) eventlog__decline_here(log);
    /* Signalled outside the lock, and only when the writer waits for work
     * (or an urgent operation ends its pace): a writer woken under the
     * lock would wake only to wait for it. */
    if (wake) eventlog__wake_writer(log);
}

void eventlog_set_here(eventlog *log, bool (*kick)(void *ud), void *ud)
{
    pthread_mutex_lock(&log->mu);
    log->here_kick = kick;
    log->here_ud = ud;
    log->here_kicked = false;
    pthread_mutex_unlock(&log->mu);
}

void eventlog_set_journal_timer(eventlog *log, void (*arm)(void *ud, int64_t ms), void *ud)
{
    pthread_mutex_lock(&log->mu);
    log->journal_arm = arm;
    log->journal_ud = ud;
    /* Without the loop's timer an idle writer times the journal itself
     * again: woken now if the loop was timing it. */
    bool wake = !arm && log->writer_idle && log->writer_timed;
    if (wake) log->writer_idle = false;
    pthread_mutex_unlock(&log->mu);
    if (wake) pthread_cond_signal(&log->work);
}

void eventlog_journal_timer_fired(eventlog *log)
{
    pthread_mutex_lock(&log->mu);
    /* A writer at work (or stopping) looks at the journal before it waits
     * again, and times it itself; so does one woken when the timer was
     * turned off. */
    if (!log->writer_idle || log->stopping || !log->journal_arm) {
        pthread_mutex_unlock(&log->mu);
        return;
    }
    if (store_journal_pending(log->st) == 0) {
        /* A batch stored it: the next token journaled arms the timer. */
        log->writer_timed = false;
        pthread_mutex_unlock(&log->mu);
        return;
    }
    /* Work the loop is yet to write, or a commit since the timer was
     * armed, restarts the pause, as they restart the writer's. */
    int64_t idle_ns = log->journal_idle_ms * 1000000;
    int64_t left_ns = log->pending.head ? idle_ns : log->last_commit_ns + idle_ns - clock_mono_ns();
    /* The pause is over: the writer stores the journal at once. It does,
     * rather than the loop: the rows a quiet server's journal holds would
     * otherwise grow the loop's heap, a few KiB per run at 100 runs. */
    if (left_ns <= 0) {
        log->journal_due = true;
        log->writer_idle = false;
    }
    pthread_mutex_unlock(&log->mu);
    if (left_ns > 0)
        log->journal_arm(log->journal_ud, (left_ns + 999999) / 1000000);
    else
        pthread_cond_signal(&log->work);
}

/* Runs the done and publish callbacks of handed-out items, in order, then
 * counts them off and frees them. */
static void eventlog__hand_out(eventlog *log, eventlog_item *it)
{
    bool outer = log->draining; /* eventlog_flush may drain from a callback */
    log->draining = true;
    for (eventlog_item *x = it; x; x = x->next) {
        if (x->op.done) x->op.done(x->op.arg, x->op.ev, x->status);
        for (size_t i = 0; x->status == 0 && log->publish && i < x->nemitted; i++)
            log->publish(log->ud, x->emitted[i]);
        if (x->status == 0 && x->op.ev && log->publish) log->publish(log->ud, x->op.ev);
    }
    log->draining = outer;
    /* Counted off once all are published: a token of one of their sessions
     * submitted meanwhile went through the writer, behind them. */
    pthread_mutex_lock(&log->mu);
    for (eventlog_item *x = it; x; x = x->next) eventlog__release(log, x);
    pthread_mutex_unlock(&log->mu);
    while (it) {
        eventlog_item *next = it->next;
        if (it->op.ev) evt_unref(it->op.ev);
        eventlog__drop_emitted(it);
        free(it);
        it = next;
    }
}

void eventlog_write_here(eventlog *log)
{
    pthread_mutex_lock(&log->mu);
    log->here_kicked = false;
    bool undrained = log->done.head || log->wake_unsent;
    bool mine = log->writer_idle && log->pending.head && !log->stopping;
    pthread_mutex_unlock(&log->mu);
    if (!mine) return;
    /* What the writer committed before goes out first. */
    if (undrained) eventlog_drain(log);
    eventlog_queue batch;
    size_t n = 0;
    pthread_mutex_lock(&log->mu);
    mine = log->writer_idle && log->pending.head && !log->stopping && !log->done.head &&
           !log->wake_unsent;
    /* The loop never waits for the process's write lock: while a search
     * index job or a checkpoint holds it, the writer waits instead. */
    if (mine && !db_write_try(store_db(log->st))) mine = false;
    if (mine) {
        n = eventlog__queue_take(&log->pending, &batch, EVENTLOG_QUIET_BATCH_MAX);
        if (!log->pending.head) log->urgent = false;
        log->here_busy = true;
    }
    bool wake = !mine && log->writer_idle && log->pending.head;
    if (wake) log->writer_idle = false;
    pthread_mutex_unlock(&log->mu);
    if (wake) pthread_cond_signal(&log->work);
    if (!mine) return;
    uint64_t t0 = (uint64_t)clock_mono_ns();
    log->last_commit_ns = (int64_t)t0;
    uint64_t commits = eventlog__write_batch(log, &batch, n);
    /* A batch the token journal took whole began no transaction. */
    db_write_drop(store_db(log->st));
    uint64_t ns = (uint64_t)clock_mono_ns() - t0;
    eventlog_tally tally = eventlog__tally(&batch, n, commits, ns);
    pthread_mutex_lock(&log->mu);
    log->here_busy = false;
    eventlog__count_batch(log, &tally);
    bool waits = log->writer_waits_here;
    log->writer_waits_here = false;
    bool more = log->pending.head && log->writer_idle && !log->here_kicked;
    if (more) log->here_kicked = true;
    void (*observer)(void *, double) = log->observer;
    void *observer_ud = log->observer_ud;
    pthread_cond_broadcast(&log->finished);
    pthread_mutex_unlock(&log->mu);
    if (waits) pthread_cond_signal(&log->work);
    if (observer && commits) observer(observer_ud, (double)ns / 1e9);
    eventlog__hand_out(log, batch.head);
    if (more && !log->here_kick(log->here_ud)) eventlog__decline_here(log);
}

void eventlog_submit(eventlog *log, const eventlog_op *op)
{
    eventlog__submit(log, op, false);
}

void eventlog_submit_urgent(eventlog *log, const eventlog_op *op)
{
    eventlog__submit(log, op, true);
}

void eventlog_append(eventlog *log, evt *ev)
{
    eventlog_op op = {.ev = ev};
    eventlog_submit(log, &op);
}

int eventlog_held_after(eventlog *log, const char *session_id, int64_t after, store_event_cb cb,
                        void *ud)
{
    return store_journal_held_after(log->st, session_id, after, cb, ud);
}

int eventlog_fd(const eventlog *log)
{
    return log->efd;
}

/*
 * The eventfd is read before the queue is taken: a batch that lands in
 * between is drained now and leaves one spurious wake-up, never a missed
 * one.
 */
void eventlog_drain(eventlog *log)
{
    uint64_t count;
    while (read(log->efd, &count, sizeof count) < 0 && errno == EINTR) continue;
    pthread_mutex_lock(&log->mu);
    eventlog_item *it = log->done.head;
    log->done.head = log->done.tail = NULL;
    pthread_mutex_unlock(&log->mu);
    eventlog__hand_out(log, it);
}

/* The operation of eventlog_flush: stores what the token journal holds. */
static int eventlog__store_journal(store *s, void *arg)
{
    (void)arg;
    return store_journal_flush(s);
}

void eventlog_flush(eventlog *log)
{
    eventlog_op op = {.apply = eventlog__store_journal};
    eventlog_submit(log, &op);
    /* Called inside a hold, the flush would otherwise wait for a writer
     * that nobody woke; and work left for the loop to write is the
     * writer's now, since the loop waits here. */
    eventlog__pay_wake(log);
    if (eventlog__rouse_idle_writer(log, false)) pthread_cond_signal(&log->work);
    pthread_mutex_lock(&log->mu);
    uint64_t target = log->submitted;
    while (log->finished_ops < target || log->wake_unsent)
        pthread_cond_wait(&log->finished, &log->mu);
    pthread_mutex_unlock(&log->mu);
    eventlog_drain(log);
}

void eventlog_get_stats(const eventlog *log, eventlog_stats *out)
{
    pthread_mutex_lock((pthread_mutex_t *)&log->mu);
    *out = log->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&log->mu);
}

void eventlog_set_commit_observer(eventlog *log, void (*cb)(void *ud, double seconds), void *ud)
{
    pthread_mutex_lock(&log->mu);
    log->observer = cb;
    log->observer_ud = ud;
    pthread_mutex_unlock(&log->mu);
}

void eventlog_set_pace(eventlog *log, int64_t ns)
{
    pthread_mutex_lock(&log->mu);
    log->pace_ns = ns > 0 ? ns : 0;
    pthread_mutex_unlock(&log->mu);
}

void eventlog_set_journal_idle(eventlog *log, int64_t ms)
{
    pthread_mutex_lock(&log->mu);
    log->journal_idle_ms = ms > 0 ? ms : 1;
    pthread_mutex_unlock(&log->mu);
}
