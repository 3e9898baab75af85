/*
 * store_event: the stream_events table, the log every client replays. Each
 * session's events are numbered by seq, gapless, reserved by raising
 * chat_sessions.last_seq in the transaction that inserts them; a finished
 * run's token events are compacted away once its messages are stored.
 * The token journal's events, and on SQLite each run of a session's
 * tokens that one transaction stores, go in as token rows: one row for
 * each run of them (docs/storage.md, Token rows), which every read
 * expands.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evtpack.h"
#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "store/seqcache.h"
#include "store/store.h"
#include "store/store_int.h"
#include "store/store_journal.h"

/* Rows per multi-row INSERT of events: a power of two, so a batch is cut
 * into at most a handful of distinct statements that the drivers cache. */
#define STORE_EVENT_CHUNK 256
/* Sessions per UPDATE that reserves seqs, a power of two for the same
 * reason: 100 sessions go in as 64 + 32 + 4. */
#define STORE_SEQ_CHUNK 64
/* Events fetched per query when replaying without a limit. */
#define STORE_REPLAY_PAGE 1000
/* The most events one token row holds (the token journal holds at most as
 * many for a session, STORE_JOURNAL_EVENTS_MAX), and the most bytes: past
 * the events' own cap (evt_encode's 64 MiB each), so never reached. */
#define STORE_EVENT_ROW_EVENTS 64
#define STORE_EVENT_ROW_BYTES  ((size_t)1 << 40)
_Static_assert(STORE_JOURNAL_EVENTS_MAX <= STORE_EVENT_ROW_EVENTS,
               "a session's journaled events fit one token row");

/* The rows of the next statement of a batch cut into statements of a
 * power of two rows, largest first (at most max): 600 rows go as 256 +
 * 256 + 64 + 16 + 8, so that few distinct statements are prepared. */
static size_t store_event__chunk(size_t left, size_t max)
{
    size_t k = max;
    while (k > left) k /= 2;
    return k;
}

typedef struct event_slot {
    const evt *ev;
    size_t index; /* position in the caller's array */
} event_slot;

/* Orders events by session, and within a session as the caller gave them. */
static int store_event__event_slot_cmp(const void *a, const void *b)
{
    const event_slot *x = a, *y = b;
    int c = strcmp(x->ev->session_id, y->ev->session_id);
    if (c) return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* One session of a batch: its events are slots[first .. first + count). */
typedef struct seq_group {
    const char *session_id;
    size_t first, count;
    int64_t last;  /* last_seq after the reservation */
    int64_t given; /* the seq its first event carries already, or 0 */
    bool found;
} seq_group;

static int store_event__seq_group_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const seq_group *)elem)->session_id);
}

void store_event_seq_memo(store *s, bool on)
{
    s->seq_memo = on;
    s->seq_known = false;
}

void store_event_seq_forget(store *s)
{
    s->seq_known = false;
    if (s->seqs) seqcache_clear(s->seqs);
}

void store_event_seq_cache(store *s)
{
    if (db_get_kind(s->d) == DB_POSTGRES && !s->seqs) s->seqs = seqcache_new();
}

/* Remembers last as the session's last_seq in this transaction. */
static void store_event__seq_remember(store *s, const char *session_id, int64_t last)
{
    size_t n = strlen(session_id);
    s->seq_known = s->seq_memo && n < sizeof s->seq_session;
    if (!s->seq_known) return;
    memcpy(s->seq_session, session_id, n + 1);
    s->seq_last = last;
}

/*
 * Reserves each session's block of seqs on SQLite with statements of one
 * row each: last_seq read then raised (the writer is the only one, inside
 * its transaction), or for events that carry their seqs one checked
 * UPDATE. The one statement of store_event__reserve_seqs, an UPDATE … FROM
 * (VALUES …) RETURNING, builds two temporary tables in SQLite (the VALUES
 * and the rows returned) every time it runs: a quarter of the writer's
 * time at 100 runs (docs/benchmarks.md, fix 39). A session whose last_seq
 * this transaction set is not read again (store_event_seq_memo).
 */
