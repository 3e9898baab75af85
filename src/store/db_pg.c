/*
 * db_pg: the PostgreSQL driver (libpq) behind db.h.
 *
 * Statements arrive with `?` placeholders; the driver rewrites them to $1..$n
 * and prepares each distinct SQL text once per connection (PQprepare, names
 * s1, s2, …), keeping at most PG_STMT_MAX of them. Parameters and results
 * travel as text, so the server infers each parameter's type from where it
 * is used. Every `?` outside quotes and comments is a placeholder, so SQL
 * given to this driver cannot use PostgreSQL's jsonb operators ?, ?| and ?&
 * (jsonb_exists() and friends do the same).
 *
 * db_exec_later sends a statement the connection has prepared in pipeline
 * mode and leaves its answer unread; the next statement joins the pipeline
 * and a sync point, and its caller reads every answer in one round trip
 * (docs/storage.md, Round trips on PostgreSQL). The first of them that
 * failed is what that caller gets; a ROLLBACK runs after the sync point,
 * whatever the statements before it answered. A statement sent ahead by
 * db_exec_later_int or db_exec_later_rows names where its integer or its
 * rows go when its answer is read.
 *
 * A lost connection is reported as DB_ERR_CONN; the next call tries to
 * reconnect once. The prepared statements died with the old server session,
 * so the cache is dropped. A transaction in progress died too: until the
 * caller rolls back (or begins anew), every statement fails with DB_ERR_CONN
 * rather than running outside the transaction the caller believes it is in.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/canon.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/db_driver.h"

/* Most prepared statements kept per connection. The store uses a few dozen
 * distinct statements; the cap only matters if SQL text is ever generated. */
#define PG_STMT_MAX 256
#define PG_BUCKETS  128
/* The protocol's limit on parameters per statement. */
#define PG_PARAMS_MAX 65535
/* Statements sent ahead (db_exec_later) whose answers are still unread:
 * past this many, the next one is read with its own. */
#define PG_OWED_MAX 64

typedef struct pg_stmt {
    char *sql; /* the original text, the cache key; owned */
    uint64_t hash;
    int nparams;
    char name[24];
    struct pg_stmt *next; /* bucket chain */
} pg_stmt;

typedef struct pg_db {
    db base;
    PGconn *conn;
    char *url_shown; /* owned */
    pg_stmt *buckets[PG_BUCKETS];
    /* The cached statements in preparation order, a ring; the oldest is
     * evicted when the cache is full. */
    pg_stmt *order[PG_STMT_MAX];
    size_t order_head, count;
    uint64_t next_name;
    bool in_txn;   /* a transaction was open after the last statement */
    bool txn_lost; /* the connection died inside a transaction */
    /* In pipeline mode with owed statements sent whose answers are still
     * unread (db_exec_later). */
    bool piped;
    int owed;
    /* Where the answer of each owed statement goes: its integer
     * (db_exec_later_int) or its rows (db_exec_later_rows); both NULL for
     * a statement whose answer nobody reads. */
    int64_t *owed_out[PG_OWED_MAX];
    db_result **owed_rows[PG_OWED_MAX];
} pg_db;

/* FNV-1a (the core's), 64 bits: the cache hash and the migration lock key. */
static uint64_t db_pg__sql_hash(const char *s)
{
    return canon_hash(CANON_HASH_SEED, s, strlen(s));
}

/* Copies the first line of a libpq message (they end in newlines and often
 * carry a second line of hints) into out. */
static void db_pg__first_line(const char *msg, char *out, size_t outlen)
{
    if (!msg || !*msg) msg = "unknown error";
    size_t n = strcspn(msg, "\n");
    if (n >= outlen) n = outlen - 1;
    memcpy(out, msg, n);
    out[n] = '\0';
}

static bool db_pg__is_ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$' || (unsigned char)c >= 0x80;
}

/*
 * Returns the length of a dollar-quote tag ("$$" or "$tag$") starting at s,
 * or 0 when s does not open one. A tag cannot start with a digit, which is
 * what tells it from a $1 parameter.
 */
