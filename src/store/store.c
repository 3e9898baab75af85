/*
 * store: chatplane's tables (contract section 9) over the db driver, with
 * every statement written once for SQLite and PostgreSQL alike.
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
 *
 * Each row type has one column list and one reader, shared by its get and
 * list functions.
 */
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/budget.h"
#include "core/stop.h"
#include "lib/buf.h"
#include "lib/embed.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

EMBED_TABLE(migrations_files);

#define STORE_ERRMSG_MAX 512
/* Rows per multi-row INSERT of events: a power of two, so a batch is cut
 * into at most a handful of distinct statements that the drivers cache. */
#define STORE_EVENT_CHUNK 256
/* Sessions per UPDATE that reserves seqs, a power of two for the same
 * reason: 100 sessions go in as 64 + 32 + 4. */
#define STORE_SEQ_CHUNK 64
/* Events fetched per query when replaying without a limit. */
#define STORE_REPLAY_PAGE          1000
#define STORE_SESSION_PAGE_DEFAULT 50
/* The most assistant text recovery joins into one partial message. */
#define STORE_PARTIAL_MAX        (64u * 1024 * 1024)
#define STORE_INTERRUPTED_DETAIL "the server stopped while the run was going"
#define STORE_CANCELLED_ERROR    "the server stopped while the tool was running"

struct store {
    db *d;
    char err[STORE_ERRMSG_MAX];
};

/* ------------------------------------------------------------------------
 * Helpers: errors, parameters, columns
 */

/* Records the db's message for a failed call and maps its code: a unique
 * constraint becomes STORE_CONFLICT; other codes pass through. */
static int store__fail(store *s, int rc)
{
    snprintf(s->err, sizeof s->err, "%s", db_errmsg(s->d));
    return rc == DB_ERR_CONFLICT ? STORE_CONFLICT : rc;
}

static int store__not_found(store *s, const char *what, const char *id)
{
    snprintf(s->err, sizeof s->err, "%s %s not found", what, id ? id : "(null)");
    return STORE_NOT_FOUND;
}

/* Runs a statement; returns the rows changed or a store error. */
static int store__exec(store *s, const char *sql, int n, const char *const *p)
{
    int rc = db_exec(s->d, sql, n, p, NULL);
    return rc < 0 ? store__fail(s, rc) : rc;
}

/* Runs a query; on success *r is a new result the caller frees. */
static int store__query(store *s, const char *sql, int n, const char *const *p, db_result **r)
{
    int rc = db_exec(s->d, sql, n, p, r);
    return rc < 0 ? store__fail(s, rc) : 0;
}

/* Text forms of numbers for parameters: a small buffer on the caller's
 * stack, so no parameter list needs freeing. */
typedef struct store_num {
    char text[32];
} store_num;

static const char *num_i64(store_num *n, int64_t v)
{
    snprintf(n->text, sizeof n->text, "%" PRId64, v);
    return n->text;
}

/* An optional time or limit: 0 (times) or a negative value (limits) is NULL. */
static const char *num_time_opt(store_num *n, int64_t ms)
{
    return ms ? num_i64(n, ms) : NULL;
}

static const char *num_limit(store_num *n, int64_t v)
{
    return v < 0 ? NULL : num_i64(n, v);
}

static const char *num_cost(store_num *n, double v)
{
    if (v < 0) return NULL;
    snprintf(n->text, sizeof n->text, "%.17g", v);
    return n->text;
}

static const char *bool_text(bool b)
{
    return b ? "1" : "0";
}

/* Returns a new compact JSON text of v (NULL for NULL); caller frees. */
static char *json_text(const json_t *v)
{
    return v ? json_dumps(v, EVT_JSON_FLAGS | JSON_ENCODE_ANY) : NULL;
}

static char *col_str(const db_result *r, size_t row, size_t col)
{
    const char *v = db_result_get(r, row, col);
    return v ? xstrdup(v) : NULL;
}

static json_t *col_json(const db_result *r, size_t row, size_t col)
{
    const char *v = db_result_get(r, row, col);
    return v ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
}

static int64_t store__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads row `row` of a result into the struct at out. */
typedef void (*store_reader)(const db_result *r, size_t row, void *out);

/*
 * Runs a query and reads every row with read into a new array of elements
 * of size bytes (*out, *n; an empty result gives an allocated empty array).
 */
static int store__select(store *s, const char *sql, int np, const char *const *p, size_t size,
                         store_reader read, void **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    db_result *r = NULL;
    int rc = store__query(s, sql, np, p, &r);
    if (rc < 0) return rc;
    size_t rows = db_result_rows(r);
    char *arr = xcalloc(rows ? rows : 1, size);
    for (size_t i = 0; i < rows; i++) read(r, i, arr + i * size);
    db_result_free(r);
    *out = arr;
    *n = rows;
    return 0;
}

/* Like store__select for one row: reads it into out (size bytes), or
 * returns STORE_NOT_FOUND naming what and id. */
static int store__select_one(store *s, const char *sql, int np, const char *const *p, size_t size,
                             store_reader read, void *out, const char *what, const char *id)
{
    db_result *r = NULL;
    int rc = store__query(s, sql, np, p, &r);
    if (rc < 0) return rc;
    if (db_result_rows(r) == 0) {
        db_result_free(r);
        return store__not_found(s, what, id);
    }
    memset(out, 0, size);
    read(r, 0, out);
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
    db_close(s->d);
    free(s);
}

db *store_db(store *s)
{
    return s->d;
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
    return rc < 0 ? store__fail(s, rc) : 0;
}

int store_rollback(store *s)
{
    int rc = db_rollback(s->d);
    return rc < 0 ? store__fail(s, rc) : 0;
}

/* ------------------------------------------------------------------------
 * Migrations
 */

typedef struct store_migration {
    int version;
    char name[64];
    const char *sql;
} store_migration;

static const char *store__dialect(db_kind k)
{
    return k == DB_SQLITE ? "sqlite" : "postgres";
}

/*
 * Parses an embedded path "migrations/<dialect>/NNNN_name.sql". Returns 0
 * when it belongs to dialect (NULL: any) and fills m.
 */
static int store__migration_parse(const embed_file *f, const char *dialect, store_migration *m)
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
        if (store__migration_parse(&migrations_files[i], NULL, &m) == 0 && m.version > latest)
            latest = m.version;
    return latest;
}

/* The one table that must exist before the migrations can be read; its
 * time type differs by dialect like every other time column. */
static int store__migrations_table(store *s)
{
    const char *sql = db_get_kind(s->d) == DB_SQLITE
                          ? "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY "
                            "KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
                          : "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY "
                            "KEY, name text NOT NULL, applied_at timestamptz NOT NULL)";
    int rc = store__exec(s, sql, 0, NULL);
    return rc < 0 ? rc : 0;
}

static int store__schema_version(store *s, int *version)
{
    db_result *r = NULL;
    int rc = store__query(s, "SELECT MAX(version) FROM schema_migrations", 0, NULL, &r);
    if (rc == 0) *version = (int)db_result_int(r, 0, 0, 0);
    db_result_free(r);
    return rc;
}