static int store_event__reserve_seqs_sqlite(store *s, seq_group *g, size_t k)
{
    int rc = 0;
    for (size_t i = 0; i < k; i++) {
        /* The session this transaction appended to last: its last_seq is
         * known (store_event_seq_memo). */
        if (g[i].given <= 0 && s->seq_known && strcmp(s->seq_session, g[i].session_id) == 0) {
            store_num last;
            int64_t to = s->seq_last + (int64_t)g[i].count;
            const char *p[] = {store__num_i64(&last, to), g[i].session_id};
            int changed = store__exec(
                s, "UPDATE chat_sessions SET last_seq = CAST(? AS BIGINT) WHERE id = ?", 2, p);
            if (changed < 0) return changed;
            if (changed == 1) {
                g[i].last = s->seq_last = to;
                g[i].found = true;
                continue;
            }
            /* Gone: the read below says so. */
            s->seq_known = false;
        }
        /* Events that carry their seqs (the token journal's) must follow
         * the stored ones: one statement checks that and raises last_seq,
         * and only a session that fails it is read, for the error. */
        if (g[i].given > 0) {
            store_num last, was;
            int64_t to = g[i].given - 1 + (int64_t)g[i].count;
            const char *p[] = {store__num_i64(&last, to), g[i].session_id,
                               store__num_i64(&was, g[i].given - 1)};
            int changed = store__exec(s,
                                      "UPDATE chat_sessions SET last_seq = CAST(? AS BIGINT) "
                                      "WHERE id = ? AND last_seq = CAST(? AS BIGINT)",
                                      3, p);
            if (changed < 0) return changed;
            if (changed == 1) {
                g[i].last = to;
                g[i].found = true;
                store_event__seq_remember(s, g[i].session_id, to);
                continue;
            }
        }
        const char *id[] = {g[i].session_id};
        db_result *r = NULL;
        rc = store__query(s, "SELECT last_seq FROM chat_sessions WHERE id = ?", 1, id, &r);
        if (rc == 0 && db_result_rows(r) == 0) rc = store__not_found(s, "session", g[i].session_id);
        if (rc == 0) {
            g[i].last = db_result_int(r, 0, 0, 0) + (int64_t)g[i].count;
            g[i].found = true;
        }
        db_result_free(r);
        if (rc != 0) return rc;
        store_num last;
        const char *p[] = {store__num_i64(&last, g[i].last), g[i].session_id};
        int changed = store__exec(
            s, "UPDATE chat_sessions SET last_seq = CAST(? AS BIGINT) WHERE id = ?", 2, p);
        if (changed < 0) return changed;
        store_event__seq_remember(s, g[i].session_id, g[i].last);
    }
    return 0;
}

/*
 * PostgreSQL, when this connection knows every session's last_seq
 * (seqcache.h): raises them without reading, with a statement sent ahead
 * of the events' insert (db_exec_later), in which a session whose last_seq
 * is not the one known fails the transaction through chatplane_seq_moved
 * (a serialization failure, so the event log writes the batch again, and
 * the rollback has emptied the cache). A session deleted meanwhile matches
 * no row, and the insert of its events fails on their foreign key. Returns
 * 1 when done, 0 when a session is unknown, or a negative code.
 */
static int store_event__reserve_known(store *s, seq_group *g, size_t k)
{
    int64_t *known = xmalloc(k * sizeof *known);
    size_t i = 0;
    while (i < k && seqcache_get(s->seqs, g[i].session_id, &known[i])) i++;
    if (i < k) {
        free(known);
        return 0;
    }
    buf sql;
    buf_init(&sql, 512 + k * 64);
    buf_append_str(&sql, "UPDATE chat_sessions SET last_seq = CASE WHEN chat_sessions.last_seq = "
                         "v.column2 THEN v.column3 ELSE chatplane_seq_moved(chat_sessions.id) END "
                         "FROM (VALUES ");
    const char **p = xmalloc(k * 3 * sizeof *p);
    store_num *nums = xmalloc(k * 2 * sizeof *nums);
    for (i = 0; i < k; i++) {
        buf_append_str(&sql, i ? ", (?, CAST(? AS BIGINT), CAST(? AS BIGINT))"
                               : "(?, CAST(? AS BIGINT), CAST(? AS BIGINT))");
        g[i].last = known[i] + (int64_t)g[i].count;
        p[i * 3] = g[i].session_id;
        p[i * 3 + 1] = store__num_i64(&nums[i * 2], known[i]);
        p[i * 3 + 2] = store__num_i64(&nums[i * 2 + 1], g[i].last);
    }
    buf_append_str(
        &sql, ") AS v WHERE chat_sessions.id = v.column1 RETURNING pg_notify('" STORE_EVENTS_CHANNEL
              "', chat_sessions.id || ':' || chat_sessions.last_seq)");
    int rc = store__exec_later(s, sql.data, (int)(k * 3), p);
    for (i = 0; rc == 0 && i < k; i++) {
        g[i].found = true;
        seqcache_set(s->seqs, g[i].session_id, g[i].last);
    }
    free(nums);
    free(p);
    free(known);
    buf_cleanup(&sql);
    return rc < 0 ? rc : 1;
}

