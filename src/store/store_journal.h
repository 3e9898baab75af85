/*
 * store_journal: the token journal of a SQLite file (docs/storage.md, The
 * token journal).
 *
 * A batch of the event log made of token events (and "responding"
 * statuses) only is not written as a
 * transaction: its events take their seqs from the journal's memory of
 * each session's last seq and are appended, encoded, one per line, to the
 * file PATH-tokens beside the database, after which the event log
 * publishes them. The file is mapped into memory (shared), so an append is
 * a copy into the file's pages in the operating system's cache. A session's events reach
 * stream_events in the first transaction that reserves seqs for it (store_journal_settle), or when
 * the writer has been idle for a moment, stops, or is flushed (store_journal_flush); the file is
 * written over from the start once nothing in it waits, and each of its
 * halves once nothing held lives there (STORE_JOURNAL_HALF). An appended line survives a crash of
 * the process as a commit under synchronous=NORMAL does, so a client still never sees an event that
 * a crash can lose; at start-up store_journal_recover moves what the file holds into the tables.
 *
 * A session's journal holds at most STORE_JOURNAL_EVENTS events and
 * STORE_JOURNAL_BYTES bytes of them, or up to STORE_JOURNAL_EVENTS_MAX and
 * STORE_JOURNAL_BYTES_MAX while the journal would hold at most
 * STORE_JOURNAL_SHARED events in all (a hundred runs streaming at once
 * then store their tokens in one transaction per 64 rather than per 8;
 * docs/benchmarks.md, fix 40). A stream that reconnects reads the tables,
 * then the events the journal holds (store_journal_held_after, which the
 * hub calls through eventlog_held_after), so it finds every event; a
 * reader of the tables alone misses at most those newest few.
 * store_journal_append takes a small batch whole or not at all (one that
 * would pass the limits, or has more than STORE_JOURNAL_EVENTS_MAX events,
 * goes to a transaction);
 * store_journal_append_part takes a batch of many sessions session by
 * session.
 * The journal knows a session's last seq only from a transaction it saw
 * commit, and forgets a session that an operation of a batch appended
 * events to or deleted: such a session's next token goes to a transaction
 * again. Nothing else changes a session's last_seq (store_event.c).
 *
 * The event log's writer uses it, on its own connection, and the loop's
 * thread appends a token to it itself (store_journal_try_append) when the
 * token's session has nothing queued for the writer: a lock guards the
 * journal's memory and file. PostgreSQL and sqlite::memory: have none:
 * every function is then a no-op.
 */
#ifndef CHATPLANE_STORE_JOURNAL_H
#define CHATPLANE_STORE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/evt.h"
#include "store/store.h"

#define STORE_JOURNAL_EVENTS     8
#define STORE_JOURNAL_BYTES      2048
#define STORE_JOURNAL_EVENTS_MAX 64
#define STORE_JOURNAL_BYTES_MAX  (16u << 10)
/* Events the whole journal holds before each session is back to the first
 * limits: about 2 MiB of lines, and as much again in the hub's tails. */
#define STORE_JOURNAL_SHARED 8192
/* Sessions whose last seq the journal keeps; past it, those with nothing
 * in the journal are forgotten. */
#define STORE_JOURNAL_SESSIONS 4096
/* The file's size: written over from the start each time nothing in it
 * waits for the tables (twice what the shared room holds, so that a
 * hundred runs fill it every second or two rather than several times a
 * second). Once a batch does not fit it takes nothing more,
 * and each transaction stores what it holds for
 * STORE_JOURNAL_FULL_SESSIONS more sessions until nothing in it waits. */
#define STORE_JOURNAL_FILE_MAX (4u << 20)
/* The file is written as two halves: once the one being written is full,
 * lines go to the other as soon as nothing held lives there, so a journal
 * that always holds a few events (streams that never pause together)
 * still starts over. At start-up both halves are read. */