#define MODE_INSERT_SQL                                                                            \
    "INSERT INTO chat_budgets (mode, description, steps, seconds, tokens, tool_calls, retries, "   \
    "cost_usd, loop_warn, loop_stop, fail_warn, fail_stop, stale_steps, updated_at) VALUES (?, "   \
    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, chatplane_ts(?)) ON CONFLICT (mode) "

/* Writes mode m with sql (MODE_INSERT_SQL and its conflict action). */
static int store__mode_write(store *s, const char *sql, const mode *m, int64_t now_ms)
{
    store_num n[12];
    const char *p[] = {m->name,
                       m->description,
                       num_limit(&n[0], m->limits.steps),
                       num_limit(&n[1], m->limits.seconds),
                       num_limit(&n[2], m->limits.tokens),
                       num_limit(&n[3], m->limits.tool_calls),
                       num_limit(&n[4], m->limits.retries),
                       num_cost(&n[5], m->limits.cost_usd),
                       num_i64(&n[6], m->guard.loop_warn),
                       num_i64(&n[7], m->guard.loop_stop),
                       num_i64(&n[8], m->guard.fail_warn),
                       num_i64(&n[9], m->guard.fail_stop),
                       num_i64(&n[10], m->guard.stale_steps),
                       num_i64(&n[11], now_ms)};
    int rc = store__exec(s, sql, 14, p);
    return rc < 0 ? rc : 0;
}

/* Seeds the built-in modes; rows that exist (edited ones) are kept. */
static int store__seed_modes(store *s, int64_t now_ms)
{
    const mode *presets = mode_presets();
    for (size_t i = 0; i < MODE_PRESET_COUNT; i++) {
        int rc = store__mode_write(s, MODE_INSERT_SQL "DO NOTHING", &presets[i], now_ms);
        if (rc < 0) return rc;
    }
    return 0;
}

/*
 * Applies one migration in its own transaction. The version is checked
 * again inside the transaction, so a second process that raced this one
 * to the lock (SQLite has none) skips it instead of applying it twice.
 * Returns 1 when applied, 0 when it already was, or a negative code.
 */
static int store__apply(store *s, const store_migration *m)
{
    store_num v, now;
    const char *pv[] = {num_i64(&v, m->version)};
    int rc = store_begin(s);
    if (rc < 0) return rc;
    db_result *r = NULL;
    rc = store__query(s, "SELECT 1 FROM schema_migrations WHERE version = ?", 1, pv, &r);
    bool done = rc == 0 && db_result_rows(r) > 0;
    db_result_free(r);
    if (rc < 0 || done) goto out;
    rc = db_exec_script(s->d, m->sql);
    if (rc < 0) {
        rc = store__fail(s, rc);
        goto out;
    }
    int64_t now_ms = store__now_ms();
    if (m->version == 1) rc = store__seed_modes(s, now_ms);
    if (rc < 0) goto out;
    const char *p[] = {pv[0], m->name, num_i64(&now, now_ms)};
    rc = store__exec(s,
                     "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, "
                     "chatplane_ts(?))",
                     3, p);
    if (rc < 0) goto out;
    rc = store_commit(s);
    return rc < 0 ? rc : 1;
out:
    db_rollback(s->d);
    return rc;
}

/* Applies every migration of this dialect newer than `from`, in order. */
static int store__apply_pending(store *s, int from, store_migrate_cb cb, void *ud)
{
    const char *dialect = store__dialect(db_get_kind(s->d));
    int latest = store_schema_latest();
    for (int v = from + 1; v <= latest; v++) {
        store_migration m;
        size_t i = 0;
        while (i < migrations_files_count &&
               !(store__migration_parse(&migrations_files[i], dialect, &m) == 0 && m.version == v))
            i++;
        if (i == migrations_files_count) {
            snprintf(s->err, sizeof s->err, "migration %d for %s is missing from this build", v,
                     dialect);
            return DB_ERR;
        }
        int rc = store__apply(s, &m);
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
    rc = store__migrations_table(s);
    if (rc == 0) rc = store__schema_version(s, &version);
    if (rc == 0 && version > store_schema_latest()) {
        snprintf(s->err, sizeof s->err,
                 "database schema version %d is newer than this chatplane (knows up to %d); "
                 "upgrade chatplane",
                 version, store_schema_latest());
        rc = STORE_TOO_NEW;
    }
    if (rc == 0) rc = store__apply_pending(s, version, cb, ud);
    db_unlock_migrations(s->d);
    if (rc < 0) snprintf(err, errlen, "%s", s->err);
    return rc;
}

/* ------------------------------------------------------------------------
 * Sessions
 */

#define SESSION_COLS                                                                               \
    "id, owner, title, mode, status, active_run_id, last_seq, chatplane_ms(created_at), "          \
    "chatplane_ms(updated_at)"

static void session_read(const db_result *r, size_t i, void *out)
{
    store_session *x = out;
    x->id = col_str(r, i, 0);
    x->owner = col_str(r, i, 1);
    x->title = col_str(r, i, 2);
    x->mode = col_str(r, i, 3);
    x->status = col_str(r, i, 4);
    x->active_run_id = col_str(r, i, 5);
    x->last_seq = db_result_int(r, i, 6, 0);
    x->created_ms = db_result_int(r, i, 7, 0);
    x->updated_ms = db_result_int(r, i, 8, 0);
}

void store_session_cleanup(store_session *x)
{
    if (!x) return;
    free(x->id);
    free(x->owner);
    free(x->title);
    free(x->mode);
    free(x->status);
    free(x->active_run_id);
    memset(x, 0, sizeof *x);
}

void store_session_list_free(store_session *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) store_session_cleanup(&rows[i]);
    free(rows);
}

int store_session_insert(store *s, const store_session *row)
{
    store_num seq, c, u;
    const char *p[] = {row->id,
                       row->owner,
                       row->title,
                       row->mode,
                       row->status ? row->status : "idle",
                       row->active_run_id,
                       num_i64(&seq, row->last_seq),
                       num_i64(&c, row->created_ms),
                       num_i64(&u, row->updated_ms ? row->updated_ms : row->created_ms)};
    int rc = store__exec(s,
                         "INSERT INTO chat_sessions (id, owner, title, mode, status, "
                         "active_run_id, last_seq, created_at, updated_at) VALUES (?, ?, ?, ?, "
                         "?, ?, ?, chatplane_ts(?), chatplane_ts(?))",
                         9, p);
    return rc < 0 ? rc : 0;
}

int store_session_get(store *s, const char *id, const char *owner, store_session *out)
{
    const char *p[] = {id, owner, owner};
    return store__select_one(s,
                             "SELECT " SESSION_COLS " FROM chat_sessions WHERE id = ? AND "
                             "(CAST(? AS TEXT) IS NULL OR owner = ?)",
                             3, p, sizeof *out, session_read, out, "session", id);
}

