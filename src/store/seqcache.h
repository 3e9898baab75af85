/*
 * seqcache: the last_seq of the sessions one connection appended events
 * to, as its own transactions left them (PostgreSQL: docs/storage.md,
 * Round trips on PostgreSQL). With every session of a batch known, the
 * event log raises their last_seq with a statement whose answer it need
 * not read, and which fails the transaction if another connection moved
 * one of them on; so values that are out of date cost a batch written
 * again, never a wrong seq.
 *
 * Values set inside a transaction are pending until it commits; a
 * rollback, or an undone savepoint, forgets everything, since the
 * connection then no longer knows what the database holds. Pure: no I/O.
 */
#ifndef CHATPLANE_SEQCACHE_H
#define CHATPLANE_SEQCACHE_H

#include <stdbool.h>
#include <stdint.h>

/* Slots, a power of two; past three quarters of them used, the cache is
 * emptied and fills again from the sessions being written. */
#define SEQCACHE_SLOTS 1024
/* Longest session id kept (ids are about 30 bytes); longer ones are never
 * known, and take the statement that reads last_seq. */
#define SEQCACHE_ID_MAX 47

typedef struct seqcache seqcache;

seqcache *seqcache_new(void);
void seqcache_free(seqcache *c);
/* The session's last_seq in this transaction: pending if set since the
 * last commit, else committed. False when unknown. */
bool seqcache_get(const seqcache *c, const char *session_id, int64_t *last);
/* Sets the session's last_seq for this transaction. */
void seqcache_set(seqcache *c, const char *session_id, int64_t last);
/* The transaction committed: its values become the known ones. */
void seqcache_commit(seqcache *c);
/* The transaction (or part of it) was undone: nothing is known. */
void seqcache_clear(seqcache *c);
/* Sessions known, pending ones included. */
unsigned seqcache_count(const seqcache *c);

#endif
