/*
 * store: chatplane's tables (docs/storage.md) over the db driver, with
 * every statement written once for SQLite and PostgreSQL alike. This file
 * holds the connection and the helpers the other store files share
 * (store_int.h); each table has its own file (store_session.c, store_run.c,
 * store_message.c, store_tool.c, store_mode.c, store_event.c,
 * store_token.c), beside the migrations (store_migrate.c), crash recovery
 * (store_recover.c) and the column tables (store_table.c).
 *
 * What makes one text serve both dialects: `?` placeholders (the PostgreSQL
 * driver numbers them), times written as chatplane_ts(?) and read as
 * chatplane_ms(column) (functions each dialect defines, see the migration
 * files), booleans bound as "1"/"0", JSON bound as text, and CAST(? AS TEXT)
 * wherever a parameter is only tested for NULL, since PostgreSQL must infer
 * every parameter's type. The only dialect-specific text is the bootstrap of
 * schema_migrations, the migration files themselves, and the notifications
 * that PostgreSQL instances send each other (NOTIFY has no SQLite form, and
 * a SQLite database has one instance).
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evt.h"
#include "core/jsonw.h"
#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "store/store_int.h"
#include "store/seqcache.h"
#include "store/store_journal.h"

/* ------------------------------------------------------------------------
 * Helpers: errors, parameters, columns
 */

int store__fail(store *s, int rc)
{
    snprintf(s->err, sizeof s->err, "%s", db_errmsg(s->d));
    return rc == DB_ERR_CONFLICT ? STORE_CONFLICT : rc;
}

int store__not_found(store *s, const char *what, const char *id)
{
    snprintf(s->err, sizeof s->err, "%s %s not found", what, id ? id : "(null)");
    return STORE_NOT_FOUND;
}

int store__exec(store *s, const char *sql, int n, const char *const *p)
{
    int rc = db_exec(s->d, sql, n, p, NULL);
    return rc < 0 ? store__fail(s, rc) : rc;
}

int store__exec_later(store *s, const char *sql, int n, const char *const *p)
{
    int rc = db_exec_later(s->d, sql, n, p);
    return rc < 0 ? store__fail(s, rc) : 0;
}

int store__exec_at(store *s, const char *sql, int64_t at_ms, const char *id)
{
    store_num t;
    const char *p[] = {store__num_i64(&t, at_ms), id};
    return store__exec(s, sql, 2, p);
}

int store__query(store *s, const char *sql, int n, const char *const *p, db_result **r)
{
    int rc = db_exec(s->d, sql, n, p, r);
    return rc < 0 ? store__fail(s, rc) : 0;
}

int store__changed_one(store *s, int rc, const char *what, const char *id)
{
    if (rc < 0) return rc;
    return rc > 0 ? 0 : store__not_found(s, what, id);
}

/* Without snprintf: a run binds about thirty numbers, and formatting them
 * cost ten times the conversion (docs/benchmarks.md, fix 58). */
const char *store__num_i64(store_num *n, int64_t v)
{
    _Static_assert(sizeof n->text >= BUF_I64_LEN, "store_num holds any int64_t");
    buf_i64_text(n->text, v);
    return n->text;
}

const char *store__num_time_opt(store_num *n, int64_t ms)
{
    return ms ? store__num_i64(n, ms) : NULL;
}

const char *store__bool_text(bool b)
{
    return b ? "1" : "0";
}

char *store__json_text(const json_t *v)
{
    return v ? jsonw_dumps(v, EVT_JSON_FLAGS | JSON_ENCODE_ANY) : NULL;
}

char *store__col_str(const db_result *r, size_t row, size_t col)
{
    const char *v = db_result_get(r, row, col);
    return v ? xstrdup(v) : NULL;
}

int store__select(store *s, const char *sql, int np, const char *const *p, size_t size,
                  store_reader read, const void *ctx, void **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    db_result *r = NULL;
    int rc = store__query(s, sql, np, p, &r);
    if (rc < 0) return rc;
    store__select_read(r, size, read, ctx, out, n);
    return 0;
}