static size_t db_pg__dollar_tag(const char *s)
{
    size_t i = 1;
    if (isdigit((unsigned char)s[1])) return 0;
    while (s[i] && s[i] != '$') {
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || (unsigned char)s[i] >= 0x80)) return 0;
        i++;
    }
    return s[i] == '$' ? i + 1 : 0;
}

/*
 * Rewrites the `?` placeholders of sql to $1..$n, leaving alone those inside
 * string literals ('…', E'…' with backslash escapes, $tag$…$tag$), quoted
 * identifiers and comments (-- to end of line, nested block comments).
 * Returns a new string the caller frees and stores the count in *nparams,
 * or returns NULL when there are more placeholders than the protocol
 * allows.
 */
static char *db_pg__rewrite_placeholders(const char *sql, int *nparams)
{
    size_t len = strlen(sql);
    buf out;
    buf_init(&out, len * 7 + 16); /* "?" becomes at most "$65535" */
    int n = 0;
    const char *p = sql;
    while (*p) {
        char c = *p;
        if (c == '\'') {
            bool esc = p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
                       (p - 1 == sql || !db_pg__is_ident_char(p[-2]));
            const char *q = p + 1;
            for (; *q; q++) {
                if (esc && *q == '\\' && q[1]) {
                    q++;
                } else if (*q == '\'') {
                    if (q[1] == '\'') {
                        q++;
                    } else {
                        break;
                    }
                }
            }
            if (*q) q++;
            buf_append(&out, p, (size_t)(q - p));
            p = q;
        } else if (c == '"') {
            const char *q = strchr(p + 1, '"');
            q = q ? q + 1 : p + strlen(p);
            buf_append(&out, p, (size_t)(q - p));
            p = q;
        } else if (c == '-' && p[1] == '-') {
            size_t k = strcspn(p, "\n");
            buf_append(&out, p, k);
            p += k;
        } else if (c == '/' && p[1] == '*') {
            const char *q = p + 2;
            int depth = 1;
            while (*q && depth > 0) {
                if (q[0] == '/' && q[1] == '*') {
                    depth++;
                    q += 2;
                } else if (q[0] == '*' && q[1] == '/') {
                    depth--;
                    q += 2;
                } else {
                    q++;
                }
            }
            buf_append(&out, p, (size_t)(q - p));
            p = q;
        } else if (c == '$' && (p == sql || !db_pg__is_ident_char(p[-1])) && db_pg__dollar_tag(p)) {
            size_t tl = db_pg__dollar_tag(p);
            const char *q = p + tl;
            const char *end = NULL;
            for (; *q; q++) {
                if (*q == '$' && strncmp(q, p, tl) == 0) {
                    end = q + tl;
                    break;
                }
            }
            if (!end) end = p + strlen(p);
            buf_append(&out, p, (size_t)(end - p));
            p = end;
        } else if (c == '?') {
            if (n == PG_PARAMS_MAX) {
                buf_cleanup(&out);
                return NULL;
            }
            buf_printf(&out, "$%d", ++n);
            p++;
        } else {
            buf_append_char(&out, c);
            p++;
        }
    }
    *nparams = n;
    return buf_detach(&out, NULL);
}

/* True when sql starts with the keyword kw (any case) as a whole word. */
static bool db_pg__starts_with(const char *sql, const char *kw)
{
    while (isspace((unsigned char)*sql)) sql++;
    size_t n = strlen(kw);
    return strncasecmp(sql, kw, n) == 0 && !db_pg__is_ident_char(sql[n]);
}

static void db_pg__cache_drop(pg_db *p)
{
    for (size_t i = 0; i < PG_BUCKETS; i++) {
        pg_stmt *st = p->buckets[i];
        while (st) {
            pg_stmt *next = st->next;
            free(st->sql);
            free(st);
            st = next;
        }
        p->buckets[i] = NULL;
    }
    p->order_head = 0;
    p->count = 0;
}