/*
 * Raises last_seq of the k sessions g[0..k) (sorted by id) by their event
 * counts with one UPDATE … FROM (VALUES …) … RETURNING and sets each
 * group's last (on SQLite, store_event__reserve_seqs_sqlite instead; on a
 * connection that knows every one of them, store_event__reserve_known). A
 * session that is not in the result does not exist.
 *
 * On PostgreSQL the same statement announces each new last_seq to the
 * other instances (NOTIFY on STORE_EVENTS_CHANNEL, "session_id:last_seq");
 * the server delivers a notification only when its transaction commits, so
 * no instance hears of events it cannot read yet. The row lock this UPDATE
 * takes on each session also makes the transactions that append to one
 * session commit in seq order, so a reader never sees a later seq without
 * the earlier ones.
 *
 * The order in which one statement locks its rows is the order its plan
 * yields them: the VALUES order (sorted by id) under a nested loop over the
 * primary key, the table's physical order under a hash join over a scan of
 * the table, which PostgreSQL 15 chose here for tables of up to a thousand
 * sessions. So two transactions that both update the same two sessions can
 * deadlock, and sorting the list alone does not prevent it. They seldom
 * can: only the event log's writer updates several sessions in one
 * transaction (one writer per instance, one transaction at a time; a run
 * start and the recovery of a run touch one session each), and an instance
 * appends events only to sessions whose runs it owns, with one active run
 * per session. Two writers share two sessions only while a run is taken
 * over (a paused instance commits events of runs another one already
 * interrupted, docs/architecture.md), or through a batch's own operations
 * (a session renamed, deleted or released), which lock their sessions in
 * the order they were queued and never followed the ids' order. There
 * PostgreSQL breaks the deadlock after deadlock_timeout by failing one of
 * the two transactions (DB_ERR_RETRY), and the event log writes that batch
 * again (eventlog.c), which then finds the other writer's rows released.
 * Locking the rows in order first (SELECT … ORDER BY id FOR UPDATE) would
 * avoid the deadlock itself at the cost of a second pass over the rows in
 * every batch; a deadlock needs two writers on the same two sessions at
 * once, which is rare enough for the retry to be the cheaper cure. SQLite has one writer per
 * database and no row locks.
 */
static int store_event__reserve_seqs(store *s, seq_group *g, size_t k)
{
    if (db_get_kind(s->d) == DB_SQLITE) return store_event__reserve_seqs_sqlite(s, g, k);
    int known = s->seqs ? store_event__reserve_known(s, g, k) : 0;
    if (known != 0) return known < 0 ? known : 0;
    buf sql;
    buf_init(&sql, 256 + k * 32);
    buf_append_str(&sql, "UPDATE chat_sessions SET last_seq = last_seq + v.column2 FROM (VALUES ");
    const char **p = xmalloc(k * 2 * sizeof *p);
    store_num *nums = xmalloc(k * sizeof *nums);
    for (size_t i = 0; i < k; i++) {
        buf_append_str(&sql, i ? ", (?, CAST(? AS BIGINT))" : "(?, CAST(? AS BIGINT))");
        p[i * 2] = g[i].session_id;
        p[i * 2 + 1] = store__num_i64(&nums[i], (int64_t)g[i].count);
    }
    buf_append_str(&sql, ") AS v WHERE chat_sessions.id = v.column1 RETURNING chat_sessions.id, "
                         "chat_sessions.last_seq");
    buf_append_str(&sql, ", pg_notify('" STORE_EVENTS_CHANNEL
                         "', chat_sessions.id || ':' || chat_sessions.last_seq)");
    db_result *r = NULL;
    int rc = store__query(s, sql.data, (int)(k * 2), p, &r);
    for (size_t i = 0; rc == 0 && i < db_result_rows(r); i++) {
        seq_group *x = bsearch(db_result_get(r, i, 0), g, k, sizeof *g, store_event__seq_group_cmp);
        if (x) {
            x->last = db_result_int(r, i, 1, 0);
            x->found = true;
            if (s->seqs) seqcache_set(s->seqs, x->session_id, x->last);
        }
    }
    for (size_t i = 0; rc == 0 && i < k; i++)
        if (!g[i].found) rc = store__not_found(s, "session", g[i].session_id);
    db_result_free(r);
    free(nums);
    free(p);
    buf_cleanup(&sql);
    return rc;
}