void store__select_read(db_result *r, size_t size, store_reader read, const void *ctx, void **out,
                        size_t *n)
{
    size_t rows = db_result_rows(r);
    char *arr = xcalloc(rows ? rows : 1, size);
    for (size_t i = 0; i < rows; i++) read(ctx, r, i, arr + i * size);
    db_result_free(r);
    *out = arr;
    *n = rows;
}

int store__select_one(store *s, const char *sql, int np, const char *const *p, size_t size,
                      store_reader read, const void *ctx, void *out, const char *what,
                      const char *id)
{
    db_result *r = NULL;
    int rc = store__query(s, sql, np, p, &r);
    if (rc < 0) return rc;
    if (db_result_rows(r) == 0) {
        db_result_free(r);
        return store__not_found(s, what, id);
    }
    memset(out, 0, size);
    read(ctx, r, 0, out);
    db_result_free(r);
    return 0;
}

/* ------------------------------------------------------------------------
 * Connection
 */

int store_open(const char *url, store **out, char *err, size_t errlen)
{
    *out = NULL;
    db *d = NULL;
    int rc = db_open(url, &d, err, errlen);
    if (rc < 0) return rc;
    store *s = xcalloc(1, sizeof *s);
    s->d = d;
    *out = s;
    return 0;
}

void store_close(store *s)
{
    if (!s) return;
    store_journal_free(s);
    seqcache_free(s->seqs);
    db_close(s->d);
    free(s);
}

db *store_db(store *s)
{
    return s->d;
}

int store_set_page_cache(store *s, int kib)
{
    if (db_get_kind(s->d) != DB_SQLITE) return 0;
    char sql[48];
    snprintf(sql, sizeof sql, "PRAGMA cache_size=-%d", kib);
    int rc = db_exec_script(s->d, sql);
    return rc < 0 ? store__fail(s, rc) : 0;
}

const char *store_errmsg(const store *s)
{
    return s->err;
}

int store_ping(store *s)
{
    db_result *r = NULL;
    int rc = store__query(s, "SELECT 1", 0, NULL, &r);
    db_result_free(r);
    return rc;
}

int store_notify(store *s, const char *channel, const char *payload)
{
    if (db_get_kind(s->d) != DB_POSTGRES) return 0;
    const char *p[] = {channel, payload};
    db_result *r = NULL;
    int rc = store__query(s, "SELECT pg_notify(?, ?)", 2, p, &r);
    db_result_free(r);
    return rc;
}

int store_begin(store *s)
{
    int rc = db_begin(s->d);
    return rc < 0 ? store__fail(s, rc) : 0;
}

int store_commit(store *s)
{
    int rc = db_commit(s->d);
    if (s->seqs) {
        /* A commit whose answer was lost may or may not have happened. */
        if (rc == 0)
            seqcache_commit(s->seqs);
        else
            seqcache_clear(s->seqs);
    }
    return rc < 0 ? store__fail(s, rc) : 0;
}

int store_commit_later(store *s)
{
    if (s->seqs) return store_commit(s);
    int rc = db_commit_later(s->d);
    return rc < 0 ? store__fail(s, rc) : 0;
}

int store_rollback(store *s)
{
    if (s->seqs) seqcache_clear(s->seqs);
    int rc = db_rollback(s->d);
    return rc < 0 ? store__fail(s, rc) : 0;
}

int store_savepoint(store *s)
{
    int rc = db_exec(s->d, "SAVEPOINT chatplane_op", 0, NULL, NULL);
    return rc < 0 ? store__fail(s, rc) : 0;
}

int store_savepoint_undo(store *s)
{
    if (s->seqs) seqcache_clear(s->seqs);
    int rc = db_exec(s->d, "ROLLBACK TO SAVEPOINT chatplane_op", 0, NULL, NULL);
    if (rc >= 0) rc = db_exec(s->d, "RELEASE SAVEPOINT chatplane_op", 0, NULL, NULL);
    return rc < 0 ? store__fail(s, rc) : 0;
}

int store_savepoint_release(store *s)
{
    int rc = db_exec(s->d, "RELEASE SAVEPOINT chatplane_op", 0, NULL, NULL);
    return rc < 0 ? store__fail(s, rc) : 0;
}
