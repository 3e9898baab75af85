/*
 * db_sqlite_ckpt: WAL checkpoints of the SQLite driver, run by a thread of
 * their own instead of inside the commit that makes the WAL long.
 */
#ifndef CHATPLANE_STORE_DB_SQLITE_CKPT_H
#define CHATPLANE_STORE_DB_SQLITE_CKPT_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

/* The WAL length, in pages, at which a commit wakes the checkpointer. */
#define DB_SQLITE_CKPT_SOFT 1000
/* The WAL length at which the committing connection checkpoints itself. */
#define DB_SQLITE_CKPT_HARD 16000
/* The least time between the starts of two checkpoints of one
 * checkpointer: a page that every commit rewrites is copied back once per
 * pause rather than once per commit, and the file is synced as often
 * (docs/benchmarks.md has the figures). */
#define DB_SQLITE_CKPT_PAUSE_MS 50
/* How long the checkpointer waits for the process's write lock to finish a
 * long WAL's checkpoint; past it, the hard length still bounds the WAL. */
#define DB_SQLITE_CKPT_LOCK_WAIT_MS 1000

typedef struct db_sqlite_ckpt db_sqlite_ckpt;

/*
 * Turns off SQLite's automatic checkpoints on conn and hands them to the
 * checkpointer of conn's database file. Returns the handle to pass to
 * db__sqlite_ckpt_detach, or NULL for a database without a file
 * (":memory:"), which needs none.
 */
db_sqlite_ckpt *db__sqlite_ckpt_attach(sqlite3 *conn);

/* Called after conn is closed; the last detach of a file stops and joins
 * its checkpointer. NULL is ignored. */
void db__sqlite_ckpt_detach(db_sqlite_ckpt *c);

/*
 * When a checkpointer may begin its next checkpoint, in clock_mono_ns
 * time: the pause after the previous one began (last_ns, 0 before the
 * first), and no sooner than core/holdback.h lets it after the latest run
 * start (hold_ns, 0 for none), waiting since the first commit that asked
 * for the checkpoint (asked_ns). Once the WAL holds pages of at least a
 * half the hard length (hard), nothing holds it back: a WAL that
 * reached the hard length would make a commit checkpoint itself while
 * every writer of the process waits (docs/storage.md, Checkpoints). Pure,
 * for tests.
 */
int64_t db__sqlite_ckpt_due(int64_t last_ns, int64_t pause_ns, int64_t hold_ns, int64_t asked_ns,
                            unsigned pages, unsigned hard);

/*
 * For tests: sets the two lengths (0 keeps the default) and holds every
 * checkpointer back while paused is true, so that only the committing
 * connection's own checkpoint can bound the WAL.
 */
void db__sqlite_ckpt_tune(unsigned soft, unsigned hard, bool paused);
/* For tests: sets the pause between two checkpoints (negative keeps the
 * default). */
void db__sqlite_ckpt_tune_pause(int ms);

/* For tests: the checkpoints run so far by checkpointers and by
 * committing connections past the hard length. */
void db__sqlite_ckpt_counts(unsigned long *background, unsigned long *fallback);

#endif