static pg_stmt *db_pg__cache_find(pg_db *p, const char *sql, uint64_t hash)
{
    for (pg_stmt *st = p->buckets[hash % PG_BUCKETS]; st; st = st->next)
        if (st->hash == hash && strcmp(st->sql, sql) == 0) return st;
    return NULL;
}

/*
 * Forgets the oldest cached statement and deallocates it on the server.
 * In a failed transaction the server refuses even DEALLOCATE; the statement
 * then stays on the server until the connection closes, which is harmless
 * because names are never reused.
 */
static void db_pg__cache_evict(pg_db *p)
{
    pg_stmt *old = p->order[p->order_head];
    p->order_head = (p->order_head + 1) % PG_STMT_MAX;
    p->count--;
    pg_stmt **link = &p->buckets[old->hash % PG_BUCKETS];
    while (*link != old) link = &(*link)->next;
    *link = old->next;
    if (PQtransactionStatus(p->conn) != PQTRANS_INERROR) {
        char sql[48];
        snprintf(sql, sizeof sql, "DEALLOCATE %s", old->name);
        PQclear(PQexec(p->conn, sql));
    }
    free(old->sql);
    free(old);
}

/*
 * Maps a failed result (or a NULL one) to a DB_ERR_* code and records the
 * message. Connection trouble is recognised by the connection's state as
 * well as by SQLSTATE, since a dropped socket yields no SQLSTATE at all.
 */
static int db_pg__fail(pg_db *p, const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[DB_ERRMSG_MAX - 64];
    if (primary) {
        db_pg__first_line(primary, msg, sizeof msg);
    } else {
        db_pg__first_line(r ? PQresultErrorMessage(r) : PQerrorMessage(p->conn), msg, sizeof msg);
    }
    if (!state) state = "";

    int code = DB_ERR;
    if (PQstatus(p->conn) != CONNECTION_OK || strncmp(state, "08", 2) == 0 ||
        strncmp(state, "57P0", 4) == 0) {
        code = DB_ERR_CONN;
    } else if (strcmp(state, "23505") == 0) {
        code = DB_ERR_CONFLICT;
    } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
        code = DB_ERR_RETRY;
    } else if (strcmp(state, "55P03") == 0) {
        code = DB_ERR_BUSY;
    } else if (strcmp(state, "53100") == 0 || strcmp(state, "25006") == 0) {
        code = DB_ERR_FULL;
    } else if (strcmp(state, "CP404") == 0) {
        code = DB_ERR_NOT_FOUND;
    } else if (strcmp(state, "CP409") == 0) {
        code = DB_ERR_STATE;
    }

    if (code == DB_ERR_CONN) {
        /* in_txn still describes the state before this statement. */
        if (p->in_txn) p->txn_lost = true;
        db__set_error(&p->base, "connection to %s lost: %s", p->url_shown, msg);
    } else if (*state && strncmp(state, "CP", 2) != 0) {
        p->in_txn = PQtransactionStatus(p->conn) != PQTRANS_IDLE;
        db__set_error(&p->base, "%s (SQLSTATE %s)", msg, state);
    } else {
        p->in_txn = PQtransactionStatus(p->conn) != PQTRANS_IDLE;
        db__set_error(&p->base, "%s", msg);
    }
    return code;
}

/* Notices below warning are filtered by the server; a warning that a
 * ROLLBACK found no transaction is routine after a failed BEGIN. */
static void db_pg__on_notice(void *arg, const PGresult *r)
{
    (void)arg;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    log_level level = (state && strncmp(state, "25", 2) == 0) ? LOG_DEBUG : LOG_WARN;
    LOG(level, "PostgreSQL notice", "sqlstate=%s text=\"%s\"", state ? state : "",
        primary ? primary : "");
}