/*
 * Gives every event its seq: each session in the batch reserves a block of
 * seqs, handed out in the caller's order. *out is set to the events
 * ordered by session, and within a session by seq (the caller frees it).
 * The sessions go in sorted by id, in chunks of a power of two sessions,
 * largest first, so few distinct statements are prepared. Any earlier
 * encoding is dropped, since it carried the seq of a batch that was
 * rolled back.
 *
 * With given set the events already carry their seqs (the token journal's,
 * store_journal.c): the blocks are reserved alike and must be exactly
 * those seqs, which are kept.
 */
static int store_event__assign_seqs(store *s, evt *const *evs, size_t n, bool given,
                                    event_slot **out)
{
    event_slot *slots = xmalloc(n * sizeof *slots);
    for (size_t i = 0; i < n; i++) slots[i] = (event_slot){evs[i], i};
    qsort(slots, n, sizeof *slots, store_event__event_slot_cmp);
    seq_group *groups = xmalloc(n * sizeof *groups);
    size_t ng = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && strcmp(slots[j].ev->session_id, slots[i].ev->session_id) == 0) j++;
        groups[ng++] =
            (seq_group){slots[i].ev->session_id, i, j - i, 0, given ? slots[i].ev->seq : 0, false};
        i = j;
    }
    int rc = 0;
    for (size_t done = 0; rc == 0 && done < ng;) {
        size_t k = store_event__chunk(ng - done, STORE_SEQ_CHUNK);
        rc = store_event__reserve_seqs(s, groups + done, k);
        done += k;
    }
    for (size_t g = 0; rc == 0 && g < ng; g++) {
        for (size_t k = 0; rc == 0 && k < groups[g].count; k++) {
            evt *e = evs[slots[groups[g].first + k].index];
            int64_t seq = groups[g].last - (int64_t)(groups[g].count - k) + 1;
            if (given) {
                if (e->seq != seq) {
                    snprintf(s->err, sizeof s->err,
                             "event %" PRId64 " of session %s does not follow the stored ones "
                             "(the next seq is %" PRId64 ")",
                             e->seq, e->session_id, seq);
                    rc = DB_ERR;
                }
                continue;
            }
            free(e->json);
            e->json = NULL;
            e->json_len = 0;
            e->seq = seq;
        }
    }
    for (size_t g = 0; rc == 0 && g < ng; g++)
        store_journal_learn(s, groups[g].session_id, groups[g].last);
    free(groups);
    *out = slots;
    return rc;
}

