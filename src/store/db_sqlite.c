/*
 * db_sqlite: the SQLite driver behind db.h.
 *
 * Every connection runs in WAL mode with synchronous=NORMAL (a commit
 * survives a killed process; only a power cut may lose the last ones),
 * waits up to 5 s for a lock, and enforces foreign keys. Statements are
 * prepared once and kept in a small cache keyed by their SQL text; the
 * least recently used one is finalized when the cache is full.
 *
 * Write transactions of one process queue on a lock of the process (see
 * store/db_sqlite_lock.c) before SQLite's own: SQLite makes a writer that finds the
 * database locked sleep and retry with growing pauses (1, 2, 5, 10 … 100
 * ms), so a run starting on a pool thread while the event log's writer
 * commits batch after batch waited tens of milliseconds or more. Other
 * processes still meet SQLite's lock and its busy timeout.
 *
 * Checkpoints run on a thread of their own, not inside the commit that
 * makes the WAL long (store/db_sqlite_ckpt.c), and a file's connections
 * write a transaction's WAL frames with one system call instead of two per
 * frame (store/db_sqlite_vfs.c).
 *
 * ":memory:" is one database for the whole process, not one per
 * connection: the writer, the read pool and the start-up connection of a
 * server must all see the same tables. It lives in SQLite's memdb VFS
 * under a name of the process's own, which every connection of the process
 * opens, and lasts until the last of them closes. It has no WAL (so no
 * checkpoints): readers and writers take turns on its locks, with the same
 * busy timeout as a file.
 *
 * A process that runs runs on a database file first claims it
 * (db_sqlite_claim): a lock file beside it, so that a second server
 * started on the same file refuses to start instead of stopping the first
 * one's runs.
 *
 * Two SQL functions make the store's SQL the same for both dialects:
 * chatplane_ts(ms) turns Unix milliseconds into a stored time and
 * chatplane_ms(t) turns a stored time back. SQLite stores times as integer
 * milliseconds, so both are the identity here; PostgreSQL defines them in
 * its first migration over timestamptz.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/canon.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"
#include "store/db_driver.h"
#include "store/db_sqlite_ckpt.h"
#include "store/db_sqlite_lock.h"
#include "store/db_sqlite_vfs.h"

#define SQ_STMT_MAX        64
#define SQ_BUSY_TIMEOUT_MS 5000
/* Each connection's page cache, in KiB (SQLite's default is 2,000). The
 * operating system caches the file anyway, so a page missed here costs a
 * pread(2); the default filled up within a minute of streaming and was a
 * fifth of the memory at 100 runs, with no difference in CPU per token
 * (docs/benchmarks.md, fix 23). The event log's writer keeps more
 * (store_set_page_cache): every batch touches a page per session, where
 * the other connections read or write far less (fix 43). */
#define SQ_CACHE_KIB "128"

typedef struct sq_stmt {
    char *sql; /* the cache key; owned */
    uint64_t hash;
    sqlite3_stmt *stmt;
    uint64_t used; /* the tick of the last use, for eviction */
} sq_stmt;

typedef struct sq_db {
    db base;
    sqlite3 *conn;
    char *url_shown; /* owned */
    sq_stmt cache[SQ_STMT_MAX];
    size_t ncache;
    uint64_t tick;
    bool wl_held;         /* this connection's transaction holds the process's write lock */
    db_sqlite_ckpt *ckpt; /* its file's checkpointer; NULL in memory or off WAL */
} sq_db;

/* Releases the write lock once the connection's transaction has ended,
 * however it ended (COMMIT, ROLLBACK, or SQLite rolling back by itself). */
static void db_sqlite__write_lock_settle(sq_db *q)
{
    if (q->wl_held && sqlite3_get_autocommit(q->conn)) {
        q->wl_held = false;
        db__sqlite_write_unlock();
    }
}

bool db_sqlite_write_try(db *d)
{
    sq_db *q = (sq_db *)d;
    if (!q->wl_held && sqlite3_get_autocommit(q->conn)) q->wl_held = db__sqlite_write_trylock();
    return q->wl_held;
}

