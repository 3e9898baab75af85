/*
 * db: the public db_* calls. db_open picks a driver by the URL's scheme;
 * every other call dispatches through the connection's db_ops. The result
 * type and the error formatting shared by the drivers live here too.
 */
#include "store/db.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"
#include "store/db_driver.h"
#include "store/db_sqlite_ckpt.h"

/* The URL forms db_open knows, named in its errors. sqlite::memory: is one
 * database shared by every connection of the process, gone when its last
 * connection closes (db_sqlite.c). */
#define DB_URL_FORMS                                                                               \
    "sqlite:PATH, sqlite::memory:, postgres://user:pass@host:port/db or "                          \
    "postgresql://user:pass@host:port/db"

static bool db__has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Opens url with the driver its scheme names. The redacted form of the URL
 * is what every message shows, so a password never reaches a log.
 */
int db_open(const char *url, db **out, char *err, size_t errlen)
{
    *out = NULL;
    if (errlen) err[0] = '\0';
    if (!url || !*url) {
        snprintf(err, errlen, "no database URL given; use " DB_URL_FORMS);
        return DB_ERR;
    }
    char *shown = db_url_redact(url);
    int rc;
    if (db__has_prefix(url, "sqlite:")) {
        const char *path = url + strlen("sqlite:");
        if (*path) {
            rc = db_sqlite_open(path, shown, out, err, errlen);
        } else {
            snprintf(err, errlen, "cannot open database %s: the path is empty; use " DB_URL_FORMS,
                     shown);
            rc = DB_ERR;
        }
    } else if (db__has_prefix(url, "postgres://") || db__has_prefix(url, "postgresql://")) {
        rc = db_pg_open(url, shown, out, err, errlen);
    } else {
        snprintf(err, errlen, "cannot open database %s: unknown kind of URL; use " DB_URL_FORMS,
                 shown);
        rc = DB_ERR;
    }
    free(shown);
    return rc;
}

int db_claim_take(const char *url, db_claim **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!url || !db__has_prefix(url, "sqlite:")) return 0;
    const char *path = url + strlen("sqlite:");
    if (!*path || strcmp(path, ":memory:") == 0) return 0;
    char *shown = db_url_redact(url);
    int rc = db_sqlite_claim(path, shown, out, err, errlen);
    free(shown);
    return rc;
}

void db_claim_release(db_claim *c)
{
    db_sqlite_claim_release(c);
}

void db_close(db *d)
{
    if (d) d->ops->close(d);
}

db_kind db_get_kind(const db *d)
{
    return d->kind;
}

const char *db_errmsg(const db *d)
{
    return d->errmsg;
}

int db_exec(db *d, const char *sql, int n, const char *const *params, db_result **res)
{
    if (res) *res = NULL;
    return d->ops->exec(d, sql, n, params, res);
}

/* The db_exec_later family: sent ahead when the driver can, else run at
 * once, its integer into *out and its rows into *rows where asked. */
static int db__later(db *d, const char *sql, int n, const char *const *params, int64_t *out,
                     db_result **rows)
{
    if (rows) *rows = NULL;
    int rc = d->ops->exec_later ? d->ops->exec_later(d, sql, n, params, out, rows) : 1;
    if (rc != 1) return rc;
    db_result *r = NULL;
    rc = d->ops->exec(d, sql, n, params, out || rows ? &r : NULL);
    if (rc >= 0 && out && db_result_rows(r) > 0 && db_result_cols(r) > 0)
        *out = db_result_int(r, 0, 0, *out);
    if (rc >= 0 && rows) {
        *rows = r;
        r = NULL;
    }
    db_result_free(r);
    return rc < 0 ? rc : 0;
}

int db_exec_later(db *d, const char *sql, int n, const char *const *params)
{
    return db__later(d, sql, n, params, NULL, NULL);
}

int db_exec_later_int(db *d, const char *sql, int n, const char *const *params, int64_t *out)
{
    return db__later(d, sql, n, params, out, NULL);
}

int db_exec_later_rows(db *d, const char *sql, int n, const char *const *params, db_result **rows)
{
    return db__later(d, sql, n, params, NULL, rows);
}

int db_exec_script(db *d, const char *sql)
{
    return d->ops->exec_script(d, sql);
}

/* SQLite takes the write lock at BEGIN IMMEDIATE, so two writers queue on
 * the busy timeout instead of failing when the first one tries to write. */
int db_begin(db *d)
{
    if (d->kind == DB_SQLITE) {
        int rc = db_exec(d, "BEGIN IMMEDIATE", 0, NULL, NULL);
        return rc < 0 ? rc : 0;
    }
    return db_exec_later(d, "BEGIN", 0, NULL);
}

int db_commit(db *d)
{
    int rc = db_exec(d, "COMMIT", 0, NULL, NULL);
    return rc < 0 ? rc : 0;
}

int db_commit_later(db *d)
{
    if (d->kind == DB_SQLITE) return db_commit(d);
    return db_exec_later(d, "COMMIT", 0, NULL);
}

int db_rollback(db *d)
{
    int rc = db_exec(d, "ROLLBACK", 0, NULL, NULL);
    return rc < 0 ? rc : 0;
}

/* When db_hold_background was last called (clock_mono_ns), 0 for never:
 * one process-wide time, since every database's background work gives way
 * to a start. */