/* Inserts evs[0..k) with one multi-row INSERT. */
static int store_event__insert_events(store *s, evt *const *evs, size_t k)
{
    buf sql;
    buf_init(&sql, 128 + k * 64);
    buf_append_str(&sql, "INSERT INTO stream_events (session_id, seq, run_id, type, payload, "
                         "created_at) VALUES ");
    const char **p = xmalloc(k * 6 * sizeof *p);
    store_num *nums = xmalloc(k * 2 * sizeof *nums);
    for (size_t i = 0; i < k; i++) {
        const evt *e = evs[i];
        buf_append_str(&sql, i ? ", (?, ?, ?, ?, ?, chatplane_ts(?))"
                               : "(?, ?, ?, ?, ?, chatplane_ts(?))");
        p[i * 6 + 0] = e->session_id;
        p[i * 6 + 1] = store__num_i64(&nums[i * 2], e->seq);
        p[i * 6 + 2] = e->run_id;
        p[i * 6 + 3] = evt_type_name(e->type);
        p[i * 6 + 4] = e->json;
        p[i * 6 + 5] = store__num_i64(&nums[i * 2 + 1], e->ts_ms);
    }
    /* Nothing reads its answer: on PostgreSQL it travels with the commit. */
    int rc = store__exec_later(s, sql.data, (int)(k * 6), p);
    free(nums);
    free(p);
    buf_cleanup(&sql);
    return rc < 0 ? rc : 0;
}

static int store_event__encode_events(store *s, evt *const *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (evt_encode(evs[i]) < 0) {
            snprintf(s->err, sizeof s->err, "cannot encode %s event %" PRId64 " of session %s",
                     evt_type_name(evs[i]->type), evs[i]->seq, evs[i]->session_id);
            return DB_ERR;
        }
    }
    return 0;
}

/* Inserts evs[0..n) with multi-row INSERTs (store_event__chunk). */
static int store_event__insert_chunked(store *s, evt *const *evs, size_t n)
{
    int rc = 0;
    for (size_t done = 0; rc == 0 && done < n;) {
        size_t k = store_event__chunk(n - done, STORE_EVENT_CHUNK);
        rc = store_event__insert_events(s, evs + done, k);
        done += k;
    }
    return rc;
}

/* Inserts n events of one session and one run, with consecutive seqs from
 * first_seq: a lone one as a row of its own, as any other event is, more
 * as one token row. Either way the text goes in as one NUL-terminated
 * string, which the journal file's lines are not. */
static int store_event__insert_lines(store *s, const char *session_id, const char *run_id,
                                     int64_t first_seq, int64_t ts_ms, const store_line *lines,
                                     size_t n)
{
    int rc = 0;
    int64_t last = first_seq - 1 + (int64_t)n;
    buf body;
    buf_init(&body, STORE_EVENT_ROW_BYTES);
    if (n == 1) {
        rc = buf_append(&body, lines[0].json, lines[0].len);
    } else {
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = evtpack_append(&body, first_seq + (int64_t)i, evt_type_name(lines[i].type),
                                lines[i].json, lines[i].len);
    }
    store_num a, b;
    const char *p[] = {session_id, store__num_i64(&a, last),
                       run_id,     n == 1 ? evt_type_name(lines[0].type) : STORE_TOKEN_ROW,
                       body.data,  store__num_i64(&b, ts_ms)};
    if (rc != 0) {
        snprintf(s->err, sizeof s->err, "cannot build the token row of session %s", session_id);
        rc = DB_ERR;
    } else {
        rc = store__exec(s,
                         "INSERT INTO stream_events (session_id, seq, run_id, type, payload, "
                         "created_at) VALUES (?, ?, ?, ?, ?, chatplane_ts(?))",
                         6, p);
    }
    buf_cleanup(&body);
    return rc < 0 ? rc : 0;
}

int store_event_put_lines(store *s, const char *session_id, const char *run_id, int64_t first_seq,
                          int64_t ts_ms, const store_line *lines, size_t n)
{
    if (n == 0) return 0;
    if (n > STORE_EVENT_ROW_EVENTS) {
        snprintf(s->err, sizeof s->err,
                 "%zu journaled events of session %s are more than a row holds", n, session_id);
        return DB_ERR;
    }
    seq_group g = {session_id, 0, n, 0, first_seq, false};
    int rc = store_event__reserve_seqs(s, &g, 1);
    if (rc != 0) return rc;
    int64_t last = first_seq - 1 + (int64_t)n;
    if (g.last != last) {
        snprintf(s->err, sizeof s->err,
                 "event %" PRId64 " of session %s does not follow the stored ones "
                 "(the next seq is %" PRId64 ")",
                 first_seq, session_id, g.last - (int64_t)n + 1);
        return DB_ERR;
    }
    store_journal_learn(s, session_id, last);
    return store_event__insert_lines(s, session_id, run_id, first_seq, ts_ms, lines, n);
}