void db_sqlite_write_drop(db *d)
{
    db_sqlite__write_lock_settle((sq_db *)d);
}

/* Maps an extended SQLite result code to a DB_ERR_* code. */
static int db_sqlite__map_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        return (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
                   ? DB_ERR_CONFLICT
                   : DB_ERR;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return DB_ERR_BUSY;
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
        return DB_ERR_FULL;
    default:
        return DB_ERR;
    }
}

/* Records the connection's last error and returns its DB_ERR_* code. */
static int db_sqlite__fail(sq_db *q)
{
    int rc = sqlite3_extended_errcode(q->conn);
    db__set_error(&q->base, "%s", sqlite3_errmsg(q->conn));
    return db_sqlite__map_code(rc);
}

static void db_sqlite__stmt_drop(sq_stmt *e)
{
    sqlite3_finalize(e->stmt);
    free(e->sql);
    memset(e, 0, sizeof *e);
}

/* The cache slot to fill: a free one, else the least recently used one,
 * emptied. */
static sq_stmt *db_sqlite__cache_slot(sq_db *q)
{
    if (q->ncache < SQ_STMT_MAX) return &q->cache[q->ncache++];
    sq_stmt *old = &q->cache[0];
    for (size_t i = 1; i < SQ_STMT_MAX; i++)
        if (q->cache[i].used < old->used) old = &q->cache[i];
    db_sqlite__stmt_drop(old);
    return old;
}

static bool db_sqlite__is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\n' && *s != '\t' && *s != '\r' && *s != ';') return false;
    return true;
}

/*
 * The statement cache's key: the text's length, its first and its last
 * DB_SQLITE__KEY_EDGE bytes. Hashing whole texts of a few hundred bytes
 * on every statement cost about 1 % of a run's instructions; two texts that
 * share the key are told apart by the strcmp that confirms every match.
 */
#define DB_SQLITE__KEY_EDGE 24
static uint64_t db_sqlite__sql_key(const char *sql)
{
    size_t n = strlen(sql);
    if (n <= 2 * DB_SQLITE__KEY_EDGE) return canon_hash(CANON_HASH_SEED, sql, n);
    uint64_t h = canon_hash(CANON_HASH_SEED, sql, DB_SQLITE__KEY_EDGE);
    h = canon_hash(h, sql + n - DB_SQLITE__KEY_EDGE, DB_SQLITE__KEY_EDGE);
    return canon_hash(h, &n, sizeof n);
}

/*
 * Finds sql in the cache or prepares it. One call runs one statement, so
 * text after the first statement is refused rather than silently dropped.
 */
static int db_sqlite__prepare(sq_db *q, const char *sql, sqlite3_stmt **out)
{
    uint64_t hash = db_sqlite__sql_key(sql);
    for (size_t i = 0; i < q->ncache; i++) {
        sq_stmt *e = &q->cache[i];
        if (e->hash == hash && strcmp(e->sql, sql) == 0) {
            e->used = ++q->tick;
            *out = e->stmt;
            return 0;
        }
    }
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    if (sqlite3_prepare_v3(q->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, &tail) != SQLITE_OK)
        return db_sqlite__fail(q);
    if (!st || (tail && !db_sqlite__is_blank(tail))) {
        sqlite3_finalize(st);
        db__set_error(&q->base, "db_exec runs exactly one statement; use db_exec_script for "
                                "a script");
        return DB_ERR;
    }
    sq_stmt *e = db_sqlite__cache_slot(q);
    e->sql = xstrdup(sql);
    e->hash = hash;
    e->stmt = st;
    e->used = ++q->tick;
    *out = st;
    return 0;
}

static int db_sqlite__bind_params(sq_db *q, sqlite3_stmt *st, int n, const char *const *params)
{
    int want = sqlite3_bind_parameter_count(st);
    if (want != n) {
        db__set_error(&q->base, "the statement has %d placeholders but %d parameters were given",
                      want, n);
        return DB_ERR;
    }
    for (int i = 0; i < n; i++) {
        int rc = params[i] ? sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_STATIC)
                           : sqlite3_bind_null(st, i + 1);
        if (rc != SQLITE_OK) return db_sqlite__fail(q);
    }
    return 0;
}