int store_session_list(store *s, const char *owner, int limit, const char *before_id,
                       store_session **out, size_t *n)
{
    store_num lim;
    const char *p[] = {owner, owner, before_id, before_id,
                       num_i64(&lim, limit > 0 ? limit : STORE_SESSION_PAGE_DEFAULT)};
    return store__select(s,
                         "SELECT " SESSION_COLS " FROM chat_sessions WHERE (CAST(? AS TEXT) IS "
                         "NULL OR owner = ?) AND (CAST(? AS TEXT) IS NULL OR (created_at, id) < "
                         "(SELECT created_at, id FROM chat_sessions WHERE id = ?)) ORDER BY "
                         "created_at DESC, id DESC LIMIT ?",
                         5, p, sizeof **out, session_read, (void **)out, n);
}

/* Returns 0 when the statement changed a row, else STORE_NOT_FOUND. */
static int store__changed_one(store *s, int rc, const char *what, const char *id)
{
    if (rc < 0) return rc;
    return rc > 0 ? 0 : store__not_found(s, what, id);
}

int store_session_update(store *s, const store_session *row)
{
    store_num u;
    const char *p[] = {row->title, row->mode, num_i64(&u, row->updated_ms), row->id};
    int rc = store__exec(s,
                         "UPDATE chat_sessions SET title = ?, mode = ?, updated_at = "
                         "chatplane_ts(?) WHERE id = ?",
                         4, p);
    return store__changed_one(s, rc, "session", row->id);
}

int store_session_delete(store *s, const char *id)
{
    const char *p[] = {id};
    int rc = store__exec(s, "DELETE FROM chat_sessions WHERE id = ?", 1, p);
    return store__changed_one(s, rc, "session", id);
}

static int store__session_exists(store *s, const char *id)
{
    const char *p[] = {id};
    db_result *r = NULL;
    int rc = store__query(s, "SELECT 1 FROM chat_sessions WHERE id = ?", 1, p, &r);
    if (rc == 0 && db_result_rows(r) == 0) rc = store__not_found(s, "session", id);
    db_result_free(r);
    return rc;
}

/*
 * The conditional UPDATE is the whole claim: the database applies it to
 * the row atomically, so of two runs claiming one session at once exactly
 * one changes the row. Claiming the run that is already active succeeds.
 */
int store_session_claim_run(store *s, const char *session_id, const char *run_id, int64_t now_ms)
{
    store_num u;
    const char *p[] = {run_id, num_i64(&u, now_ms), session_id, run_id};
    int rc = store__exec(s,
                         "UPDATE chat_sessions SET active_run_id = ?, status = 'running', "
                         "updated_at = chatplane_ts(?) WHERE id = ? AND (active_run_id IS NULL "
                         "OR active_run_id = ?)",
                         4, p);
    if (rc != 0) return rc < 0 ? rc : 0;
    rc = store__session_exists(s, session_id);
    if (rc < 0) return rc;
    snprintf(s->err, sizeof s->err, "a run is already active in session %s", session_id);
    return STORE_CONFLICT;
}

int store_session_release_run(store *s, const char *session_id, const char *run_id, int64_t now_ms)
{
    store_num u;
    const char *p[] = {num_i64(&u, now_ms), session_id, run_id};
    int rc = store__exec(s,
                         "UPDATE chat_sessions SET active_run_id = NULL, status = 'idle', "
                         "updated_at = chatplane_ts(?) WHERE id = ? AND active_run_id = ?",
                         3, p);
    return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------------
 * Runs
 */

#define RUN_COLS                                                                                   \
    "id, session_id, mode, status, stop_reason, stop_detail, recovery_suggestion, actions, "       \
    "wrapped_up, limits, usage, owner_instance, continues, chatplane_ms(heartbeat_at), "           \
    "chatplane_ms(started_at), chatplane_ms(ended_at)"

static void run_read(const db_result *r, size_t i, void *out)
{
    store_run *x = out;
    x->id = col_str(r, i, 0);
    x->session_id = col_str(r, i, 1);
    x->mode = col_str(r, i, 2);
    x->status = col_str(r, i, 3);
    x->stop_reason = col_str(r, i, 4);
    x->stop_detail = col_str(r, i, 5);
    x->recovery_suggestion = col_str(r, i, 6);
    x->actions = col_json(r, i, 7);
    x->wrapped_up = db_result_bool(r, i, 8);
    x->limits = col_json(r, i, 9);
    x->usage = col_json(r, i, 10);
    x->owner_instance = col_str(r, i, 11);
    x->continues = col_str(r, i, 12);
    x->heartbeat_ms = db_result_int(r, i, 13, 0);
    x->started_ms = db_result_int(r, i, 14, 0);
    x->ended_ms = db_result_int(r, i, 15, 0);
}

void store_run_cleanup(store_run *x)
{
    if (!x) return;
    free(x->id);
    free(x->session_id);
    free(x->mode);
    free(x->status);
    free(x->stop_reason);
    free(x->stop_detail);
    free(x->recovery_suggestion);
    json_decref(x->actions);
    json_decref(x->limits);
    json_decref(x->usage);
    free(x->owner_instance);
    free(x->continues);
    memset(x, 0, sizeof *x);
}

void store_run_list_free(store_run *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) store_run_cleanup(&rows[i]);
    free(rows);
}

/* The JSON columns of a run as text; actions is an array even when unset. */
typedef struct run_json {
    char *actions, *limits, *usage;
} run_json;

static void run_json_init(run_json *j, const store_run *row)
{
    j->actions = row->actions ? json_text(row->actions) : xstrdup("[]");
    j->limits = json_text(row->limits);
    j->usage = json_text(row->usage);
}

static void run_json_cleanup(run_json *j)
{
    free(j->actions);
    free(j->limits);
    free(j->usage);
}

int store_run_insert(store *s, const store_run *row)
{
    run_json j;
    run_json_init(&j, row);
    store_num hb, st, en;
    const char *p[] = {row->id,
                       row->session_id,
                       row->mode,
                       row->status ? row->status : "running",
                       row->stop_reason,
                       row->stop_detail,
                       row->recovery_suggestion,
                       j.actions,
                       bool_text(row->wrapped_up),
                       j.limits,
                       j.usage,
                       row->owner_instance,
                       row->continues,
                       num_time_opt(&hb, row->heartbeat_ms),
                       num_i64(&st, row->started_ms),
                       num_time_opt(&en, row->ended_ms)};
    int rc = store__exec(s,
                         "INSERT INTO runs (id, session_id, mode, status, stop_reason, "
                         "stop_detail, recovery_suggestion, actions, wrapped_up, limits, usage, "
                         "owner_instance, continues, heartbeat_at, started_at, ended_at) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, chatplane_ts(?), "
                         "chatplane_ts(?), chatplane_ts(?))",
                         16, p);
    run_json_cleanup(&j);
    return rc < 0 ? rc : 0;
}