/*
 * Inserts evs (numbered and encoded; slots: them ordered by session and
 * seq) with each run of two or more consecutive events of one session and
 * one run that the token journal would take (tokens, and the `responding`
 * status) as one token row, up to STORE_EVENT_ROW_EVENTS events and
 * STORE_JOURNAL_BYTES_MAX bytes of them a row (as the journal's rows), and
 * every other event as a row of its own. A burst that the writer takes
 * whole (a model at full speed) so costs a row per 64 tokens rather than
 * one each (docs/benchmarks.md, fix 46).
 */
static int store_event__insert_packed(store *s, evt *const *evs, const event_slot *slots, size_t n)
{
    evt **alone = xmalloc(n * sizeof *alone);
    store_line *lines = xmalloc(STORE_EVENT_ROW_EVENTS * sizeof *lines);
    size_t nalone = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n;) {
        const evt *a = slots[i].ev;
        size_t j = i + 1, bytes = a->json_len;
        if (store_journal_takes(a)) {
            while (j < n && j - i < STORE_EVENT_ROW_EVENTS) {
                const evt *b = slots[j].ev;
                if (b->seq != slots[j - 1].ev->seq + 1 ||
                    strcmp(b->session_id, a->session_id) != 0 ||
                    !store__same_name(b->run_id, a->run_id) || !store_journal_takes(b) ||
                    bytes + b->json_len > STORE_JOURNAL_BYTES_MAX)
                    break;
                bytes += b->json_len;
                j++;
            }
        }
        if (j - i < 2) {
            alone[nalone++] = evs[slots[i].index];
            i++;
            continue;
        }
        for (size_t k = i; k < j; k++)
            lines[k - i] =
                (store_line){slots[k].ev->json, (uint32_t)slots[k].ev->json_len, slots[k].ev->type};
        rc = store_event__insert_lines(s, a->session_id, a->run_id, a->seq, slots[j - 1].ev->ts_ms,
                                       lines, j - i);
        i = j;
    }
    if (rc == 0) rc = store_event__insert_chunked(s, alone, nalone);
    free(lines);
    free(alone);
    return rc;
}

/* Appends evs as store_event_append does, or with given set puts them
 * under the seqs they carry (store_event_put). */
static int store_event__store(store *s, evt *const *evs, size_t n, bool given)
{
    if (n == 0) return 0;
    /* What the token journal holds for these sessions goes first. */
    int rc = given ? 0 : store_journal_settle(s, evs, n);
    event_slot *slots = NULL;
    if (rc == 0) rc = store_event__assign_seqs(s, evs, n, given, &slots);
    if (rc == 0) rc = store_event__encode_events(s, evs, n);
    /* Only SQLite writes token rows (docs/storage.md, Token rows). */
    if (rc == 0)
        rc = db_get_kind(s->d) == DB_SQLITE ? store_event__insert_packed(s, evs, slots, n)
                                            : store_event__insert_chunked(s, evs, n);
    free(slots);
    return rc;
}

int store_event_append(store *s, evt *const *evs, size_t n)
{
    return store_event__store(s, evs, n, false);
}

int store_event_put(store *s, evt *const *evs, size_t n)
{
    return store_event__store(s, evs, n, true);
}

/*
 * Calls cb for the events of a replay page past *last, at most max of
 * them (0: no limit), a token row's one by one; returns how many, sets
 * *last to the last one's seq, and sets *stop when cb asked to stop or
 * max was reached.
 */