/* Copies the current row of st into a new row of r. */
static void db_sqlite__copy_row(sqlite3_stmt *st, db_result *r)
{
    size_t row = db__result_add_row(r);
    for (size_t c = 0; c < r->cols; c++) {
        const unsigned char *v = sqlite3_column_text(st, (int)c);
        db__result_set(r, row, c, (const char *)v, (size_t)sqlite3_column_bytes(st, (int)c));
    }
}

/* Steps st to the end, collecting rows into a new *res when res is
 * non-NULL. Returns the rows changed or a negative code. */
static int db_sqlite__step_all(sq_db *q, sqlite3_stmt *st, db_result **res)
{
    db_result *r = res ? db__result_new(0, (size_t)sqlite3_column_count(st)) : NULL;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            if (r) db_sqlite__copy_row(st, r);
        } else if (rc == SQLITE_DONE) {
            break;
        } else {
            db_result_free(r);
            return db_sqlite__fail(q);
        }
    }
    if (res) *res = r;
    return sqlite3_stmt_readonly(st) ? 0 : sqlite3_changes(q->conn);
}

/*
 * A statement that fails on a full or read-only disk may roll the
 * transaction back by itself; the caller's ROLLBACK then finds none, which
 * is the state it asked for rather than an error.
 */
static bool db_sqlite__rollback_done(sq_db *q, const char *sql)
{
    return strcmp(sql, "ROLLBACK") == 0 && sqlite3_get_autocommit(q->conn);
}

static int db_sqlite__exec_sql(db *d, const char *sql, int n, const char *const *params,
                               db_result **res)
{
    sq_db *q = (sq_db *)d;
    if (db_sqlite__rollback_done(q, sql)) {
        db_sqlite__write_lock_settle(q);
        if (res) *res = db__result_new(0, 0);
        return 0;
    }
    if (!q->wl_held && strncmp(sql, "BEGIN IMMEDIATE", 15) == 0 && sqlite3_get_autocommit(q->conn))
        q->wl_held = db__sqlite_write_lock(SQ_BUSY_TIMEOUT_MS);
    sqlite3_stmt *st = NULL;
    int rc = db_sqlite__prepare(q, sql, &st);
    if (rc == 0) rc = db_sqlite__bind_params(q, st, n, params);
    if (rc == 0) rc = db_sqlite__step_all(q, st, res);
    /* Reset at once: a statement left mid-way holds its read snapshot. */
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    db_sqlite__write_lock_settle(q);
    return rc;
}

static int db_sqlite__exec_script(db *d, const char *sql)
{
    sq_db *q = (sq_db *)d;
    char *msg = NULL;
    int rc = sqlite3_exec(q->conn, sql, NULL, NULL, &msg);
    db_sqlite__write_lock_settle(q);
    if (rc == SQLITE_OK) return 0;
    db__set_error(d, "%s", msg ? msg : sqlite3_errmsg(q->conn));
    sqlite3_free(msg);
    return db_sqlite__map_code(sqlite3_extended_errcode(q->conn));
}

/*
 * SQLite needs no migration lock, so taking and releasing it both do
 * nothing: each migration runs in a transaction that begins with BEGIN
 * IMMEDIATE, which takes the database's write lock and so excludes every
 * other writer, and store_migrate checks a migration's version again inside
 * that transaction, so a process that lost the race skips what the winner
 * applied. (PostgreSQL has several writers and takes an advisory lock.)
 */
static int db_sqlite__migration_lock_none(db *d)
{
    (void)d;
    return 0;
}

static void db_sqlite__close_db(db *d)
{
    sq_db *q = (sq_db *)d;
    for (size_t i = 0; i < q->ncache; i++) db_sqlite__stmt_drop(&q->cache[i]);
    sqlite3_close_v2(q->conn);
    db__sqlite_ckpt_detach(q->ckpt);
    if (q->wl_held) db__sqlite_write_unlock();
    free(q->url_shown);
    free(q);
}