static atomic_llong db__held_ns;

void db_hold_background(void)
{
    atomic_store(&db__held_ns, clock_mono_ns());
}

int64_t db_background_held_ns(void)
{
    return atomic_load(&db__held_ns);
}

bool db_write_try(db *d)
{
    return d->kind == DB_SQLITE && db_sqlite_write_try(d);
}

void db_write_drop(db *d)
{
    if (d->kind == DB_SQLITE) db_sqlite_write_drop(d);
}

void db_checkpoint_counts(unsigned long *background, unsigned long *fallback)
{
    db__sqlite_ckpt_counts(background, fallback);
}

int db_lock_migrations(db *d)
{
    return d->ops->lock_migrations(d);
}

int db_unlock_migrations(db *d)
{
    return d->ops->unlock_migrations(d);
}

void db__set_error(db *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->errmsg, sizeof d->errmsg, fmt, ap);
    va_end(ap);
}

/* ---- results ---- */

/*
 * Rows are allocated in powers of two, so a driver that adds rows one by one
 * copies each cell pointer a constant number of times on average. The
 * capacity is implicit: the smallest power of two holding rows.
 */
static size_t db__row_capacity(size_t rows)
{
    size_t cap = 1;
    while (cap < rows) cap *= 2;
    return rows ? cap : 0;
}

db_result *db__result_new(size_t rows, size_t cols)
{
    db_result *r = xcalloc(1, sizeof *r);
    size_t cap = db__row_capacity(rows);
    r->rows = rows;
    r->cols = cols;
    r->cells = (cap && cols) ? xcalloc(cap * cols, sizeof *r->cells) : NULL;
    return r;
}

size_t db__result_add_row(db_result *r)
{
    size_t row = r->rows++;
    if (r->cols == 0) return row;
    if (db__row_capacity(row) < r->rows)
        r->cells = xrealloc(r->cells, db__row_capacity(r->rows) * r->cols * sizeof *r->cells);
    memset(r->cells + row * r->cols, 0, r->cols * sizeof *r->cells);
    return row;
}

void db__result_set(db_result *r, size_t row, size_t col, const char *value, size_t len)
{
    char **cell = &r->cells[row * r->cols + col];
    free(*cell);
    *cell = value ? xstrndup(value, len) : NULL;
}

size_t db_result_rows(const db_result *r)
{
    return r->rows;
}

size_t db_result_cols(const db_result *r)
{
    return r->cols;
}

const char *db_result_get(const db_result *r, size_t row, size_t col)
{
    if (row >= r->rows || col >= r->cols) return NULL;
    return r->cells[row * r->cols + col];
}

int64_t db_result_int(const db_result *r, size_t row, size_t col, int64_t def)
{
    const char *v = db_result_get(r, row, col);
    return v ? strtoll(v, NULL, 10) : def;
}

int db_result_bool(const db_result *r, size_t row, size_t col)
{
    const char *v = db_result_get(r, row, col);
    return v && (strcmp(v, "1") == 0 || strcmp(v, "t") == 0 || strcmp(v, "true") == 0);
}

void db_result_free(db_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->rows * r->cols; i++) free(r->cells[i]);
    free(r->cells);
    free(r);
}

/* ---- URL redaction ---- */

/*
 * Appends s with the password of a "scheme://user:pass@…" authority masked.
 * The user info ends at the last '@' of the URL, so a password holding an
 * unescaped '@', '/' or '?' is still masked whole; a stray '@' in the query
 * masks too much, never too little.
 */
static void db__redact_userinfo(buf *out, const char *s)
{
    const char *sep = strstr(s, "://");
    const char *at = strrchr(s, '@');
    if (!sep || !at || at < sep + 3) {
        buf_append_str(out, s);
        return;
    }
    const char *auth = sep + 3;
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (!colon || colon + 1 == at) {
        buf_append_str(out, s);
        return;
    }
    buf_append(out, s, (size_t)(colon + 1 - s));
    buf_append_str(out, "***");
    buf_append_str(out, at);
}

/* True when s[i] starts a "password=" parameter: at the start, or after
 * '?', '&' or white space (libpq's key=value form). */
static bool db__password_param_at(const char *s, size_t i)
{
    if (strncmp(s + i, "password=", 9) != 0) return false;
    return i == 0 || s[i - 1] == '?' || s[i - 1] == '&' || s[i - 1] == ' ';
}

/* Appends s with the value of every password= parameter masked. */
static void db__redact_params(buf *out, const char *s)
{
    size_t i = 0;
    while (s[i]) {
        if (db__password_param_at(s, i)) {
            buf_append_str(out, "password=***");
            i += 9;
            while (s[i] && s[i] != '&' && s[i] != ' ') i++;
        } else {
            buf_append_char(out, s[i++]);
        }
    }
}

char *db_url_redact(const char *url)
{
    if (!url || !*url) return xstrdup("");
    /* Masking grows the text by at most 3 bytes per 9-byte "password=". */
    size_t cap = 2 * strlen(url) + 16;
    buf out, tmp;
    buf_init(&out, cap);
    buf_init(&tmp, cap);
    db__redact_userinfo(&tmp, url);
    db__redact_params(&out, tmp.data);
    buf_cleanup(&tmp);
    return buf_detach(&out, NULL);
}
