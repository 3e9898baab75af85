/*
 * db: the small driver interface under the store. Two drivers implement it,
 * db_sqlite.c and db_pg.c; everything above (store.c) is written once.
 *
 * Values cross this interface as text: parameters are NUL-terminated strings
 * or NULL for SQL NULL; results are read as strings (NULL for SQL NULL).
 * SQL is written with `?` placeholders; the PostgreSQL driver rewrites them
 * to $1, $2, … (outside quoted literals) when it prepares a statement.
 * Statements are prepared once per connection and cached by their SQL text.
 *
 * A db connection belongs to one thread at a time; it is not thread-safe.
 */
#ifndef CHATPLANE_DB_H
#define CHATPLANE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

typedef enum db_kind { DB_SQLITE, DB_POSTGRES } db_kind;

/* Error codes (lib/err.h): any failure, db_errmsg says what; a unique or
 * primary key constraint failed; locked or a serialization failure, retry
 * later; the connection is lost (PostgreSQL); the disk is full or the file
 * read-only; rolled back as a deadlock victim or a serialization failure,
 * so the same transaction may succeed if run again at once. The last two
 * come from checks of chatplane's own schema functions on PostgreSQL
 * (SQLSTATE CP404 and CP409, docs/storage.md): the row a statement sent
 * ahead expected is missing, or its state forbids the change. */
#define DB_ERR           ERR_DB
#define DB_ERR_CONFLICT  ERR_DB_CONFLICT
#define DB_ERR_BUSY      ERR_DB_BUSY
#define DB_ERR_CONN      ERR_DB_CONN
#define DB_ERR_FULL      ERR_DB_FULL
#define DB_ERR_RETRY     ERR_DB_RETRY
#define DB_ERR_NOT_FOUND ERR_NOT_FOUND
#define DB_ERR_STATE     ERR_CONFLICT

typedef struct db db;
typedef struct db_result db_result;

/*
 * Opens a connection for a URL: "sqlite:PATH", "sqlite::memory:",
 * "postgres://…" or "postgresql://…". On failure returns a negative code,
 * *out stays NULL, and err holds a message that names the URL with its
 * password masked and the reason.
 */
int db_open(const char *url, db **out, char *err, size_t errlen);
void db_close(db *d);
db_kind db_get_kind(const db *d);

/* The last error message of this connection (never NULL). */
const char *db_errmsg(const db *d);

/*
 * Runs one statement with n text parameters. With res non-NULL, rows are
 * returned in a new result the caller frees with db_result_free; with res
 * NULL, rows are discarded. Returns the number of rows changed (>= 0) or a
 * negative DB_ERR_* code.
 */
int db_exec(db *d, const char *sql, int n, const char *const *params, db_result **res);

/*
 * Runs a statement whose rows and count nobody reads, inside a transaction
 * or as its BEGIN. On PostgreSQL a statement the connection has prepared
 * before is sent at once but its answer is read with the next db_exec,
 * db_commit or db_rollback of the connection, so that several statements
 * share one round trip (pipeline mode, docs/storage.md, Round trips on
 * PostgreSQL). Its failure is then that call's: a failed statement aborts
 * the transaction, so the calls after it fail with its error until the
 * caller rolls back. Only for statements whose failure the caller treats
 * as the transaction's (not a conflict it tells apart). Elsewhere, and on
 * SQLite, it is db_exec without a result. Returns 0 or a negative code.
 */
int db_exec_later(db *d, const char *sql, int n, const char *const *params);
/*
 * db_exec_later for a statement that answers at most one row whose first
 * column is an integer: *out takes that integer when the answer is read,
 * and keeps its value when no row (or NULL) comes or the statement fails.
 * On PostgreSQL that is the connection's next db_exec, db_commit or
 * db_rollback, so out must stay valid until then; elsewhere at once.
 */
int db_exec_later_int(db *d, const char *sql, int n, const char *const *params, int64_t *out);
/*
 * db_exec_later for a statement whose rows the caller reads afterwards:
 * *rows is set to a new result (db_result_free) when the answer is read,
 * and stays NULL when the statement failed or was skipped. On PostgreSQL
 * that is the connection's next db_exec, db_commit or db_rollback, so
 * rows must stay valid until then; elsewhere at once.
 */