static size_t store_event__deliver(const db_result *r, store_event_cb cb, void *ud, int64_t *last,
                                   size_t max, bool *stop)
{
    size_t rows = db_result_rows(r), got = 0;
    /* A token row's events are handed on NUL-terminated, as a row's text
     * is: each copied here in turn. */
    buf one;
    buf_init(&one, STORE_EVENT_ROW_BYTES);
    for (size_t i = 0; i < rows && !*stop; i++) {
        const char *payload = db_result_get(r, i, 2);
        if (strcmp(db_result_get(r, i, 1), STORE_TOKEN_ROW) != 0) {
            *last = db_result_int(r, i, 0, 0);
            int halt = cb(ud, *last, db_result_get(r, i, 1), payload, strlen(payload));
            got++;
            *stop = halt != 0 || got == max;
            continue;
        }
        const char *at = payload, *end = payload + strlen(payload);
        evtpack_item it;
        while (!*stop && evtpack_next(&at, end, &it)) {
            if (it.seq <= *last) continue; /* delivered from this row before */
            *last = it.seq;
            buf_reset(&one);
            buf_append(&one, it.json, it.json_len);
            int halt = cb(ud, it.seq, it.type, one.data, it.json_len);
            got++;
            *stop = halt != 0 || got == max;
        }
        /* Read to its end (or to a line that does not read as one): the
         * next page starts after the row, never at it again. */
        if (!*stop) *last = db_result_int(r, i, 0, 0);
    }
    buf_cleanup(&one);
    return got;
}

/* The seq of the first row of the session past after, or 0 when none. */
static int store_event__next_row(store *s, const char *session_id, int64_t after, int64_t *next)
{
    store_num a;
    const char *p[] = {session_id, store__num_i64(&a, after)};
    db_result *r = NULL;
    int rc = store__query(
        s, "SELECT seq FROM stream_events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT 1", 2,
        p, &r);
    if (rc == 0) *next = db_result_rows(r) ? db_result_int(r, 0, 0, 0) : 0;
    db_result_free(r);
    return rc;
}

/*
 * Replays in pages, so a long session is never held in memory at once.
 * Returns the number of events delivered.
 *
 * A page asks for the rows up to the seq that its events can reach: seqs
 * have no gaps but those compaction leaves, and a row holds at most
 * STORE_EVENT_ROW_EVENTS events, the last under its own seq, so the rows
 * that hold the next `want` events end below after + want +
 * STORE_EVENT_ROW_EVENTS. Without that bound a page of token rows would
 * read up to 64 times the events it gives (docs/benchmarks.md, fix 46). A
 * page that gives fewer than it asked for has reached the end of the log
 * or a gap; one more look tells which, and a gap widens the next page.
 */
