/*
 * store_migrate: the schema's migrations, embedded in the binary as one
 * SQL file per version and dialect (migrations/<dialect>/NNNN_name.sql),
 * applied in order under the migration lock and recorded in
 * schema_migrations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/embed.h"
#include "store/store.h"
#include "store/store_int.h"

EMBED_TABLE(migrations_files);

typedef struct store_migration {
    int version;
    char name[64];
    const char *sql;
} store_migration;

static const char *store_migrate__dialect_name(db_kind k)
{
    return k == DB_SQLITE ? "sqlite" : "postgres";
}

/*
 * Parses an embedded path "migrations/<dialect>/NNNN_name.sql". Returns 0
 * when it belongs to dialect (NULL: any) and fills m.
 */
static int store_migrate__migration_parse(const embed_file *f, const char *dialect,
                                          store_migration *m)
{
    const char *base = strrchr(f->path, '/');
    if (!base || strncmp(f->path, "migrations/", 11) != 0) return -1;
    size_t dlen = (size_t)(base - (f->path + 11));
    if (dialect && (strlen(dialect) != dlen || strncmp(f->path + 11, dialect, dlen) != 0))
        return -1;
    char *end;
    long v = strtol(base + 1, &end, 10);
    if (end == base + 1 || *end != '_' || v <= 0) return -1;
    const char *name = end + 1;
    size_t nlen = strcspn(name, ".");
    if (nlen >= sizeof m->name) nlen = sizeof m->name - 1;
    m->version = (int)v;
    memcpy(m->name, name, nlen);
    m->name[nlen] = '\0';
    m->sql = (const char *)f->data;
    return 0;
}

int store_schema_latest(void)
{
    int latest = 0;
    store_migration m;
    for (size_t i = 0; i < migrations_files_count; i++)
        if (store_migrate__migration_parse(&migrations_files[i], NULL, &m) == 0 &&
            m.version > latest)
            latest = m.version;
    return latest;
}

/* The one table that must exist before the migrations can be read; its
 * time type differs by dialect like every other time column. */
static int store_migrate__migrations_table(store *s)
{
    const char *sql = db_get_kind(s->d) == DB_SQLITE
                          ? "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY "
                            "KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
                          : "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY "
                            "KEY, name text NOT NULL, applied_at timestamptz NOT NULL)";
    int rc = store__exec(s, sql, 0, NULL);
    return rc < 0 ? rc : 0;
}

static int store_migrate__schema_version(store *s, int *version)
{
    db_result *r = NULL;
    int rc = store__query(s, "SELECT MAX(version) FROM schema_migrations", 0, NULL, &r);
    if (rc == 0) *version = (int)db_result_int(r, 0, 0, 0);
    db_result_free(r);
    return rc;
}

/* Whether version v is recorded in schema_migrations: 1 yes, 0 no, or a
 * negative code. */
static int store_migrate__applied(store *s, int v)
{
    store_num n;
    const char *p[] = {store__num_i64(&n, v)};
    db_result *r = NULL;
    int rc = store__query(s, "SELECT 1 FROM schema_migrations WHERE version = ?", 1, p, &r);
    if (rc == 0) rc = db_result_rows(r) > 0;
    db_result_free(r);
    return rc;
}

/*
 * Applies one migration in its own transaction. The version is checked
 * again inside the transaction, so a second process that raced this one
 * to the lock (SQLite has none) skips it instead of applying it twice.
 * Returns 1 when applied, 0 when it already was, or a negative code.
 */
static int store_migrate__apply(store *s, const store_migration *m)
{
    store_num v, now;
    const char *pv[] = {store__num_i64(&v, m->version)};
    int rc = store_begin(s);
    if (rc < 0) return rc;
    rc = store_migrate__applied(s, m->version);
    if (rc != 0) goto out;
    rc = db_exec_script(s->d, m->sql);
    if (rc < 0) {
        rc = store__fail(s, rc);
        goto out;
    }
    int64_t now_ms = clock_wall_ms();
    if (m->version == 1) rc = store__mode_seed(s, now_ms);
    if (rc < 0) goto out;
    const char *p[] = {pv[0], m->name, store__num_i64(&now, now_ms)};
    rc = store__exec(s,
                     "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, "
                     "chatplane_ts(?))",
                     3, p);
    if (rc < 0) goto out;
    rc = store_commit(s);
    return rc < 0 ? rc : 1;
out:
    db_rollback(s->d);
    return rc < 0 ? rc : 0;
}

/* Finds the embedded migration of version v for dialect (NULL: any).
 * Returns 0 and fills m, or -1. */
static int store_migrate__find(int v, const char *dialect, store_migration *m)
{
    for (size_t i = 0; i < migrations_files_count; i++)
        if (store_migrate__migration_parse(&migrations_files[i], dialect, m) == 0 &&
            m->version == v)
            return 0;
    return -1;
}

/*
 * Applies every migration of this dialect that the database has not
 * recorded, in order. Versions are numbered as changes are planned, and a
 * change may land before one with a smaller number: a version no dialect
 * has is a gap and skipped, and a version below `newest` (the highest
 * recorded) that is not recorded is applied when it arrives. A version
 * that one dialect has and the other lacks is a broken build.
 */
static int store_migrate__apply_pending(store *s, int newest, store_migrate_cb cb, void *ud)
{
    const char *dialect = store_migrate__dialect_name(db_get_kind(s->d));
    int latest = store_schema_latest();
    for (int v = 1; v <= latest; v++) {
        store_migration m;
        if (store_migrate__find(v, dialect, &m) != 0) {
            if (store_migrate__find(v, NULL, &m) != 0) continue;
            snprintf(s->err, sizeof s->err, "migration %d for %s is missing from this build", v,
                     dialect);
            return DB_ERR;
        }
        if (v <= newest) {
            /* Most versions below the newest are recorded: a read outside
             * a transaction is enough to pass them by. */
            int done = store_migrate__applied(s, v);
            if (done < 0) return done;
            if (done) continue;
        }
        int rc = store_migrate__apply(s, &m);
        if (rc < 0) {
            char why[STORE_ERRMSG_MAX];
            memcpy(why, s->err, sizeof why);
            snprintf(s->err, sizeof s->err, "migration %d (%s) failed: %.400s", v, m.name, why);
            return rc;
        }
        if (rc == 1 && cb) cb(ud, v, m.name);
    }
    return 0;
}

int store_migrate(store *s, store_migrate_cb cb, void *ud, char *err, size_t errlen)
{
    int rc = db_lock_migrations(s->d);
    if (rc < 0) {
        rc = store__fail(s, rc);
        snprintf(err, errlen, "cannot take the migration lock: %s", s->err);
        return rc;
    }
    int version = 0;
    rc = store_migrate__migrations_table(s);
    if (rc == 0) rc = store_migrate__schema_version(s, &version);
    if (rc == 0 && version > store_schema_latest()) {
        snprintf(s->err, sizeof s->err,
                 "database schema version %d is newer than this chatplane (knows up to %d); "
                 "upgrade chatplane",
                 version, store_schema_latest());
        rc = STORE_TOO_NEW;
    }
    if (rc == 0) rc = store_migrate__apply_pending(s, version, cb, ud);
    db_unlock_migrations(s->d);
    if (rc < 0) snprintf(err, errlen, "%s", s->err);
    return rc;
}