int store_run_update(store *s, const store_run *row)
{
    run_json j;
    run_json_init(&j, row);
    store_num en;
    const char *p[] = {row->mode,
                       row->status,
                       row->stop_reason,
                       row->stop_detail,
                       row->recovery_suggestion,
                       j.actions,
                       bool_text(row->wrapped_up),
                       j.limits,
                       j.usage,
                       num_time_opt(&en, row->ended_ms),
                       row->id};
    int rc = store__exec(s,
                         "UPDATE runs SET mode = ?, status = ?, stop_reason = ?, "
                         "stop_detail = ?, recovery_suggestion = ?, actions = ?, wrapped_up = ?, "
                         "limits = ?, usage = ?, ended_at = chatplane_ts(?) WHERE id = ? AND "
                         "status = 'running'",
                         11, p);
    run_json_cleanup(&j);
    if (rc != 0) return rc < 0 ? rc : 0;
    /* Nothing changed: the run is missing, or it stopped already, which on
     * a shared database means another instance interrupted it. */
    store_run cur;
    rc = store_run_get(s, row->id, &cur);
    if (rc < 0) return rc;
    store_run_cleanup(&cur);
    snprintf(s->err, sizeof s->err, "run %s has already stopped", row->id);
    return STORE_CONFLICT;
}

int store_run_get(store *s, const char *id, store_run *out)
{
    const char *p[] = {id};
    return store__select_one(s, "SELECT " RUN_COLS " FROM runs WHERE id = ?", 1, p, sizeof *out,
                             run_read, out, "run", id);
}

int store_run_list(store *s, const char *session_id, store_run **out, size_t *n)
{
    const char *p[] = {session_id};
    return store__select(s,
                         "SELECT " RUN_COLS " FROM runs WHERE session_id = ? ORDER BY started_at "
                         "DESC, id DESC",
                         1, p, sizeof **out, run_read, (void **)out, n);
}

/* A run that never beat counts from its start. INT64_MAX selects every
 * running run without a time comparison, which PostgreSQL could not even
 * convert to a timestamp. */
#define RUN_STALE_COND "COALESCE(heartbeat_at, started_at) < chatplane_ts(?)"

int store_run_list_running(store *s, int64_t stale_before_ms, store_run **out, size_t *n)
{
    store_num t;
    const char *p[] = {num_i64(&t, stale_before_ms)};
    if (stale_before_ms == INT64_MAX)
        return store__select(s,
                             "SELECT " RUN_COLS " FROM runs WHERE status = 'running' ORDER BY "
                             "started_at, id",
                             0, NULL, sizeof **out, run_read, (void **)out, n);
    return store__select(s,
                         "SELECT " RUN_COLS " FROM runs WHERE status = 'running' AND "
                         "" RUN_STALE_COND " ORDER BY started_at, id",
                         1, p, sizeof **out, run_read, (void **)out, n);
}

int store_run_beat(store *s, const char *run_id, int64_t now_ms)
{
    store_num t;
    const char *p[] = {num_i64(&t, now_ms), run_id};
    int rc = store__exec(s,
                         "UPDATE runs SET heartbeat_at = chatplane_ts(?) WHERE id = ? AND status "
                         "= 'running'",
                         2, p);
    return rc < 0 ? rc : rc > 0;
}

int store_run_heartbeat(store *s, const char *instance, int64_t now_ms)
{
    store_num t;
    const char *p[] = {num_i64(&t, now_ms), instance};
    return store__exec(s,
                       "UPDATE runs SET heartbeat_at = chatplane_ts(?) WHERE owner_instance = ? "
                       "AND status = 'running'",
                       2, p);
}

/* ------------------------------------------------------------------------
 * Messages
 */

#define MESSAGE_COLS                                                                               \
    "id, session_id, run_id, role, content, tool_call_id, tool_calls, partial, "                   \
    "chatplane_ms(created_at)"

static void message_read(const db_result *r, size_t i, void *out)
{
    store_message *x = out;
    x->id = col_str(r, i, 0);
    x->session_id = col_str(r, i, 1);
    x->run_id = col_str(r, i, 2);
    x->role = col_str(r, i, 3);
    x->content = col_str(r, i, 4);
    x->tool_call_id = col_str(r, i, 5);
    x->tool_calls = col_json(r, i, 6);
    x->partial = db_result_bool(r, i, 7);
    x->created_ms = db_result_int(r, i, 8, 0);
}

void store_message_cleanup(store_message *x)
{
    if (!x) return;
    free(x->id);
    free(x->session_id);
    free(x->run_id);
    free(x->role);
    free(x->content);
    free(x->tool_call_id);
    json_decref(x->tool_calls);
    memset(x, 0, sizeof *x);
}

void store_message_list_free(store_message *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) store_message_cleanup(&rows[i]);
    free(rows);
}

/* position numbers the session's messages in the order they are stored,
 * which is their order whenever created_at ties. */
int store_message_insert(store *s, const store_message *row)
{
    char *calls = json_text(row->tool_calls);
    store_num c;
    const char *p[] = {row->id,
                       row->session_id,
                       row->run_id,
                       row->role,
                       row->content ? row->content : "",
                       calls,
                       row->tool_call_id,
                       bool_text(row->partial),
                       num_i64(&c, row->created_ms),
                       row->session_id};
    int rc = store__exec(s,
                         "INSERT INTO chat_messages (id, session_id, run_id, role, content, "
                         "tool_calls, tool_call_id, partial, created_at, position) VALUES (?, ?, "
                         "?, ?, ?, ?, ?, ?, chatplane_ts(?), (SELECT COALESCE(MAX(position), 0) + "
                         "1 FROM chat_messages WHERE session_id = ?))",
                         10, p);
    free(calls);
    return rc < 0 ? rc : 0;
}

int store_message_list(store *s, const char *session_id, store_message **out, size_t *n)
{
    const char *p[] = {session_id};
    return store__select(s,
                         "SELECT " MESSAGE_COLS " FROM chat_messages WHERE session_id = ? ORDER "
                         "BY created_at, position",
                         1, p, sizeof **out, message_read, (void **)out, n);
}

/* ------------------------------------------------------------------------
 * Tool executions
 */

#define TOOL_COLS                                                                                  \
    "id, session_id, run_id, server, tool, status, result, error, step, arguments, "               \
    "chatplane_ms(started_at), chatplane_ms(finished_at), duration_ms"

static void tool_read(const db_result *r, size_t i, void *out)
{
    store_tool_exec *x = out;
    x->id = col_str(r, i, 0);
    x->session_id = col_str(r, i, 1);
    x->run_id = col_str(r, i, 2);
    x->server = col_str(r, i, 3);
    x->tool = col_str(r, i, 4);
    x->status = col_str(r, i, 5);
    x->result = col_str(r, i, 6);
    x->error = col_str(r, i, 7);
    x->step = (int)db_result_int(r, i, 8, 0);
    x->arguments = col_json(r, i, 9);
    x->started_ms = db_result_int(r, i, 10, 0);
    x->finished_ms = db_result_int(r, i, 11, 0);
    x->duration_ms = db_result_int(r, i, 12, 0);
}

void store_tool_exec_cleanup(store_tool_exec *x)
{
    if (!x) return;
    free(x->id);
    free(x->session_id);
    free(x->run_id);
    free(x->server);
    free(x->tool);
    free(x->status);
    free(x->result);
    free(x->error);
    json_decref(x->arguments);
    memset(x, 0, sizeof *x);
}

void store_tool_exec_list_free(store_tool_exec *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) store_tool_exec_cleanup(&rows[i]);
    free(rows);
}