/* Settings every connection (and every reconnection) starts with. */
static int db_pg__session_setup(PGconn *conn, char *err, size_t errlen)
{
    PQsetNoticeReceiver(conn, db_pg__on_notice, NULL);
    PGresult *r = PQexec(conn, "SET client_min_messages = warning; SET TIME ZONE 'UTC'");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) db_pg__first_line(PQresultErrorMessage(r), err, errlen);
    PQclear(r);
    return ok ? 0 : DB_ERR_CONN;
}

/* Leaves pipeline mode without reading what is owed: the connection is
 * lost, and with it every answer. */
static void db_pg__pipe_forget(pg_db *p)
{
    if (PQpipelineStatus(p->conn) != PQ_PIPELINE_OFF) PQexitPipelineMode(p->conn);
    p->piped = false;
    p->owed = 0;
}

/*
 * Makes the connection usable for sql: reconnects once if it is bad, and
 * guards a transaction that died with the old connection. Returns 0 to go
 * on, 1 when sql is a ROLLBACK that the lost connection has already done,
 * or a negative code.
 */
static int db_pg__ready(pg_db *p, const char *sql)
{
    /* A transaction whose connection died was rolled back by the server:
     * the caller's ROLLBACK has nothing left to do and must not depend on
     * reconnecting, or a failed reconnection would leave the connection
     * refusing every later statement as if still in that transaction. */
    if ((p->txn_lost || (p->in_txn && PQstatus(p->conn) != CONNECTION_OK)) &&
        db_pg__starts_with(sql, "ROLLBACK")) {
        p->txn_lost = false;
        p->in_txn = false;
        db_pg__pipe_forget(p);
        return 1;
    }
    if (PQstatus(p->conn) != CONNECTION_OK) {
        if (p->in_txn) p->txn_lost = true;
        p->in_txn = false;
        db_pg__pipe_forget(p);
        db_pg__cache_drop(p);
        PQreset(p->conn);
        char why[DB_ERRMSG_MAX - 64];
        if (PQstatus(p->conn) != CONNECTION_OK) {
            db_pg__first_line(PQerrorMessage(p->conn), why, sizeof why);
            db__set_error(&p->base, "cannot reconnect to %s: %s", p->url_shown, why);
            return DB_ERR_CONN;
        }
        if (db_pg__session_setup(p->conn, why, sizeof why) < 0) {
            db__set_error(&p->base, "cannot set up the session on %s: %s", p->url_shown, why);
            return DB_ERR_CONN;
        }
        LOG(LOG_WARN, "Reconnected to PostgreSQL.", "url=%s", p->url_shown);
    }
    if (p->txn_lost) {
        if (!db_pg__starts_with(sql, "BEGIN") && !db_pg__starts_with(sql, "START")) {
            db__set_error(&p->base,
                          "the connection to %s was lost inside a transaction, which the "
                          "server rolled back; roll back before going on",
                          p->url_shown);
            return DB_ERR_CONN;
        }
        p->txn_lost = false;
    }
    return 0;
}

/* The rows of r, copied into a new db_result. */
static db_result *db_pg__rows(const PGresult *r)
{
    size_t rows = (size_t)PQntuples(r), cols = (size_t)PQnfields(r);
    db_result *out = db__result_new(rows, cols);
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < cols; j++) {
            if (PQgetisnull(r, (int)i, (int)j)) {
                db__result_set(out, i, j, NULL, 0);
            } else {
                db__result_set(out, i, j, PQgetvalue(r, (int)i, (int)j),
                               (size_t)PQgetlength(r, (int)i, (int)j));
            }
        }
    }
    return out;
}

/*
 * Turns a finished result into the db_exec answer: the number of rows
 * changed (0 for a SELECT, whose command tag counts rows read), with the
 * rows copied into a new db_result when res is non-NULL.
 */
static int db_pg__finish(pg_db *p, PGresult *r, db_result **res)
{
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int code = db_pg__fail(p, r);
        PQclear(r);
        return code;
    }
    p->in_txn = PQtransactionStatus(p->conn) != PQTRANS_IDLE;
    if (res && st == PGRES_TUPLES_OK) {
        *res = db_pg__rows(r);
    } else if (res) {
        *res = db__result_new(0, 0);
    }
    int changed = 0;
    if (strncmp(PQcmdStatus(r), "SELECT", 6) != 0) changed = atoi(PQcmdTuples(r));
    PQclear(r);
    return changed;
}