static const db_ops driver_ops = {
    .exec = db_sqlite__exec_sql,
    .exec_script = db_sqlite__exec_script,
    .lock_migrations = db_sqlite__migration_lock_none,
    .unlock_migrations = db_sqlite__migration_lock_none,
    .close = db_sqlite__close_db,
};

/* chatplane_ts and chatplane_ms: times are integer milliseconds already. */
static void db_sqlite__fn_time(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
    } else {
        sqlite3_result_int64(ctx, sqlite3_value_int64(argv[0]));
    }
}

static int db_sqlite__register_functions(sqlite3 *conn)
{
    const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    int rc = sqlite3_create_function(conn, "chatplane_ts", 1, flags, NULL, db_sqlite__fn_time, NULL,
                                     NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(conn, "chatplane_ms", 1, flags, NULL, db_sqlite__fn_time, NULL,
                                     NULL);
    return rc;
}

/*
 * Applies the connection settings. WAL is the first statement that reads
 * the file, so a file that is not a database fails here. A read-only file
 * cannot switch to WAL; it stays readable, and writes fail later with
 * DB_ERR_FULL.
 */
static int db_sqlite__configure(sq_db *q)
{
    sqlite3_extended_result_codes(q->conn, 1);
    sqlite3_busy_timeout(q->conn, SQ_BUSY_TIMEOUT_MS);
    if (db_sqlite__register_functions(q->conn) != SQLITE_OK) return db_sqlite__fail(q);
    /* Switching a new file to WAL takes a lock for which SQLite does not
     * call the busy handler, so two connections opening the same new file
     * at once (two processes migrating it) see "database is locked": wait
     * and try again, for as long as the busy timeout allows. */
    int rc = DB_ERR_BUSY;
    db_result *r = NULL;
    for (int waited = 0; rc == DB_ERR_BUSY && waited <= SQ_BUSY_TIMEOUT_MS; waited += 10) {
        if (waited > 0) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        db_result_free(r);
        r = NULL;
        rc = db_sqlite__exec_sql(&q->base, "PRAGMA journal_mode=WAL", 0, NULL, &r);
    }
    /* An in-memory database keeps its own journal mode and needs no
     * checkpoints. */
    const char *jm = rc == 0 ? db_result_get(r, 0, 0) : NULL;
    bool wal = jm && strcmp(jm, "wal") == 0;
    db_result_free(r);
    if (rc < 0 && rc != DB_ERR_FULL) return rc;
    if (wal) q->ckpt = db__sqlite_ckpt_attach(q->conn);
    /* Statement journals (the undo copy a multi-row insert keeps inside a
     * transaction) stay in memory: on disk they wrote more than the WAL
     * itself at 100 sessions (docs/benchmarks.md, Storage). */
    rc = db_sqlite__exec_script(&q->base,
                                "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                                "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-" SQ_CACHE_KIB);
    return rc < 0 ? rc : 0;
}

/* Explains why path could not be opened, naming a missing directory. */
static void db_sqlite__open_reason(const char *path, sqlite3 *conn, char *out, size_t outlen)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    struct stat stbuf;
    if (slash && slash != dir) *slash = '\0';
    if (slash && stat(dir, &stbuf) != 0 && errno == ENOENT) {
        snprintf(out, outlen, "the directory %s does not exist", dir);
    } else {
        int sys = conn ? sqlite3_system_errno(conn) : 0;
        char why[128] = "";
        if (sys) strerror_r(sys, why, sizeof why);
        snprintf(out, outlen, "%s%s%s", conn ? sqlite3_errmsg(conn) : "out of memory",
                 *why ? ": " : "", why);
    }
    free(dir);
}

/*
 * Opens (creating if needed) the database file at path, or the process's
 * in-memory database for ":memory:". On failure err names url_shown and
 * the reason.
 */
/*
 * SQLite counts its memory by default, which takes one mutex of the whole
 * process for every allocation and free of every connection: hundreds per
 * run on the loop, the pool and the checkpointer alike. chatplane never
 * reads those counts, so they are turned off, once, before SQLite starts
 * (docs/storage.md, SQLite settings). Where SQLite has started already,
 * sqlite3_config refuses and the counting stays on: slower, still correct.
 */
static pthread_once_t db_sqlite__config_once = PTHREAD_ONCE_INIT;

static void db_sqlite__set_memstatus(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int db_sqlite_open(const char *path, const char *url_shown, db **out, char *err, size_t errlen)
{
    pthread_once(&db_sqlite__config_once, db_sqlite__set_memstatus);
    *out = NULL;
    sqlite3 *conn = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    /* A memdb name starting with '/' is shared by the process's
     * connections; the process id keeps it the process's own. */
    char memname[64];
    const char *name = path;
    if (strcmp(path, ":memory:") == 0) {
        snprintf(memname, sizeof memname, "file:/chatplane-%ld?vfs=memdb", (long)getpid());
        name = memname;
        flags |= SQLITE_OPEN_URI;
    }
    /* A file goes through the layer that writes a transaction's WAL
     * frames with one system call (store/db_sqlite_vfs.c). */
    const char *vfs = name == path ? db_sqlite_vfs_name() : NULL;
    if (sqlite3_open_v2(name, &conn, flags, vfs) != SQLITE_OK) {
        char why[DB_ERRMSG_MAX];
        db_sqlite__open_reason(path, conn, why, sizeof why);
        snprintf(err, errlen, "cannot open database %s: %s", url_shown, why);
        sqlite3_close_v2(conn);
        return DB_ERR;
    }
    sq_db *q = xcalloc(1, sizeof *q);
    q->base.ops = &driver_ops;
    q->base.kind = DB_SQLITE;
    q->conn = conn;
    q->url_shown = xstrdup(url_shown);
    int rc = db_sqlite__configure(q);
    if (rc < 0) {
        snprintf(err, errlen, "cannot open database %s: %s", url_shown, q->base.errmsg);
        db_sqlite__close_db(&q->base);
        return rc;
    }
    *out = &q->base;
    return 0;
}

/* ---- the claim on a database file ---- */

struct db_claim {
    int fd; /* the lock file, locked */
};

/* Appends " (pid N)" to out when the lock file names a process. */
static void db_sqlite__claim_holder(int fd, char *out, size_t outlen)
{
    char text[32];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    out[0] = '\0';
    if (n <= 0) return;
    text[n] = '\0';
    char *end = NULL;
    long pid = strtol(text, &end, 10);
    if (pid > 0 && end != text && (*end == '\n' || *end == '\0'))
        snprintf(out, outlen, " (pid %ld)", pid);
}

/*
 * flock, not fcntl: an fcntl lock belongs to the process and is dropped
 * when any descriptor of the file closes, and a second claim in the same
 * process would succeed. The lock file is left in place when released:
 * removing it could let a process that opened it before the removal lock a
 * file no one else sees.
 */
int db_sqlite_claim(const char *path, const char *url_shown, db_claim **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    char *lock = xasprintf("%s.lock", path);
    int rc = DB_ERR;
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot use database %s: cannot open its lock file %s: %s", url_shown,
                 lock, strerror(errno));
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            char holder[48];
            db_sqlite__claim_holder(fd, holder, sizeof holder);
            snprintf(err, errlen,
                     "cannot use database %s: another chatplane process%s is using it and holds "
                     "its lock file %s; only one process at a time may serve, ask or migrate on a "
                     "SQLite database",
                     url_shown, holder, lock);
            rc = DB_ERR_CLAIMED;
        } else {
            snprintf(err, errlen, "cannot use database %s: cannot lock %s: %s", url_shown, lock,
                     strerror(errno));
        }
        close(fd);
        goto out;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* The lock holds without the id; a refused process just cannot
         * name this one. */
    }
    db_claim *c = xcalloc(1, sizeof *c);
    c->fd = fd;
    *out = c;
    rc = 0;
out:
    free(lock);
    return rc;
}

void db_sqlite_claim_release(db_claim *c)
{
    if (!c) return;
    /* The id goes first, so that no one is named as holding a free lock. */
    if (ftruncate(c->fd, 0) != 0) {
        /* Closing releases the lock all the same. */
    }
    close(c->fd);
    free(c);
}