int store_tool_exec_insert(store *s, const store_tool_exec *row)
{
    char *args = row->arguments ? json_text(row->arguments) : xstrdup("{}");
    store_num step, st, fin, dur;
    const char *p[] = {row->id,
                       row->session_id,
                       row->run_id,
                       num_i64(&step, row->step),
                       row->server,
                       row->tool,
                       args,
                       row->status ? row->status : "running",
                       row->result,
                       row->error,
                       num_i64(&st, row->started_ms),
                       num_time_opt(&fin, row->finished_ms),
                       row->finished_ms ? num_i64(&dur, row->duration_ms) : NULL};
    int rc = store__exec(s,
                         "INSERT INTO tool_executions (id, session_id, run_id, step, server, "
                         "tool, arguments, status, result, error, started_at, finished_at, "
                         "duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, chatplane_ts(?), "
                         "chatplane_ts(?), ?)",
                         13, p);
    free(args);
    return rc < 0 ? rc : 0;
}

int store_tool_exec_finish(store *s, const store_tool_exec *row)
{
    store_num fin, dur;
    const char *p[] = {row->status,
                       row->result,
                       row->error,
                       num_time_opt(&fin, row->finished_ms),
                       num_i64(&dur, row->duration_ms),
                       row->id};
    int rc = store__exec(s,
                         "UPDATE tool_executions SET status = ?, result = ?, error = ?, "
                         "finished_at = chatplane_ts(?), duration_ms = ? WHERE id = ?",
                         6, p);
    return store__changed_one(s, rc, "tool execution", row->id);
}

int store_tool_exec_list(store *s, const char *session_id, const char *run_id,
                         store_tool_exec **out, size_t *n)
{
    const char *p[] = {session_id, run_id, run_id};
    return store__select(s,
                         "SELECT " TOOL_COLS " FROM tool_executions WHERE session_id = ? AND "
                         "(CAST(? AS TEXT) IS NULL OR run_id = ?) ORDER BY started_at, step, id",
                         3, p, sizeof **out, tool_read, (void **)out, n);
}

/* ------------------------------------------------------------------------
 * Modes
 */

#define MODE_COLS                                                                                  \
    "mode, description, steps, seconds, tokens, tool_calls, retries, cost_usd, loop_warn, "        \
    "loop_stop, fail_warn, fail_stop, stale_steps"

static void mode_read(const db_result *r, size_t i, void *out)
{
    mode *m = out;
    const char *name = db_result_get(r, i, 0);
    const char *desc = db_result_get(r, i, 1);
    const char *cost = db_result_get(r, i, 7);
    snprintf(m->name, sizeof m->name, "%s", name ? name : "");
    snprintf(m->description, sizeof m->description, "%s", desc ? desc : "");
    m->limits.steps = db_result_int(r, i, 2, MODE_UNLIMITED);
    m->limits.seconds = db_result_int(r, i, 3, MODE_UNLIMITED);
    m->limits.tokens = db_result_int(r, i, 4, MODE_UNLIMITED);
    m->limits.tool_calls = db_result_int(r, i, 5, MODE_UNLIMITED);
    m->limits.retries = db_result_int(r, i, 6, MODE_UNLIMITED);
    m->limits.cost_usd = cost ? strtod(cost, NULL) : MODE_UNLIMITED;
    m->guard.loop_warn = (int)db_result_int(r, i, 8, 0);
    m->guard.loop_stop = (int)db_result_int(r, i, 9, 0);
    m->guard.fail_warn = (int)db_result_int(r, i, 10, 0);
    m->guard.fail_stop = (int)db_result_int(r, i, 11, 0);
    m->guard.stale_steps = (int)db_result_int(r, i, 12, 0);
}

/* Built-in modes first, smallest first, as mode_presets orders them; then
 * the others by name. */
static size_t mode_rank(const mode *m)
{
    const mode *p = mode_preset(m->name);
    return p ? (size_t)(p - mode_presets()) : MODE_PRESET_COUNT;
}

static int mode_cmp(const void *a, const void *b)
{
    const mode *x = a, *y = b;
    size_t rx = mode_rank(x), ry = mode_rank(y);
    if (rx != ry) return rx < ry ? -1 : 1;
    return strcmp(x->name, y->name);
}

int store_mode_list(store *s, mode **out, size_t *n)
{
    int rc = store__select(s, "SELECT " MODE_COLS " FROM chat_budgets ORDER BY mode", 0, NULL,
                           sizeof **out, mode_read, (void **)out, n);
    if (rc == 0) qsort(*out, *n, sizeof **out, mode_cmp);
    return rc;
}

int store_mode_get(store *s, const char *name, mode *out)
{
    const char *p[] = {name};
    return store__select_one(s, "SELECT " MODE_COLS " FROM chat_budgets WHERE mode = ?", 1, p,
                             sizeof *out, mode_read, out, "mode", name);
}

int store_mode_put(store *s, const mode *m, int64_t now_ms)
{
    return store__mode_write(s,
                             MODE_INSERT_SQL
                             "DO UPDATE SET description = excluded.description, steps = "
                             "excluded.steps, seconds = excluded.seconds, tokens = "
                             "excluded.tokens, tool_calls = excluded.tool_calls, retries = "
                             "excluded.retries, cost_usd = excluded.cost_usd, loop_warn = "
                             "excluded.loop_warn, loop_stop = excluded.loop_stop, fail_warn = "
                             "excluded.fail_warn, fail_stop = excluded.fail_stop, stale_steps = "
                             "excluded.stale_steps, updated_at = excluded.updated_at",
                             m, now_ms);
}

/* ------------------------------------------------------------------------
 * Events
 */

typedef struct event_slot {
    const evt *ev;
    size_t index; /* position in the caller's array */
} event_slot;

/* Orders events by session, and within a session as the caller gave them. */
static int event_slot_cmp(const void *a, const void *b)
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
    int64_t last; /* last_seq after the reservation */
    bool found;
} seq_group;

static int seq_group_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const seq_group *)elem)->session_id);
}

/*
 * Raises last_seq of the k sessions g[0..k) (sorted by id) by their event
 * counts with one UPDATE … FROM (VALUES …) … RETURNING and sets each
 * group's last. A session that is not in the result does not exist.
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
static int store__reserve_seqs(store *s, seq_group *g, size_t k)
{
    buf sql;
    buf_init(&sql, 256 + k * 32);
    buf_append_str(&sql, "UPDATE chat_sessions SET last_seq = last_seq + v.column2 FROM (VALUES ");
    const char **p = xmalloc(k * 2 * sizeof *p);
    store_num *nums = xmalloc(k * sizeof *nums);
    for (size_t i = 0; i < k; i++) {
        buf_append_str(&sql, i ? ", (?, CAST(? AS BIGINT))" : "(?, CAST(? AS BIGINT))");
        p[i * 2] = g[i].session_id;
        p[i * 2 + 1] = num_i64(&nums[i], (int64_t)g[i].count);
    }
    buf_append_str(&sql, ") AS v WHERE chat_sessions.id = v.column1 RETURNING chat_sessions.id, "
                         "chat_sessions.last_seq");
    if (db_get_kind(s->d) == DB_POSTGRES)
        buf_append_str(&sql, ", pg_notify('" STORE_EVENTS_CHANNEL
                             "', chat_sessions.id || ':' || chat_sessions.last_seq)");
    db_result *r = NULL;
    int rc = store__query(s, sql.data, (int)(k * 2), p, &r);
    for (size_t i = 0; rc == 0 && i < db_result_rows(r); i++) {
        seq_group *x = bsearch(db_result_get(r, i, 0), g, k, sizeof *g, seq_group_cmp);
        if (x) {
            x->last = db_result_int(r, i, 1, 0);
            x->found = true;
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
 * seqs, handed out in the caller's order. The sessions go in sorted by id,
 * in chunks of a power of two sessions, largest first, so few distinct
 * statements are prepared. Any earlier encoding is dropped, since it
 * carried the seq of a batch that was rolled back.
 */