/* The first column of r's first row, when it has one that is not NULL,
 * into *out (db_exec_later_int). */
static void db_pg__int_answer(const PGresult *r, int64_t *out)
{
    if (PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0))
        *out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
}

/*
 * Ends pipeline mode: sends a sync point and reads the answers of the owed
 * statements and then, when target is non-NULL, that of the one sent after
 * them, which is left in *target (NULL when it never came). Returns 0, or
 * the code of the first owed statement that failed (the statements after
 * it were skipped, and the transaction is aborted) or of a lost
 * connection.
 */
static int db_pg__pipe_sync(pg_db *p, PGresult **target)
{
    if (target) *target = NULL;
    int rc = 0, seen = 0, nulls = 0;
    if (!PQpipelineSync(p->conn)) {
        rc = db_pg__fail(p, NULL);
        db_pg__pipe_forget(p);
        return rc;
    }
    /* Each statement's answer ends with a NULL; two in a row mean that
     * nothing more is coming (the connection is lost). */
    for (;;) {
        PGresult *r = PQgetResult(p->conn);
        if (!r) {
            if (++nulls > 1) break;
            continue;
        }
        nulls = 0;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (seen < p->owed) {
            if (rc == 0 && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
                st != PGRES_PIPELINE_ABORTED)
                rc = db_pg__fail(p, r);
            if (st == PGRES_TUPLES_OK && p->owed_out[seen]) db_pg__int_answer(r, p->owed_out[seen]);
            if (st == PGRES_TUPLES_OK && p->owed_rows[seen]) *p->owed_rows[seen] = db_pg__rows(r);
            PQclear(r);
        } else if (target && !*target) {
            *target = r;
        } else {
            PQclear(r);
        }
        seen++;
    }
    if (PQstatus(p->conn) != CONNECTION_OK || nulls > 1) {
        if (target && *target) {
            PQclear(*target);
            *target = NULL;
        }
        if (rc != DB_ERR_CONN) rc = db_pg__fail(p, NULL);
        db_pg__pipe_forget(p);
        return rc;
    }
    PQexitPipelineMode(p->conn);
    p->piped = false;
    p->owed = 0;
    p->in_txn = PQtransactionStatus(p->conn) != PQTRANS_IDLE;
    return rc;
}

/* Runs the prepared st after the owed statements, in their round trip. */
static int db_pg__pipe_exec(pg_db *p, const pg_stmt *st, int n, const char *const *params,
                            db_result **res)
{
    if (!PQsendQueryPrepared(p->conn, st->name, n, params, NULL, NULL, 0)) {
        int rc = db_pg__pipe_sync(p, NULL);
        return rc < 0 ? rc : db_pg__fail(p, NULL);
    }
    PGresult *r;
    int rc = db_pg__pipe_sync(p, &r);
    if (rc < 0) {
        PQclear(r);
        return rc;
    }
    if (!r) return db_pg__fail(p, NULL);
    return db_pg__finish(p, r, res);
}

/* Finds sql in the cache or prepares it, evicting the oldest statement when
 * the cache is full. Sets *out to NULL (and returns 0) when the statement
 * should run unprepared: the cache is full inside a failed transaction. */