#define STORE_JOURNAL_HALF          (STORE_JOURNAL_FILE_MAX / 2)
#define STORE_JOURNAL_FULL_SESSIONS 64
/* How long the writer lets events stay in the journal when nothing else
 * comes, unless store.journal_idle_ms says otherwise (eventlog.c). */
#define STORE_JOURNAL_IDLE_MS 100

/* The journal's file for a database URL: a new string, or NULL when the
 * URL is not a SQLite file. */
char *store_journal_path(const char *url);

/* Moves the events the journal file of url holds into the tables (those
 * past their session's last_seq), in one transaction on s, then empties
 * the file. Returns the events moved, 0 when there is no file, or a store
 * error. */
int store_journal_recover(store *s, const char *url);

/* Gives s (the event log's connection) the journal of url, after
 * recovering what the file holds. 0 without a journal for url. */
int store_journal_attach(store *s, const char *url);

/* True for the events the journal takes: tokens, the "responding" status
 * that comes right before an answer's first token and the "thinking"
 * status that begins a step (which followed the run's start in a
 * transaction of its own: docs/benchmarks.md, fix 59). Others go to a
 * transaction: readers of the tables see a run wait for a person at once,
 * and a refused write stops its run at once. */
bool store_journal_takes(const evt *e);

/*
 * Appends evs (token and status events, no transaction open) to the
 * journal.
 * Returns 1 when they were written (each has its seq and json), 0 when the
 * journal declines them (a session it does not know, or past its limits:
 * write them in a transaction instead), or a store error.
 */
int store_journal_append(store *s, evt *const *evs, size_t n);
/*
 * The loop's own append of one token event e (the caller knows that
 * nothing of e's session waits for the writer): like store_journal_append,
 * but 0 for a session whose held events the writer's open transaction is
 * storing along with other writes of the session (not a flush's:
 * store_journal_flush), and, when paced_ns > 0, for a session the loop
 * appended to less than paced_ns ago. It waits for the journal's lock,
 * which nobody holds while a statement runs.
 */
int store_journal_try_append(store *s, evt *e, int64_t paced_ns);
/*
 * Appends the events of evs whose sessions have room for all of theirs in
 * evs (any number of sessions and events) and leaves the others for a
 * transaction: taken[i] says which were written. Returns how many were
 * written, or a store error (then none were).
 */
int store_journal_append_part(store *s, evt *const *evs, size_t n, bool *taken);

/* Inside a transaction: stores every event the journal holds
 * (store_event_put_lines). store_journal_end then tells it the outcome. */
int store_journal_flush(store *s);
/* Inside a transaction, before seqs are reserved for evs (store_event.c):
 * stores what the journal holds for their sessions, so that their new
 * seqs follow it. */
int store_journal_settle(store *s, evt *const *evs, size_t n);
/* Inside a transaction, around an operation other than appending events
 * (running true before it, false after): the sessions it appends events to
 * are forgotten once the transaction commits, since the operation's
 * savepoint may undo them. */
void store_journal_op(store *s, bool running);
/* Inside a transaction: the session is forgotten once it commits (it is
 * being deleted). */
void store_journal_forget(store *s, const char *session_id);
/* Called by store_event_append for every session whose seqs it reserved:
 * the session's last seq once the transaction commits. */
void store_journal_learn(store *s, const char *session_id, int64_t last_seq);
/* The transaction ended: committed (the flushed events leave the journal,
 * the file is emptied) or rolled back (the journal is as before it). */
void store_journal_end(store *s, bool committed);

/* Events the journal holds. */
size_t store_journal_pending(const store *s);
/* Calls cb, as store_event_after does, for each event the journal holds
 * for session_id with a seq above after, in seq order: events the tables
 * may not hold yet. Any thread; cb runs under the journal's lock and
 * returns non-zero to stop. Returns how many cb was given (0 without a
 * journal). */
int store_journal_held_after(store *s, const char *session_id, int64_t after, store_event_cb cb,
                             void *ud);
/* Frees the journal (store_close calls it). */
void store_journal_free(store *s);

#endif