static int store__assign_seqs(store *s, evt *const *evs, size_t n)
{
    event_slot *slots = xmalloc(n * sizeof *slots);
    for (size_t i = 0; i < n; i++) slots[i] = (event_slot){evs[i], i};
    qsort(slots, n, sizeof *slots, event_slot_cmp);
    seq_group *groups = xmalloc(n * sizeof *groups);
    size_t ng = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && strcmp(slots[j].ev->session_id, slots[i].ev->session_id) == 0) j++;
        groups[ng++] = (seq_group){slots[i].ev->session_id, i, j - i, 0, false};
        i = j;
    }
    int rc = 0;
    for (size_t done = 0; rc == 0 && done < ng;) {
        size_t k = STORE_SEQ_CHUNK;
        while (k > ng - done) k /= 2;
        rc = store__reserve_seqs(s, groups + done, k);
        done += k;
    }
    for (size_t g = 0; rc == 0 && g < ng; g++) {
        for (size_t k = 0; k < groups[g].count; k++) {
            evt *e = evs[slots[groups[g].first + k].index];
            free(e->json);
            e->json = NULL;
            e->json_len = 0;
            e->seq = groups[g].last - (int64_t)(groups[g].count - k) + 1;
        }
    }
    free(groups);
    free(slots);
    return rc;
}

/* Inserts evs[0..k) with one multi-row INSERT. */
static int store__insert_events(store *s, evt *const *evs, size_t k)
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
        p[i * 6 + 1] = num_i64(&nums[i * 2], e->seq);
        p[i * 6 + 2] = e->run_id;
        p[i * 6 + 3] = evt_type_name(e->type);
        p[i * 6 + 4] = e->json;
        p[i * 6 + 5] = num_i64(&nums[i * 2 + 1], e->ts_ms);
    }
    int rc = store__exec(s, sql.data, (int)(k * 6), p);
    free(nums);
    free(p);
    buf_cleanup(&sql);
    return rc < 0 ? rc : 0;
}

static int store__encode_events(store *s, evt *const *evs, size_t n)
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

int store_event_append(store *s, evt *const *evs, size_t n)
{
    if (n == 0) return 0;
    int rc = store__assign_seqs(s, evs, n);
    if (rc == 0) rc = store__encode_events(s, evs, n);
    /* Chunks of a power of two rows, largest first: 600 events go in as
     * 256 + 256 + 64 + 16 + 8, so few distinct statements are prepared. */
    for (size_t done = 0; rc == 0 && done < n;) {
        size_t k = STORE_EVENT_CHUNK;
        while (k > n - done) k /= 2;
        rc = store__insert_events(s, evs + done, k);
        done += k;
    }
    return rc;
}

/* Calls cb for rows of a replay page; returns the rows delivered, and sets
 * *stop when cb asked to stop. */
static size_t store__deliver(const db_result *r, store_event_cb cb, void *ud, int64_t *last,
                             bool *stop)
{
    size_t rows = db_result_rows(r);
    for (size_t i = 0; i < rows; i++) {
        const char *json = db_result_get(r, i, 2);
        *last = db_result_int(r, i, 0, 0);
        if (cb(ud, *last, db_result_get(r, i, 1), json, strlen(json))) {
            *stop = true;
            return i + 1;
        }
    }
    return rows;
}

/*
 * Replays in pages, so a long session is never held in memory at once.
 * Returns the number of events delivered.
 */
int store_event_after(store *s, const char *session_id, int64_t after, int limit, store_event_cb cb,
                      void *ud)
{
    size_t total = 0;
    bool stop = false;
    while (!stop) {
        size_t want = STORE_REPLAY_PAGE;
        if (limit > 0 && (size_t)limit - total < want) want = (size_t)limit - total;
        if (want == 0) break;
        store_num a, l;
        const char *p[] = {session_id, num_i64(&a, after), num_i64(&l, (int64_t)want)};
        db_result *r = NULL;
        int rc = store__query(s,
                              "SELECT seq, type, payload FROM stream_events WHERE session_id = ? "
                              "AND seq > ? ORDER BY seq LIMIT ?",
                              3, p, &r);
        if (rc < 0) return rc;
        size_t got = store__deliver(r, cb, ud, &after, &stop);
        size_t rows = db_result_rows(r);
        db_result_free(r);
        total += got;
        if (rows < want) break;
    }
    return (int)total;
}

/* ------------------------------------------------------------------------
 * A run's assistant text in its log: the token, message and error events
 * that compaction and recovery both read.
 */

typedef struct log_item {
    int64_t seq;
    evt_type type;
    char *message_id; /* owned; NULL when the event has none */
    char *text;       /* owned; token text, else NULL */
} log_item;

/* Besides the events in seq order, the message_ids that message events
 * store and that error events discard, kept apart because a run has few of
 * them and many tokens to check against them. */
typedef struct run_log {
    log_item *items;
    size_t n;
    const char **stored, **discarded; /* borrowed from items */
    size_t nstored, ndiscarded;
} run_log;

static void run_log_cleanup(run_log *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].message_id);
        free(l->items[i].text);
    }
    free(l->items);
    free(l->stored);
    free(l->discarded);
    memset(l, 0, sizeof *l);
}

static char *json_str_field(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? xstrdup(v) : NULL;
}

static void log_item_read(const db_result *r, size_t i, void *out)
{
    log_item *it = out;
    const char *type = db_result_get(r, i, 1);
    const char *payload = db_result_get(r, i, 2);
    it->seq = db_result_int(r, i, 0, 0);
    if (!type || evt_type_parse(type, &it->type) < 0) it->type = EVT__COUNT;
    json_t *obj = payload ? json_loads(payload, 0, NULL) : NULL;
    it->message_id = json_str_field(obj, "message_id");
    if (it->type == EVT_TOKEN) it->text = json_str_field(obj, "text");
    json_decref(obj);
}

static void name_add(const char ***names, size_t *n, const char *name)
{
    *names = xrealloc(*names, (*n + 1) * sizeof **names);
    (*names)[(*n)++] = name;
}

static bool name_in(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return true;
    return false;
}