static int db_pg__prepare(pg_db *p, const char *sql, pg_stmt **out)
{
    *out = NULL;
    uint64_t hash = db_pg__sql_hash(sql);
    pg_stmt *st = db_pg__cache_find(p, sql, hash);
    if (st) {
        *out = st;
        return 0;
    }
    int nparams;
    char *text = db_pg__rewrite_placeholders(sql, &nparams);
    if (!text) {
        db__set_error(&p->base, "more than %d parameters in one statement", PG_PARAMS_MAX);
        return DB_ERR;
    }
    if (p->count == PG_STMT_MAX) {
        if (PQtransactionStatus(p->conn) == PQTRANS_INERROR) {
            free(text);
            return 0;
        }
        db_pg__cache_evict(p);
    }
    st = xcalloc(1, sizeof *st);
    snprintf(st->name, sizeof st->name, "s%" PRIu64, ++p->next_name);
    PGresult *r = PQprepare(p->conn, st->name, text, 0, NULL);
    free(text);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        int code = db_pg__fail(p, r);
        PQclear(r);
        free(st);
        return code;
    }
    PQclear(r);
    st->sql = xstrdup(sql);
    st->hash = hash;
    st->nparams = nparams;
    st->next = p->buckets[hash % PG_BUCKETS];
    p->buckets[hash % PG_BUCKETS] = st;
    p->order[(p->order_head + p->count) % PG_STMT_MAX] = st;
    p->count++;
    *out = st;
    return 0;
}

static int db_pg__exec_sql(db *d, const char *sql, int n, const char *const *params,
                           db_result **res)
{
    pg_db *p = (pg_db *)d;
    if (res) *res = NULL;
    int rc = db_pg__ready(p, sql);
    if (rc < 0) return rc;
    if (rc == 1) {
        if (res) *res = db__result_new(0, 0);
        return 0;
    }

    pg_stmt *st;
    if (p->piped) {
        /* A ROLLBACK undoes whatever the owed statements did or failed to
         * do; anything else that is prepared travels with them. */
        if (db_pg__starts_with(sql, "ROLLBACK")) {
            (void)db_pg__pipe_sync(p, NULL);
            if (PQstatus(p->conn) != CONNECTION_OK) return db_pg__exec_sql(d, sql, n, params, res);
        } else {
            st = db_pg__cache_find(p, sql, db_pg__sql_hash(sql));
            if (st && st->nparams == n) {
                rc = db_pg__pipe_exec(p, st, n, params, res);
                /* A COMMIT that a failure before it skipped ends the
                 * transaction all the same, as a COMMIT that fails does. */
                if (rc < 0 && db_pg__starts_with(sql, "COMMIT") &&
                    PQtransactionStatus(p->conn) == PQTRANS_INERROR) {
                    PQclear(PQexec(p->conn, "ROLLBACK"));
                    p->in_txn = PQtransactionStatus(p->conn) != PQTRANS_IDLE;
                }
                return rc;
            }
            rc = db_pg__pipe_sync(p, NULL);
            if (rc < 0) return rc;
        }
    }
    rc = db_pg__prepare(p, sql, &st);
    if (rc < 0) return rc;
    PGresult *r;
    if (st) {
        if (st->nparams != n) {
            db__set_error(d, "the statement has %d placeholders but %d parameters were given",
                          st->nparams, n);
            return DB_ERR;
        }
        r = PQexecPrepared(p->conn, st->name, n, params, NULL, NULL, 0);
    } else {
        int nparams;
        char *text = db_pg__rewrite_placeholders(sql, &nparams);
        if (nparams != n) {
            free(text);
            db__set_error(d, "the statement has %d placeholders but %d parameters were given",
                          nparams, n);
            return DB_ERR;
        }
        r = PQexecParams(p->conn, text, n, NULL, params, NULL, NULL, 0);
        free(text);
    }
    return db_pg__finish(p, r, res);
}

/*
 * Sends a prepared statement in pipeline mode, its answer owed (into *out
 * or *rows when not NULL), when a transaction is open or sql begins one;
 * otherwise (not prepared yet, the connection in trouble, PG_OWED_MAX
 * owed) returns 1, and db.c runs it at once.
 */
