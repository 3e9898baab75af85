/*
 * db_driver: what a database driver implements. Private to src/store/:
 * db.c dispatches the public db_* calls through these operations, and
 * db_sqlite.c / db_pg.c provide them.
 */
#ifndef CHATPLANE_DB_DRIVER_H
#define CHATPLANE_DB_DRIVER_H

#include "store/db.h"

#define DB_ERRMSG_MAX 512

typedef struct db_ops {
    int (*exec)(db *d, const char *sql, int n, const char *const *params, db_result **res);
    /* db_exec_later, db_exec_later_int when out is not NULL and
     * db_exec_later_rows when rows is not NULL: 0 or a negative code once
     * sent ahead, 1 when the statement is to run at once (db.c runs it
     * through exec); NULL always runs it at once. */
    int (*exec_later)(db *d, const char *sql, int n, const char *const *params, int64_t *out,
                      db_result **rows);
    int (*exec_script)(db *d, const char *sql);
    int (*lock_migrations)(db *d);
    int (*unlock_migrations)(db *d);
    void (*close)(db *d);
} db_ops;

/* Every driver's connection struct starts with this. */
struct db {
    const db_ops *ops;
    db_kind kind;
    char errmsg[DB_ERRMSG_MAX];
};

/*
 * A materialized result: rows * cols cells, each a NUL-terminated string or
 * NULL, row-major. Drivers build it with db__result_new / db__result_set;
 * the strings are copied into the result's own storage.
 */
struct db_result {
    size_t rows, cols;
    char **cells;
};

db_result *db__result_new(size_t rows, size_t cols);
/* Appends a row of NULL cells (for drivers that learn the row count as they
 * step) and returns its index. */
size_t db__result_add_row(db_result *r);
/* Copies len bytes of value (NULL for SQL NULL) into cell (row, col). */
void db__result_set(db_result *r, size_t row, size_t col, const char *value, size_t len);

/* Formats the connection's error message (printf-style). */
void db__set_error(db *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Driver constructors, called by db_open for their URL scheme. url_shown is
 * the redacted URL for messages. */
int db_sqlite_open(const char *path, const char *url_shown, db **out, char *err, size_t errlen);
int db_pg_open(const char *conninfo, const char *url_shown, db **out, char *err, size_t errlen);
/* The SQLite side of db_claim_take for the file path (not ":memory:"). */
int db_sqlite_claim(const char *path, const char *url_shown, db_claim **out, char *err,
                    size_t errlen);
void db_sqlite_claim_release(db_claim *c);
/* The SQLite side of db_write_try and db_write_drop. */
bool db_sqlite_write_try(db *d);
void db_sqlite_write_drop(db *d);

#endif