static int run_log_read(store *s, const char *session_id, const char *run_id, run_log *l)
{
    const char *p[] = {session_id, run_id};
    int rc = store__select(s,
                           "SELECT seq, type, payload FROM stream_events WHERE session_id = ? AND "
                           "run_id = ? AND type IN ('token', 'message', 'error') ORDER BY seq",
                           2, p, sizeof *l->items, log_item_read, (void **)&l->items, &l->n);
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        const log_item *it = &l->items[i];
        if (it->type == EVT_MESSAGE && it->message_id)
            name_add(&l->stored, &l->nstored, it->message_id);
        if (it->type == EVT_ERROR && it->message_id)
            name_add(&l->discarded, &l->ndiscarded, it->message_id);
    }
    return rc;
}

/* True for a token event whose message has a stored `message` event. */
static bool run_log_token_stored(const run_log *l, const log_item *it)
{
    return it->type == EVT_TOKEN && it->message_id &&
           name_in(l->stored, l->nstored, it->message_id);
}

/* Looks up the session and status of a run. */
static int store__run_owner(store *s, const char *run_id, char **session_id, bool *stopped)
{
    const char *p[] = {run_id};
    db_result *r = NULL;
    int rc = store__query(s, "SELECT session_id, status FROM runs WHERE id = ?", 1, p, &r);
    if (rc == 0 && db_result_rows(r) == 0) rc = store__not_found(s, "run", run_id);
    if (rc == 0) {
        *session_id = col_str(r, 0, 0);
        *stopped = strcmp(db_result_get(r, 0, 1), "stopped") == 0;
    }
    db_result_free(r);
    return rc;
}

static int store__delete_tokens(store *s, const char *session_id, const char *run_id, int64_t lo,
                                int64_t hi)
{
    store_num a, b;
    const char *p[] = {session_id, run_id, num_i64(&a, lo), num_i64(&b, hi)};
    return store__exec(s,
                       "DELETE FROM stream_events WHERE session_id = ? AND run_id = ? AND type = "
                       "'token' AND seq BETWEEN ? AND ?",
                       4, p);
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
    run_log l = {0};
    int rc = store__run_owner(s, run_id, &session_id, &stopped);
    if (rc == 0 && stopped) rc = run_log_read(s, session_id, run_id, &l);
    int deleted = 0;
    int64_t lo = 0, hi = 0;
    for (size_t i = 0; rc >= 0 && i <= l.n; i++) {
        const log_item *it = i < l.n ? &l.items[i] : NULL;
        if (it && it->type != EVT_TOKEN) continue;
        if (it && run_log_token_stored(&l, it)) {
            if (!lo) lo = it->seq;
            hi = it->seq;
        } else if (lo) {
            rc = store__delete_tokens(s, session_id, run_id, lo, hi);
            deleted += rc > 0 ? rc : 0;
            lo = 0;
        }
    }
    run_log_cleanup(&l);
    free(session_id);
    return rc < 0 ? rc : deleted;
}

/* ------------------------------------------------------------------------
 * API tokens
 */

#define TOKEN_COLS "name, token_sha256, admin, chatplane_ms(created_at), chatplane_ms(revoked_at)"

static void token_read(const db_result *r, size_t i, void *out)
{
    store_token *x = out;
    x->name = col_str(r, i, 0);
    x->token_sha256 = col_str(r, i, 1);
    x->admin = db_result_bool(r, i, 2);
    x->created_ms = db_result_int(r, i, 3, 0);
    x->revoked_ms = db_result_int(r, i, 4, 0);
}

void store_token_cleanup(store_token *x)
{
    if (!x) return;
    free(x->name);
    free(x->token_sha256);
    memset(x, 0, sizeof *x);
}

void store_token_list_free(store_token *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) store_token_cleanup(&rows[i]);
    free(rows);
}

int store_token_insert(store *s, const store_token *row)
{
    store_num c, r;
    const char *p[] = {row->name, row->token_sha256, bool_text(row->admin),
                       num_i64(&c, row->created_ms), num_time_opt(&r, row->revoked_ms)};
    int rc = store__exec(s,
                         "INSERT INTO api_tokens (name, token_sha256, admin, created_at, "
                         "revoked_at) VALUES (?, ?, ?, chatplane_ts(?), chatplane_ts(?))",
                         5, p);
    return rc < 0 ? rc : 0;
}

int store_token_find(store *s, const char *token_sha256, store_token *out)
{
    const char *p[] = {token_sha256};
    return store__select_one(s,
                             "SELECT " TOKEN_COLS " FROM api_tokens WHERE token_sha256 = ? AND "
                             "revoked_at IS NULL",
                             1, p, sizeof *out, token_read, out, "token", "with that hash");
}

int store_token_list(store *s, store_token **out, size_t *n)
{
    return store__select(s, "SELECT " TOKEN_COLS " FROM api_tokens ORDER BY created_at, name", 0,
                         NULL, sizeof **out, token_read, (void **)out, n);
}

int store_token_revoke(store *s, const char *name, int64_t now_ms)
{
    store_num t;
    const char *p[] = {num_i64(&t, now_ms), name};
    int rc = store__exec(s,
                         "UPDATE api_tokens SET revoked_at = chatplane_ts(?) WHERE name = ? AND "
                         "revoked_at IS NULL",
                         2, p);
    return store__changed_one(s, rc, "active token", name);
}

int store_token_count(store *s)
{
    db_result *r = NULL;
    int rc =
        store__query(s, "SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL", 0, NULL, &r);
    if (rc == 0) rc = (int)db_result_int(r, 0, 0, 0);
    db_result_free(r);
    return rc;
}

/* ------------------------------------------------------------------------
 * Crash recovery
 */

/* A growable list of events to append together. */
typedef struct event_list {
    evt **evs;
    size_t n;
} event_list;

static void event_list_add(event_list *l, evt *e)
{
    l->evs = xrealloc(l->evs, (l->n + 1) * sizeof *l->evs);
    l->evs[l->n++] = e;
}

static void event_list_cleanup(event_list *l)
{
    for (size_t i = 0; i < l->n; i++) evt_unref(l->evs[i]);
    free(l->evs);
    memset(l, 0, sizeof *l);
}

/*
 * Marks the run stopped with `interrupted`, if it is still running (and,
 * for a stale_before_ms below INT64_MAX, still stale). Returns 1 when this
 * call stopped it, 0 when another instance got there first.
 */
static int store__mark_interrupted(store *s, const store_run *run, int64_t stale_before_ms,
                                   int64_t now_ms)
{
    json_t *actions = stop_actions(STOP_INTERRUPTED, run->mode);
    char *actions_text = json_text(actions);
    store_num now, stale;
    const char *p[] = {STORE_INTERRUPTED_DETAIL,
                       stop_recovery(STOP_INTERRUPTED, run->mode),
                       actions_text,
                       num_i64(&now, now_ms),
                       run->id,
                       num_i64(&stale, stale_before_ms)};
#define MARK_SQL                                                                                   \
    "UPDATE runs SET status = 'stopped', stop_reason = 'interrupted', stop_detail = ?, "           \
    "recovery_suggestion = ?, actions = ?, ended_at = chatplane_ts(?) WHERE id = ? AND status = "  \
    "'running'"
    int rc = stale_before_ms == INT64_MAX ? store__exec(s, MARK_SQL, 5, p)
                                          : store__exec(s, MARK_SQL " AND " RUN_STALE_COND, 6, p);
#undef MARK_SQL
    free(actions_text);
    json_decref(actions);
    return rc < 0 ? rc : rc > 0;
}

