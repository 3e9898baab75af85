/*
 * db_sqlite_lock: the process's write lock for SQLite files.
 *
 * Write transactions of one process queue on it before SQLite's own lock:
 * SQLite makes a writer that finds the database locked sleep and retry
 * with growing pauses (1, 2, 5, 10 … 100 ms), where this lock hands over
 * to a waiting thread at once. The checkpointer also takes it when it must
 * finish a checkpoint with no commit landing meanwhile (db_sqlite_ckpt.c).
 */
#ifndef CHATPLANE_STORE_DB_SQLITE_LOCK_H
#define CHATPLANE_STORE_DB_SQLITE_LOCK_H

#include <stdbool.h>

/*
 * Takes the write lock, waiting at most timeout_ms. Returns false when it
 * was not taken (this thread holds it already, or the wait timed out); the
 * caller then goes on and meets SQLite's lock as it would without this
 * one, so nothing can wait forever here.
 */
bool db__sqlite_write_lock(int timeout_ms);

/* Takes the write lock only if it is free and no waiting thread is owed
 * it; never waits. */
bool db__sqlite_write_trylock(void);

/* Releases the lock this thread took; a waiting thread goes next. */
void db__sqlite_write_unlock(void);

#endif