int store_event_after(store *s, const char *session_id, int64_t after, int limit, store_event_cb cb,
                      void *ud)
{
    size_t total = 0;
    bool stop = false;
    int64_t reach = 0; /* past a gap: the least bound of the next page */
    while (!stop) {
        size_t want = STORE_REPLAY_PAGE;
        if (limit > 0 && (size_t)limit - total < want) want = (size_t)limit - total;
        if (want == 0) break;
        int64_t upto = after + (int64_t)want + STORE_EVENT_ROW_EVENTS - 1;
        if (upto < reach) upto = reach;
        store_num a, u, l;
        const char *p[] = {session_id, store__num_i64(&a, after), store__num_i64(&u, upto),
                           store__num_i64(&l, (int64_t)want)};
        db_result *r = NULL;
        int rc = store__query(s,
                              "SELECT seq, type, payload FROM stream_events WHERE session_id = ? "
                              "AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                              4, p, &r);
        if (rc < 0) return rc;
        size_t got =
            store_event__deliver(r, cb, ud, &after, limit > 0 ? (size_t)limit - total : 0, &stop);
        db_result_free(r);
        total += got;
        if (stop || got >= want) continue;
        int64_t next = 0;
        rc = store_event__next_row(s, session_id, after, &next);
        if (rc < 0) return rc;
        if (next == 0) break;
        reach = next + (int64_t)want + STORE_EVENT_ROW_EVENTS - 1;
    }
    return (int)total;
}

/* True for a token event whose message has a stored `message` event. */
static bool store_event__run_log_token_stored(const store_run_log *l, const store_log_item *it)
{
    return it->type == EVT_TOKEN && it->message_id &&
           store__name_in(l->stored, l->nstored, it->message_id);
}

/* Looks up the session and status of a run. */
static int store_event__run_owner(store *s, const char *run_id, char **session_id, bool *stopped)
{
    const char *p[] = {run_id};
    db_result *r = NULL;
    int rc = store__query(s, "SELECT session_id, status FROM runs WHERE id = ?", 1, p, &r);
    if (rc == 0 && db_result_rows(r) == 0) rc = store__not_found(s, "run", run_id);
    if (rc == 0) {
        *session_id = store__col_str(r, 0, 0);
        *stopped = strcmp(db_result_get(r, 0, 1), "stopped") == 0;
    }
    db_result_free(r);
    return rc;
}

static int store_event__delete_tokens(store *s, const char *session_id, const char *run_id,
                                      int64_t lo, int64_t hi)
{
    store_num a, b;
    const char *p[] = {session_id, run_id, store__num_i64(&a, lo), store__num_i64(&b, hi)};
    return store__exec(s,
                       "DELETE FROM stream_events WHERE session_id = ? AND run_id = ? AND type = "
                       "'token' AND seq BETWEEN ? AND ?",
                       4, p);
}

/* Puts one event of a token row back in a row of its own. */
static int store_event__unpack_one(store *s, const char *session_id, const char *run_id,
                                   const evtpack_item *it, const char *created_ms)
{
    store_num a;
    char *json = xmalloc(it->json_len + 1);
    memcpy(json, it->json, it->json_len);
    json[it->json_len] = '\0';
    const char *p[] = {session_id, store__num_i64(&a, it->seq), run_id, it->type, json, created_ms};
    int rc = store__exec(s,
                         "INSERT INTO stream_events (session_id, seq, run_id, type, payload, "
                         "created_at) VALUES (?, ?, ?, ?, ?, chatplane_ts(CAST(? AS BIGINT)))",
                         6, p);
    free(json);
    return rc < 0 ? rc : 0;
}

/* Turns the run's token rows back into a row per event, so that its
 * tokens can be deleted a range at a time; all or nothing. */
static int store_event__unpack_token_rows(store *s, const char *session_id, const char *run_id)
{
    const char *p[] = {session_id, run_id};
    db_result *r = NULL;
    int rc = store__query(s,
                          "SELECT seq, payload, chatplane_ms(created_at) FROM stream_events WHERE "
                          "session_id = ? AND run_id = ? AND type = '" STORE_TOKEN_ROW "'",
                          2, p, &r);
    size_t rows = rc == 0 ? db_result_rows(r) : 0;
    if (rows > 0) rc = store_savepoint(s);
    for (size_t i = 0; rc == 0 && i < rows; i++) {
        const char *payload = db_result_get(r, i, 1);
        const char *dp[] = {session_id, db_result_get(r, i, 0)};
        rc = store__exec(s, "DELETE FROM stream_events WHERE session_id = ? AND seq = ?", 2, dp);
        rc = rc < 0 ? rc : 0;
        const char *at = payload, *end = payload + strlen(payload);
        evtpack_item it;
        while (rc == 0 && evtpack_next(&at, end, &it))
            rc = store_event__unpack_one(s, session_id, run_id, &it, db_result_get(r, i, 2));
    }
    if (rows > 0) {
        if (rc == 0)
            rc = store_savepoint_release(s);
        else
            store_savepoint_undo(s);
    }
    db_result_free(r);
    return rc;
}

/*
 * Deletes the token events whose message has a stored `message` event, as
 * ranges of seqs: a range closes at a token that must stay (the text of an
 * attempt that was discarded, or of a message never stored).
 */
int store_event_compact(store *s, const char *run_id)
{
    char *session_id = NULL;
    bool stopped = false;
    store_run_log l = {0};
    int rc = store_event__run_owner(s, run_id, &session_id, &stopped);
    if (rc == 0 && stopped) rc = store_event__unpack_token_rows(s, session_id, run_id);
    if (rc == 0 && stopped) rc = store__run_log_read(s, session_id, run_id, &l);
    int deleted = 0;
    int64_t lo = 0, hi = 0;
    for (size_t i = 0; rc >= 0 && i <= l.n; i++) {
        const store_log_item *it = i < l.n ? &l.items[i] : NULL;
        if (it && it->type != EVT_TOKEN) continue;
        if (it && store_event__run_log_token_stored(&l, it)) {
            if (!lo) lo = it->seq;
            hi = it->seq;
        } else if (lo) {
            rc = store_event__delete_tokens(s, session_id, run_id, lo, hi);
            deleted += rc > 0 ? rc : 0;
            lo = 0;
        }
    }
    store__run_log_cleanup(&l);
    free(session_id);
    return rc < 0 ? rc : deleted;
}