/* Records the run's unfinished tool executions as cancelled, each with its
 * tool_finished event. */
static int store__cancel_tools(store *s, const store_run *run, int64_t now_ms, event_list *out)
{
    store_tool_exec *tools = NULL;
    size_t n = 0;
    int rc = store_tool_exec_list(s, run->session_id, run->id, &tools, &n);
    evt_origin o = {run->session_id, run->id, now_ms};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        store_tool_exec *t = &tools[i];
        if (strcmp(t->status, "running") != 0) continue;
        free(t->status);
        free(t->error);
        t->status = xstrdup("cancelled");
        t->error = xstrdup(STORE_CANCELLED_ERROR);
        t->finished_ms = now_ms;
        t->duration_ms = now_ms - t->started_ms;
        rc = store_tool_exec_finish(s, t);
        if (rc == 0)
            event_list_add(out,
                           evt_tool_finished(&o, t->id, t->step, t->server, t->tool, t->status,
                                             t->result ? t->result : "", t->error, t->duration_ms));
    }
    store_tool_exec_list_free(tools, n);
    return rc;
}

/* Saves the text of one assistant message that was still streaming as a
 * partial message, with its `message` event. */
static int store__save_partial(store *s, const store_run *run, const char *message_id,
                               const char *text, int64_t now_ms, event_list *out)
{
    store_message m = {.id = (char *)message_id,
                       .session_id = run->session_id,
                       .run_id = run->id,
                       .role = "assistant",
                       .content = (char *)text,
                       .partial = true,
                       .created_ms = now_ms};
    int rc = store_message_insert(s, &m);
    if (rc < 0) return rc;
    evt_origin o = {run->session_id, run->id, now_ms};
    event_list_add(out, evt_message(&o, message_id, "assistant", text, NULL, NULL, true));
    return 0;
}

static bool store__message_stored(store *s, const char *run_id, const char *id)
{
    const char *p[] = {id, run_id};
    db_result *r = NULL;
    int rc = store__query(s, "SELECT 1 FROM chat_messages WHERE id = ? AND run_id = ?", 2, p, &r);
    bool found = rc == 0 && db_result_rows(r) > 0;
    db_result_free(r);
    return found;
}

/*
 * Joins the token text of every assistant message the run was streaming
 * that no stored message covers and no error discarded, one partial
 * message per message_id, in the order their first tokens came.
 */
static int store__save_partials(store *s, const store_run *run, int64_t now_ms, event_list *out)
{
    run_log l = {0};
    const char **seen = NULL;
    size_t nseen = 0;
    int rc = run_log_read(s, run->session_id, run->id, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const char *id = l.items[i].message_id;
        if (l.items[i].type != EVT_TOKEN || !id || name_in(seen, nseen, id)) continue;
        name_add(&seen, &nseen, id);
        if (name_in(l.stored, l.nstored, id) || name_in(l.discarded, l.ndiscarded, id) ||
            store__message_stored(s, run->id, id))
            continue;
        buf text;
        buf_init(&text, STORE_PARTIAL_MAX);
        for (size_t j = i; j < l.n; j++)
            if (l.items[j].type == EVT_TOKEN && l.items[j].message_id && l.items[j].text &&
                strcmp(l.items[j].message_id, id) == 0)
                buf_append_str(&text, l.items[j].text);
        if (text.len) rc = store__save_partial(s, run, id, text.data, now_ms, out);
        buf_cleanup(&text);
    }
    free(seen);
    run_log_cleanup(&l);
    return rc;
}

/* The usage a run had recorded, for its run_stopped event. */
static void store__usage_from_json(const json_t *u, budget_usage *out)
{
    memset(out, 0, sizeof *out);
    out->steps = json_integer_value(json_object_get(u, "steps"));
    out->seconds = json_number_value(json_object_get(u, "seconds"));
    out->tokens = json_integer_value(json_object_get(u, "tokens"));
    out->tool_calls = json_integer_value(json_object_get(u, "tool_calls"));
    out->retries = json_integer_value(json_object_get(u, "retries"));
    out->cost_usd = json_number_value(json_object_get(u, "cost_usd"));
}

/* Stops one interrupted run in its own transaction. Returns 1 when it was
 * stopped here, 0 when it no longer needed it. */
static int store__recover_run(store *s, const store_run *run, int64_t stale_before_ms,
                              int64_t now_ms)
{
    event_list evs = {0};
    int rc = store_begin(s);
    if (rc < 0) return rc;
    int marked = store__mark_interrupted(s, run, stale_before_ms, now_ms);
    rc = marked;
    if (marked == 1) rc = store__cancel_tools(s, run, now_ms, &evs);
    if (marked == 1 && rc == 0) rc = store__save_partials(s, run, now_ms, &evs);
    if (marked == 1 && rc == 0) {
        budget_usage usage;
        store__usage_from_json(run->usage, &usage);
        json_t *actions = stop_actions(STOP_INTERRUPTED, run->mode);
        evt_origin o = {run->session_id, run->id, now_ms};
        event_list_add(&evs, evt_run_stopped(&o, STOP_INTERRUPTED, STORE_INTERRUPTED_DETAIL,
                                             stop_recovery(STOP_INTERRUPTED, run->mode), actions,
                                             false, &usage));
        json_decref(actions);
        rc = store_event_append(s, evs.evs, evs.n);
    }
    if (marked == 1 && rc == 0) rc = store_session_release_run(s, run->session_id, run->id, now_ms);
    event_list_cleanup(&evs);
    if (rc < 0 || marked != 1) {
        db_rollback(s->d);
        return rc < 0 ? rc : 0;
    }
    rc = store_commit(s);
    return rc < 0 ? rc : 1;
}

/*
 * A run that cannot be recovered (its rows are inconsistent) is logged and
 * left for the next start, so that it never blocks the others; a database
 * that cannot be written at all ends the loop with its error.
 */
int store_recover_interrupted(store *s, int64_t stale_before_ms, int64_t now_ms)
{
    store_run *runs = NULL;
    size_t n = 0;
    int rc = store_run_list_running(s, stale_before_ms, &runs, &n);
    int stopped = 0;
    for (size_t i = 0; rc >= 0 && i < n; i++) {
        int one = store__recover_run(s, &runs[i], stale_before_ms, now_ms);
        if (one > 0) {
            stopped++;
        } else if (one == DB_ERR_BUSY || one == DB_ERR_RETRY || one == DB_ERR_FULL ||
                   one == DB_ERR_CONN) {
            rc = one;
        } else if (one < 0) {
            LOG(LOG_WARN, "Cannot stop an interrupted run.", "run=%s error=\"%s\"", runs[i].id,
                s->err);
        }
    }
    store_run_list_free(runs, n);
    return rc < 0 ? rc : stopped;
}