int db_exec_later_rows(db *d, const char *sql, int n, const char *const *params, db_result **rows);

/* Runs a script of statements separated by semicolons, no parameters
 * (used by migrations). Returns 0 or a negative code. */
int db_exec_script(db *d, const char *sql);

/* db_begin is sent later on PostgreSQL (db_exec_later): a failure to begin
 * is then the next statement's. */
int db_begin(db *d);
int db_commit(db *d);
/* A COMMIT sent later (db_exec_later): on PostgreSQL its answer is read
 * with the next statement, which then runs after the transaction, in the
 * same round trip. A failure of either is that statement's, so whether the
 * transaction committed is unknown until something committed by it is
 * read again. On SQLite, db_commit. */
int db_commit_later(db *d);
int db_rollback(db *d);

/*
 * SQLite: takes the process's write lock for the connection's next
 * transaction, only if nobody holds it, without waiting, so that a thread
 * that must not wait (the loop) can tell before it begins. True when the
 * connection holds it; always false on PostgreSQL. db_write_drop releases
 * it if no transaction is open (a COMMIT or ROLLBACK released it already).
 */
bool db_write_try(db *d);
void db_write_drop(db *d);

/*
 * Says that a person is waiting on work that is starting now (a run's
 * start): background work that can wait, SQLite's WAL checkpoints and the
 * search index's jobs, holds back for a moment so as not to take a core
 * from it (core/holdback.h; docs/storage.md, Holding back while runs
 * start). Cheap enough to call at every start; any thread.
 */
void db_hold_background(void);

/* When db_hold_background was last called, in clock_mono_ns time, or 0 if
 * it never was; any thread. */
int64_t db_background_held_ns(void);

/* The SQLite WAL checkpoints this process has run since it started: by the
 * checkpointer threads (background), and by commits that found the WAL at
 * its hard length while every writer waited (fallback; docs/storage.md,
 * Checkpoints). Both 0 on PostgreSQL; any thread. */
void db_checkpoint_counts(unsigned long *background, unsigned long *fallback);

/* Takes and releases the migration lock: a PostgreSQL advisory lock held by
 * this connection (waits for another holder); a no-op on SQLite, where the
 * migration transaction itself is exclusive. */
int db_lock_migrations(db *d);
int db_unlock_migrations(db *d);

size_t db_result_rows(const db_result *r);
size_t db_result_cols(const db_result *r);
/* The value at (row, col) as text, or NULL for SQL NULL. Valid until free. */
const char *db_result_get(const db_result *r, size_t row, size_t col);
/* Convenience readers: NULL reads as def. */
int64_t db_result_int(const db_result *r, size_t row, size_t col, int64_t def);
/* Booleans read "1", "t", "true" as true. */
int db_result_bool(const db_result *r, size_t row, size_t col);
void db_result_free(db_result *r);

/*
 * The claim of one process on a SQLite database: the commands that run runs
 * or change the schema (serve, ask, migrate) take it before they start, so
 * that two of them never share a file (a second server would stop the
 * first one's runs as interrupted while the first kept writing to them).
 * It is an exclusive flock(2) on the file PATH.lock beside the database,
 * holding the owner's process id, and held until db_claim_release or the
 * process ends, however it ends. A second claim on the same file, from any
 * process (this one included), is refused with DB_ERR_CLAIMED and err
 * naming the database, the lock file and the holder's process id.
 *
 * PostgreSQL needs no claim (several instances share one database, see
 * docs/deploy.md), nor does sqlite::memory:, which no other process can
 * open: *out is then NULL, which db_claim_release accepts.
 */
#define DB_ERR_CLAIMED ERR_DB_CLAIMED
typedef struct db_claim db_claim;
int db_claim_take(const char *url, db_claim **out, char *err, size_t errlen);
void db_claim_release(db_claim *c);

/* Returns a new copy of url with the password (if any) replaced by "***". */
char *db_url_redact(const char *url);

#endif