static int db_pg__exec_later(db *d, const char *sql, int n, const char *const *params, int64_t *out,
                             db_result **rows)
{
    pg_db *p = (pg_db *)d;
    bool begin = db_pg__starts_with(sql, "BEGIN");
    pg_stmt *st = db_pg__cache_find(p, sql, db_pg__sql_hash(sql));
    bool later = st && st->nparams == n && (p->in_txn || begin) && !p->txn_lost &&
                 p->owed < PG_OWED_MAX && PQstatus(p->conn) == CONNECTION_OK;
    if (later && !p->piped) {
        later = PQenterPipelineMode(p->conn) == 1;
        p->piped = later;
    }
    if (!later) return 1;
    if (!PQsendQueryPrepared(p->conn, st->name, n, params, NULL, NULL, 0)) {
        int rc = db_pg__pipe_sync(p, NULL);
        return rc < 0 ? rc : db_pg__fail(p, NULL);
    }
    p->owed_out[p->owed] = out;
    p->owed_rows[p->owed++] = rows;
    if (begin) p->in_txn = true;
    return 0;
}

/* Runs a script of several statements in one simple-protocol round trip. */
static int db_pg__exec_script(db *d, const char *sql)
{
    pg_db *p = (pg_db *)d;
    int rc = db_pg__ready(p, sql);
    if (rc < 0) return rc;
    if (rc == 1) return 0;
    if (p->piped && (rc = db_pg__pipe_sync(p, NULL)) < 0) return rc;
    rc = db_pg__finish(p, PQexec(p->conn, sql), NULL);
    return rc < 0 ? rc : 0;
}

/* The advisory lock key every chatplane instance agrees on: the FNV-1a hash
 * of "chatplane.migrations" read as a signed 64-bit number. */
static int db_pg__advisory(db *d, const char *fn)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT %s(%" PRId64 ")", fn,
             (int64_t)db_pg__sql_hash("chatplane.migrations"));
    int rc = db_pg__exec_sql(d, sql, 0, NULL, NULL);
    return rc < 0 ? rc : 0;
}

static int db_pg__lock_migrations(db *d)
{
    return db_pg__advisory(d, "pg_advisory_lock");
}

static int db_pg__unlock_migrations(db *d)
{
    return db_pg__advisory(d, "pg_advisory_unlock");
}

static void db_pg__close_db(db *d)
{
    pg_db *p = (pg_db *)d;
    db_pg__cache_drop(p);
    PQfinish(p->conn);
    free(p->url_shown);
    free(p);
}

static const db_ops driver_ops = {
    .exec = db_pg__exec_sql,
    .exec_later = db_pg__exec_later,
    .exec_script = db_pg__exec_script,
    .lock_migrations = db_pg__lock_migrations,
    .unlock_migrations = db_pg__unlock_migrations,
    .close = db_pg__close_db,
};

/*
 * Connects with conninfo (a postgres:// URL or key=value string, passed to
 * libpq as is). A URL without connect_timeout waits at most 10 seconds.
 * On failure err names url_shown (the URL with its password masked) and
 * libpq's reason.
 */
int db_pg_open(const char *conninfo, const char *url_shown, db **out, char *err, size_t errlen)
{
    *out = NULL;
    /* Entries before dbname are defaults the URL may override. */
    const char *const keys[] = {"connect_timeout", "dbname", "fallback_application_name", NULL};
    const char *const vals[] = {"10", conninfo, "chatplane", NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    char why[DB_ERRMSG_MAX];
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        db_pg__first_line(conn ? PQerrorMessage(conn) : "out of memory", why, sizeof why);
        snprintf(err, errlen, "cannot connect to %s: %s", url_shown, why);
        PQfinish(conn);
        return DB_ERR_CONN;
    }
    if (db_pg__session_setup(conn, why, sizeof why) < 0) {
        snprintf(err, errlen, "cannot set up the session on %s: %s", url_shown, why);
        PQfinish(conn);
        return DB_ERR_CONN;
    }
    pg_db *p = xcalloc(1, sizeof *p);
    p->base.ops = &driver_ops;
    p->base.kind = DB_POSTGRES;
    p->conn = conn;
    p->url_shown = xstrdup(url_shown);
    *out = &p->base;
    return 0;
}
