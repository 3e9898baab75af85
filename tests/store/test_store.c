/*
 * The store suite: store/store.c and store/eventlog.c against a real
 * database, the same tests for both backends.
 *
 * CHATPLANE_TEST_DB_URL names the database (a postgres:// URL runs the
 * suite on PostgreSQL); without it every test gets a fresh SQLite file in a
 * temporary directory. Tests create their own rows with unique ids and
 * owners, so they also pass on a shared database that other runs use at
 * the same time; tests that need a database of their own (schema refusal
 * committed for real, preset edits, faults) run on SQLite only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/budget.h"
#include "core/evt.h"
#include "core/mode.h"
#include "lib/clock.h"
#include "lib/embed.h"
#include "lib/id.h"
#include "lib/xmalloc.h"
#include "store/eventlog.h"
#include "store/objects.h"
#include "store/store.h"
#include "store/store_journal.h"

#include "fixture.h"

EMBED_TABLE(migrations_files);

typedef struct fx {
    char dir[PATH_MAX]; /* the temporary directory of a SQLite run, else "" */
    char url[PATH_MAX + 16];
    store *s;
    char applied[256]; /* "version:name " for each migration the setup applied */
} fx;

/* ------------------------------------------------------------------------
 * Fixture and helpers
 */

static void note_applied(void *ud, int version, const char *name)
{
    char *out = ud;
    size_t len = strlen(out);
    snprintf(out + len, 256 - len, "%d:%s ", version, name);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (fixture_db_url(f->url, sizeof f->url, f->dir, "chatplane-store") != 0) return -1;
    f->s = fixture_open(f->url);
    char err[512] = "";
    if (store_migrate(f->s, note_applied, f->applied, err, sizeof err) != 0) {
        print_error("store_migrate: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    store_close(f->s);
    fixture_remove_dir(f->dir);
    free(f);
    return 0;
}

static bool on_sqlite(const fx *f)
{
    return *f->dir != '\0';
}

static void skip_unless_sqlite(const fx *f)
{
    if (!on_sqlite(f)) {
        print_message("needs a SQLite database of its own; skipping\n");
        skip();
    }
}

static void skip_unless_postgres(const fx *f)
{
    if (on_sqlite(f)) {
        print_message("needs PostgreSQL; skipping\n");
        skip();
    }
}

/* A new unique id with a prefix: tests never collide on a shared database. */
static char *uid(const char *prefix)
{
    static int counter;
    char id[ID_MAX];
    id_new(id, prefix, 1700000000000 + counter++);
    return strdup(id);
}

static char *make_session(store *s, const char *owner, int64_t created_ms)
{
    char *id = uid("ses");
    store_session row = {.id = id,
                         .owner = (char *)owner,
                         .title = "New chat",
                         .mode = "standard",
                         .created_ms = created_ms,
                         .updated_ms = created_ms};
    assert_int_equal(store_session_insert(s, &row), 0);
    return id;
}

static char *make_run(store *s, const char *session_id, int64_t started_ms, int64_t heartbeat_ms)
{
    char *id = uid("run");
    json_t *limits = mode_limits_to_json(&mode_preset("quick")->limits);
    json_t *usage = json_pack("{s:i,s:f,s:i,s:i,s:i,s:f}", "steps", 2, "seconds", 1.5, "tokens",
                              120, "tool_calls", 1, "retries", 0, "cost_usd", 0.0);
    store_run row = {.id = id,
                     .session_id = (char *)session_id,
                     .mode = "quick",
                     .status = "running",
                     .limits = limits,
                     .usage = usage,
                     .owner_instance = "test-instance",
                     .heartbeat_ms = heartbeat_ms,
                     .started_ms = started_ms};
    assert_int_equal(store_run_insert(s, &row), 0);
    json_decref(limits);
    json_decref(usage);
    return id;
}

static evt_origin origin(const char *sid, const char *rid, int64_t ts)
{
    return (evt_origin){sid, rid, ts};
}

static evt *tok(const char *sid, const char *rid, const char *mid, const char *text)
{
    evt_origin o = origin(sid, rid, 1000);
    return evt_token(&o, mid, text, strlen(text));
}

/* Appends evs in one transaction; the caller keeps its references. */
static int append_all(store *s, evt **evs, size_t n)
{
    int rc = store_begin(s);
    if (rc == 0) rc = store_event_append(s, evs, n);
    if (rc == 0) {
        rc = store_commit(s);
    } else {
        store_rollback(s);
    }
    return rc;
}

static void unref_all(evt **evs, size_t n)
{
    for (size_t i = 0; i < n; i++) evt_unref(evs[i]);
}

/* Every replayed event, in order. */
typedef struct replay {
    size_t n, stop_at;
    int64_t *seqs;
    char **types, **json;
} replay;

static int replay_cb(void *ud, int64_t seq, const char *type, const char *json, size_t len)
{
    replay *r = ud;
    r->seqs = realloc(r->seqs, (r->n + 1) * sizeof *r->seqs);
    r->types = realloc(r->types, (r->n + 1) * sizeof *r->types);
    r->json = realloc(r->json, (r->n + 1) * sizeof *r->json);
    r->seqs[r->n] = seq;
    r->types[r->n] = strdup(type);
    r->json[r->n] = strndup(json, len);
    assert_int_equal(strlen(r->json[r->n]), len);
    r->n++;
    return r->stop_at && r->n == r->stop_at;
}

static void replay_free(replay *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->types[i]);
        free(r->json[i]);
    }
    free(r->seqs);
    free(r->types);
    free(r->json);
    memset(r, 0, sizeof *r);
}

static replay replay_all(store *s, const char *sid)
{
    replay r = {0};
    int n = store_event_after(s, sid, 0, 0, replay_cb, &r);
    assert_int_equal(n, (int)r.n);
    return r;
}

static int64_t count_rows(store *s, const char *sql, const char *param)
{
    db_result *r = NULL;
    const char *p[] = {param};
    int rc = db_exec(store_db(s), sql, param ? 1 : 0, p, &r);
    if (rc < 0) fail_msg("%s: %s", sql, db_errmsg(store_db(s)));
    int64_t n = db_result_int(r, 0, 0, -1);
    db_result_free(r);
    return n;
}

/* ------------------------------------------------------------------------
 * Migrations
 */

/* Every migration of this build, in order: its name, and a text each of
 * its two files holds (PostgreSQL, SQLite). A new migration is one line
 * here, plus, in test_version_1_database_is_upgraded, the undoing of what
 * it adds. */
static const struct {
    const char *name, *pg_has, *sqlite_has;
} MIGRATIONS[] = {
    {"init", "CREATE TABLE stream_events", "CREATE TABLE stream_events"},
    {"time_functions", "LANGUAGE plpgsql", "no change"},
    {"recent_reads", "chat_messages_session_position", "chat_messages_session_position"},
    {"approvals", "CREATE TABLE approvals", "CREATE TABLE approvals"},
    {"diagnosis", "ADD COLUMN diagnosis", "ADD COLUMN diagnosis"},
    {"forks", "forked_from_session_id", "forked_from_session_id"},
    {"message_model", "ADD COLUMN model", "ADD COLUMN model"},
    {"superseded", "ADD COLUMN superseded", "ADD COLUMN superseded"},
    {"inputs", "CREATE TABLE inputs", "CREATE TABLE inputs"},
    {"owner_budgets", "CREATE TABLE owner_usage", "CREATE TABLE owner_usage"},
    {"search", "gin_trgm_ops", "tokenize = 'trigram case_sensitive 1'"},
    {"queue", "ADD COLUMN queued_run_id", "ADD COLUMN queued_run_id"},
    {"search_titles_later", "no change", "WHEN old.title IS NOT new.title"},
    {"search_forget_later", "no change", "ADD COLUMN forget"},
    {"search_pending", "no change", "CREATE TABLE chat_search_pending"},
    {"seq_moved", "FUNCTION chatplane_seq_moved", "no change"},
    {"run_unchanged", "FUNCTION chatplane_run_unchanged", "no change"},
};
#define NMIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

/* "N:name " for the migrations from..to, as note_applied writes. */
static void migrations_applied_text(int from, int to, char *out, size_t len)
{
    out[0] = '\0';
    for (int v = from; v <= to; v++) {
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%d:%s ", v, MIGRATIONS[v - 1].name);
    }
}

static void test_migrations_apply_once(void **state)
{
    fx *f = *state;
    char want[512];
    migrations_applied_text(1, NMIGRATIONS, want, sizeof want);
    if (on_sqlite(f)) assert_string_equal(f->applied, want);
    char applied[256] = "";
    char err[512] = "";
    assert_int_equal(store_migrate(f->s, note_applied, applied, err, sizeof err), 0);
    assert_string_equal(applied, "");
    db_result *r = NULL;
    assert_int_equal(db_exec(store_db(f->s),
                             "SELECT version, name, chatplane_ms(applied_at) FROM "
                             "schema_migrations ORDER BY version",
                             0, NULL, &r),
                     0);
    assert_int_equal(db_result_rows(r), NMIGRATIONS);
    for (int i = 0; i < NMIGRATIONS; i++) {
        assert_int_equal(db_result_int(r, i, 0, 0), i + 1);
        assert_string_equal(db_result_get(r, i, 1), MIGRATIONS[i].name);
        if (i == 0)
            assert_true(db_result_int(r, 0, 2, 0) > 1600000000000);
        else
            assert_true(db_result_int(r, i, 2, 0) >= db_result_int(r, i - 1, 2, 0));
    }
    db_result_free(r);
    assert_int_equal(store_schema_latest(), NMIGRATIONS);
}

static void test_embedded_migrations_cover_both_dialects(void **state)
{
    (void)state;
    /* Each version exists for both dialects, even where one has nothing to
     * change, so that a version names one schema. The embedded files come
     * sorted by path: every PostgreSQL one, then every SQLite one. */
    assert_int_equal(migrations_files_count, 2 * NMIGRATIONS);
    for (int i = 0; i < 2 * NMIGRATIONS; i++) {
        int v = i % NMIGRATIONS;
        bool pg = i < NMIGRATIONS;
        char want[128];
        snprintf(want, sizeof want, "migrations/%s/%04d_%s.sql", pg ? "postgres" : "sqlite", v + 1,
                 MIGRATIONS[v].name);
        assert_string_equal(migrations_files[i].path, want);
        assert_int_equal(strlen((const char *)migrations_files[i].data), migrations_files[i].len);
        assert_non_null(strstr((const char *)migrations_files[i].data,
                               pg ? MIGRATIONS[v].pg_has : MIGRATIONS[v].sqlite_has));
    }
}

typedef struct migrator {
    const char *url;
    int rc, applied;
} migrator;

static void count_applied(void *ud, int version, const char *name)
{
    (void)version;
    (void)name;
    ((migrator *)ud)->applied++;
}

static void *migrate_thread(void *arg)
{
    migrator *m = arg;
    store *s = NULL;
    char err[512];
    m->rc = store_open(m->url, &s, err, sizeof err);
    if (m->rc == 0) m->rc = store_migrate(s, count_applied, m, err, sizeof err);
    store_close(s);
    return NULL;
}

/* Two processes starting at once apply each migration exactly once. */
static void test_concurrent_migrations_apply_once(void **state)
{
    fx *f = *state;
    char url[PATH_MAX + 32];
    if (on_sqlite(f)) {
        snprintf(url, sizeof url, "sqlite:%s/race.db", f->dir);
    } else {
        snprintf(url, sizeof url, "%s", f->url);
    }
    migrator a = {url, -1, 0}, b = {url, -1, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, migrate_thread, &a);
    pthread_create(&tb, NULL, migrate_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    assert_int_equal(a.applied + b.applied, on_sqlite(f) ? NMIGRATIONS : 0);
}

/* A database with versions 1 and the newest (a later change that landed
 * first) is brought up to date: the versions between, below the newest
 * recorded, are applied all the same, and on PostgreSQL the two time
 * functions become PL/pgSQL and still convert exactly. */
static void test_version_1_database_is_upgraded(void **state)
{
    fx *f = *state;
    bool pg = !on_sqlite(f);
    /* Back to version 1: the later rows removed, what versions 4 to 12
     * added dropped, version 1's indexes put back and, on PostgreSQL, its SQL
     * functions as 0001_init.sql made them. A tool execution must come
     * through the upgrade (SQLite copies its table in version 4). */
    char del[128];
    snprintf(del, sizeof del, "DELETE FROM schema_migrations WHERE version >= 2 AND version < %d",
             NMIGRATIONS);
    assert_true(db_exec(store_db(f->s), del, 0, NULL, NULL) >= 0);
    assert_int_equal(
        db_exec_script(store_db(f->s),
                       "DROP INDEX runs_session_started; CREATE INDEX runs_session_started ON "
                       "runs (session_id, started_at); DROP INDEX chat_messages_session_created; "
                       "CREATE INDEX chat_messages_session_created ON chat_messages (session_id, "
                       "created_at); DROP INDEX chat_messages_session_position"),
        0);
    assert_int_equal(db_exec_script(store_db(f->s),
                                    "DROP TABLE inputs; DROP TABLE approvals; ALTER TABLE "
                                    "chat_budgets DROP COLUMN approval; ALTER "
                                    "TABLE runs DROP COLUMN diagnosis; ALTER TABLE "
                                    "chat_sessions DROP COLUMN "
                                    "forked_from_session_id; ALTER TABLE "
                                    "chat_sessions DROP COLUMN "
                                    "forked_from_message_id; ALTER TABLE "
                                    "chat_messages DROP COLUMN model; ALTER TABLE "
                                    "chat_messages DROP COLUMN superseded; DROP "
                                    "TABLE owner_budgets; DROP TABLE owner_usage; "
                                    "DROP TABLE owner_holds; DROP INDEX chat_sessions_queued; "
                                    "ALTER TABLE chat_sessions DROP COLUMN queued_run_id; "
                                    "ALTER TABLE chat_sessions DROP COLUMN queued_message; "
                                    "ALTER TABLE chat_sessions DROP COLUMN queued_mode; "
                                    "ALTER TABLE chat_sessions DROP COLUMN queued_at"),
                     0);
    /* Version 11's search index, in each dialect's form. */
    assert_int_equal(
        db_exec_script(store_db(f->s),
                       pg ? "DROP INDEX IF EXISTS chat_sessions_title_search; DROP INDEX IF EXISTS "
                            "chat_messages_content_search; DROP FUNCTION chatplane_fold(text)"
                          : "DROP TRIGGER chat_search_session_insert; DROP TRIGGER "
                            "chat_search_session_title; DROP TRIGGER chat_search_session_delete; "
                            "DROP TRIGGER chat_search_message_content; DROP TRIGGER "
                            "chat_search_message_delete; DROP TABLE chat_search; DROP TABLE "
                            "chat_search_docs; DROP TABLE chat_search_pending; DROP TABLE "
                            "chat_search_mark; DROP TRIGGER chat_search_mark_delete"),
        0);
    /* A session row as version 1 has it (store_session_insert writes the
     * columns of the newest version). */
    char *sid = uid("ses");
    const char *sp[] = {sid};
    assert_true(db_exec(store_db(f->s),
                        "INSERT INTO chat_sessions (id, owner, title, mode, created_at, "
                        "updated_at) VALUES (?, 'old', 'New chat', 'standard', chatplane_ts(1000), "
                        "chatplane_ts(1000))",
                        1, sp, NULL) >= 0);
    char *old_id = uid("exe");
    store_tool_exec old = {.id = old_id,
                           .session_id = sid,
                           .run_id = "run-old",
                           .step = 1,
                           .server = "builtin",
                           .tool = "calc",
                           .status = "ok",
                           .result = "4",
                           .started_ms = 2000,
                           .finished_ms = 2001,
                           .duration_ms = 1};
    assert_int_equal(store_tool_exec_insert(f->s, &old), 0);
    if (pg) {
        assert_int_equal(
            db_exec_script(store_db(f->s),
                           "CREATE OR REPLACE FUNCTION chatplane_ts(ms bigint) RETURNS "
                           "timestamptz LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT "
                           "timestamptz 'epoch' + ms * interval '1 millisecond' $$; CREATE OR "
                           "REPLACE FUNCTION chatplane_ms(t timestamptz) RETURNS bigint LANGUAGE "
                           "sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT floor(extract(epoch "
                           "FROM t) * 1000)::bigint $$"),
            0);
    }
    char applied[256] = "";
    char err[512] = "";
    assert_int_equal(store_migrate(f->s, note_applied, applied, err, sizeof err), 0);
    char want_applied[512];
    migrations_applied_text(2, NMIGRATIONS - 1, want_applied, sizeof want_applied);
    assert_string_equal(applied, want_applied);
    store_tool_exec *rows;
    size_t nrows;
    assert_int_equal(store_tool_exec_list(f->s, sid, NULL, &rows, &nrows), 0);
    assert_int_equal(nrows, 1);
    assert_string_equal(rows[0].result, "4");
    store_tool_exec_list_free(rows, nrows);
    free(old_id);
    free(sid);
    mode std;
    assert_int_equal(store_mode_get(f->s, "standard", &std), 0);
    assert_int_equal(std.approval, APPROVAL_RISKY);
    db_result *r = NULL;
    if (pg) {
        assert_int_equal(db_exec(store_db(f->s),
                                 "SELECT p.proname, l.lanname, p.provolatile, p.proisstrict, "
                                 "p.proparallel FROM pg_proc p JOIN pg_language l ON l.oid = "
                                 "p.prolang WHERE p.proname IN ('chatplane_ts', 'chatplane_ms') "
                                 "ORDER BY p.proname",
                                 0, NULL, &r),
                         0);
        assert_int_equal(db_result_rows(r), 2);
        for (size_t i = 0; i < 2; i++) {
            assert_string_equal(db_result_get(r, i, 0), i ? "chatplane_ts" : "chatplane_ms");
            assert_string_equal(db_result_get(r, i, 1), "plpgsql");
            assert_string_equal(db_result_get(r, i, 2), "i");
            assert_string_equal(db_result_get(r, i, 3), "t");
            assert_string_equal(db_result_get(r, i, 4), "s");
        }
        db_result_free(r);
        r = NULL;
    }
    const char *p[] = {"1700000000123", "-1001"};
    assert_int_equal(db_exec(store_db(f->s),
                             "SELECT chatplane_ms(chatplane_ts(?)), chatplane_ms(chatplane_ts(?)), "
                             "chatplane_ts(NULL) IS NULL, chatplane_ms(NULL) IS NULL",
                             2, p, &r),
                     0);
    assert_string_equal(db_result_get(r, 0, 0), "1700000000123");
    assert_string_equal(db_result_get(r, 0, 1), "-1001");
    assert_true(db_result_int(r, 0, 2, 0) == 1 || strcmp(db_result_get(r, 0, 2), "t") == 0);
    assert_true(db_result_int(r, 0, 3, 0) == 1 || strcmp(db_result_get(r, 0, 3), "t") == 0);
    db_result_free(r);
    int version = 0;
    assert_int_equal(
        db_exec(store_db(f->s), "SELECT MAX(version) FROM schema_migrations", 0, NULL, &r), 0);
    version = (int)db_result_int(r, 0, 0, 0);
    db_result_free(r);
    assert_int_equal(version, NMIGRATIONS);
}

static void test_schema_too_new_is_refused(void **state)
{
    fx *f = *state;
    char want[160];
    snprintf(want, sizeof want,
             "database schema version 9999 is newer than this chatplane (knows up to %d); upgrade "
             "chatplane",
             NMIGRATIONS);
    const char *ins = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, "
                      "'future', chatplane_ts(1))";
    char err[512] = "";
    if (on_sqlite(f)) {
        /* Committed for real, then seen by a fresh connection. */
        assert_true(db_exec(store_db(f->s), ins, 0, NULL, NULL) >= 0);
        store *again = fixture_open(f->url);
        assert_int_equal(store_migrate(again, NULL, NULL, err, sizeof err), STORE_TOO_NEW);
        assert_string_equal(err, want);
        assert_string_equal(store_errmsg(again), want);
        store_close(again);
        return;
    }
    /* A shared database only sees the row inside this transaction. */
    assert_int_equal(store_begin(f->s), 0);
    assert_true(db_exec(store_db(f->s), ins, 0, NULL, NULL) >= 0);
    assert_int_equal(store_migrate(f->s, NULL, NULL, err, sizeof err), STORE_TOO_NEW);
    assert_string_equal(err, want);
    assert_int_equal(store_rollback(f->s), 0);
}

/* ------------------------------------------------------------------------
 * Sessions
 */

static void test_session_crud(void **state)
{
    fx *f = *state;
    char *owner = uid("own");
    char *id = make_session(f->s, owner, 1700000000123);

    store_session got;
    assert_int_equal(store_session_get(f->s, id, owner, &got), 0);
    assert_string_equal(got.id, id);
    assert_string_equal(got.owner, owner);
    assert_string_equal(got.title, "New chat");
    assert_string_equal(got.mode, "standard");
    assert_string_equal(got.status, "idle");
    assert_null(got.active_run_id);
    assert_int_equal(got.last_seq, 0);
    assert_int_equal(got.created_ms, 1700000000123);
    assert_int_equal(got.updated_ms, 1700000000123);
    store_session_cleanup(&got);

    assert_int_equal(store_session_get(f->s, id, NULL, &got), 0);
    store_session_cleanup(&got);
    assert_int_equal(store_session_get(f->s, id, "someone-else", &got), STORE_NOT_FOUND);

    store_session upd = {.id = id, .title = "Renamed", .mode = "deep", .updated_ms = 1700000009999};
    assert_int_equal(store_session_update(f->s, &upd), 0);
    assert_int_equal(store_session_get(f->s, id, owner, &got), 0);
    assert_string_equal(got.title, "Renamed");
    assert_string_equal(got.mode, "deep");
    assert_int_equal(got.created_ms, 1700000000123);
    assert_int_equal(got.updated_ms, 1700000009999);
    store_session_cleanup(&got);

    store_session dup = {.id = id, .title = "x", .mode = "quick", .created_ms = 1};
    assert_int_equal(store_session_insert(f->s, &dup), STORE_CONFLICT);

    assert_int_equal(store_session_delete(f->s, id), 0);
    assert_int_equal(store_session_get(f->s, id, NULL, &got), STORE_NOT_FOUND);
    assert_int_equal(store_session_delete(f->s, id), STORE_NOT_FOUND);
    upd.id = id;
    assert_int_equal(store_session_update(f->s, &upd), STORE_NOT_FOUND);
    assert_non_null(strstr(store_errmsg(f->s), id));
    free(id);
    free(owner);
}

static void test_session_list_pages_newest_first(void **state)
{
    fx *f = *state;
    char *owner = uid("own");
    char *ids[5];
    for (int i = 0; i < 5; i++) ids[i] = make_session(f->s, owner, 1000 + i * 10);
    char *other = make_session(f->s, "another-owner", 5000);

    store_session *rows;
    size_t n;
    assert_int_equal(store_session_list(f->s, owner, 2, NULL, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].id, ids[4]);
    assert_string_equal(rows[1].id, ids[3]);
    char *cursor = strdup(rows[1].id);
    store_session_list_free(rows, n);

    assert_int_equal(store_session_list(f->s, owner, 2, cursor, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].id, ids[2]);
    assert_string_equal(rows[1].id, ids[1]);
    free(cursor);
    cursor = strdup(rows[1].id);
    store_session_list_free(rows, n);

    assert_int_equal(store_session_list(f->s, owner, 2, cursor, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, ids[0]);
    store_session_list_free(rows, n);

    assert_int_equal(store_session_list(f->s, owner, 0, NULL, &rows, &n), 0);
    assert_int_equal(n, 5);
    store_session_list_free(rows, n);
    free(cursor);
    for (int i = 0; i < 5; i++) free(ids[i]);
    free(other);
    free(owner);
}

/* Sessions created in the same millisecond page by id, none lost. */
static void test_session_list_ties_by_id(void **state)
{
    fx *f = *state;
    char *owner = uid("own");
    char *a = make_session(f->s, owner, 7000);
    char *b = make_session(f->s, owner, 7000);
    const char *hi = strcmp(a, b) > 0 ? a : b, *lo = strcmp(a, b) > 0 ? b : a;
    store_session *rows;
    size_t n;
    assert_int_equal(store_session_list(f->s, owner, 1, NULL, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, hi);
    store_session_list_free(rows, n);
    assert_int_equal(store_session_list(f->s, owner, 1, hi, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, lo);
    store_session_list_free(rows, n);
    free(a);
    free(b);
    free(owner);
}

/* Another owner's session id as the cursor pages like an id that does not
 * exist: an empty page, which tells nothing of it. */
static void test_session_list_cursor_of_another_owner(void **state)
{
    fx *f = *state;
    char *mine = uid("own"), *theirs = uid("own");
    char *older = make_session(f->s, mine, 1000);
    char *other = make_session(f->s, theirs, 2000);
    char *newer = make_session(f->s, mine, 3000);
    store_session *rows;
    size_t n;
    assert_int_equal(store_session_list(f->s, mine, 10, other, &rows, &n), 0);
    assert_int_equal(n, 0);
    store_session_list_free(rows, n);
    assert_int_equal(store_session_list(f->s, mine, 10, "ses_no_such_session", &rows, &n), 0);
    assert_int_equal(n, 0);
    store_session_list_free(rows, n);
    /* The owner's own cursor still pages, and without an owner any id does. */
    assert_int_equal(store_session_list(f->s, mine, 10, newer, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, older);
    store_session_list_free(rows, n);
    assert_int_equal(store_session_list(f->s, NULL, 1, newer, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, other);
    store_session_list_free(rows, n);
    free(older);
    free(other);
    free(newer);
    free(mine);
    free(theirs);
}

static void test_claim_run_conflict(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "claims", 1000);
    store_session got;
    assert_int_equal(store_session_claim_run(f->s, sid, "run-a", 2000), 0);
    assert_int_equal(store_session_get(f->s, sid, NULL, &got), 0);
    assert_string_equal(got.status, "running");
    assert_string_equal(got.active_run_id, "run-a");
    assert_int_equal(got.updated_ms, 2000);
    store_session_cleanup(&got);

    assert_int_equal(store_session_claim_run(f->s, sid, "run-b", 2001), STORE_CONFLICT);
    char want[256];
    snprintf(want, sizeof want, "a run is already active in session %s", sid);
    assert_string_equal(store_errmsg(f->s), want);
    assert_int_equal(store_session_claim_run(f->s, sid, "run-a", 2002), 0);

    /* Releasing a run that is not the active one changes nothing, and
     * leaves the queue to be looked at. */
    bool queued = false;
    assert_int_equal(store_session_release_run(f->s, sid, "run-b", 2003, &queued), 0);
    assert_true(queued);
    assert_int_equal(store_session_get(f->s, sid, NULL, &got), 0);
    assert_string_equal(got.active_run_id, "run-a");
    store_session_cleanup(&got);

    /* The release says the queue is empty. */
    assert_int_equal(store_session_release_run(f->s, sid, "run-a", 2004, &queued), 0);
    assert_false(queued);
    assert_int_equal(store_session_get(f->s, sid, NULL, &got), 0);
    assert_string_equal(got.status, "idle");
    assert_null(got.active_run_id);
    store_session_cleanup(&got);
    assert_int_equal(store_session_claim_run(f->s, sid, "run-b", 2005), 0);
    assert_int_equal(store_session_claim_run(f->s, "no-such-session", "run-c", 1), STORE_NOT_FOUND);
    free(sid);
}

/* A claim that also names the session and sets its mode writes both with
 * the claim, and a claim refused writes neither. */
static void test_claim_run_sets_title_and_mode(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "claims", 1000);
    store_session got;
    assert_int_equal(store_session_get(f->s, sid, NULL, &got), 0);
    char *mode_before = xstrdup(got.mode);
    store_session_cleanup(&got);
    assert_int_equal(store_session_claim_run_as(f->s, sid, "run-a", 2000, "Otters", NULL), 0);
    assert_int_equal(store_session_get(f->s, sid, NULL, &got), 0);
    assert_string_equal(got.title, "Otters");
    assert_string_equal(got.mode, mode_before);
    assert_string_equal(got.active_run_id, "run-a");
    assert_string_equal(got.status, "running");
    assert_int_equal(got.updated_ms, 2000);
    store_session_cleanup(&got);

    assert_int_equal(store_session_claim_run_as(f->s, sid, "run-b", 2001, "Seals", "deep"),
                     STORE_CONFLICT);
    assert_int_equal(store_session_get(f->s, sid, NULL, &got), 0);
    assert_string_equal(got.title, "Otters");
    assert_string_equal(got.mode, mode_before);
    store_session_cleanup(&got);

    assert_int_equal(store_session_release_run(f->s, sid, "run-a", 2002, NULL), 0);
    assert_int_equal(store_session_claim_run_as(f->s, sid, "run-b", 2003, NULL, "deep"), 0);
    assert_int_equal(store_session_get(f->s, sid, NULL, &got), 0);
    assert_string_equal(got.title, "Otters");
    assert_string_equal(got.mode, "deep");
    assert_string_equal(got.active_run_id, "run-b");
    store_session_cleanup(&got);
    assert_int_equal(store_session_claim_run_as(f->s, "no-such-session", "run-c", 1, "X", "deep"),
                     STORE_NOT_FOUND);
    free(mode_before);
    free(sid);
}

/* ------------------------------------------------------------------------
 * Runs, messages, tool executions
 */

static void test_run_crud(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "runs", 1000);
    char *r1 = make_run(f->s, sid, 2000, 2500);
    char *r2 = make_run(f->s, sid, 3000, 0);

    store_run got;
    assert_int_equal(store_run_get(f->s, r1, &got), 0);
    assert_string_equal(got.session_id, sid);
    assert_string_equal(got.mode, "quick");
    assert_string_equal(got.status, "running");
    assert_null(got.stop_reason);
    assert_false(got.wrapped_up);
    assert_string_equal(got.owner_instance, "test-instance");
    assert_null(got.continues);
    assert_int_equal(got.heartbeat_ms, 2500);
    assert_int_equal(got.started_ms, 2000);
    assert_int_equal(got.ended_ms, 0);
    /* JSON comes back byte for byte, keys in the order they were written. */
    char *limits = json_dumps(got.limits, JSON_COMPACT);
    assert_string_equal(limits, "{\"steps\":3,\"seconds\":30,\"tokens\":8000,\"tool_calls\":3,"
                                "\"retries\":1,\"cost_usd\":null}");
    free(limits);
    char *usage = json_dumps(got.usage, EVT_JSON_FLAGS);
    assert_string_equal(usage, "{\"steps\":2,\"seconds\":1.5,\"tokens\":120,\"tool_calls\":1,"
                               "\"retries\":0,\"cost_usd\":0.0}");
    free(usage);
    assert_int_equal(json_array_size(got.actions), 0);

    free(got.status);
    got.status = strdup("stopped");
    got.stop_reason = strdup("max_steps");
    got.stop_detail = strdup("used 3 of 3 steps");
    got.recovery_suggestion = strdup("Continue.");
    json_decref(got.actions);
    got.actions = json_pack("[{s:s,s:s}]", "kind", "continue", "label", "Continue");
    got.wrapped_up = true;
    got.ended_ms = 4000;
    assert_int_equal(store_run_update(f->s, &got), 0);
    store_run_cleanup(&got);

    assert_int_equal(store_run_get(f->s, r1, &got), 0);
    assert_string_equal(got.status, "stopped");
    assert_string_equal(got.stop_reason, "max_steps");
    assert_string_equal(got.stop_detail, "used 3 of 3 steps");
    assert_string_equal(got.recovery_suggestion, "Continue.");
    assert_true(got.wrapped_up);
    assert_int_equal(got.ended_ms, 4000);
    char *actions = json_dumps(got.actions, JSON_COMPACT);
    assert_string_equal(actions, "[{\"kind\":\"continue\",\"label\":\"Continue\"}]");
    free(actions);
    store_run_cleanup(&got);

    store_run *rows;
    size_t n;
    assert_int_equal(store_run_list(f->s, sid, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].id, r2);
    assert_string_equal(rows[1].id, r1);
    store_run_list_free(rows, n);

    assert_int_equal(store_run_get(f->s, "no-such-run", &got), STORE_NOT_FOUND);
    assert_string_equal(store_errmsg(f->s), "run no-such-run not found");
    store_run missing = {.id = "no-such-run", .status = "stopped"};
    assert_int_equal(store_run_update(f->s, &missing), STORE_NOT_FOUND);
    free(r1);
    free(r2);
    free(sid);
}

/* What the column lists of store.h write for a field the caller left
 * unset: a TEXT or JSON column's default, NULL for an unset optional time,
 * and the rules no column states (a session's updated_at, a running tool's
 * duration_ms); and that every column, continues included, reads back. */
static void test_row_defaults_and_round_trip(void **state)
{
    fx *f = *state;
    char *sid = uid("ses");
    store_session ses = {
        .id = sid, .owner = "cols", .title = "", .mode = "quick", .created_ms = 1000};
    assert_int_equal(store_session_insert(f->s, &ses), 0);
    store_session gs;
    assert_int_equal(store_session_get(f->s, sid, NULL, &gs), 0);
    assert_string_equal(gs.status, "idle");
    assert_int_equal(gs.updated_ms, 1000);
    assert_null(gs.active_run_id);
    store_session_cleanup(&gs);

    char *rid = uid("run");
    store_run run = {.id = rid,
                     .session_id = sid,
                     .mode = "quick",
                     .continues = "run-before",
                     .started_ms = 2000};
    assert_int_equal(store_run_insert(f->s, &run), 0);
    assert_int_equal(count_rows(f->s,
                                "SELECT COUNT(*) FROM runs WHERE id = ? AND status = 'running' "
                                "AND CAST(actions AS TEXT) = '[]' AND limits IS NULL AND usage "
                                "IS NULL AND heartbeat_at IS NULL AND ended_at IS NULL",
                                rid),
                     1);
    store_run gr;
    assert_int_equal(store_run_get(f->s, rid, &gr), 0);
    assert_string_equal(gr.continues, "run-before");
    assert_string_equal(gr.session_id, sid);
    assert_null(gr.owner_instance);
    assert_null(gr.limits);
    assert_int_equal(json_array_size(gr.actions), 0);
    store_run_cleanup(&gr);

    char *tid = uid("exe");
    store_tool_exec t = {.id = tid,
                         .session_id = sid,
                         .run_id = rid,
                         .step = 3,
                         .server = "builtin",
                         .tool = "calc",
                         .started_ms = 3000,
                         .duration_ms = 99};
    assert_int_equal(store_tool_exec_insert(f->s, &t), 0);
    assert_int_equal(count_rows(f->s,
                                "SELECT COUNT(*) FROM tool_executions WHERE id = ? AND status = "
                                "'running' AND CAST(arguments AS TEXT) = '{}' AND duration_ms "
                                "IS NULL AND finished_at IS NULL",
                                tid),
                     1);

    char *mid = uid("msg");
    store_message m = {
        .id = mid, .session_id = sid, .run_id = rid, .role = "assistant", .created_ms = 4000};
    assert_int_equal(store_message_insert(f->s, &m), 0);
    store_message *ms;
    size_t n;
    assert_int_equal(store_message_list(f->s, sid, &ms, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ms[0].content, "");
    assert_null(ms[0].tool_calls);
    assert_false(ms[0].partial);
    store_message_list_free(ms, n);
    free(mid);
    free(tid);
    free(rid);
    free(sid);
}

static bool list_has_run(const store_run *rows, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].id, id) == 0) return true;
    return false;
}

static void test_running_runs_and_heartbeat(void **state)
{
    fx *f = *state;
    /* Times above every cut-off the recovery tests use, so that a recovery
     * running at the same time on a shared database leaves these runs be. */
    char *sid = make_session(f->s, "beats", 10000);
    char *instance = uid("inst");
    char *old = make_run(f->s, sid, 10000, 10100);
    char *never = make_run(f->s, sid, 10200, 0);
    char *fresh = make_run(f->s, sid, 10300, 1700000000000);
    const char *p[] = {instance, old};
    assert_int_equal(
        db_exec(store_db(f->s), "UPDATE runs SET owner_instance = ? WHERE id = ?", 2, p, NULL), 1);

    store_run *rows;
    size_t n;
    assert_int_equal(store_run_list_running(f->s, 10500, &rows, &n), 0);
    assert_true(list_has_run(rows, n, old));
    assert_true(list_has_run(rows, n, never)); /* counts from its start */
    assert_false(list_has_run(rows, n, fresh));
    store_run_list_free(rows, n);

    assert_int_equal(store_run_list_running(f->s, INT64_MAX, &rows, &n), 0);
    assert_true(list_has_run(rows, n, fresh));
    store_run_list_free(rows, n);

    assert_int_equal(store_run_heartbeat(f->s, instance, 10600), 1);
    store_run got;
    assert_int_equal(store_run_get(f->s, old, &got), 0);
    assert_int_equal(got.heartbeat_ms, 10600);
    store_run_cleanup(&got);
    assert_int_equal(store_run_list_running(f->s, 10500, &rows, &n), 0);
    assert_false(list_has_run(rows, n, old));
    store_run_list_free(rows, n);
    free(old);
    free(never);
    free(fresh);
    free(instance);
    free(sid);
}

static void test_messages_keep_stored_order(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "msgs", 1000);
    json_t *calls = json_pack("[{s:s,s:s,s:{s:s,s:s}}]", "id", "call_1", "type", "function",
                              "function", "name", "calc", "arguments", "{\"expression\":\"1+1\"}");
    char *ids[3] = {uid("msg"), uid("msg"), uid("msg")};
    store_message rows[3] = {
        {.id = ids[0],
         .session_id = sid,
         .role = "user",
         .content = "what is 1+1?",
         .created_ms = 5000},
        {.id = ids[1],
         .session_id = sid,
         .run_id = "run-1",
         .role = "assistant",
         .content = "",
         .tool_calls = calls,
         .created_ms = 6000},
        {.id = ids[2],
         .session_id = sid,
         .run_id = "run-1",
         .role = "tool",
         .content = "2",
         .tool_call_id = "call_1",
         .partial = false,
         .created_ms = 6000},
    };
    /* Stored in order; the last two share a millisecond. */
    for (int i = 0; i < 3; i++) assert_int_equal(store_message_insert(f->s, &rows[i]), 0);
    store_message partial = {.id = uid("msg"),
                             .session_id = sid,
                             .role = "assistant",
                             .content = "The answ",
                             .partial = true,
                             .created_ms = 6000};
    assert_int_equal(store_message_insert(f->s, &partial), 0);
    assert_int_equal(store_message_insert(f->s, &partial), STORE_CONFLICT);

    store_message *got;
    size_t n;
    assert_int_equal(store_message_list(f->s, sid, &got, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(got[0].id, ids[0]);
    assert_string_equal(got[0].role, "user");
    assert_string_equal(got[0].content, "what is 1+1?");
    assert_null(got[0].run_id);
    assert_null(got[0].tool_calls);
    assert_false(got[0].partial);
    assert_int_equal(got[0].created_ms, 5000);
    assert_string_equal(got[1].id, ids[1]);
    char *text = json_dumps(got[1].tool_calls, JSON_COMPACT);
    assert_string_equal(text, "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
                              "\"calc\",\"arguments\":\"{\\\"expression\\\":\\\"1+1\\\"}\"}}]");
    free(text);
    assert_string_equal(got[2].id, ids[2]);
    assert_string_equal(got[2].tool_call_id, "call_1");
    assert_string_equal(got[3].content, "The answ");
    assert_true(got[3].partial);
    store_message_list_free(got, n);
    json_decref(calls);
    for (int i = 0; i < 3; i++) free(ids[i]);
    free(partial.id);
    free(sid);
}

/* The newest run, ties on started_at broken by id as store_run_list does. */
static void test_run_latest(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "latest", 1000);
    store_run got;
    assert_int_equal(store_run_latest(f->s, sid, &got), STORE_NOT_FOUND);
    char *a = make_run(f->s, sid, 2000, 0);
    char *b = make_run(f->s, sid, 3000, 0);
    char *c = make_run(f->s, sid, 3000, 0);
    char *d = make_run(f->s, sid, 2500, 0);
    assert_int_equal(store_run_latest(f->s, sid, &got), 0);
    assert_string_equal(got.id, strcmp(b, c) > 0 ? b : c);
    assert_int_equal(got.started_ms, 3000);
    store_run *rows;
    size_t n;
    assert_int_equal(store_run_list(f->s, sid, &rows, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(rows[0].id, got.id);
    store_run_list_free(rows, n);
    store_run_cleanup(&got);
    free(a);
    free(b);
    free(c);
    free(d);
    free(sid);
}

/* Appends a message with content of len bytes ('x' repeated) or text. */
static char *add_message(store *s, const char *sid, const char *role, size_t len, const char *text,
                         const json_t *calls, const char *call_id, int64_t ms)
{
    char *id = uid("msg");
    char *content = text ? strdup(text) : calloc(1, len + 1);
    if (!text) memset(content, 'x', len);
    store_message m = {.id = id,
                       .session_id = (char *)sid,
                       .role = (char *)role,
                       .content = content,
                       .tool_calls = (json_t *)calls,
                       .tool_call_id = (char *)call_id,
                       .created_ms = ms};
    assert_int_equal(store_message_insert(s, &m), 0);
    free(content);
    return id;
}

static json_t *one_call(const char *id)
{
    return json_pack("[{s:s,s:s,s:{s:s,s:s}}]", "id", id, "type", "function", "function", "name",
                     "calc", "arguments", "{}");
}

/* Checks that got[0..n) are the messages ids[from..nids), in order. */
static void assert_tail(const store_message *got, size_t n, char **ids, size_t nids, size_t from)
{
    assert_int_equal(n, nids - from);
    for (size_t i = 0; i < n; i++) assert_string_equal(got[i].id, ids[from + i]);
}

/*
 * A long session: 200 turns of a 100-byte user message and a 300-byte
 * answer, with a tool call of 1,000 bytes of result in the middle. The
 * recent read returns exactly the newest messages whose content reaches
 * min_bytes, and moves back over tool results to the call they answer.
 */
static void test_message_list_recent_reads_only_the_newest(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "recent", 1000);
    enum { TURNS = 200 };
    char *ids[2 * TURNS + 2];
    size_t nids = 0;
    json_t *calls = one_call("call_r");
    for (int t = 0; t < TURNS; t++) {
        /* Same millisecond for every pair: position keeps the order. */
        int64_t ms = 10000 + t;
        ids[nids++] = add_message(f->s, sid, "user", 100, NULL, NULL, NULL, ms);
        if (t == TURNS - 3) {
            ids[nids++] = add_message(f->s, sid, "assistant", 20, NULL, calls, NULL, ms);
            ids[nids++] = add_message(f->s, sid, "tool", 1000, NULL, NULL, "call_r", ms);
        }
        ids[nids++] = add_message(f->s, sid, "assistant", 300, NULL, NULL, NULL, ms);
    }
    store_message *got;
    size_t n;
    /* The newest 3 messages hold 700 bytes, the newest 4 800. */
    assert_int_equal(store_message_list_recent(f->s, sid, 700, NULL, NULL, &got, &n), 0);
    assert_tail(got, n, ids, nids, nids - 3);
    store_message_list_free(got, n);
    assert_int_equal(store_message_list_recent(f->s, sid, 701, NULL, NULL, &got, &n), 0);
    assert_tail(got, n, ids, nids, nids - 4);
    assert_string_equal(got[0].role, "user");
    assert_int_equal(strlen(got[3].content), 300);
    store_message_list_free(got, n);
    /* 800 is reached by those 4 exactly; 801 takes one more message. */
    assert_int_equal(store_message_list_recent(f->s, sid, 800, NULL, NULL, &got, &n), 0);
    assert_tail(got, n, ids, nids, nids - 4);
    store_message_list_free(got, n);
    assert_int_equal(store_message_list_recent(f->s, sid, 801, NULL, NULL, &got, &n), 0);
    assert_tail(got, n, ids, nids, nids - 5);
    store_message_list_free(got, n);
    /* The tool result is 7th and 8th from the end with its call: a budget
     * reached inside it takes the call too, and the result counts only
     * once the call is read (800 + 300 + 1,000 + 20 = 2,120). */
    assert_int_equal(store_message_list_recent(f->s, sid, 1101, NULL, NULL, &got, &n), 0);
    assert_tail(got, n, ids, nids, nids - 7);
    assert_string_equal(got[0].role, "assistant");
    assert_non_null(got[0].tool_calls);
    assert_string_equal(got[1].role, "tool");
    store_message_list_free(got, n);
    assert_int_equal(store_message_list_recent(f->s, sid, 2120, NULL, NULL, &got, &n), 0);
    assert_tail(got, n, ids, nids, nids - 7);
    store_message_list_free(got, n);
    assert_int_equal(store_message_list_recent(f->s, sid, 2121, NULL, NULL, &got, &n), 0);
    assert_tail(got, n, ids, nids, nids - 8);
    store_message_list_free(got, n);
    /* Past the first pages (32, then 64 rows): 150 turns of 400 bytes. */
    assert_int_equal(store_message_list_recent(f->s, sid, 150 * 400 + 1020, NULL, NULL, &got, &n),
                     0);
    assert_tail(got, n, ids, nids, nids - 302);
    store_message_list_free(got, n);
    /* More than the session holds: all of it, as store_message_list. */
    store_message *all;
    size_t nall;
    assert_int_equal(store_message_list(f->s, sid, &all, &nall), 0);
    assert_int_equal(nall, nids);
    assert_int_equal(store_message_list_recent(f->s, sid, INT64_MAX, NULL, NULL, &got, &n), 0);
    assert_tail(got, n, ids, nids, 0);
    for (size_t i = 0; i < n; i++) assert_string_equal(got[i].id, all[i].id);
    store_message_list_free(got, n);
    store_message_list_free(all, nall);
    /* A session without messages. */
    char *empty = make_session(f->s, "recent", 1000);
    assert_int_equal(store_message_list_recent(f->s, empty, 100, NULL, NULL, &got, &n), 0);
    assert_int_equal(n, 0);
    store_message_list_free(got, n);
    free(empty);
    json_decref(calls);
    for (size_t i = 0; i < nids; i++) free(ids[i]);
    free(sid);
}

/* A cost of one per message, counting its calls in *ud. */
static int64_t one_each(const store_message *m, void *ud)
{
    (void)m;
    (*(int *)ud)++;
    return 1;
}

/* A tool result counts at most what the model sees of it, and not at all
 * when the message before it made no such call (the context drops it). */
static void test_message_list_recent_counts_what_the_model_sees(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "recent", 1000);
    json_t *calls = one_call("call_big");
    char *ids[8];
    size_t nids = 0;
    ids[nids++] = add_message(f->s, sid, "user", 10, NULL, NULL, NULL, 1);
    ids[nids++] = add_message(f->s, sid, "assistant", 0, "", calls, NULL, 2);
    ids[nids++] = add_message(f->s, sid, "tool", 100000, NULL, NULL, "call_big", 3);
    ids[nids++] = add_message(f->s, sid, "assistant", 0, "", calls, NULL, 4);
    ids[nids++] = add_message(f->s, sid, "tool", 5000, NULL, NULL, "call_other", 5);
    ids[nids++] = add_message(f->s, sid, "user", 10, NULL, NULL, NULL, 6);
    store_message *got;
    size_t n;
    /* The orphan result (5,000 bytes) counts nothing: 10 + 0 + 0. */
    assert_int_equal(store_message_list_recent(f->s, sid, 11, NULL, NULL, &got, &n), 0);
    assert_tail(got, n, ids, nids, 1);
    store_message_list_free(got, n);
    /* The big result counts 32,765 bytes: with the newest 10, 32,775. */
    assert_int_equal(store_message_list_recent(f->s, sid, 32775, NULL, NULL, &got, &n), 0);
    assert_tail(got, n, ids, nids, 1);
    store_message_list_free(got, n);
    assert_int_equal(store_message_list_recent(f->s, sid, 32776, NULL, NULL, &got, &n), 0);
    assert_tail(got, n, ids, nids, 0);
    store_message_list_free(got, n);
    /* With a cost of its own (here one per message, counted in ud): the
     * orphan result still counts nothing, the big one as much as any. */
    int calls_made = 0;
    assert_int_equal(store_message_list_recent(f->s, sid, 2, one_each, &calls_made, &got, &n), 0);
    assert_tail(got, n, ids, nids, 3);
    assert_int_equal(calls_made, 2);
    store_message_list_free(got, n);
    assert_int_equal(store_message_list_recent(f->s, sid, 3, one_each, &calls_made, &got, &n), 0);
    assert_tail(got, n, ids, nids, 1);
    store_message_list_free(got, n);
    assert_int_equal(store_message_list_recent(f->s, sid, 5, one_each, &calls_made, &got, &n), 0);
    assert_tail(got, n, ids, nids, 0);
    store_message_list_free(got, n);
    json_decref(calls);
    for (size_t i = 0; i < nids; i++) free(ids[i]);
    free(sid);
}

static void test_tool_executions(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "tools", 1000);
    json_t *args = json_pack("{s:s}", "expression", "1/0");
    char *t1 = uid("exe"), *t2 = uid("exe");
    store_tool_exec a = {.id = t1,
                         .session_id = sid,
                         .run_id = "run-1",
                         .step = 1,
                         .server = "builtin",
                         .tool = "calc",
                         .arguments = args,
                         .status = "running",
                         .started_ms = 2000};
    store_tool_exec b = {.id = t2,
                         .session_id = sid,
                         .run_id = "run-2",
                         .step = 1,
                         .server = "fake",
                         .tool = "lookup",
                         .arguments = args,
                         .status = "running",
                         .started_ms = 3000};
    assert_int_equal(store_tool_exec_insert(f->s, &a), 0);
    assert_int_equal(store_tool_exec_insert(f->s, &b), 0);
    a.status = "error";
    a.error = "division by zero";
    a.result = "";
    a.finished_ms = 2042;
    a.duration_ms = 42;
    assert_int_equal(store_tool_exec_finish(f->s, &a), 0);

    store_tool_exec *rows;
    size_t n;
    assert_int_equal(store_tool_exec_list(f->s, sid, NULL, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].id, t1);
    assert_string_equal(rows[0].status, "error");
    assert_string_equal(rows[0].error, "division by zero");
    assert_string_equal(rows[0].result, "");
    assert_string_equal(rows[0].server, "builtin");
    assert_string_equal(rows[0].tool, "calc");
    assert_int_equal(rows[0].step, 1);
    assert_int_equal(rows[0].started_ms, 2000);
    assert_int_equal(rows[0].finished_ms, 2042);
    assert_int_equal(rows[0].duration_ms, 42);
    char *text = json_dumps(rows[0].arguments, JSON_COMPACT);
    assert_string_equal(text, "{\"expression\":\"1/0\"}");
    free(text);
    assert_string_equal(rows[1].id, t2);
    assert_string_equal(rows[1].status, "running");
    assert_null(rows[1].result);
    assert_int_equal(rows[1].finished_ms, 0);
    store_tool_exec_list_free(rows, n);

    assert_int_equal(store_tool_exec_list(f->s, sid, "run-2", &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, t2);
    store_tool_exec_list_free(rows, n);
    store_tool_exec missing = {.id = "nope", .status = "ok"};
    assert_int_equal(store_tool_exec_finish(f->s, &missing), STORE_NOT_FOUND);
    json_decref(args);
    free(t1);
    free(t2);
    free(sid);
}

static store_approval approval_row(char *id, char *sid, const char *rid, int64_t at, json_t *args)
{
    store_approval a = {.id = id,
                        .session_id = sid,
                        .run_id = (char *)rid,
                        .execution_id = "exe-1",
                        .step = 2,
                        .server = "files",
                        .tool = "delete",
                        .arguments = args,
                        .reason = "the tool is not marked read-only",
                        .status = "pending",
                        .remember = "once",
                        .requested_ms = at,
                        .expires_ms = at + 900000};
    return a;
}

/* Approvals: stored and read back in the API's shape, listed oldest first
 * by status, decided once (the second decider loses), and the pending
 * ones of a run cancelled together. */
static void test_approvals(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "approvals", 1000);
    char *other = make_session(f->s, "approvals", 1000);
    char *a1 = uid("apr"), *a2 = uid("apr"), *a3 = uid("apr");
    json_t *args = json_pack("{s:s}", "path", "/tmp/x");
    store_approval r1 = approval_row(a1, sid, "run-1", 2000, args);
    store_approval r2 = approval_row(a2, sid, "run-1", 3000, args);
    store_approval r3 = approval_row(a3, sid, "run-2", 4000, args);
    assert_int_equal(store_approval_insert(f->s, &r1), 0);
    assert_int_equal(store_approval_insert(f->s, &r2), 0);
    assert_int_equal(store_approval_insert(f->s, &r3), 0);

    store_approval got = {0};
    assert_int_equal(store_approval_get(f->s, sid, a1, &got), 0);
    json_t *o = objects_approval(&got);
    char *text = json_dumps(o, JSON_COMPACT);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"id\":\"%s\",\"session_id\":\"%s\",\"run_id\":\"run-1\",\"execution_id\":"
             "\"exe-1\",\"step\":2,\"server\":\"files\",\"tool\":\"delete\",\"arguments\":"
             "{\"path\":\"/tmp/x\"},\"reason\":\"the tool is not marked read-only\","
             "\"status\":\"pending\",\"decided_by\":null,\"decision_reason\":null,"
             "\"remember\":\"once\",\"requested_at\":\"1970-01-01T00:00:02.000Z\","
             "\"decided_at\":null,\"expires_at\":\"1970-01-01T00:15:02.000Z\"}",
             a1, sid);
    assert_string_equal(text, want);
    free(text);
    json_decref(o);
    store_approval_cleanup(&got);
    /* Another session's approval is not found through this one. */
    assert_int_equal(store_approval_get(f->s, other, a1, &got), STORE_NOT_FOUND);

    r1.status = "approved";
    r1.decided_by = "alice";
    r1.decision_reason = "fine";
    r1.remember = "run";
    r1.decided_ms = 2500;
    assert_int_equal(store_approval_decide(f->s, &r1), 0);
    store_approval late = r1;
    late.status = "denied";
    late.decided_by = "bob";
    assert_int_equal(store_approval_decide(f->s, &late), STORE_CONFLICT);
    store_approval missing = approval_row("apr-missing", sid, "run-1", 1, args);
    missing.status = "denied";
    assert_int_equal(store_approval_decide(f->s, &missing), STORE_NOT_FOUND);
    assert_int_equal(store_approval_get(f->s, sid, a1, &got), 0);
    assert_string_equal(got.status, "approved");
    assert_string_equal(got.decided_by, "alice");
    assert_string_equal(got.decision_reason, "fine");
    assert_string_equal(got.remember, "run");
    assert_int_equal(got.decided_ms, 2500);
    store_approval_cleanup(&got);

    store_approval *rows;
    size_t n;
    assert_int_equal(store_approval_list(f->s, sid, "pending", &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].id, a2);
    assert_string_equal(rows[1].id, a3);
    store_approval_list_free(rows, n);
    assert_int_equal(store_approval_list(f->s, sid, NULL, &rows, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].id, a1);
    store_approval_list_free(rows, n);
    assert_int_equal(store_approval_list(f->s, other, NULL, &rows, &n), 0);
    assert_int_equal(n, 0);
    store_approval_list_free(rows, n);

    /* In two steps, as a run's start reads them after its COMMIT: the
     * same rows once the next statement has read them. */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_commit_later(f->s), 0);
    db_result *ahead = NULL;
    assert_int_equal(store_approval_list_later(f->s, sid, &ahead), 0);
    assert_int_equal(store_approval_get(f->s, sid, a1, &got), 0);
    store_approval_cleanup(&got);
    assert_int_equal(store_approval_list_take(f->s, ahead, &rows, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].id, a1);
    assert_string_equal(rows[0].status, "approved");
    assert_string_equal(rows[2].id, a3);
    store_approval_list_free(rows, n);
    /* Rows that never came (a failure before them). */
    assert_int_equal(store_approval_list_take(f->s, NULL, &rows, &n), DB_ERR);
    assert_string_equal(store_errmsg(f->s), "the rows of approvals read ahead did not come");
    assert_null(rows);
    assert_int_equal(n, 0);

    assert_int_equal(store_approval_cancel_run(f->s, "run-1", "stop", "stopped", 5000), 1);
    assert_int_equal(store_approval_get(f->s, sid, a2, &got), 0);
    assert_string_equal(got.status, "cancelled");
    assert_string_equal(got.decided_by, "stop");
    assert_string_equal(got.decision_reason, "stopped");
    assert_int_equal(got.decided_ms, 5000);
    store_approval_cleanup(&got);
    assert_int_equal(store_approval_get(f->s, sid, a3, &got), 0);
    assert_string_equal(got.status, "pending");
    store_approval_cleanup(&got);

    /* A session's approvals go with it. */
    assert_int_equal(store_session_delete(f->s, sid), 0);
    assert_int_equal(store_approval_list(f->s, sid, NULL, &rows, &n), 0);
    assert_int_equal(n, 0);
    store_approval_list_free(rows, n);
    json_decref(args);
    free(a1);
    free(a2);
    free(a3);
    free(other);
    free(sid);
}

static store_input input_row(char *id, char *sid, const char *rid, int64_t at, json_t *schema)
{
    store_input a = {.id = id,
                     .session_id = sid,
                     .run_id = (char *)rid,
                     .execution_id = "exe-1",
                     .server = "everything",
                     .message = "Your name?",
                     .schema = schema,
                     .status = "pending",
                     .requested_ms = at,
                     .expires_ms = at + 900000};
    return a;
}

/* Inputs: stored and read back in the API's shape (answered_by kept but
 * not shown), listed oldest first by status, answered once (the second
 * answer loses), and the pending ones of a run cancelled together. */
static void test_inputs(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "inputs", 1000);
    char *other = make_session(f->s, "inputs", 1000);
    char *i1 = uid("inp"), *i2 = uid("inp"), *i3 = uid("inp");
    json_t *schema = json_pack("{s:s, s:{s:{s:s}}, s:[s]}", "type", "object", "properties", "name",
                               "type", "string", "required", "name");
    store_input r1 = input_row(i1, sid, "run-1", 2000, schema);
    store_input r2 = input_row(i2, sid, "run-1", 3000, schema);
    store_input r3 = input_row(i3, sid, "run-2", 4000, schema);
    assert_int_equal(store_input_insert(f->s, &r1), 0);
    assert_int_equal(store_input_insert(f->s, &r2), 0);
    assert_int_equal(store_input_insert(f->s, &r3), 0);

    store_input got = {0};
    assert_int_equal(store_input_get(f->s, sid, i1, &got), 0);
    json_t *o = objects_input(&got);
    char *text = json_dumps(o, JSON_COMPACT);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"id\":\"%s\",\"session_id\":\"%s\",\"run_id\":\"run-1\",\"execution_id\":"
             "\"exe-1\",\"server\":\"everything\",\"message\":\"Your name?\",\"schema\":"
             "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},"
             "\"required\":[\"name\"]},\"status\":\"pending\",\"content\":null,"
             "\"requested_at\":\"1970-01-01T00:00:02.000Z\",\"answered_at\":null,"
             "\"expires_at\":\"1970-01-01T00:15:02.000Z\"}",
             i1, sid);
    assert_string_equal(text, want);
    free(text);
    json_decref(o);
    store_input_cleanup(&got);
    assert_int_equal(store_input_get(f->s, other, i1, &got), STORE_NOT_FOUND);

    json_t *content = json_pack("{s:s}", "name", "Ada");
    r1.status = "accepted";
    r1.content = content;
    r1.answered_by = "alice";
    r1.answered_ms = 2500;
    assert_int_equal(store_input_answer(f->s, &r1), 0);
    store_input late = r1;
    late.status = "declined";
    late.content = NULL;
    late.answered_by = "bob";
    assert_int_equal(store_input_answer(f->s, &late), STORE_CONFLICT);
    store_input missing = input_row("inp-missing", sid, "run-1", 1, schema);
    missing.status = "declined";
    assert_int_equal(store_input_answer(f->s, &missing), STORE_NOT_FOUND);
    assert_int_equal(store_input_get(f->s, sid, i1, &got), 0);
    assert_string_equal(got.status, "accepted");
    assert_string_equal(got.answered_by, "alice");
    assert_true(json_equal(got.content, content));
    assert_int_equal(got.answered_ms, 2500);
    o = objects_input(&got);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "content"), "name")),
                        "Ada");
    assert_string_equal(json_string_value(json_object_get(o, "answered_at")),
                        "1970-01-01T00:00:02.500Z");
    assert_null(json_object_get(o, "answered_by"));
    json_decref(o);
    store_input_cleanup(&got);

    store_input *rows;
    size_t n;
    assert_int_equal(store_input_list(f->s, sid, "pending", &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].id, i2);
    assert_string_equal(rows[1].id, i3);
    store_input_list_free(rows, n);
    assert_int_equal(store_input_list(f->s, sid, NULL, &rows, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].id, i1);
    store_input_list_free(rows, n);
    assert_int_equal(store_input_list(f->s, other, NULL, &rows, &n), 0);
    assert_int_equal(n, 0);
    store_input_list_free(rows, n);

    assert_int_equal(store_input_cancel_run(f->s, "run-1", "stop", 5000), 1);
    assert_int_equal(store_input_get(f->s, sid, i2, &got), 0);
    assert_string_equal(got.status, "cancelled");
    assert_string_equal(got.answered_by, "stop");
    assert_null(got.content);
    assert_int_equal(got.answered_ms, 5000);
    store_input_cleanup(&got);
    assert_int_equal(store_input_get(f->s, sid, i3, &got), 0);
    assert_string_equal(got.status, "pending");
    store_input_cleanup(&got);

    /* A session's inputs go with it. */
    assert_int_equal(store_session_delete(f->s, sid), 0);
    assert_int_equal(store_input_list(f->s, sid, NULL, &rows, &n), 0);
    assert_int_equal(n, 0);
    store_input_list_free(rows, n);
    json_decref(content);
    json_decref(schema);
    free(i1);
    free(i2);
    free(i3);
    free(other);
    free(sid);
}

/* Recovery cancels what an interrupted run was waiting for, with an
 * approval_decided event before its run_stopped. */
static void test_recovery_cancels_pending_approvals(void **state)
{
    fx *f = *state;
    assert_int_equal(store_begin(f->s), 0);
    char *sid = make_session(f->s, "recover-approval", 1000);
    char *rid = make_run(f->s, sid, 1000, 1100);
    assert_int_equal(store_session_claim_run(f->s, sid, rid, 1000), 0);
    char *aid = uid("apr");
    json_t *args = json_object();
    store_approval a = approval_row(aid, sid, rid, 1500, args);
    assert_int_equal(store_approval_insert(f->s, &a), 0);
    json_decref(args);
    assert_int_equal(store_commit(f->s), 0);

    assert_true(store_recover_interrupted(f->s, 2000, 1700000005000) >= 0);
    store_approval got = {0};
    assert_int_equal(store_approval_get(f->s, sid, aid, &got), 0);
    assert_string_equal(got.status, "cancelled");
    assert_string_equal(got.decided_by, "stop");
    assert_string_equal(got.decision_reason,
                        "the server stopped while the run waited for this approval");
    store_approval_cleanup(&got);
    replay r = {0};
    assert_int_equal(store_event_after(f->s, sid, 0, 0, replay_cb, &r), 2);
    assert_string_equal(r.types[0], "approval_decided");
    char want[512];
    snprintf(want, sizeof want,
             "\"approval_id\":\"%s\",\"decision\":\"cancelled\",\"decided_by\":\"stop\","
             "\"reason\":\"the server stopped while the run waited for this approval\","
             "\"remember\":\"once\"}",
             aid);
    assert_non_null(strstr(r.json[0], want));
    assert_string_equal(r.types[1], "run_stopped");
    replay_free(&r);
    free(aid);
    free(rid);
    free(sid);
}

/* Recovery cancels the question an interrupted run's tool server was
 * waiting on, with an input_answered event before its run_stopped; another
 * run's question is left alone. */
static void test_recovery_cancels_pending_inputs(void **state)
{
    fx *f = *state;
    assert_int_equal(store_begin(f->s), 0);
    char *sid = make_session(f->s, "recover-input", 1000);
    char *rid = make_run(f->s, sid, 1000, 1100);
    assert_int_equal(store_session_claim_run(f->s, sid, rid, 1000), 0);
    char *iid = uid("inp"), *other = uid("inp");
    json_t *schema = json_pack("{s:s, s:{}}", "type", "object", "properties");
    store_input a = input_row(iid, sid, rid, 1500, schema);
    assert_int_equal(store_input_insert(f->s, &a), 0);
    store_input b = input_row(other, sid, "run-elsewhere", 1600, schema);
    assert_int_equal(store_input_insert(f->s, &b), 0);
    json_decref(schema);
    assert_int_equal(store_commit(f->s), 0);

    assert_true(store_recover_interrupted(f->s, 2000, 1700000005000) >= 0);
    store_input got = {0};
    assert_int_equal(store_input_get(f->s, sid, iid, &got), 0);
    assert_string_equal(got.status, "cancelled");
    assert_string_equal(got.answered_by, "stop");
    assert_int_equal(got.answered_ms, 1700000005000);
    store_input_cleanup(&got);
    assert_int_equal(store_input_get(f->s, sid, other, &got), 0);
    assert_string_equal(got.status, "pending");
    store_input_cleanup(&got);
    replay r = {0};
    assert_int_equal(store_event_after(f->s, sid, 0, 0, replay_cb, &r), 2);
    assert_string_equal(r.types[0], "input_answered");
    char want[256];
    snprintf(want, sizeof want,
             "\"input_id\":\"%s\",\"action\":\"cancel\",\"answered_by\":\"stop\"}", iid);
    assert_non_null(strstr(r.json[0], want));
    assert_string_equal(r.types[1], "run_stopped");
    replay_free(&r);
    free(iid);
    free(other);
    free(rid);
    free(sid);
}

static void test_session_delete_cascades(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "cascade", 1000);
    char *rid = make_run(f->s, sid, 2000, 0);
    char *mid = uid("msg");
    store_message m = {
        .id = mid, .session_id = sid, .role = "user", .content = "hi", .created_ms = 2000};
    assert_int_equal(store_message_insert(f->s, &m), 0);
    evt *ev = tok(sid, rid, "m1", "x");
    assert_int_equal(append_all(f->s, &ev, 1), 0);
    evt_unref(ev);

    assert_int_equal(store_session_delete(f->s, sid), 0);
    store_run run;
    assert_int_equal(store_run_get(f->s, rid, &run), STORE_NOT_FOUND);
    assert_int_equal(
        count_rows(f->s, "SELECT COUNT(*) FROM chat_messages WHERE session_id = ?", sid), 0);
    assert_int_equal(
        count_rows(f->s, "SELECT COUNT(*) FROM stream_events WHERE session_id = ?", sid), 0);
    free(mid);
    free(rid);
    free(sid);
}

/* ------------------------------------------------------------------------
 * Modes and tokens
 */

static void assert_mode_equal(const mode *a, const mode *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->description, b->description);
    assert_int_equal(a->limits.steps, b->limits.steps);
    assert_int_equal(a->limits.seconds, b->limits.seconds);
    assert_int_equal(a->limits.tokens, b->limits.tokens);
    assert_int_equal(a->limits.tool_calls, b->limits.tool_calls);
    assert_int_equal(a->limits.retries, b->limits.retries);
    assert_true(a->limits.cost_usd == b->limits.cost_usd);
    assert_int_equal(a->guard.loop_warn, b->guard.loop_warn);
    assert_int_equal(a->guard.loop_stop, b->guard.loop_stop);
    assert_int_equal(a->guard.fail_warn, b->guard.fail_warn);
    assert_int_equal(a->guard.fail_stop, b->guard.fail_stop);
    assert_int_equal(a->guard.stale_steps, b->guard.stale_steps);
    assert_int_equal(a->approval, b->approval);
}

static void test_modes_seeded_from_presets(void **state)
{
    fx *f = *state;
    mode *modes;
    size_t n;
    assert_int_equal(store_mode_list(f->s, &modes, &n), 0);
    assert_true(n >= MODE_PRESET_COUNT);
    if (on_sqlite(f)) assert_int_equal(n, MODE_PRESET_COUNT);
    for (size_t i = 0; i < MODE_PRESET_COUNT; i++) assert_mode_equal(&modes[i], &mode_presets()[i]);
    free(modes);
    mode m;
    assert_int_equal(store_mode_get(f->s, "deep", &m), 0);
    assert_mode_equal(&m, mode_preset("deep"));
    assert_int_equal(store_mode_get(f->s, "nonexistent", &m), STORE_NOT_FOUND);
    assert_string_equal(store_errmsg(f->s), "mode nonexistent not found");
}

static void test_mode_edits_persist(void **state)
{
    fx *f = *state;
    mode m = *mode_preset("standard");
    char *name = uid("mode");
    snprintf(m.name, sizeof m.name, "%s", name);
    assert_int_equal(store_mode_put(f->s, &m, 1000), 0);
    m.limits.steps = MODE_UNLIMITED;
    m.limits.cost_usd = 0.25;
    m.guard.loop_stop = 9;
    m.approval = APPROVAL_ALWAYS;
    snprintf(m.description, sizeof m.description, "Edited.");
    assert_int_equal(store_mode_put(f->s, &m, 2000), 0);

    store *again = fixture_open(f->url);
    mode got;
    assert_int_equal(store_mode_get(again, name, &got), 0);
    assert_mode_equal(&got, &m);
    mode *modes;
    size_t n;
    assert_int_equal(store_mode_list(again, &modes, &n), 0);
    assert_string_equal(modes[0].name, "quick");
    assert_string_equal(modes[1].name, "standard");
    assert_string_equal(modes[2].name, "deep");
    free(modes);
    store_close(again);
    free(name);
}

/* An edited preset survives a restart: seeding never overwrites a row. */
static void test_preset_edit_survives_migrate(void **state)
{
    fx *f = *state;
    skip_unless_sqlite(f);
    mode m = *mode_preset("quick");
    m.limits.steps = 5;
    assert_int_equal(store_mode_put(f->s, &m, 3000), 0);
    store_close(f->s);
    f->s = fixture_open(f->url);
    char err[512];
    assert_int_equal(store_migrate(f->s, NULL, NULL, err, sizeof err), 0);
    mode got;
    assert_int_equal(store_mode_get(f->s, "quick", &got), 0);
    assert_int_equal(got.limits.steps, 5);
}

static void test_tokens(void **state)
{
    fx *f = *state;
    char *a = uid("tok"), *b = uid("tok");
    char hash_a[65], hash_b[65];
    snprintf(hash_a, sizeof hash_a, "%064x", 0);
    memcpy(hash_a, a, strlen(a));
    snprintf(hash_b, sizeof hash_b, "%064x", 1);
    memcpy(hash_b, b, strlen(b));
    /* Exact counts need a database of its own; a shared one may gain
     * tokens from elsewhere while this runs. */
    int before = store_token_count(f->s);
    assert_true(before >= 0);
    bool exact = on_sqlite(f);
    store_token ta = {.name = a, .token_sha256 = hash_a, .admin = true, .created_ms = 1000};
    store_token tb = {.name = b, .token_sha256 = hash_b, .created_ms = 2000};
    assert_int_equal(store_token_insert(f->s, &ta), 0);
    assert_int_equal(store_token_insert(f->s, &tb), 0);
    assert_int_equal(store_token_insert(f->s, &ta), STORE_CONFLICT);
    if (exact) assert_int_equal(store_token_count(f->s), before + 2);

    store_token got;
    assert_int_equal(store_token_find(f->s, hash_a, &got), 0);
    assert_string_equal(got.name, a);
    assert_true(got.admin);
    assert_int_equal(got.created_ms, 1000);
    assert_int_equal(got.revoked_ms, 0);
    store_token_cleanup(&got);

    assert_int_equal(store_token_revoke(f->s, a, 3000), 0);
    assert_int_equal(store_token_find(f->s, hash_a, &got), STORE_NOT_FOUND);
    assert_int_equal(store_token_revoke(f->s, a, 3001), STORE_NOT_FOUND);
    if (exact) assert_int_equal(store_token_count(f->s), before + 1);

    store_token *rows;
    size_t n;
    assert_int_equal(store_token_list(f->s, &rows, &n), 0);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].name, a) == 0) {
            assert_int_equal(rows[i].revoked_ms, 3000);
            seen++;
        } else if (strcmp(rows[i].name, b) == 0) {
            assert_false(rows[i].admin);
            assert_int_equal(rows[i].revoked_ms, 0);
            seen++;
        }
    }
    assert_int_equal(seen, 2);
    store_token_list_free(rows, n);
    free(a);
    free(b);
}

/* ------------------------------------------------------------------------
 * Events
 */

static void test_event_seq_gapless_across_batches_and_sessions(void **state)
{
    fx *f = *state;
    char *a = make_session(f->s, "seq", 1000), *b = make_session(f->s, "seq", 1000);
    evt *first[5] = {tok(a, "r", "m", "a1"), tok(b, "r", "m", "b1"), tok(a, "r", "m", "a2"),
                     tok(a, "r", "m", "a3"), tok(b, "r", "m", "b2")};
    assert_int_equal(append_all(f->s, first, 5), 0);
    assert_int_equal(first[0]->seq, 1);
    assert_int_equal(first[1]->seq, 1);
    assert_int_equal(first[2]->seq, 2);
    assert_int_equal(first[3]->seq, 3);
    assert_int_equal(first[4]->seq, 2);
    char want[512];
    snprintf(want, sizeof want,
             "{\"type\":\"token\",\"seq\":3,\"session_id\":\"%s\",\"run_id\":\"r\","
             "\"ts\":\"1970-01-01T00:00:01.000Z\",\"message_id\":\"m\",\"text\":\"a3\"}",
             a);
    assert_string_equal(first[3]->json, want);
    unref_all(first, 5);

    /* A batch of 600 crosses the multi-row INSERT chunks. */
    enum { BIG = 600 };
    evt *big[BIG];
    for (int i = 0; i < BIG; i++) big[i] = tok(i % 3 ? a : b, "r", "m", "x");
    assert_int_equal(append_all(f->s, big, BIG), 0);
    unref_all(big, BIG);

    replay ra = replay_all(f->s, a), rb = replay_all(f->s, b);
    assert_int_equal(ra.n, 3 + 400);
    assert_int_equal(rb.n, 2 + 200);
    for (size_t i = 0; i < ra.n; i++) assert_int_equal(ra.seqs[i], (int64_t)i + 1);
    for (size_t i = 0; i < rb.n; i++) assert_int_equal(rb.seqs[i], (int64_t)i + 1);
    assert_string_equal(ra.json[2], want);
    assert_string_equal(ra.types[2], "token");
    replay_free(&ra);
    replay_free(&rb);

    store_session got;
    assert_int_equal(store_session_get(f->s, a, NULL, &got), 0);
    assert_int_equal(got.last_seq, 403);
    store_session_cleanup(&got);
    free(a);
    free(b);
}

/* store_event_seq_cache on PostgreSQL: a connection that remembers last_seq
 * raises it unread; when another connection appended meanwhile, the commit
 * fails as DB_ERR_RETRY (a reading append would have gone through, so the
 * remembered path is the one taken), nothing of it is stored, and the same
 * transaction run again reads last_seq and gives the next seqs. A rollback
 * forgets, so the failed try does not poison the next. */
static void test_event_seq_cache_moved_on(void **state)
{
    fx *f = *state;
    skip_unless_postgres(f);
    store *w = fixture_open(f->url);
    store_event_seq_cache(w);
    char *a = make_session(f->s, "cache", 1000), *b = make_session(f->s, "cache", 1000);
    evt *one[2] = {tok(a, "r", "m", "a1"), tok(b, "r", "m", "b1")};
    assert_int_equal(append_all(w, one, 2), 0);
    /* Remembered: the next batch raises both unread, and is right. */
    evt *two[3] = {tok(a, "r", "m", "a2"), tok(b, "r", "m", "b2"), tok(a, "r", "m", "a3")};
    assert_int_equal(append_all(w, two, 3), 0);
    assert_int_equal(two[0]->seq, 2);
    assert_int_equal(two[1]->seq, 2);
    assert_int_equal(two[2]->seq, 3);

    /* Another connection moves b on. */
    evt *other[1] = {tok(b, "r", "m", "elsewhere")};
    assert_int_equal(append_all(f->s, other, 1), 0);
    assert_int_equal(other[0]->seq, 3);

    evt *three[2] = {tok(a, "r", "m", "a4"), tok(b, "r", "m", "b4")};
    assert_int_equal(append_all(w, three, 2), DB_ERR_RETRY);
    assert_non_null(strstr(store_errmsg(w), "moved on"));
    assert_int_equal(append_all(w, three, 2), 0);
    assert_int_equal(three[0]->seq, 4);
    assert_int_equal(three[1]->seq, 4);

    replay ra = replay_all(f->s, a), rb = replay_all(f->s, b);
    assert_int_equal(ra.n, 4);
    assert_int_equal(rb.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(ra.seqs[i], (int64_t)i + 1);
        assert_int_equal(rb.seqs[i], (int64_t)i + 1);
    }
    replay_free(&ra);
    replay_free(&rb);
    unref_all(one, 2);
    unref_all(two, 3);
    unref_all(other, 1);
    unref_all(three, 2);
    store_close(w);
    free(a);
    free(b);
}

/* A batch over 100 sessions reserves their seqs in three statements (64 +
 * 32 + 4 sessions); each session's events still get their seqs in the
 * order the caller gave them, whatever order the sessions come in. */
static void test_event_seq_across_many_sessions(void **state)
{
    fx *f = *state;
    enum { SESSIONS = 100, ROUNDS = 3 };
    char *ids[SESSIONS];
    for (int i = 0; i < SESSIONS; i++) ids[i] = make_session(f->s, "many", 1000);
    evt *evs[SESSIONS * ROUNDS];
    char text[32];
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < SESSIONS; i++) {
            /* Each round visits the sessions in another order. */
            int sess = r % 2 ? SESSIONS - 1 - i : (i * 37) % SESSIONS;
            snprintf(text, sizeof text, "%d", r);
            evs[r * SESSIONS + i] = tok(ids[sess], "r", "m", text);
        }
    assert_int_equal(append_all(f->s, evs, SESSIONS * ROUNDS), 0);
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < SESSIONS; i++) assert_int_equal(evs[r * SESSIONS + i]->seq, r + 1);
    unref_all(evs, SESSIONS * ROUNDS);
    for (int i = 0; i < SESSIONS; i++) {
        replay rp = replay_all(f->s, ids[i]);
        assert_int_equal(rp.n, ROUNDS);
        for (size_t k = 0; k < rp.n; k++) {
            assert_int_equal(rp.seqs[k], (int64_t)k + 1);
            snprintf(text, sizeof text, "\"text\":\"%zu\"", k);
            assert_non_null(strstr(rp.json[k], text));
        }
        replay_free(&rp);
        store_session got;
        assert_int_equal(store_session_get(f->s, ids[i], NULL, &got), 0);
        assert_int_equal(got.last_seq, ROUNDS);
        store_session_cleanup(&got);
    }

    /* A missing session that sorts first, inside the chunk of 64, fails
     * the whole batch with its name; the other sessions keep their seqs. */
    evt *more[SESSIONS + 1];
    for (int i = 0; i < SESSIONS; i++) more[i] = tok(ids[i], "r", "m", "x");
    more[SESSIONS] = tok("ses_00missing", "r", "m", "bad");
    assert_int_equal(append_all(f->s, more, SESSIONS + 1), STORE_NOT_FOUND);
    assert_string_equal(store_errmsg(f->s), "session ses_00missing not found");
    unref_all(more, SESSIONS + 1);
    for (int i = 0; i < SESSIONS; i++) {
        store_session got;
        assert_int_equal(store_session_get(f->s, ids[i], NULL, &got), 0);
        assert_int_equal(got.last_seq, ROUNDS);
        store_session_cleanup(&got);
        free(ids[i]);
    }
}

static void test_event_append_to_missing_session_fails_whole_batch(void **state)
{
    fx *f = *state;
    char *a = make_session(f->s, "seq", 1000);
    evt *evs[2] = {tok(a, "r", "m", "ok"), tok("no-such-session", "r", "m", "bad")};
    assert_int_equal(append_all(f->s, evs, 2), STORE_NOT_FOUND);
    assert_string_equal(store_errmsg(f->s), "session no-such-session not found");
    unref_all(evs, 2);
    replay r = replay_all(f->s, a);
    assert_int_equal(r.n, 0);
    replay_free(&r);
    /* The seq the failed batch reserved was rolled back with it. */
    evt *ok = tok(a, "r", "m", "again");
    assert_int_equal(append_all(f->s, &ok, 1), 0);
    assert_int_equal(ok->seq, 1);
    evt_unref(ok);
    free(a);
}

static void test_event_after_with_limit(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "replay", 1000);
    enum { N = 1500 };
    evt **evs = malloc(N * sizeof *evs);
    for (int i = 0; i < N; i++) evs[i] = tok(sid, "r", "m", "t");
    assert_int_equal(append_all(f->s, evs, N), 0);
    unref_all(evs, N);
    free(evs);

    replay r = {0};
    assert_int_equal(store_event_after(f->s, sid, 3, 2, replay_cb, &r), 2);
    assert_int_equal(r.seqs[0], 4);
    assert_int_equal(r.seqs[1], 5);
    replay_free(&r);

    /* Past one page of the replay query, in order. */
    assert_int_equal(store_event_after(f->s, sid, 100, 0, replay_cb, &r), N - 100);
    for (size_t i = 0; i < r.n; i++) assert_int_equal(r.seqs[i], (int64_t)i + 101);
    replay_free(&r);

    r.stop_at = 3;
    assert_int_equal(store_event_after(f->s, sid, 0, 10, replay_cb, &r), 3);
    replay_free(&r);
    assert_int_equal(store_event_after(f->s, sid, N, 10, replay_cb, &r), 0);
    replay_free(&r);
    free(sid);
}

static void stop_run(store *s, const char *rid)
{
    store_run run;
    assert_int_equal(store_run_get(s, rid, &run), 0);
    free(run.status);
    run.status = strdup("stopped");
    run.stop_reason = strdup("completed");
    run.ended_ms = 9000;
    assert_int_equal(store_run_update(s, &run), 0);
    store_run_cleanup(&run);
}

/*
 * A run's events around two answers and an attempt that failed between
 * them, written to out: two tokens and the message of m1, a token and an
 * error of m2, two tokens and the message of m3.
 */
enum { ANSWER_EVENTS = 8 };

static void answer_events(const char *sid, const char *rid, evt **out)
{
    evt_origin o = origin(sid, rid, 3000);
    evt *evs[ANSWER_EVENTS] = {
        tok(sid, rid, "m1", "Hel"),
        tok(sid, rid, "m1", "lo"),
        evt_message(&o, "m1", "assistant", "Hello", NULL, NULL, false),
        tok(sid, rid, "m2", "dropped attempt"),
        evt_error(&o, "upstream", "HTTP 502", true, "m2"),
        tok(sid, rid, "m3", "Wor"),
        tok(sid, rid, "m3", "ld"),
        evt_message(&o, "m3", "assistant", "World", NULL, NULL, false),
    };
    memcpy(out, evs, sizeof evs);
}

static void test_compaction_keeps_message_events(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "compact", 1000);
    char *rid = make_run(f->s, sid, 2000, 0);
    evt *evs[ANSWER_EVENTS];
    answer_events(sid, rid, evs);
    size_t n = sizeof evs / sizeof evs[0];
    assert_int_equal(append_all(f->s, evs, n), 0);
    unref_all(evs, n);

    /* A running run keeps everything. */
    assert_int_equal(store_event_compact(f->s, rid), 0);
    stop_run(f->s, rid);
    assert_int_equal(store_event_compact(f->s, rid), 4);
    replay r = replay_all(f->s, sid);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.seqs[0], 3);
    assert_string_equal(r.types[0], "message");
    assert_int_equal(r.seqs[1], 4);
    assert_string_equal(r.types[1], "token"); /* the discarded attempt stays */
    assert_string_equal(r.types[2], "error");
    assert_int_equal(r.seqs[3], 8);
    assert_string_equal(r.types[3], "message");
    replay_free(&r);
    assert_int_equal(store_event_compact(f->s, rid), 0);
    assert_int_equal(store_event_compact(f->s, "no-such-run"), STORE_NOT_FOUND);
    free(rid);
    free(sid);
}

/* ------------------------------------------------------------------------
 * Recovery
 */

static void test_recovery_stops_interrupted_run(void **state)
{
    fx *f = *state;
    /* Set up in one transaction: a recovery running at the same time on a
     * shared database sees the whole run or none of it, and stops it just
     * as this test's own call would. */
    assert_int_equal(store_begin(f->s), 0);
    char *sid = make_session(f->s, "recover", 1000);
    char *rid = make_run(f->s, sid, 1000, 1100);
    char *live = make_run(f->s, sid, 1000, 1700000000000);
    assert_int_equal(store_session_claim_run(f->s, sid, rid, 1000), 0);
    char *exe = uid("exe");
    json_t *args = json_pack("{s:s}", "expression", "2+2");
    store_tool_exec t = {.id = exe,
                         .session_id = sid,
                         .run_id = rid,
                         .step = 1,
                         .server = "builtin",
                         .tool = "calc",
                         .arguments = args,
                         .status = "running",
                         .started_ms = 1500};
    assert_int_equal(store_tool_exec_insert(f->s, &t), 0);
    json_decref(args);
    /* Message ids are unique in the database, as the engine makes them. */
    char *gone = uid("msg"), *mid = uid("msg");
    evt_origin o = origin(sid, rid, 1200);
    evt *evs[] = {
        evt_message(&o, "u1", "user", "hi", NULL, NULL, false),
        tok(sid, rid, gone, "gone"),
        evt_error(&o, "upstream", "HTTP 502", true, gone),
        tok(sid, rid, mid, "Hel"),
        tok(sid, rid, mid, "lo"),
    };
    assert_int_equal(store_event_append(f->s, evs, 5), 0);
    assert_int_equal(store_commit(f->s), 0);
    unref_all(evs, 5);

    int stopped = store_recover_interrupted(f->s, 2000, 1700000005000);
    assert_true(stopped >= 0);
    if (on_sqlite(f)) assert_int_equal(stopped, 1);

    store_run run;
    assert_int_equal(store_run_get(f->s, rid, &run), 0);
    assert_string_equal(run.status, "stopped");
    assert_string_equal(run.stop_reason, "interrupted");
    assert_string_equal(run.stop_detail, "the server stopped while the run was going");
    assert_string_equal(run.recovery_suggestion,
                        "The server stopped while the run was going. Continue to pick up where "
                        "it left off.");
    char *actions = json_dumps(run.actions, JSON_COMPACT);
    assert_string_equal(actions, "[{\"kind\":\"continue\",\"label\":\"Continue\"}]");
    free(actions);
    assert_int_equal(run.ended_ms, 1700000005000);
    store_run_cleanup(&run);
    assert_int_equal(store_run_get(f->s, live, &run), 0);
    assert_string_equal(run.status, "running");
    store_run_cleanup(&run);

    store_session ses;
    assert_int_equal(store_session_get(f->s, sid, NULL, &ses), 0);
    assert_string_equal(ses.status, "idle");
    assert_null(ses.active_run_id);
    assert_int_equal(ses.last_seq, 8);
    store_session_cleanup(&ses);

    store_message *msgs;
    size_t n;
    assert_int_equal(store_message_list(f->s, sid, &msgs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(msgs[0].id, mid);
    assert_string_equal(msgs[0].role, "assistant");
    assert_string_equal(msgs[0].content, "Hello");
    assert_true(msgs[0].partial);
    store_message_list_free(msgs, n);

    store_tool_exec *tools;
    assert_int_equal(store_tool_exec_list(f->s, sid, rid, &tools, &n), 0);
    assert_string_equal(tools[0].status, "cancelled");
    assert_string_equal(tools[0].error, "the server stopped while the tool was running");
    assert_int_equal(tools[0].duration_ms, 1700000005000 - 1500);
    store_tool_exec_list_free(tools, n);

    replay r = {0};
    assert_int_equal(store_event_after(f->s, sid, 5, 0, replay_cb, &r), 3);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"type\":\"message\",\"seq\":7,\"session_id\":\"%s\",\"run_id\":\"%s\","
             "\"ts\":\"2023-11-14T22:13:25.000Z\",\"message_id\":\"%s\",\"role\":\"assistant\","
             "\"content\":\"Hello\",\"tool_calls\":null,\"tool_call_id\":null,\"partial\":true,"
             "\"model\":null}",
             sid, rid, mid);
    assert_string_equal(r.types[0], "tool_finished");
    assert_non_null(strstr(r.json[0], "\"status\":\"cancelled\""));
    assert_string_equal(r.json[1], want);
    snprintf(want, sizeof want,
             "{\"type\":\"run_stopped\",\"seq\":8,\"session_id\":\"%s\",\"run_id\":\"%s\","
             "\"ts\":\"2023-11-14T22:13:25.000Z\",\"reason\":\"interrupted\",\"detail\":\"the "
             "server stopped while the run was going\",\"recovery_suggestion\":\"The server "
             "stopped while the run was going. Continue to pick up where it left off.\","
             "\"actions\":[{\"kind\":\"continue\",\"label\":\"Continue\"}],\"diagnosis\":{"
             "\"playbook\":\"interrupted\",\"summary\":\"The server stopped or restarted while "
             "the run was working\",\"evidence\":{\"detail\":\"the server stopped while the run "
             "was going\"}},\"wrapped_up\":false,"
             "\"usage\":{\"steps\":2,\"seconds\":1.5,\"tokens\":120,\"tool_calls\":1,"
             "\"retries\":0,\"cost_usd\":0.0,\"waiting_seconds\":0.0}}",
             sid, rid);
    assert_string_equal(r.json[2], want);
    replay_free(&r);

    /* Recovering again finds nothing left to stop in this session. */
    store_recover_interrupted(f->s, 2000, 1700000006000);
    assert_int_equal(store_session_get(f->s, sid, NULL, &ses), 0);
    assert_int_equal(ses.last_seq, 8);
    store_session_cleanup(&ses);
    free(gone);
    free(mid);
    free(exe);
    free(live);
    free(rid);
    free(sid);
}

/* At SQLite start-up every running run is interrupted, whatever its beat. */
static void test_recovery_of_every_running_run(void **state)
{
    fx *f = *state;
    skip_unless_sqlite(f);
    char *sid = make_session(f->s, "recover", 1000);
    char *rid = make_run(f->s, sid, 1000, 1700000000000);
    assert_int_equal(store_recover_interrupted(f->s, INT64_MAX, 1700000000001), 1);
    store_run run;
    assert_int_equal(store_run_get(f->s, rid, &run), 0);
    assert_string_equal(run.stop_reason, "interrupted");
    store_run_cleanup(&run);
    replay r = replay_all(f->s, sid);
    assert_int_equal(r.n, 1); /* no tokens: no partial message */
    assert_string_equal(r.types[0], "run_stopped");
    replay_free(&r);
    free(rid);
    free(sid);
}

static char *journal_path_or_skip(const fx *f);
static store *open_with_journal(const fx *f);
static int journal_txn(store *s, evt *ev);

/* Appends 200 tokens to sid in one transaction, all of one run (token
 * rows on SQLite: 1-64, 65-128, 129-192, 193-200) or of two runs in turn
 * (a row each), then deletes the rows from seq lo to hi. */
static void two_hundred_with_a_gap(store *s, const char *sid, bool one_run, int lo, int hi)
{
    evt *evs[200];
    for (size_t i = 0; i < 200; i++) evs[i] = tok(sid, one_run || i % 2 ? "ra" : "rb", "m", "t");
    assert_int_equal(append_all(s, evs, 200), 0);
    unref_all(evs, 200);
    char sql[160];
    snprintf(sql, sizeof sql,
             "DELETE FROM stream_events WHERE session_id = ? AND seq BETWEEN %d AND %d", lo, hi);
    const char *p[] = {sid};
    assert_true(db_exec(store_db(s), sql, 1, p, NULL) > 0);
}

/*
 * A replay reads a page of rows up to the seq its events can reach (seqs
 * have no gaps but compaction's); past a gap wider than that (here by
 * deleting rows by hand) it finds the next row and goes on, with or
 * without a limit, over rows of one event and token rows alike.
 */
static void test_replay_crosses_gaps(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "gaps", 1000);
    two_hundred_with_a_gap(f->s, sid, false, 3, 150);
    replay r = replay_all(f->s, sid);
    assert_int_equal(r.n, 52);
    assert_int_equal(r.seqs[0], 1);
    assert_int_equal(r.seqs[1], 2);
    for (size_t i = 2; i < 52; i++) assert_int_equal(r.seqs[i], (int64_t)i + 149);
    replay_free(&r);
    assert_int_equal(store_event_after(f->s, sid, 0, 3, replay_cb, &r), 3);
    assert_int_equal(r.seqs[2], 151);
    replay_free(&r);
    assert_int_equal(store_event_after(f->s, sid, 2, 1, replay_cb, &r), 1);
    assert_int_equal(r.seqs[0], 151);
    replay_free(&r);
    assert_int_equal(store_event_after(f->s, sid, 200, 0, replay_cb, &r), 0);

    /* Token rows on SQLite (a row each on PostgreSQL): the second row
     * gone, the replay goes from 64 to 129, and from inside the third. */
    char *rows = make_session(f->s, "gaps", 1000);
    two_hundred_with_a_gap(f->s, rows, true, 65, 128);
    r = replay_all(f->s, rows);
    assert_int_equal(r.n, 136);
    for (size_t i = 0; i < 136; i++) assert_int_equal(r.seqs[i], (int64_t)i + (i < 64 ? 1 : 65));
    replay_free(&r);
    assert_int_equal(store_event_after(f->s, rows, 64, 5, replay_cb, &r), 5);
    assert_int_equal(r.seqs[0], 129);
    assert_int_equal(r.seqs[4], 133);
    replay_free(&r);
    assert_int_equal(store_event_after(f->s, rows, 130, 2, replay_cb, &r), 2);
    assert_int_equal(r.seqs[0], 131);
    replay_free(&r);
    free(rows);
    free(sid);
}

/*
 * On SQLite a transaction stores each run of two or more consecutive
 * events of one session and one run that the journal would take (tokens,
 * the `thinking` and `responding` statuses) as one token row of at most 64, whoever
 * appends them; other events, a lone token, and another run's or
 * session's events are rows of their own. PostgreSQL writes a row each.
 */
static void test_token_rows_from_a_transaction(void **state)
{
    fx *f = *state;
    bool sqlite = db_get_kind(store_db(f->s)) == DB_SQLITE;
    char *sid = make_session(f->s, "rows", 1000);
    char *other = make_session(f->s, "rows", 1000);
    char *rid = make_run(f->s, sid, 2000, 0);
    char *rid2 = make_run(f->s, sid, 2500, 0);
    evt_origin o = origin(sid, rid, 3000);
    enum { N = 80, OTHER = 2 };
    evt *evs[N + OTHER];
    size_t n = 0;
    evs[n++] = evt_status(&o, STATUS_THINKING, NULL);
    evs[n++] = evt_status(&o, STATUS_RESPONDING, NULL);
    evs[n++] = tok(sid, rid, "m1", "a");
    evs[n++] = tok(other, "r9", "m9", "x"); /* another session's, in between */
    evs[n++] = tok(sid, rid, "m1", "b");
    evs[n++] = tok(sid, rid, "m1", "c");
    evs[n++] = evt_message(&o, "m1", "assistant", "abc", NULL, NULL, false);
    evs[n++] = tok(sid, rid, "m2", "d");
    evs[n++] = evt_error(&o, "upstream", "HTTP 502", true, "m2");
    evs[n++] = tok(other, "r9", "m9", "y");
    while (n < N + OTHER - 2) evs[n++] = tok(sid, rid, "m3", "e"); /* 70 */
    evs[n++] = tok(sid, rid2, "m4", "f");
    evs[n++] = tok(sid, rid2, "m4", "g");
    const char *json[N + OTHER];
    assert_int_equal(append_all(f->s, evs, n), 0);
    for (size_t i = 0; i < n; i++) json[i] = evs[i]->json;

    /* Rows of the session: 1-5 (both statuses, the first tokens) | 6 | 7
     * (a lone token) | 8 | 9-72 | 73-78 | 79-80 (the next run's); of the
     * other: 1-2. */
    const char *rows = "SELECT COUNT(*) FROM stream_events WHERE session_id = ?";
    const char *packed = "SELECT COUNT(*) FROM stream_events WHERE session_id = ? AND type = "
                         "'tokens'";
    assert_int_equal(count_rows(f->s, rows, sid), sqlite ? 7 : N);
    assert_int_equal(count_rows(f->s, packed, sid), sqlite ? 4 : 0);
    assert_int_equal(count_rows(f->s, rows, other), sqlite ? 1 : OTHER);
    if (sqlite) {
        const char *last_seqs = "SELECT COUNT(*) FROM stream_events WHERE session_id = ? AND type "
                                "= 'tokens' AND seq IN (5, 72, 78, 80)";
        assert_int_equal(count_rows(f->s, last_seqs, sid), 4);
        char next_run[256];
        snprintf(next_run, sizeof next_run,
                 "SELECT COUNT(*) FROM stream_events WHERE session_id = ? AND seq = 80 AND "
                 "run_id = '%s'",
                 rid2);
        assert_int_equal(count_rows(f->s, next_run, sid), 1);
    }
    /* Read back one by one, each as it was streamed. */
    replay r = replay_all(f->s, sid);
    assert_int_equal(r.n, N);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(evs[i]->session_id, sid) != 0) continue;
        assert_int_equal(r.seqs[k], (int64_t)k + 1);
        assert_int_equal(evs[i]->seq, (int64_t)k + 1);
        assert_string_equal(r.types[k], evt_type_name(evs[i]->type));
        assert_string_equal(r.json[k], json[i]);
        k++;
    }
    assert_int_equal(k, N);
    replay_free(&r);
    r = replay_all(f->s, other);
    assert_int_equal(r.n, OTHER);
    assert_string_equal(r.json[0], json[3]);
    assert_string_equal(r.json[1], json[9]);
    replay_free(&r);
    unref_all(evs, n);

    /* A row holds at most STORE_JOURNAL_BYTES_MAX bytes of events, as the
     * journal's do: two tokens of 7,000 characters share one, the third
     * is a row of its own. */
    char *big_sid = make_session(f->s, "rows", 1000);
    char *big = xmalloc(7001);
    memset(big, 'z', 7000);
    big[7000] = '\0';
    evt *bigs[3] = {tok(big_sid, rid, "m5", big), tok(big_sid, rid, "m5", big),
                    tok(big_sid, rid, "m5", big)};
    assert_int_equal(append_all(f->s, bigs, 3), 0);
    assert_int_equal(count_rows(f->s, rows, big_sid), sqlite ? 2 : 3);
    assert_int_equal(count_rows(f->s, packed, big_sid), sqlite ? 1 : 0);
    r = replay_all(f->s, big_sid);
    assert_int_equal(r.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(r.seqs[i], (int64_t)i + 1);
        assert_non_null(strstr(r.json[i], big));
    }
    replay_free(&r);
    unref_all(bigs, 3);
    free(big);
    free(big_sid);
    free(rid2);
    free(rid);
    free(other);
    free(sid);
}

/*
 * The events the token journal held for a session go in as one token row
 * when a transaction of that session stores them (a lone one as a row of
 * its own); every read gives them back one by one: a replay from inside
 * the row, with a limit or a stop inside it, and compaction, which reads
 * the run's log as crash recovery does.
 */
static void test_token_rows_read_as_events(void **state)
{
    fx *f = *state;
    char *path = journal_path_or_skip(f);
    store *w = open_with_journal(f);
    char *sid = make_session(f->s, "rows", 1000);
    char *rid = make_run(f->s, sid, 2000, 0);
    evt_origin o = origin(sid, rid, 3000);
    evt *answer[ANSWER_EVENTS];
    answer_events(sid, rid, answer);
    enum { N = 2 + ANSWER_EVENTS };
    /* A transaction teaches the journal the session (seq 1); then each of
     * the answer's tokens is journaled and each other event is a
     * transaction, which stores what the journal held first. */
    evt *evs[N] = {evt_status(&o, STATUS_THINKING, NULL), evt_status(&o, STATUS_RESPONDING, NULL)};
    memcpy(evs + 2, answer, sizeof answer);
    assert_int_equal(journal_txn(w, evt_ref(evs[0])), 0);
    for (size_t i = 1; i < N;) {
        size_t k = i;
        while (k < N && store_journal_takes(evs[k])) k++;
        if (k > i) assert_int_equal(store_journal_append(w, evs + i, k - i), 1);
        if (k < N) assert_int_equal(journal_txn(w, evt_ref(evs[k])), 0);
        i = k + 1;
    }
    assert_int_equal(store_journal_pending(w), 0);
    store_close(w);
    const char *json[N];
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(evs[i]->seq, (int64_t)i + 1);
        json[i] = evs[i]->json;
    }
    /* Rows: 1, 2-4, 5, 6 (a lone token), 7, 8-9, 10. */
    assert_int_equal(
        count_rows(f->s, "SELECT COUNT(*) FROM stream_events WHERE session_id = ?", sid), 7);
    assert_int_equal(count_rows(f->s,
                                "SELECT COUNT(*) FROM stream_events WHERE session_id = ? AND "
                                "type = 'tokens'",
                                sid),
                     2);
    const char *types[N] = {"status", "status", "token", "token", "message",
                            "token",  "error",  "token", "token", "message"};
    replay r = replay_all(f->s, sid);
    assert_int_equal(r.n, N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r.seqs[i], (int64_t)i + 1);
        assert_string_equal(r.types[i], types[i]);
        assert_string_equal(r.json[i], json[i]);
    }
    replay_free(&r);
    /* From inside a row, and a limit that ends inside another. */
    assert_int_equal(store_event_after(f->s, sid, 2, 5, replay_cb, &r), 5);
    assert_int_equal(r.n, 5);
    for (size_t i = 0; i < 5; i++) assert_int_equal(r.seqs[i], (int64_t)i + 3);
    replay_free(&r);
    /* A callback that stops inside a row. */
    r.stop_at = 1;
    assert_int_equal(store_event_after(f->s, sid, 2, 0, replay_cb, &r), 1);
    assert_int_equal(r.seqs[0], 3);
    replay_free(&r);

    /* Compaction drops the stored messages' tokens out of the rows and
     * keeps the statuses, the discarded attempt and the messages. */
    stop_run(f->s, rid);
    assert_int_equal(store_event_compact(f->s, rid), 4);
    r = replay_all(f->s, sid);
    const int64_t kept[] = {1, 2, 5, 6, 7, 10};
    assert_int_equal(r.n, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(r.seqs[i], kept[i]);
        assert_string_equal(r.json[i], json[kept[i] - 1]);
    }
    replay_free(&r);
    unref_all(evs, N);

    /* A token row that ends early (a line that does not read as one, as
     * only a hand-made change could leave): what it holds before that is
     * read, and the replay moves on past it, also when the page asked for
     * one row. */
    char *sid2 = make_session(f->s, "rows", 1000);
    const char *rows_sql[] = {
        "INSERT INTO stream_events (session_id, seq, run_id, type, payload, created_at) "
        "VALUES (?, 2, NULL, 'tokens', '1\t' || 'token\t{\"t\":1}' || char(10) || "
        "'broken' || char(10), 0)",
        "INSERT INTO stream_events (session_id, seq, run_id, type, payload, created_at) "
        "VALUES (?, 3, NULL, 'token', '{\"t\":3}', 0)",
    };
    for (size_t i = 0; i < 2; i++) {
        const char *p[] = {sid2};
        assert_true(db_exec(store_db(f->s), rows_sql[i], 1, p, NULL) >= 0);
    }
    r = replay_all(f->s, sid2);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.seqs[0], 1);
    assert_string_equal(r.json[0], "{\"t\":1}");
    assert_int_equal(r.seqs[1], 3);
    replay_free(&r);
    assert_int_equal(store_event_after(f->s, sid2, 1, 1, replay_cb, &r), 1);
    assert_int_equal(r.seqs[0], 3);
    replay_free(&r);
    free(sid2);
    free(rid);
    free(sid);
    free(path);
}

/* ------------------------------------------------------------------------
 * The event log (writer thread)
 */

typedef struct trace {
    store *reader; /* a second connection: what others can see */
    char lines[128][96];
    size_t n;
    eventlog *log;       /* set once started: whose journal first_held reads */
    int64_t first_held;  /* when the last event was published: its session's first held seq */
    int failed_visible;  /* published events neither readable elsewhere nor in the journal */
    int in_tables;       /* published events readable elsewhere at once */
    const char *journal; /* the token journal's file, or NULL */
} trace;

static void trace_line(trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace_line(trace *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (t->n < 128) vsnprintf(t->lines[t->n++], sizeof t->lines[0], fmt, ap);
    va_end(ap);
}

static int count_cb(void *ud, int64_t seq, const char *type, const char *json, size_t len)
{
    (void)seq;
    (void)type;
    (void)json;
    (void)len;
    (*(int *)ud)++;
    return 0;
}

/* True when the token journal file at path holds the event's line. */
static bool in_journal(const char *path, const evt *ev)
{
    FILE *fp = path ? fopen(path, "r") : NULL;
    if (!fp) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, fp))
        found = strlen(line) == ev->json_len + 1 && memcmp(line, ev->json, ev->json_len) == 0;
    fclose(fp);
    return found;
}

/* True when the len bytes at p contain the string w. */
static bool holds_text(const char *p, size_t len, const char *w)
{
    size_t n = strlen(w);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(p + i, w, n) == 0) return true;
    return false;
}

/* What store_journal_held_after gave: how many, the first and last seq. */
typedef struct held {
    int n;
    int64_t first, last;
    bool tokens; /* each a token whose line is a token event's JSON */
} held;

static int held_cb(void *ud, int64_t seq, const char *type, const char *json, size_t len)
{
    held *h = ud;
    if (h->n++ == 0)
        h->first = seq;
    else if (seq != h->last + 1)
        h->tokens = false;
    h->last = seq;
    char want[64];
    snprintf(want, sizeof want, "\"seq\":%" PRId64 ",", seq);
    if (strcmp(type, "token") != 0 || len < 2 || json[0] != '{' || json[len - 1] != '}' ||
        !holds_text(json, len, want))
        h->tokens = false;
    return 0;
}

static held held_of(store *s, const char *sid, int64_t after)
{
    held h = {.tokens = true};
    int n = store_journal_held_after(s, sid, after, held_cb, &h);
    assert_int_equal(n, h.n);
    return h;
}

static void on_publish(void *ud, evt *ev)
{
    trace *t = ud;
    int found = 0;
    store_event_after(t->reader, ev->session_id, ev->seq - 1, 1, count_cb, &found);
    /* Stored means in the tables or in the token journal, which start-up
     * moves into them (tested below). */
    if (!found && !in_journal(t->journal, ev)) t->failed_visible++;
    if (found) t->in_tables++;
    held h = {.tokens = true};
    if (t->log) eventlog_held_after(t->log, ev->session_id, 0, held_cb, &h);
    t->first_held = h.n ? h.first : 0;
    trace_line(t, "publish %" PRId64 " %s", ev->seq, evt_type_name(ev->type));
}

static void on_done(void *arg, evt *ev, int status)
{
    trace *t = arg;
    trace_line(t, "done %" PRId64 " %d", status == 0 && ev ? ev->seq : 0, status);
}

static int apply_nothing(store *s, void *arg)
{
    (void)s;
    (void)arg;
    return 0;
}

static int apply_fail(store *s, void *arg)
{
    (void)s;
    (void)arg;
    return -42;
}

/* Inserts a message and returns a count, as store functions may: only a
 * negative return fails an op. */
static int apply_message(store *s, void *arg)
{
    store_message *m = arg;
    int rc = store_message_insert(s, m);
    return rc < 0 ? rc : 1;
}

static eventlog *start_log(const fx *f, trace *t)
{
    eventlog *log = NULL;
    char err[512] = "";
    if (eventlog_start(f->url, on_publish, t, &log, err, sizeof err) != 0)
        fail_msg("eventlog_start: %s", err);
    return log;
}

static void test_eventlog_commits_then_publishes_in_order(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "log", 1000);
    trace t = {.reader = f->s};
    eventlog *log = start_log(f, &t);
    for (int i = 0; i < 5; i++) {
        eventlog_op op = {.done = on_done, .arg = &t, .ev = tok(sid, "r", "m", "x")};
        eventlog_submit(log, &op);
    }
    eventlog_append(log, tok(sid, "r", "m", "y"));
    eventlog_flush(log);
    const char *want[] = {"done 1 0", "publish 1 token", "done 2 0",       "publish 2 token",
                          "done 3 0", "publish 3 token", "done 4 0",       "publish 4 token",
                          "done 5 0", "publish 5 token", "publish 6 token"};
    assert_int_equal(t.n, 11);
    for (size_t i = 0; i < 11; i++) assert_string_equal(t.lines[i], want[i]);
    assert_int_equal(t.failed_visible, 0);

    /* The fd wakes the loop for work committed later (an operation: a
     * lone token may be written by the loop itself, tested below). */
    struct pollfd pfd = {.fd = eventlog_fd(log), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);
    eventlog_op later = {.apply = apply_nothing, .ev = tok(sid, "r", "m", "z")};
    eventlog_submit(log, &later);
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    eventlog_drain(log);
    assert_int_equal(t.n, 12);
    assert_string_equal(t.lines[11], "publish 7 token");
    assert_int_equal(poll(&pfd, 1, 0), 0);

    eventlog_stats st;
    eventlog_get_stats(log, &st);
    assert_int_equal(st.events, 7);
    assert_int_equal(st.failures, 0);
    assert_true(st.batches >= 2 && st.batches <= 7);
    eventlog_stop(log);
    free(sid);
}

/* An apply that makes events of its own (eventlog_op.emitted, as a run's
 * start does): fail makes the apply fail instead. */
typedef struct emitting {
    const char *sid;
    trace *t;
    bool fail;
    evt *evs[2];
    size_t n;
} emitting;

static int apply_emitting(store *s, void *arg)
{
    (void)s;
    emitting *e = arg;
    for (size_t i = 0; i < e->n; i++) evt_unref(e->evs[i]);
    e->n = 0;
    if (e->fail) return -42;
    evt_origin o = origin(e->sid, "r", 1000);
    e->evs[e->n++] = evt_message(&o, "m1", "user", "hi", NULL, NULL, false);
    e->evs[e->n++] = evt_status(&o, STATUS_TOOL_RUNNING, "lookup");
    return 0;
}

static size_t emitted_of(void *arg, evt *const **evs)
{
    emitting *e = arg;
    *evs = e->evs;
    return e->n;
}

static void emitting_done(void *arg, evt *ev, int status)
{
    (void)ev;
    emitting *e = arg;
    trace_line(e->t, "done %s", status == 0 ? "ok" : "failed");
}

/* The events an apply makes are stored by its transaction, before the
 * op's own event, and published after its done, in their order; those of
 * an apply that failed are neither. */
static void test_eventlog_stores_what_an_apply_emits(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "emit", 1000);
    trace t = {.reader = f->s};
    eventlog *log = start_log(f, &t);
    emitting e = {.sid = sid, .t = &t};
    evt_origin o = origin(sid, "r", 1000);
    eventlog_stats st0;
    eventlog_get_stats(log, &st0);
    eventlog_op op = {.apply = apply_emitting,
                      .done = emitting_done,
                      .arg = &e,
                      .ev = evt_status(&o, STATUS_RETRYING, NULL),
                      .session_id = sid,
                      .emitted = emitted_of};
    /* Held, so that the flush's own operation joins the same batch rather
     * than following it whenever the writer wakes between the two. */
    eventlog_hold(log);
    eventlog_submit(log, &op);
    eventlog_flush(log);
    eventlog_release(log);
    const char *want[] = {"done ok", "publish 1 message", "publish 2 status", "publish 3 status"};
    assert_int_equal(t.n, 4);
    for (size_t i = 0; i < 4; i++) assert_string_equal(t.lines[i], want[i]);
    assert_int_equal(t.failed_visible, 0);
    assert_int_equal(t.in_tables, 3);
    assert_int_equal(e.evs[0]->seq, 1);
    assert_int_equal(e.evs[1]->seq, 2);
    eventlog_stats st;
    eventlog_get_stats(log, &st);
    assert_int_equal(st.batches - st0.batches, 1); /* one transaction stored all three */
    assert_int_equal(st.events - st0.events, 3);

    /* The same op again, now failing. */
    e.fail = true;
    op.ev = evt_status(&o, STATUS_RETRYING, NULL);
    eventlog_submit(log, &op);
    eventlog_flush(log);
    assert_int_equal(t.n, 5);
    assert_string_equal(t.lines[4], "done failed");
    assert_int_equal(
        count_rows(f->s, "SELECT COUNT(*) FROM stream_events WHERE session_id = ?", sid), 3);
    eventlog_stop(log);
    for (size_t i = 0; i < e.n; i++) evt_unref(e.evs[i]);
    free(sid);
}

/* Raises a session's last_seq by 5 behind the event log's back, as only
 * an operation that names no session may. */
static int apply_bump(store *s, void *arg)
{
    const char *p[] = {arg};
    int rc = db_exec(store_db(s), "UPDATE chat_sessions SET last_seq = last_seq + 5 WHERE id = ?",
                     1, p, NULL);
    return rc < 0 ? -1 : 0;
}

/* One transaction appending to a session several times knows its
 * last_seq after the first (store_event_seq_memo), until an operation that
 * names no session may have changed it. */
static void test_eventlog_seqs_within_a_transaction(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "memo", 1000);
    trace t = {.reader = f->s};
    eventlog *log = start_log(f, &t);
    evt_origin o = origin(sid, "r", 1000);
    eventlog_hold(log);
    for (int i = 0; i < 2; i++) {
        eventlog_op op = {.apply = apply_nothing,
                          .ev = evt_status(&o, STATUS_TOOL_RUNNING, "x"),
                          .session_id = sid};
        eventlog_submit(log, &op);
    }
    eventlog_op bump = {.apply = apply_bump, .arg = sid};
    eventlog_submit(log, &bump);
    eventlog_op after = {
        .apply = apply_nothing, .ev = evt_status(&o, STATUS_TOOL_RUNNING, "y"), .session_id = sid};
    eventlog_submit(log, &after);
    eventlog_release(log);
    eventlog_flush(log);
    const char *want[] = {"publish 1 status", "publish 2 status", "publish 8 status"};
    assert_int_equal(t.n, 3);
    for (size_t i = 0; i < 3; i++) assert_string_equal(t.lines[i], want[i]);
    eventlog_stats st;
    eventlog_get_stats(log, &st);
    assert_int_equal(st.failures, 0);
    eventlog_stop(log);
    assert_int_equal(count_rows(f->s, "SELECT last_seq FROM chat_sessions WHERE id = ?", sid), 8);
    free(sid);
}

/* An apply that holds the writer in its transaction for a while, saying
 * when it began: what is submitted meanwhile finds the writer busy. */
typedef struct slow_apply {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool began;
} slow_apply;

static int apply_slowly(store *s, void *arg)
{
    (void)s;
    slow_apply *sa = arg;
    pthread_mutex_lock(&sa->mu);
    sa->began = true;
    pthread_cond_signal(&sa->cv);
    pthread_mutex_unlock(&sa->mu);
    clock_sleep_ms(100);
    return 0;
}

/* Waits until the writer is in sa's apply_slowly. */
static void wait_began(slow_apply *sa)
{
    pthread_mutex_lock(&sa->mu);
    while (!sa->began) pthread_cond_wait(&sa->cv, &sa->mu);
    pthread_mutex_unlock(&sa->mu);
}

/* Submits op (an apply_slowly of sa) and waits until the writer is in
 * it: what is submitted next finds the writer busy. */
static void hold_writer(eventlog *log, slow_apply *sa, const eventlog_op *op)
{
    eventlog_submit(log, op);
    wait_began(sa);
}

/*
 * Starts a log paced at `pace` ns whose writer is in the middle of a slow
 * transaction (one token, "a"): what the caller submits next finds it busy.
 */
static eventlog *start_busy_paced_log(fx *f, trace *t, slow_apply *sa, const char *sid,
                                      int64_t pace)
{
    eventlog *log = start_log(f, t);
    eventlog_set_pace(log, pace);
    eventlog_op slow = {.apply = apply_slowly, .arg = sa, .ev = tok(sid, "r", "m", "a")};
    hold_writer(log, sa, &slow);
    return log;
}

static void drain_until(eventlog *log, trace *t, size_t lines);
static void submit_traced(eventlog *log, trace *t, const eventlog_op *op, size_t lines);

/*
 * Paced at 500 ms: events submitted while the writer is busy wait for the
 * end of the interval and share one transaction; an event the writer
 * waited for is committed at once, however recent the last commit.
 */
static void test_eventlog_paces_commits(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "log", 1000);
    trace t = {.reader = f->s};
    const int64_t pace = INT64_C(500) * 1000000;
    slow_apply sa = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    int64_t t0 = clock_mono_ns();
    eventlog *log = start_busy_paced_log(f, &t, &sa, sid, pace);
    for (int i = 0; i < 10; i++) eventlog_append(log, tok(sid, "r", "m", "b"));
    eventlog_flush(log);
    int64_t busy = clock_mono_ns() - t0;
    eventlog_stats st;
    eventlog_get_stats(log, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.events, 11);
    assert_true(busy >= pace);

    /* Timed to its publication: a flush submitted while the writer
     * commits it would find the writer busy and wait out the pace itself. */
    int64_t t1 = clock_mono_ns();
    eventlog_append(log, tok(sid, "r", "m", "c"));
    drain_until(log, &t, 12);
    int64_t quiet = clock_mono_ns() - t1;
    assert_true(quiet < pace - INT64_C(100) * 1000000);
    eventlog_flush(log);
    eventlog_get_stats(log, &st);
    /* The flush's own transaction (it stores the token journal) joins the
     * token's batch or follows it. */
    assert_true(st.batches == 3 || st.batches == 4);
    assert_int_equal(t.n, 12);
    assert_string_equal(t.lines[11], "publish 12 token");
    eventlog_stop(log);
    free(sid);
}

/* Drains the log until the trace has `lines` lines, for at most 5 s. */
static void drain_until(eventlog *log, trace *t, size_t lines)
{
    struct pollfd pfd = {.fd = eventlog_fd(log), .events = POLLIN};
    for (int i = 0; i < 500 && t->n < lines; i++)
        if (poll(&pfd, 1, 10) > 0) eventlog_drain(log);
    assert_int_equal(t->n, lines);
}

/*
 * An urgent operation ends the pace: a writer waiting out its interval
 * takes the batch at once, with what was submitted before it.
 */
static void test_eventlog_urgent_ends_the_pace(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "log", 1000);
    trace t = {.reader = f->s};
    const int64_t pace = INT64_C(2000) * 1000000;
    slow_apply sa = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    int64_t t0 = clock_mono_ns();
    eventlog *log = start_busy_paced_log(f, &t, &sa, sid, pace);
    /* Submitted while the writer is busy: the next batch is paced, and the
     * writer waits out the pace once the slow batch is written. */
    eventlog_append(log, tok(sid, "r", "m", "b"));
    clock_sleep_ms(300);
    eventlog_op urgent = {.ev = tok(sid, "r", "m", "c")};
    eventlog_submit_urgent(log, &urgent);
    drain_until(log, &t, 3);
    int64_t took = clock_mono_ns() - t0;
    assert_string_equal(t.lines[0], "publish 1 token");
    assert_string_equal(t.lines[1], "publish 2 token");
    assert_string_equal(t.lines[2], "publish 3 token");
    assert_true(took < pace / 2);
    eventlog_stats st;
    eventlog_get_stats(log, &st);
    assert_int_equal(st.batches, 2);
    eventlog_stop(log);
    free(sid);
}

/* The trace's lines from `line` on say that n tokens were published, with
 * the seqs from `seq` on. */
static void assert_tokens_published(const trace *t, size_t line, int64_t seq, size_t n)
{
    assert_true(line + n <= t->n);
    for (size_t i = 0; i < n; i++) {
        char want[48];
        snprintf(want, sizeof want, "publish %" PRId64 " token", seq + (int64_t)i);
        assert_string_equal(t->lines[line + i], want);
    }
}

/*
 * Starts an unpaced log whose writer is in the middle of a slow
 * transaction (one token of session a, an apply_slowly of sa) and queues
 * behind it `first`, when given, and twenty more of a's tokens.
 */
static eventlog *start_behind_slow(fx *f, trace *t, const char *a, slow_apply *sa,
                                   const eventlog_op *first)
{
    eventlog *log = start_log(f, t);
    eventlog_set_pace(log, 0);
    eventlog_op slow = {
        .apply = apply_slowly, .arg = sa, .session_id = a, .ev = tok(a, "r", "m", "a")};
    hold_writer(log, sa, &slow);
    if (first) eventlog_submit(log, first);
    for (int i = 0; i < 20; i++) eventlog_append(log, tok(a, "r", "m", "b"));
    return log;
}

/*
 * start_behind_slow, then `urgent` queued with eventlog_submit_urgent.
 * Returns the log, the trace drained to 22 lines (23 with first).
 */
static eventlog *queue_behind_slow(fx *f, trace *t, const char *a, eventlog_op *urgent,
                                   const eventlog_op *first)
{
    slow_apply sa = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    eventlog *log = start_behind_slow(f, t, a, &sa, first);
    eventlog_submit_urgent(log, urgent);
    drain_until(log, t, first ? 23 : 22);
    return log;
}

/*
 * An urgent operation queued behind more than EVENTLOG_QUIET_BATCH_MAX
 * operations of other sessions is written ahead of them, in a transaction
 * of its own, and published first; they follow in order.
 */
static void test_eventlog_urgent_goes_ahead_of_other_sessions(void **state)
{
    fx *f = *state;
    char *a = make_session(f->s, "log", 1000);
    char *b = make_session(f->s, "log", 1000);
    /* No journal on PostgreSQL: every event is then in the tables. */
    char *path = store_journal_path(f->url);
    trace t = {.reader = f->s, .journal = path};
    eventlog_op urgent = {.apply = apply_nothing, .session_id = b, .ev = tok(b, "r", "m", "u")};
    eventlog *log = queue_behind_slow(f, &t, a, &urgent, NULL);
    assert_string_equal(t.lines[0], "publish 1 token"); /* a's, the slow one */
    assert_string_equal(t.lines[1], "publish 1 token"); /* b's, ahead */
    assert_tokens_published(&t, 2, 2, 20);
    assert_int_equal(t.failed_visible, 0);
    eventlog_stats st;
    eventlog_get_stats(log, &st);
    assert_int_equal(st.batches, 3);
    eventlog_stop(log);
    free(path);
    free(a);
    free(b);
}

/*
 * Urgent operations go ahead of the rest once, not again and again: one
 * submitted while the writer writes an urgent batch taken ahead of twenty
 * queued tokens waits for those tokens' transaction, in its place behind
 * them. A steady flow of starts would otherwise hold the tokens back as
 * long as it lasts.
 */
static void test_eventlog_urgent_goes_ahead_once_in_a_row(void **state)
{
    fx *f = *state;
    char *a = make_session(f->s, "log", 1000);
    char *b = make_session(f->s, "log", 1000);
    char *c = make_session(f->s, "log", 1000);
    trace t = {.reader = f->s};
    slow_apply sa = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    slow_apply sb = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    eventlog *log = start_behind_slow(f, &t, a, &sa, NULL);
    /* b's urgent operation goes ahead of a's twenty; c's comes while the
     * writer is in it. */
    eventlog_op ub = {
        .apply = apply_slowly, .arg = &sb, .session_id = b, .ev = tok(b, "r", "m", "u")};
    eventlog_submit_urgent(log, &ub);
    wait_began(&sb);
    eventlog_op uc = {.apply = apply_nothing, .session_id = c, .ev = tok(c, "r", "m", "u")};
    eventlog_submit_urgent(log, &uc);
    drain_until(log, &t, 23);
    assert_string_equal(t.lines[0], "publish 1 token");  /* a's, the slow one */
    assert_string_equal(t.lines[1], "publish 1 token");  /* b's, ahead */
    assert_tokens_published(&t, 2, 2, 20);               /* a's twenty */
    assert_string_equal(t.lines[22], "publish 1 token"); /* c's, in its place */
    eventlog_stats st;
    eventlog_get_stats(log, &st);
    assert_int_equal(st.batches, 3);
    eventlog_stop(log);
    free(a);
    free(b);
    free(c);
}

/*
 * An urgent operation stays in its place when something queued ahead of
 * it writes to its session, or may write to any session (an operation
 * that names none): its session's events keep their order.
 */
static void test_eventlog_urgent_keeps_its_sessions_order(void **state)
{
    fx *f = *state;
    char *a = make_session(f->s, "log", 1000);
    char *b = make_session(f->s, "log", 1000);

    trace t = {.reader = f->s};
    eventlog_op mine = {.apply = apply_nothing, .session_id = a, .ev = tok(a, "r", "m", "u")};
    eventlog *log = queue_behind_slow(f, &t, a, &mine, NULL);
    assert_tokens_published(&t, 0, 1, 22);
    eventlog_stats st;
    eventlog_get_stats(log, &st);
    assert_int_equal(st.batches, 2);
    eventlog_stop(log);

    trace u = {.reader = f->s};
    eventlog_op any = {.apply = apply_nothing, .ev = tok(a, "r", "m", "x")};
    eventlog_op other = {.apply = apply_nothing, .session_id = b, .ev = tok(b, "r", "m", "u")};
    log = queue_behind_slow(f, &u, a, &other, &any);
    /* a's slow token (seq 23), the operation naming no session (24), a's
     * twenty (25 to 44), then b's. */
    assert_tokens_published(&u, 0, 23, 22);
    assert_tokens_published(&u, 22, 1, 1);
    eventlog_stop(log);
    free(a);
    free(b);
}

/*
 * Submissions inside a hold wake the idle writer once, at the release, and
 * share its transaction; a flush inside a hold still returns, with all of
 * it written.
 */
static void test_eventlog_hold_wakes_the_writer_once(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "log", 1000);
    trace t = {.reader = f->s};
    eventlog *log = start_log(f, &t);
    /* A first batch, then time for the writer to wait for work again: a
     * writer not waiting yet takes what it finds without being woken. */
    eventlog_op first = {.apply = apply_nothing, .ev = tok(sid, "r", "m", "w")};
    submit_traced(log, &t, &first, 1);
    clock_sleep_ms(100);
    eventlog_hold(log);
    eventlog_hold(log); /* holds nest */
    for (int i = 0; i < 3; i++) {
        eventlog_op op = {.apply = apply_nothing, .ev = tok(sid, "r", "m", "x")};
        eventlog_submit(log, &op);
    }
    eventlog_release(log);
    clock_sleep_ms(100);
    eventlog_stats st;
    eventlog_get_stats(log, &st);
    assert_int_equal(st.batches, 1);
    struct pollfd pfd = {.fd = eventlog_fd(log), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);

    eventlog_release(log);
    drain_until(log, &t, 4);
    eventlog_get_stats(log, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.events, 4);
    assert_string_equal(t.lines[3], "publish 4 token");

    eventlog_hold(log);
    eventlog_op more = {.apply = apply_nothing, .ev = tok(sid, "r", "m", "y")};
    eventlog_submit(log, &more);
    eventlog_flush(log);
    assert_int_equal(t.n, 5);
    assert_string_equal(t.lines[4], "publish 5 token");
    eventlog_release(log);
    eventlog_stop(log);
    free(sid);
}

static bool count_kick(void *ud)
{
    (*(int *)ud)++;
    return true;
}

static bool decline_kick(void *ud)
{
    (*(int *)ud)++;
    return false;
}

/*
 * Writing on the loop (eventlog_set_here): work that finds the writer idle
 * leaves it asleep and asks the loop, once, to write it; eventlog_write_here
 * then commits it in one transaction on the calling thread and publishes it
 * in order, and the eventfd stays quiet. While the process's write lock is
 * taken (here by this thread's own transaction) the writer gets the work
 * instead, and so does a flush, and so it does when the kick declines.
 * PostgreSQL always leaves it to the writer.
 */
static void test_eventlog_writes_on_the_loop_while_the_writer_idles(void **state)
{
    fx *f = *state;
    bool sqlite = db_get_kind(store_db(f->s)) == DB_SQLITE;
    char *sid = make_session(f->s, "log", 1000);
    trace t = {.reader = f->s};
    eventlog *log = start_log(f, &t);
    eventlog_op first = {.apply = apply_nothing, .ev = tok(sid, "r", "m", "w")};
    submit_traced(log, &t, &first, 1);
    clock_sleep_ms(100); /* the writer waits for work again */
    int kicks = 0;
    eventlog_set_here(log, count_kick, &kicks);
    for (int i = 0; i < 3; i++) {
        eventlog_op op = {
            .apply = apply_nothing, .done = on_done, .arg = &t, .ev = tok(sid, "r", "m", "x")};
        eventlog_submit(log, &op);
    }
    assert_int_equal(kicks, 1);
    clock_sleep_ms(100);
    eventlog_stats st;
    eventlog_get_stats(log, &st);
    assert_int_equal(st.batches, 1);
    assert_int_equal(t.n, 1);
    struct pollfd pfd = {.fd = eventlog_fd(log), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);

    eventlog_write_here(log);
    if (sqlite) {
        const char *want[] = {"done 2 0",        "publish 2 token", "done 3 0",
                              "publish 3 token", "done 4 0",        "publish 4 token"};
        assert_int_equal(t.n, 7);
        for (size_t i = 0; i < 6; i++) assert_string_equal(t.lines[1 + i], want[i]);
        assert_int_equal(poll(&pfd, 1, 0), 0);
    } else {
        drain_until(log, &t, 7);
        assert_string_equal(t.lines[6], "publish 4 token");
    }
    eventlog_get_stats(log, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.events, 4);
    assert_int_equal(t.failed_visible, 0);

    /* The write lock taken: the writer waits for it and writes the op. */
    kicks = 0;
    if (sqlite) assert_int_equal(store_begin(f->s), 0);
    eventlog_op locked = {.apply = apply_nothing, .ev = tok(sid, "r", "m", "y")};
    eventlog_submit(log, &locked);
    assert_int_equal(kicks, 1);
    eventlog_write_here(log);
    assert_int_equal(t.n, 7);
    if (sqlite) assert_int_equal(store_commit(f->s), 0);
    drain_until(log, &t, 8);
    assert_string_equal(t.lines[7], "publish 5 token");

    /* A flush writes what the loop was asked to, and leaves it nothing. */
    clock_sleep_ms(100);
    kicks = 0;
    eventlog_op flushed = {.apply = apply_nothing, .ev = tok(sid, "r", "m", "z")};
    eventlog_submit(log, &flushed);
    assert_int_equal(kicks, 1);
    eventlog_flush(log);
    assert_int_equal(t.n, 9);
    assert_string_equal(t.lines[8], "publish 6 token");
    eventlog_write_here(log);
    assert_int_equal(t.n, 9);

    /* Declined: the writer is woken at once. */
    clock_sleep_ms(100);
    kicks = 0;
    eventlog_set_here(log, decline_kick, &kicks);
    eventlog_op declined = {.apply = apply_nothing, .ev = tok(sid, "r", "m", "v")};
    eventlog_submit(log, &declined);
    assert_int_equal(kicks, 1);
    drain_until(log, &t, 10);
    assert_string_equal(t.lines[9], "publish 7 token");
    eventlog_get_stats(log, &st);
    assert_int_equal(st.events, 7);
    assert_int_equal(t.failed_visible, 0);
    eventlog_stop(log);
    free(sid);
}

/* Submits op and waits until the trace has `lines` lines more. */
static void submit_traced(eventlog *log, trace *t, const eventlog_op *op, size_t lines)
{
    size_t before = t->n;
    eventlog_submit(log, op);
    drain_until(log, t, before + lines);
}

static void append_published(eventlog *log, trace *t, const char *sid, const char *text)
{
    eventlog_op op = {.ev = tok(sid, "r", "m", text)};
    submit_traced(log, t, &op, 1);
}

static int64_t stored_count(store *s, const char *sid)
{
    int n = 0;
    assert_true(store_event_after(s, sid, 0, 0, count_cb, &n) >= 0);
    return n;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* A new session with one token stored in the table (seq 1, "stored"),
 * for the journal's start-up tests. */
static char *session_with_one_stored(fx *f)
{
    char *sid = make_session(f->s, "log", 1000);
    evt *first = tok(sid, "r", "m", "stored");
    assert_int_equal(append_all(f->s, &first, 1), 0);
    evt_unref(first);
    return sid;
}

/* Start-up moves `moved` events of the journal into the table, which then
 * holds sid's events 1 to last, and sid's last_seq is last. */
static void assert_recovered(fx *f, const char *sid, int moved, int64_t last)
{
    assert_int_equal(store_journal_recover(f->s, f->url), moved);
    assert_int_equal(stored_count(f->s, sid), last);
    store_session row;
    assert_int_equal(store_session_get(f->s, sid, NULL, &row), 0);
    assert_int_equal(row.last_seq, last);
    store_session_cleanup(&row);
}

/* The token journal's file of the fixture's database; skips the test on
 * a database that has none (PostgreSQL). */
static char *journal_path_or_skip(const fx *f)
{
    char *path = store_journal_path(f->url);
    if (!path) skip();
    return path;
}

/* This connection's page cache in KiB, as SQLite reports it. */
static long page_cache_kib(store *s)
{
    db_result *r = NULL;
    assert_int_equal(db_exec(store_db(s), "PRAGMA cache_size", 0, NULL, &r), 0);
    long kib = -strtol(db_result_get(r, 0, 0), NULL, 10);
    db_result_free(r);
    return kib;
}

/* A connection keeps 128 KiB of pages, the event log's writer 512
 * (docs/benchmarks.md, fix 43); on PostgreSQL the call does nothing. */
static void test_page_cache_sizes(void **state)
{
    fx *f = *state;
    store *s = NULL;
    char err[256];
    assert_int_equal(store_open(f->url, &s, err, sizeof err), 0);
    if (db_get_kind(store_db(s)) == DB_SQLITE) {
        assert_int_equal(page_cache_kib(s), 128);
        assert_int_equal(store_set_page_cache(s, EVENTLOG_PAGE_CACHE_KIB), 0);
        assert_int_equal(page_cache_kib(s), 512);
    } else {
        assert_int_equal(store_set_page_cache(s, EVENTLOG_PAGE_CACHE_KIB), 0);
    }
    store_close(s);
}

/* A log of the fixture's SQLite file with its token journal, the
 * session it writes to and the trace of what it publishes; skips the
 * test on a database that has no journal. */
typedef struct journal_fx {
    char *path;
    char *sid;
    trace t;
    eventlog *log;
} journal_fx;

static void journal_start(fx *f, journal_fx *j)
{
    j->path = journal_path_or_skip(f);
    j->sid = make_session(f->s, "log", 1000);
    j->t = (trace){.reader = f->s, .journal = j->path};
    j->log = start_log(f, &j->t);
    j->t.log = j->log;
    eventlog_set_pace(j->log, 0);
}

/*
 * On a SQLite file, a lone token event of a session the writer knows goes
 * to the token journal: published at once, in the tables only with the
 * session's next transaction (a ninth held event, or a flush); the kill
 * test (test_eventlog_kill.sh) proves what a crash leaves in the journal
 * is recovered.
 */
static void test_token_journal_holds_lone_tokens(void **state)
{
    fx *f = *state;
    journal_fx j;
    journal_start(f, &j);
    /* No idle moment stores the journal behind the test's back, however
     * slow the machine. */
    eventlog_set_journal_idle(j.log, 60000);

    /* The first: a transaction, which teaches the journal the session. */
    append_published(j.log, &j.t, j.sid, "a");
    assert_int_equal(stored_count(f->s, j.sid), 1);
    assert_int_equal(j.t.first_held, 0);
    /* The next 64: in the journal, not in the tables (the session streams
     * alone, so past the first 8 it has the shared room). When each is
     * published, the journal holds its session's events from seq 2 on. */
    for (size_t i = 0; i < STORE_JOURNAL_EVENTS_MAX; i++) {
        append_published(j.log, &j.t, j.sid, "b");
        assert_int_equal(j.t.first_held, 2);
    }
    assert_int_equal(stored_count(f->s, j.sid), 1);
    /* A replay reads them there, each line the event's JSON, from any seq
     * on; another session has none. */
    held h = {.tokens = true};
    assert_int_equal(eventlog_held_after(j.log, j.sid, 0, held_cb, &h), STORE_JOURNAL_EVENTS_MAX);
    assert_true(h.tokens);
    assert_int_equal(h.first, 2);
    assert_int_equal(h.last, 1 + STORE_JOURNAL_EVENTS_MAX);
    h = (held){.tokens = true};
    assert_int_equal(eventlog_held_after(j.log, j.sid, 40, held_cb, &h),
                     STORE_JOURNAL_EVENTS_MAX - 39);
    assert_true(h.tokens);
    assert_int_equal(h.first, 41);
    assert_int_equal(eventlog_held_after(j.log, j.sid, 1 + STORE_JOURNAL_EVENTS_MAX, held_cb, &h),
                     0);
    assert_int_equal(eventlog_held_after(j.log, "ses_none", 0, held_cb, &h), 0);
    assert_int_equal(j.t.in_tables, 1);
    assert_true(file_size(j.path) > 0);
    /* The next would pass STORE_JOURNAL_EVENTS_MAX: its transaction stores
     * the 64 first. */
    append_published(j.log, &j.t, j.sid, "c");
    assert_int_equal(stored_count(f->s, j.sid), 66);
    assert_int_equal(j.t.first_held, 0);
    /* Two more held, then a flush puts them in the tables. */
    append_published(j.log, &j.t, j.sid, "d");
    append_published(j.log, &j.t, j.sid, "e");
    assert_int_equal(j.t.first_held, 67);
    assert_int_equal(stored_count(f->s, j.sid), 66);
    eventlog_flush(j.log);
    assert_int_equal(stored_count(f->s, j.sid), 68);
    /* Stored, they are no longer the journal's to give. */
    assert_int_equal(eventlog_held_after(j.log, j.sid, 0, held_cb, &h), 0);
    assert_int_equal(j.t.failed_visible, 0);
    for (size_t i = 0; i < 68; i++) {
        char want[32];
        snprintf(want, sizeof want, "publish %zu token", i + 1);
        assert_string_equal(j.t.lines[i], want);
    }

    /* With the writer waiting and nothing unpublished, a lone token is
     * written by the caller's thread and published before the call
     * returns: the fd stays quiet. */
    clock_sleep_ms(20);
    size_t before = j.t.n;
    eventlog_append(j.log, tok(j.sid, "r", "m", "m"));
    assert_int_equal(j.t.n, before + 1);
    assert_string_equal(j.t.lines[before], "publish 69 token");
    struct pollfd pfd = {.fd = eventlog_fd(j.log), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);

    /* Stopping leaves nothing held. */
    assert_int_equal(stored_count(f->s, j.sid), 68);
    eventlog_stop(j.log);
    assert_int_equal(stored_count(f->s, j.sid), 69);
    free(j.sid);
    free(j.path);
}

/*
 * What the journal holds goes to the tables once the writer has been idle
 * for the journal's idle time (store.journal_idle_ms), and not before.
 */
static void test_token_journal_stored_after_idle(void **state)
{
    fx *f = *state;
    journal_fx j;
    journal_start(f, &j);
    eventlog_set_journal_idle(j.log, 400);
    append_published(j.log, &j.t, j.sid, "a");
    /* The writer's wait for the idle time begins once this one is
     * journaled, so not before t0. */
    int64_t t0 = clock_mono_ms();
    append_published(j.log, &j.t, j.sid, "b");
    assert_int_equal(j.t.first_held, 2);
    clock_sleep_ms(200);
    assert_int_equal(stored_count(f->s, j.sid), 1);
    while (stored_count(f->s, j.sid) < 2 && clock_mono_ms() - t0 < 10000) clock_sleep_ms(10);
    assert_int_equal(stored_count(f->s, j.sid), 2);
    int64_t waited = clock_mono_ms() - t0;
    assert_true(waited >= 400);
    eventlog_stop(j.log);
    assert_int_equal(j.t.failed_visible, 0);
    free(j.sid);
    free(j.path);
}

static void count_published(void *ud, evt *ev)
{
    (void)ev;
    (*(size_t *)ud)++;
}

/* Submits ev's op and waits until *published reaches want. */
static void submit_counted(eventlog *log, evt *ev, const size_t *published, size_t want)
{
    eventlog_op op = {.ev = ev};
    eventlog_submit(log, &op);
    struct pollfd pfd = {.fd = eventlog_fd(log), .events = POLLIN};
    for (int i = 0; i < 1000 && *published < want; i++)
        if (poll(&pfd, 1, 10) > 0) eventlog_drain(log);
    assert_int_equal(*published, want);
}

/*
 * A batch of the writer that leaves the journal holding more than
 * EVENTLOG_JOURNAL_STORE_AT events is followed by a transaction that
 * stores them all, so that each session has room for its next tokens again
 * (docs/benchmarks.md, fix 76); a batch that leaves fewer stores only its
 * own sessions' events.
 */
/* N sessions hold EACH tokens in the token journal, then MORE of them one
 * more: one event past EVENTLOG_JOURNAL_STORE_AT, with no batch of the
 * writer since (journal_past_mark). */
enum {
    MARK_EACH = 62,
    MARK_N = EVENTLOG_JOURNAL_STORE_AT / MARK_EACH,
    MARK_MORE = EVENTLOG_JOURNAL_STORE_AT - MARK_N * MARK_EACH + 1
};
_Static_assert(MARK_MORE <= MARK_N && MARK_EACH < STORE_JOURNAL_EVENTS_MAX,
               "room for one more each");

typedef struct past_mark {
    eventlog *log;
    size_t published, want;
    char *sids[MARK_N + 1]; /* the last one for the caller */
} past_mark;

/* Starts an event log without pace or idle store and fills its journal
 * past the mark as the enum above says. */
static void journal_past_mark(fx *f, past_mark *m)
{
    char err[512] = "";
    if (eventlog_start(f->url, count_published, &m->published, &m->log, err, sizeof err) != 0)
        fail_msg("eventlog_start: %s", err);
    eventlog_set_pace(m->log, 0);
    eventlog_set_journal_idle(m->log, 60000);
    for (size_t k = 0; k < MARK_N; k++) {
        m->sids[k] = make_session(f->s, "log", 1000);
        /* The first goes to a transaction, which teaches the journal the
         * session; the rest are held. */
        submit_counted(m->log, tok(m->sids[k], "r", "m", "a"), &m->published, ++m->want);
        for (size_t i = 0; i < MARK_EACH; i++)
            submit_counted(m->log, tok(m->sids[k], "r", "m", "b"), &m->published, ++m->want);
    }
    /* The last session's first batch left (N - 1) * EACH held: nothing
     * more is stored. */
    for (size_t k = 0; k < MARK_N; k++) assert_int_equal(stored_count(f->s, m->sids[k]), 1);
    /* MORE held pass the mark; no batch has run since (the writer waits
     * for work by now, so the caller's thread journals them). */
    clock_sleep_ms(100);
    for (size_t k = 0; k < MARK_MORE; k++) {
        submit_counted(m->log, tok(m->sids[k], "r", "m", "c"), &m->published, ++m->want);
        assert_int_equal(stored_count(f->s, m->sids[k]), 1);
        held h = {0};
        assert_int_equal(eventlog_held_after(m->log, m->sids[k], 0, held_cb, &h), MARK_EACH + 1);
    }
}

static void test_token_journal_stored_past_the_mark(void **state)
{
    fx *f = *state;
    char *path = journal_path_or_skip(f);
    past_mark m = {0};
    journal_past_mark(f, &m);
    /* The next batch, of another session, is followed by the store. */
    m.sids[MARK_N] = make_session(f->s, "log", 1000);
    submit_counted(m.log, tok(m.sids[MARK_N], "r", "m", "a"), &m.published, ++m.want);
    int64_t t0 = clock_mono_ms();
    while (stored_count(f->s, m.sids[MARK_N - 1]) < 1 + MARK_EACH && clock_mono_ms() - t0 < 10000)
        clock_sleep_ms(10);
    for (size_t k = 0; k < MARK_N; k++) {
        assert_int_equal(stored_count(f->s, m.sids[k]), 1 + MARK_EACH + (k < MARK_MORE));
        held h = {0};
        assert_int_equal(eventlog_held_after(m.log, m.sids[k], 0, held_cb, &h), 0);
    }
    eventlog_stop(m.log);
    for (size_t k = 0; k <= MARK_N; k++) free(m.sids[k]);
    free(path);
}

static int apply_fill_disk(store *s, void *arg);
static int apply_free_disk(store *s, void *arg);

/* Submits op and waits for its done callback, which sets *flag to the
 * status plus 100 (so that 0 means not yet). */
static void on_done_flag(void *arg, evt *ev, int status)
{
    (void)ev;
    *(int *)arg = status + 100;
}

static int submit_and_wait(eventlog *log, eventlog_op op)
{
    int flag = 0;
    op.done = on_done_flag;
    op.arg = &flag;
    eventlog_submit(log, &op);
    struct pollfd pfd = {.fd = eventlog_fd(log), .events = POLLIN};
    for (int i = 0; i < 1000 && flag == 0; i++)
        if (poll(&pfd, 1, 10) > 0) eventlog_drain(log);
    assert_int_not_equal(flag, 0);
    return flag - 100;
}

/* Lines of fp, read from its start, that hold needle. */
static int count_lines_with(FILE *fp, const char *needle)
{
    rewind(fp);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, fp))
        if (strstr(line, needle)) n++;
    return n;
}

/*
 * Past the mark, with the disk full: the store of the journal after the
 * batch that filled it fails and is not tried again after each batch that
 * fails (one warning, not one per batch); the batch that commits once
 * there is room again is followed by the store, which keeps every event.
 */
static void test_token_journal_store_waits_for_a_commit(void **state)
{
    fx *f = *state;
    char *path = journal_path_or_skip(f);
    past_mark m = {0};
    journal_past_mark(f, &m);
    m.sids[MARK_N] = make_session(f->s, "log", 1000);

    /* The log's lines go to a file meanwhile, to be counted. */
    FILE *logged = tmpfile();
    assert_non_null(logged);
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(logged), 2);

    eventlog_op fill = {.apply = apply_fill_disk};
    assert_int_equal(submit_and_wait(m.log, fill), 0);
    static char big[STORE_JOURNAL_BYTES_MAX + 4000];
    memset(big, 'x', sizeof big - 1);
    for (int i = 0; i < 3; i++) {
        eventlog_op op = {.ev = tok(m.sids[MARK_N], "r", "m", big)};
        assert_int_equal(submit_and_wait(m.log, op), DB_ERR_FULL);
    }
    for (size_t k = 0; k < MARK_N; k++) assert_int_equal(stored_count(f->s, m.sids[k]), 1);
    eventlog_op room = {.apply = apply_free_disk};
    assert_int_equal(submit_and_wait(m.log, room), 0);
    int64_t t0 = clock_mono_ms();
    while (stored_count(f->s, m.sids[MARK_N - 1]) < 1 + MARK_EACH && clock_mono_ms() - t0 < 10000)
        clock_sleep_ms(10);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    int warned = count_lines_with(logged, "Cannot store the token journal");
    fclose(logged);
    assert_int_equal(warned, 1);
    for (size_t k = 0; k < MARK_N; k++)
        assert_int_equal(stored_count(f->s, m.sids[k]), 1 + MARK_EACH + (k < MARK_MORE));
    eventlog_stop(m.log);
    for (size_t k = 0; k <= MARK_N; k++) free(m.sids[k]);
    free(path);
}

/* What eventlog_set_journal_timer's arm was asked: how often, and the
 * last pause. */
typedef struct arms {
    int n;
    int64_t ms;
} arms;

static void record_arm(void *ud, int64_t ms)
{
    arms *a = ud;
    a->n++;
    a->ms = ms;
}

/*
 * The journal's pause timed on the loop (eventlog_set_journal_timer): a
 * token journaled while the writer idles arms the loop's timer once and
 * leaves the writer asleep, so nothing stores the journal until the timer
 * fires; then eventlog_journal_timer_fired wakes the writer to store it
 * once no commit came for the idle time, and before that arms the timer
 * again for the rest. Turned off, the idle writer times the journal
 * itself again.
 */
static void test_token_journal_timed_on_the_loop(void **state)
{
    fx *f = *state;
    journal_fx j;
    journal_start(f, &j);
    eventlog_set_journal_idle(j.log, 300);
    append_published(j.log, &j.t, j.sid, "a");
    clock_sleep_ms(100); /* the writer waits for work, untimed */
    arms a = {0};
    eventlog_set_journal_timer(j.log, record_arm, &a);
    append_published(j.log, &j.t, j.sid, "b");
    append_published(j.log, &j.t, j.sid, "c");
    assert_int_equal(j.t.first_held, 2);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.ms, 300);
    /* Past the idle time the writer has not stored it: it was not woken. */
    clock_sleep_ms(450);
    assert_int_equal(stored_count(f->s, j.sid), 1);

    int64_t fired = clock_mono_ms();
    eventlog_journal_timer_fired(j.log);
    assert_int_equal(a.n, 1);
    while (stored_count(f->s, j.sid) < 3 && clock_mono_ms() - fired < 10000) clock_sleep_ms(5);
    assert_int_equal(stored_count(f->s, j.sid), 3);
    /* At once, not after a pause of the writer's own. */
    assert_true(clock_mono_ms() - fired < 250);

    /* The next token arms it again; fired at once after that commit, the
     * timer is armed for the rest of the pause and stores nothing. */
    clock_sleep_ms(100); /* the writer waits for work again, untimed */
    append_published(j.log, &j.t, j.sid, "d");
    assert_int_equal(a.n, 2);
    eventlog_journal_timer_fired(j.log);
    assert_int_equal(a.n, 3);
    assert_true(a.ms > 0 && a.ms <= 300);
    assert_int_equal(stored_count(f->s, j.sid), 3);

    /* Turned off, the idle writer takes the pause over and stores it. */
    eventlog_set_journal_timer(j.log, NULL, NULL);
    int64_t t0 = clock_mono_ms();
    while (stored_count(f->s, j.sid) < 4 && clock_mono_ms() - t0 < 10000) clock_sleep_ms(10);
    assert_int_equal(stored_count(f->s, j.sid), 4);
    assert_int_equal(a.n, 3);
    eventlog_stop(j.log);
    assert_int_equal(j.t.failed_visible, 0);
    free(j.sid);
    free(j.path);
}

/*
 * A batch that also writes to another session: the token journal takes
 * the tokens of the sessions that nothing else in the batch writes to,
 * and the published order of each session stays its seq order. Tokens of
 * the session an apply names, and every token of a batch with an apply
 * that names none, go to the transaction.
 */
static void test_token_journal_takes_tokens_beside_other_writes(void **state)
{
    fx *f = *state;
    journal_fx j;
    journal_start(f, &j);
    char *other = make_session(f->s, "log", 1000);
    /* A transaction each teaches the journal both sessions. */
    append_published(j.log, &j.t, j.sid, "a");
    append_published(j.log, &j.t, other, "a");
    const char *want[2][4] = {
        {"publish 2 token", "publish 3 token", "publish 2 token", "publish 3 token"},
        {"publish 4 token", "publish 4 token", "publish 5 token", "publish 5 token"},
    };
    const int64_t stored[2][2] = {{1, 3}, {5, 5}};
    for (int named = 1; named >= 0; named--) {
        /* One batch: the writer is busy while all four are submitted, with
         * an apply that names no session, so that the loop leaves every
         * token to the writer (see the next test). */
        slow_apply sa = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
        eventlog_op slow = {.apply = apply_slowly, .arg = &sa};
        hold_writer(j.log, &sa, &slow);
        size_t before = j.t.n;
        eventlog_append(j.log, tok(j.sid, "r", "m", "b"));
        eventlog_op write = {.apply = apply_nothing,
                             .ev = tok(other, "r", "m", "c"),
                             .session_id = named ? other : NULL};
        eventlog_submit(j.log, &write);
        eventlog_append(j.log, tok(j.sid, "r", "m", "d"));
        eventlog_append(j.log, tok(other, "r", "m", "e"));
        drain_until(j.log, &j.t, before + 4);
        int k = named ? 0 : 1;
        for (size_t i = 0; i < 4; i++) assert_string_equal(j.t.lines[before + i], want[k][i]);
        assert_int_equal(stored_count(f->s, j.sid), stored[k][0]);
        assert_int_equal(stored_count(f->s, other), stored[k][1]);
    }
    assert_int_equal(j.t.failed_visible, 0);
    eventlog_stop(j.log);
    assert_int_equal(stored_count(f->s, j.sid), 5);
    free(other);
    free(j.sid);
    free(j.path);
}

/*
 * While the writer writes a batch, a token of a session with nothing
 * waiting for the writer is journaled by the caller's thread and published
 * before the call returns, unless the caller journaled one of that
 * session's less than EVENTLOG_LOOP_PACE_NS before (an urgent one, the
 * answer's first token, is journaled however soon). A token of a session
 * that has an operation in the writer's hands waits for it, and while an
 * operation that names no session is not handed out every token does.
 */
static void test_token_journal_taken_by_the_loop_while_the_writer_writes(void **state)
{
    fx *f = *state;
    journal_fx j;
    journal_start(f, &j);
    char *other = make_session(f->s, "log", 1000);
    append_published(j.log, &j.t, j.sid, "a");
    append_published(j.log, &j.t, other, "a");
    struct pollfd pfd = {.fd = eventlog_fd(j.log), .events = POLLIN};

    slow_apply sa = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    eventlog_op slow = {.apply = apply_slowly, .arg = &sa, .session_id = other};
    hold_writer(j.log, &sa, &slow);
    size_t before = j.t.n;
    int64_t t0 = clock_mono_ns();
    eventlog_append(j.log, tok(j.sid, "r", "m", "b"));
    assert_int_equal(j.t.n, before + 1);
    assert_string_equal(j.t.lines[before], "publish 2 token");
    assert_int_equal(j.t.first_held, 2);
    eventlog_op urgent = {.ev = tok(j.sid, "r", "m", "c")};
    eventlog_submit_urgent(j.log, &urgent);
    assert_int_equal(j.t.n, before + 2);
    assert_string_equal(j.t.lines[before + 1], "publish 3 token");
    eventlog_append(j.log, tok(j.sid, "r", "m", "d"));
    /* Soon after the last: it waits for the writer (a machine too slow to
     * tell within the pace may have journaled it). */
    if (clock_mono_ns() - t0 < EVENTLOG_LOOP_PACE_NS) assert_int_equal(j.t.n, before + 2);
    size_t held_back = j.t.n;
    /* The writer is still in its slow apply: nothing came back yet. */
    assert_int_equal(poll(&pfd, 1, 0), 0);
    eventlog_append(j.log, tok(other, "r", "m", "e"));
    eventlog_op any = {.apply = apply_nothing};
    eventlog_submit(j.log, &any);
    eventlog_append(j.log, tok(j.sid, "r", "m", "f"));
    assert_int_equal(j.t.n, held_back);
    assert_int_equal(poll(&pfd, 1, 0), 0);
    drain_until(j.log, &j.t, before + 5);
    assert_string_equal(j.t.lines[before + 2], "publish 4 token");
    assert_string_equal(j.t.lines[before + 3], "publish 2 token");
    assert_string_equal(j.t.lines[before + 4], "publish 5 token");
    /* The batch with the operation that names no session stored its
     * tokens in its transaction, after those the caller journaled. */
    assert_int_equal(stored_count(f->s, j.sid), 5);
    assert_int_equal(stored_count(f->s, other), 2);

    /* Everything handed out: the caller journals again. */
    eventlog_append(j.log, tok(j.sid, "r", "m", "g"));
    assert_int_equal(j.t.n, before + 6);
    assert_string_equal(j.t.lines[before + 5], "publish 6 token");
    assert_int_equal(stored_count(f->s, j.sid), 5);
    assert_int_equal(j.t.failed_visible, 0);
    eventlog_stop(j.log);
    assert_int_equal(stored_count(f->s, j.sid), 6);
    free(other);
    free(j.sid);
    free(j.path);
}

/* A second connection to the fixture's database with the token journal
 * attached, as the event log's writer has. */
static store *open_with_journal(const fx *f)
{
    store *s = NULL;
    char err[256];
    assert_int_equal(store_open(f->url, &s, err, sizeof err), 0);
    assert_int_equal(store_journal_attach(s, f->url), 0);
    return s;
}

/* Appends one token of session sid and run rid to the journal of s;
 * returns what store_journal_append does. */
static int journal_one(store *s, const char *sid, const char *rid, const char *text)
{
    evt *e = tok(sid, rid, "m", text);
    int rc = store_journal_append(s, &e, 1);
    evt_unref(e);
    return rc;
}

/* A transaction that appends ev (reference dropped) and tells the journal
 * of s how it ended, as the event log's writer does. */
static int journal_txn(store *s, evt *ev)
{
    int rc = store_begin(s);
    if (rc == 0) rc = store_event_append(s, &ev, 1);
    if (rc == 0) {
        rc = store_commit(s);
    } else {
        store_rollback(s);
    }
    store_journal_end(s, rc == 0);
    evt_unref(ev);
    return rc;
}

/* A second connection with the token journal attached, and a session
 * that a first token of run rid taught it (seq 1), as most journal tests
 * begin. */
typedef struct journal_conn {
    char *path;
    store *s;
    char *sid;
} journal_conn;

static journal_conn journal_conn_open(const fx *f, const char *rid)
{
    journal_conn c = {.path = journal_path_or_skip(f)};
    c.s = open_with_journal(f);
    c.sid = make_session(f->s, "log", 1000);
    assert_int_equal(journal_txn(c.s, tok(c.sid, rid, "m", "a")), 0);
    return c;
}

static void journal_conn_close(journal_conn *c)
{
    store_close(c->s);
    free(c->sid);
    free(c->path);
}

/* A store with the token journal and two sessions it knows (one token of
 * each stored), as the loop-append tests below start. */
typedef struct journal_two {
    char *path;
    store *s;
    char *a, *b;
} journal_two;

static journal_two journal_two_open(const fx *f)
{
    journal_two t = {.path = journal_path_or_skip(f)};
    t.s = open_with_journal(f);
    t.a = make_session(f->s, "log", 1000);
    t.b = make_session(f->s, "log", 1000);
    assert_int_equal(journal_txn(t.s, tok(t.a, "r", "m", "a")), 0);
    assert_int_equal(journal_txn(t.s, tok(t.b, "r", "m", "a")), 0);
    return t;
}

static void journal_two_close(journal_two *t)
{
    store_close(t->s);
    free(t->a);
    free(t->b);
    free(t->path);
}

/* Begins a transaction that appends a status to session a, which settles
 * a's held token first: the status gets seq 3, after the stored token
 * and the held one. */
static void journal_two_begin_status(store *s, const char *a)
{
    assert_int_equal(store_begin(s), 0);
    evt_origin o = origin(a, "r", 1000);
    evt *thinking = evt_status(&o, STATUS_THINKING, NULL);
    assert_int_equal(store_event_append(s, &thinking, 1), 0);
    assert_int_equal(thinking->seq, 3);
    evt_unref(thinking);
}

/*
 * The loop's own append declines a session whose held events the open
 * transaction stores (its last seq is learned again when that ends) and
 * takes other sessions' tokens meanwhile; asked to pace, it declines a
 * session it appended to a moment ago.
 */
static void test_token_journal_loop_append_leaves_stored_sessions(void **state)
{
    fx *f = *state;
    journal_two two = journal_two_open(f);
    store *s = two.s;
    const char *a = two.a, *b = two.b;
    evt *kept = tok(a, "r", "m", "held");
    assert_int_equal(store_journal_try_append(s, kept, 0), 1);
    assert_int_equal(kept->seq, 2);
    evt_unref(kept);

    journal_two_begin_status(s, a);
    evt *late = tok(a, "r", "m", "late");
    assert_int_equal(store_journal_try_append(s, late, 0), 0);
    evt_unref(late);
    evt *beside = tok(b, "r", "m", "beside");
    assert_int_equal(store_journal_try_append(s, beside, 0), 1);
    assert_int_equal(beside->seq, 2);
    evt_unref(beside);
    assert_int_equal(store_commit(s), 0);
    store_journal_end(s, true);

    assert_int_equal(stored_count(f->s, a), 3);
    assert_int_equal(stored_count(f->s, b), 1);
    assert_int_equal(store_journal_pending(s), 1);
    evt *next = tok(a, "r", "m", "next");
    assert_int_equal(store_journal_try_append(s, next, 0), 1);
    assert_int_equal(next->seq, 4);
    evt_unref(next);
    /* Paced: a session the loop appended to a moment ago is declined. */
    evt *fast = tok(a, "r", "m", "fast");
    assert_int_equal(store_journal_try_append(s, fast, INT64_C(1000000000)), 0);
    assert_int_equal(store_journal_pending(s), 2);
    assert_int_equal(store_journal_try_append(s, fast, 0), 1);
    assert_int_equal(fast->seq, 5);
    evt_unref(fast);
    assert_int_equal(store_journal_pending(s), 3);
    journal_two_close(&two);
}

/* The loop's side of the test below: appends a token of session sid every
 * 2 ms until told to stop (or LOOP_APPENDS_MAX times), counting what
 * store_journal_try_append answered. */
enum { LOOP_APPENDS_MAX = 50 };
typedef struct loop_appends {
    store *s;
    const char *sid;
    atomic_bool stop, started;
    int taken, declined;
} loop_appends;

static void *loop_appends_main(void *arg)
{
    loop_appends *l = arg;
    for (int i = 0; i < LOOP_APPENDS_MAX && !atomic_load(&l->stop); i++) {
        evt *e = tok(l->sid, "r", "m", "beside");
        if (store_journal_try_append(l->s, e, 0) == 1)
            l->taken++;
        else
            l->declined++;
        evt_unref(e);
        atomic_store(&l->started, true);
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

/*
 * While the writer's transaction stores a session's held events together
 * with another write of that session (store_journal_settle), the loop's
 * thread goes on appending other sessions' tokens: the statements run
 * without the journal's lock. A trigger makes the held row's insert take
 * a while (a join of 3,000 rows with themselves); a token that found the
 * lock taken during it used to be declined, and go to the writer.
 */
static void test_token_journal_loop_appends_while_a_session_settles(void **state)
{
    fx *f = *state;
    journal_two two = journal_two_open(f);
    store *s = two.s;
    const char *a = two.a, *b = two.b;
    assert_int_equal(journal_one(s, a, "r", "held"), 1);
    assert_int_equal(db_exec_script(store_db(s),
                                    "CREATE TEMP TABLE slow (x);"
                                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                                    "FROM n WHERE i < 3000) INSERT INTO slow SELECT i FROM n;"
                                    "CREATE TEMP TRIGGER slow_held AFTER INSERT ON stream_events "
                                    "WHEN NEW.type <> 'status' BEGIN "
                                    "SELECT count(*) FROM temp.slow s1, temp.slow s2; END;"),
                     0);

    loop_appends l = {.s = s, .sid = b};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, loop_appends_main, &l), 0);
    while (!atomic_load(&l.started)) {
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    int64_t t0 = clock_mono_ns();
    journal_two_begin_status(s, a);
    int64_t settled_ms = (clock_mono_ns() - t0) / 1000000;
    assert_int_equal(store_commit(s), 0);
    store_journal_end(s, true);
    atomic_store(&l.stop, true);
    assert_int_equal(pthread_join(t, NULL), 0);

    /* The held row took long enough for several of the loop's appends to
     * come while it was written, and not one of them was declined. */
    assert_true(settled_ms >= 20);
    assert_true(l.taken >= 5);
    assert_int_equal(l.declined, 0);
    assert_int_equal(stored_count(f->s, a), 3);
    assert_int_equal(stored_count(f->s, b), 1);
    held h = held_of(s, b, 0);
    assert_int_equal(h.n, l.taken);
    assert_int_equal(h.first, 2);
    assert_int_equal(h.last, 1 + l.taken);
    assert_int_equal(store_journal_pending(s), (size_t)l.taken);
    journal_two_close(&two);
}

/* A transaction that stores what the journal of s holds, as the event
 * log's writer does when it has been idle; between the flush and the
 * commit, the loop appends `during` (when not NULL), which must be taken.
 * Returns what the commit returned. */
static int journal_flush_txn(store *s, evt *during, bool commit)
{
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_journal_flush(s), 0);
    if (during) assert_int_equal(store_journal_try_append(s, during, 0), 1);
    int rc = commit ? store_commit(s) : store_rollback(s);
    store_journal_end(s, commit && rc == 0);
    return rc;
}

/*
 * While a flush stores what the journal holds, the loop goes on appending
 * to the same sessions: nothing else in that transaction takes their
 * seqs. The new events stay held when it commits, after the stored ones;
 * a rolled-back flush keeps everything.
 */
static void test_token_journal_loop_appends_during_a_flush(void **state)
{
    fx *f = *state;
    journal_conn c = journal_conn_open(f, "r");
    store *s = c.s;
    const char *a = c.sid;
    assert_int_equal(journal_one(s, a, "r", "b"), 1);
    assert_int_equal(journal_one(s, a, "r", "c"), 1);

    evt *during = tok(a, "r", "m", "d");
    assert_int_equal(journal_flush_txn(s, during, true), 0);
    assert_int_equal(during->seq, 4);
    evt_unref(during);
    assert_int_equal(stored_count(f->s, a), 3);
    assert_int_equal(store_journal_pending(s), 1);
    held h = held_of(s, a, 0);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.first, 4);
    /* The session's last seq is the held event's, not the flush's. */
    assert_int_equal(journal_one(s, a, "r", "e"), 1);
    assert_int_equal(held_of(s, a, 0).last, 5);

    /* Rolled back: the flushed events and the one appended meanwhile are
     * all still held, in order, and the next commit stores them. */
    during = tok(a, "r", "m", "f");
    assert_int_equal(journal_flush_txn(s, during, false), 0);
    assert_int_equal(during->seq, 6);
    evt_unref(during);
    assert_int_equal(store_journal_pending(s), 3);
    assert_int_equal(stored_count(f->s, a), 3);
    assert_int_equal(journal_flush_txn(s, NULL, true), 0);
    assert_int_equal(store_journal_pending(s), 0);
    assert_int_equal(stored_count(f->s, a), 6);
    /* A transaction of the session's own goes on from there. */
    assert_int_equal(journal_txn(s, tok(a, "r", "m", "g")), 0);
    assert_int_equal(stored_count(f->s, a), 7);
    journal_conn_close(&c);
}

/* qsort's comparison of two strings by their pointers. */
static int strcmp_ptrs(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A flush stores the sessions' held events in the order of their ids, the
 * order of the event table's key, whatever order the journal keeps them
 * in: at a thousand sessions a store in the journal's own order went
 * through more pages than the writer's cache holds and wrote many of them
 * twice (docs/benchmarks.md, fix 88). The rows' rowids are the order of
 * their inserts.
 */
static void test_token_journal_flush_in_id_order(void **state)
{
    fx *f = *state;
    char *path = journal_path_or_skip(f);
    store *s = open_with_journal(f);
    enum { SESSIONS = 12 };
    char *sid[SESSIONS];
    for (int i = 0; i < SESSIONS; i++) {
        sid[i] = make_session(f->s, "log", 1000);
        assert_int_equal(journal_txn(s, tok(sid[i], "r", "m", "a")), 0);
    }
    for (int i = 0; i < SESSIONS; i++) assert_int_equal(journal_one(s, sid[i], "r", "b"), 1);
    assert_int_equal(journal_flush_txn(s, NULL, true), 0);
    qsort(sid, SESSIONS, sizeof *sid, strcmp_ptrs);
    assert_int_equal(store_journal_pending(s), 0);

    db_result *r = NULL;
    assert_int_equal(db_exec(store_db(f->s),
                             "SELECT session_id FROM stream_events WHERE seq = 2 ORDER BY rowid", 0,
                             NULL, &r),
                     0);
    assert_int_equal(db_result_rows(r), SESSIONS);
    for (int i = 0; i < SESSIONS; i++) {
        assert_string_equal(db_result_get(r, (size_t)i, 0), sid[i]);
        free(sid[i]);
    }
    db_result_free(r);
    store_close(s);
    free(path);
}

/*
 * A journal that is never empty at a commit, because the loop appends
 * during every flush, still never fills: once the half it writes is full
 * it starts over in the other, where everything was stored. After more
 * than twice the file's size went through it, every token was taken, and
 * a crash (closing without storing) loses nothing: start-up reads both
 * halves, in seq order, skipping what was stored.
 */
static void test_token_journal_starts_over_in_the_other_half(void **state)
{
    fx *f = *state;
    char *path = journal_path_or_skip(f);
    store *s = open_with_journal(f);
    char *a = make_session(f->s, "log", 1000);
    assert_int_equal(journal_txn(s, tok(a, "r", "m", "a")), 0);
    /* 1,400-byte tokens: a session's room holds eleven. */
    char text[1401];
    memset(text, 'h', 1400);
    text[1400] = '\0';
    int64_t total = 1;
    size_t written = 0;
    while (written < 2 * STORE_JOURNAL_FILE_MAX + STORE_JOURNAL_HALF) {
        for (int i = 0; i < 6; i++) {
            evt *e = tok(a, "r", "m", text);
            assert_int_equal(store_journal_try_append(s, e, 0), 1);
            written += e->json_len + 1;
            evt_unref(e);
            total++;
        }
        evt *during = tok(a, "r", "m", text);
        assert_int_equal(journal_flush_txn(s, during, true), 0);
        written += during->json_len + 1;
        evt_unref(during);
        total++;
        assert_int_equal(store_journal_pending(s), 1);
    }
    assert_int_equal(stored_count(f->s, a), total - 1);
    /* A few more held, then a crash. */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(journal_one(s, a, "r", "late"), 1);
        total++;
    }
    store_close(s);
    assert_recovered(f, a, 5, total);
    free(a);
    free(path);
}

/* Writes the line of a token event at offset `at` of the journal file;
 * returns its length. */
static off_t journal_line_at(int fd, off_t at, const char *sid, int64_t seq, const char *text)
{
    evt *e = tok(sid, "r", "m", text);
    e->seq = seq;
    assert_int_equal(evt_encode(e), 0);
    char *line = malloc(e->json_len + 1);
    assert_non_null(line);
    memcpy(line, e->json, e->json_len);
    line[e->json_len] = '\n';
    off_t len = (off_t)e->json_len + 1;
    assert_int_equal(pwrite(fd, line, (size_t)len, at), (ssize_t)len);
    free(line);
    evt_unref(e);
    return len;
}

/*
 * Start-up reads both halves: a session whose older events sit in the
 * second half and newer ones in the first (the journal went back to the
 * first half) gets them in seq order, what was stored already is skipped,
 * and a line found twice is stored once (a file written before the halves
 * may hold a line across the middle, which both halves' reads find).
 */
static void test_token_journal_recovers_both_halves_in_order(void **state)
{
    fx *f = *state;
    char *path = journal_path_or_skip(f);
    char *sid = session_with_one_stored(f);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, STORE_JOURNAL_FILE_MAX), 0);
    off_t at = STORE_JOURNAL_HALF;
    at += journal_line_at(fd, at, sid, 1, "stored");
    at += journal_line_at(fd, at, sid, 2, "two");
    journal_line_at(fd, at, sid, 3, "three");
    off_t front = journal_line_at(fd, 0, sid, 4, "four");
    journal_line_at(fd, front, sid, 3, "three");
    close(fd);

    assert_recovered(f, sid, 3, 4);
    assert_int_equal(file_size(path), 0);
    free(sid);
    free(path);
}

/*
 * A full journal file takes nothing more. Each transaction then stores
 * what the journal holds for its own sessions and for
 * STORE_JOURNAL_FULL_SESSIONS more, so the file empties over a few
 * commits rather than in one long one; once nothing in it waits, it starts
 * over.
 */
static void test_token_journal_full_file_empties_over_commits(void **state)
{
    fx *f = *state;
    char *path = journal_path_or_skip(f);
    store *s = open_with_journal(f);
    enum { MAX_SESSIONS = 3000 };
    char **sids = calloc(MAX_SESSIONS, sizeof *sids);
    assert_non_null(sids);
    /* Tokens of about 230 bytes each: eight fill a session's first room
     * (STORE_JOURNAL_BYTES), so fewer sessions than the journal keeps
     * (STORE_JOURNAL_SESSIONS) fill the file. */
    char text[101];
    memset(text, 'h', 100);
    text[100] = '\0';
    size_t held_sessions = 0;
    for (;;) {
        assert_true(held_sessions < MAX_SESSIONS);
        char *sid = sids[held_sessions] = make_session(f->s, "log", 1000);
        /* A transaction teaches the journal the session. */
        assert_int_equal(journal_txn(s, tok(sid, "r", "m", "a")), 0);
        evt *evs[STORE_JOURNAL_EVENTS];
        for (size_t i = 0; i < STORE_JOURNAL_EVENTS; i++) evs[i] = tok(sid, "r", "m", text);
        int taken = store_journal_append(s, evs, STORE_JOURNAL_EVENTS);
        /* Numbered and encoded either way: they fit the session's first
         * room, so only the file can decline them. */
        assert_true(STORE_JOURNAL_EVENTS * evs[0]->json_len <= STORE_JOURNAL_BYTES);
        unref_all(evs, STORE_JOURNAL_EVENTS);
        assert_true(taken >= 0);
        if (!taken) break;
        held_sessions++;
    }
    /* The last session's tokens did not fit in what was left of the file:
     * the journal declined them whole, wrote nothing past its end, and
     * is full. */
    assert_int_equal(file_size(path), (off_t)STORE_JOURNAL_FILE_MAX);
    assert_true(held_sessions > 2 * STORE_JOURNAL_FULL_SESSIONS);
    size_t left = held_sessions;
    assert_int_equal(store_journal_pending(s), left * STORE_JOURNAL_EVENTS);
    assert_int_equal(journal_one(s, sids[0], "r", "x"), 0);
    char *last = sids[held_sessions];
    assert_int_equal(stored_count(f->s, last), 1);

    /* A session deleted behind the journal's back: its events cannot be
     * stored, are dropped with an error in the log, and fail nothing
     * else. */
    char *gone = NULL;
    for (size_t i = 0; !gone && i < held_sessions; i++)
        if (stored_count(f->s, sids[i]) == 1) gone = sids[i];
    assert_non_null(gone);
    assert_int_equal(store_session_delete(f->s, gone), 0);

    /* Each transaction stores what STORE_JOURNAL_FULL_SESSIONS more
     * sessions hold, while the journal still declines tokens. */
    size_t commits = 0;
    while (store_journal_pending(s) > 0) {
        assert_int_equal(journal_one(s, last, "r", "c"), 0);
        assert_int_equal(journal_txn(s, tok(last, "r", "m", "c")), 0);
        left = left > STORE_JOURNAL_FULL_SESSIONS ? left - STORE_JOURNAL_FULL_SESSIONS : 0;
        assert_int_equal(store_journal_pending(s), left * STORE_JOURNAL_EVENTS);
        commits++;
    }
    assert_int_equal(commits, (held_sessions + STORE_JOURNAL_FULL_SESSIONS - 1) /
                                  STORE_JOURNAL_FULL_SESSIONS);
    for (size_t i = 0; i < held_sessions; i++)
        assert_int_equal(stored_count(f->s, sids[i]),
                         sids[i] == gone ? 0 : 1 + STORE_JOURNAL_EVENTS);
    assert_int_equal(stored_count(f->s, last), 1 + (int64_t)commits);

    /* Emptied, the file starts over and takes a token again (of the
     * session the last transaction taught it: dropping the events of the
     * deleted one made it forget the sessions holding nothing). */
    assert_int_equal(journal_one(s, last, "r", "d"), 1);
    assert_int_equal(store_journal_pending(s), 1);
    store_close(s);
    for (size_t i = 0; i <= held_sessions; i++) free(sids[i]);
    free(sids);
    free(path);
}

/*
 * A session's held events are of one run, since they go in as one row of
 * it: a token of another run is not journaled, alone or in a batch, and
 * the transaction it goes to stores the held ones first.
 */
static void test_token_journal_holds_one_run_per_session(void **state)
{
    fx *f = *state;
    journal_conn c = journal_conn_open(f, "r1");
    store *s = c.s;
    const char *sid = c.sid;
    evt *evs[2] = {tok(sid, "r1", "m", "b"), tok(sid, "r1", "m", "c")};
    assert_int_equal(store_journal_append(s, evs, 2), 1);
    unref_all(evs, 2);
    assert_int_equal(journal_one(s, sid, "r2", "d"), 0);
    evt *mixed[2] = {tok(sid, "r1", "m", "e"), tok(sid, "r2", "m", "f")};
    bool taken[2] = {true, true};
    assert_int_equal(store_journal_append_part(s, mixed, 2, taken), 0);
    assert_false(taken[0]);
    assert_false(taken[1]);
    unref_all(mixed, 2);
    assert_int_equal(store_journal_pending(s), 2);
    assert_int_equal(journal_txn(s, tok(sid, "r2", "m", "g")), 0);
    assert_int_equal(store_journal_pending(s), 0);
    assert_int_equal(count_rows(f->s,
                                "SELECT COUNT(*) FROM stream_events WHERE session_id = ? AND "
                                "type = 'tokens' AND run_id = 'r1' AND seq = 3",
                                sid),
                     1);
    assert_int_equal(stored_count(f->s, sid), 4);
    /* The next run's tokens are journaled from then on. */
    evt *next = tok(sid, "r2", "m", "h");
    assert_int_equal(store_journal_append(s, &next, 1), 1);
    assert_int_equal(next->seq, 5);
    held h = held_of(s, sid, 0);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.first, 5);
    assert_true(h.tokens);
    evt_unref(next);
    assert_int_equal(store_journal_pending(s), 1);
    journal_conn_close(&c);
}

/*
 * After a transaction that did not commit (the disk full, the database
 * read-only) the journal takes nothing, so that each token goes to a
 * transaction, which fails as long as the database refuses writes; it
 * takes tokens again once a transaction commits.
 */
static void test_token_journal_takes_nothing_after_a_failed_transaction(void **state)
{
    fx *f = *state;
    journal_conn c = journal_conn_open(f, "r");
    store *s = c.s;
    const char *sid = c.sid;
    assert_int_equal(journal_one(s, sid, "r", "b"), 1);
    /* A transaction that fails: an event of a session that is not there. */
    assert_true(journal_txn(s, tok("ses_missing", "r", "m", "x")) < 0);
    assert_int_equal(journal_one(s, sid, "r", "c"), 0);
    evt *batch[1] = {tok(sid, "r", "m", "c")};
    bool taken[1] = {true};
    assert_int_equal(store_journal_append_part(s, batch, 1, taken), 0);
    assert_false(taken[0]);
    unref_all(batch, 1);
    evt *e = tok(sid, "r", "m", "c");
    assert_int_equal(store_journal_try_append(s, e, 0), 0);
    evt_unref(e);
    assert_int_equal(store_journal_pending(s), 1);
    /* One that commits stores what the journal held first; then it takes
     * tokens again. */
    assert_int_equal(journal_txn(s, tok(sid, "r", "m", "c")), 0);
    assert_int_equal(stored_count(f->s, sid), 3);
    e = tok(sid, "r", "m", "d");
    assert_int_equal(store_journal_append(s, &e, 1), 1);
    assert_int_equal(e->seq, 4);
    evt_unref(e);
    journal_conn_close(&c);
}

/*
 * Past STORE_JOURNAL_EVENTS a session has room only while the journal
 * holds at most STORE_JOURNAL_SHARED events in all: a run streaming alone
 * keeps up to 64, many at once about 8 each.
 */
static void test_token_journal_shares_room_past_eight(void **state)
{
    fx *f = *state;
    char *path = journal_path_or_skip(f);
    store *s = open_with_journal(f);
    enum { N = STORE_JOURNAL_SHARED / STORE_JOURNAL_EVENTS };
    char *sids[N];
    for (size_t i = 0; i < N; i++) {
        sids[i] = make_session(f->s, "log", 1000);
        assert_int_equal(journal_txn(s, tok(sids[i], "r", "m", "a")), 0);
    }
    /* The first session takes nine at once, the journal being empty: it
     * holds its session's events from seq 2 on. */
    evt *evs[STORE_JOURNAL_EVENTS + 1];
    for (size_t i = 0; i <= STORE_JOURNAL_EVENTS; i++) evs[i] = tok(sids[0], "r", "m", "x");
    assert_int_equal(store_journal_append(s, evs, STORE_JOURNAL_EVENTS + 1), 1);
    held h = held_of(s, sids[0], 0);
    assert_int_equal(h.n, STORE_JOURNAL_EVENTS + 1);
    assert_int_equal(h.first, 2);
    assert_int_equal(h.last, STORE_JOURNAL_EVENTS + 2);
    assert_true(h.tokens);
    unref_all(evs, STORE_JOURNAL_EVENTS + 1);
    /* Every other session takes its 8. */
    for (size_t k = 1; k < N; k++) {
        for (size_t i = 0; i < STORE_JOURNAL_EVENTS; i++) evs[i] = tok(sids[k], "r", "m", "x");
        assert_int_equal(store_journal_append(s, evs, STORE_JOURNAL_EVENTS), 1);
        unref_all(evs, STORE_JOURNAL_EVENTS);
    }
    assert_int_equal(store_journal_pending(s), STORE_JOURNAL_SHARED + 1);
    /* The shared room is used up: no session takes a ninth. */
    for (size_t k = 0; k < 2; k++) {
        assert_int_equal(journal_one(s, sids[k], "r", "y"), 0);
    }
    /* A transaction of the first session stores its nine; then there is
     * room again. */
    assert_int_equal(journal_txn(s, tok(sids[0], "r", "m", "z")), 0);
    assert_int_equal(stored_count(f->s, sids[0]), 1 + STORE_JOURNAL_EVENTS + 1 + 1);
    assert_int_equal(store_journal_pending(s), STORE_JOURNAL_SHARED - STORE_JOURNAL_EVENTS);
    evt *e = tok(sids[1], "r", "m", "y");
    assert_int_equal(store_journal_append(s, &e, 1), 1);
    h = held_of(s, sids[1], 0);
    assert_int_equal(h.n, STORE_JOURNAL_EVENTS + 1);
    assert_int_equal(h.first, 2);
    evt_unref(e);
    store_close(s);
    for (size_t i = 0; i < N; i++) free(sids[i]);
    free(path);
}

/* An operation's done callback that appends a token, as a run does when
 * the write it waited for is done. */
typedef struct then_token {
    trace *t;
    eventlog *log;
    const char *sid;
} then_token;

static void done_then_token(void *arg, evt *ev, int status)
{
    then_token *x = arg;
    on_done(x->t, ev, status);
    clock_sleep_ms(20); /* the writer waits again, with nothing queued */
    eventlog_append(x->log, tok(x->sid, "r", "m", "after"));
}

/*
 * A batch of tokens of several sessions: the journal takes those of the
 * sessions with room, and the others go to a transaction, which stores
 * what the journal held for them first. The journaled ones are published
 * first, each session's events in order.
 */
static void test_token_journal_takes_part_of_a_batch(void **state)
{
    fx *f = *state;
    journal_fx j;
    journal_start(f, &j);
    char *b = make_session(f->s, "log", 1000);
    /* Both sessions known to the journal; the first one's journal full
     * (it streamed alone: STORE_JOURNAL_EVENTS_MAX). */
    append_published(j.log, &j.t, j.sid, "a1");
    append_published(j.log, &j.t, b, "b1");
    for (int i = 0; i < STORE_JOURNAL_EVENTS_MAX; i++) append_published(j.log, &j.t, j.sid, "a");
    assert_int_equal(stored_count(f->s, j.sid), 1);
    int in_tables = j.t.in_tables;

    /* Four tokens queued behind a slow operation: one batch. */
    slow_apply sa = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    eventlog_op slow = {.apply = apply_slowly, .arg = &sa};
    hold_writer(j.log, &sa, &slow);
    size_t before = j.t.n;
    eventlog_append(j.log, tok(j.sid, "r", "m", "a10"));
    eventlog_append(j.log, tok(b, "r", "m", "b2"));
    eventlog_append(j.log, tok(b, "r", "m", "b3"));
    eventlog_append(j.log, tok(j.sid, "r", "m", "a11"));
    drain_until(j.log, &j.t, before + 4);
    assert_tokens_published(&j.t, before, 2, 2);
    assert_tokens_published(&j.t, before + 2, STORE_JOURNAL_EVENTS_MAX + 2, 2);
    assert_int_equal(j.t.in_tables, in_tables + 2);
    assert_int_equal(j.t.failed_visible, 0);
    assert_int_equal(stored_count(f->s, j.sid), STORE_JOURNAL_EVENTS_MAX + 3);
    assert_int_equal(stored_count(f->s, b), 1);
    eventlog_flush(j.log);
    assert_int_equal(stored_count(f->s, b), 3);
    eventlog_stop(j.log);
    free(b);
    free(j.sid);
    free(j.path);
}

/*
 * The journal takes the "responding" status too (an answer's first token
 * follows it): the two are published at once and reach the tables with
 * the next transaction; another status goes to a transaction. An
 * event appended from a done callback, while the writer waits, is still
 * published after the event of that callback.
 */
static void test_token_journal_takes_status_events(void **state)
{
    fx *f = *state;
    journal_fx j;
    journal_start(f, &j);
    append_published(j.log, &j.t, j.sid, "a"); /* a transaction: the journal learns the session */

    evt_origin o = origin(j.sid, "r", 1000);
    eventlog_op status = {.ev = evt_status(&o, STATUS_RESPONDING, NULL)};
    submit_traced(j.log, &j.t, &status, 1);
    append_published(j.log, &j.t, j.sid, "b");
    assert_string_equal(j.t.lines[1], "publish 2 status");
    assert_string_equal(j.t.lines[2], "publish 3 token");
    assert_int_equal(stored_count(f->s, j.sid), 1);
    assert_int_equal(j.t.in_tables, 1);
    assert_int_equal(j.t.failed_visible, 0);

    /* A run waiting for a person is in the tables at once, after the two
     * held events. */
    eventlog_op waiting = {.ev = evt_status(&o, STATUS_WAITING_FOR_APPROVAL, "shell")};
    submit_traced(j.log, &j.t, &waiting, 1);
    assert_string_equal(j.t.lines[3], "publish 4 status");
    assert_int_equal(stored_count(f->s, j.sid), 4);

    /* The token an operation's callback appends comes after the
     * operation's event. */
    clock_sleep_ms(20);
    then_token x = {&j.t, j.log, j.sid};
    eventlog_op op = {.apply = apply_nothing,
                      .done = done_then_token,
                      .arg = &x,
                      .ev = tok(j.sid, "r", "m", "c")};
    submit_traced(j.log, &j.t, &op, 3);
    assert_string_equal(j.t.lines[4], "done 5 0");
    assert_string_equal(j.t.lines[5], "publish 5 token");
    assert_string_equal(j.t.lines[6], "publish 6 token");
    assert_int_equal(stored_count(f->s, j.sid), 5);
    eventlog_stop(j.log);
    assert_int_equal(stored_count(f->s, j.sid), 6);
    assert_int_equal(j.t.failed_visible, 0);
    free(j.sid);
    free(j.path);
}

/* Writes a token event of the session with the given seq as a journal
 * line to fp. */
static void journal_line(FILE *fp, const char *sid, int64_t seq, const char *text)
{
    evt *e = tok(sid, "r", "m", text);
    e->seq = seq;
    assert_int_equal(evt_encode(e), 0);
    fprintf(fp, "%s\n", e->json);
    evt_unref(e);
}

/* Start-up moves the journal's events past each session's last_seq into
 * the tables, ignores what was stored already and a line cut short by the
 * crash, drops a line that does not follow, and empties the file. */
static void test_token_journal_recovered_at_start(void **state)
{
    fx *f = *state;
    char *path = journal_path_or_skip(f);
    char *sid = session_with_one_stored(f);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    journal_line(fp, sid, 1, "stored");
    journal_line(fp, sid, 2, "two");
    journal_line(fp, sid, 3, "three");
    /* Never written by the journal (seq 4 is missing): dropped, with the
     * others stored and the server still starting. */
    journal_line(fp, sid, 5, "five");
    fputs("{\"type\":\"token\",\"seq\":6,\"sess", fp);
    fclose(fp);

    assert_recovered(f, sid, 2, 3);
    assert_int_equal(file_size(path), 0);
    /* Nothing left: a second start moves nothing. */
    assert_int_equal(store_journal_recover(f->s, f->url), 0);
    /* Other databases have no journal. */
    assert_null(store_journal_path("sqlite::memory:"));
    assert_null(store_journal_path("postgres://localhost/x"));
    free(sid);
    free(path);
}

/* An op that fails alone fails alone: the others of its batch commit. */
static void test_eventlog_failed_op_is_isolated(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "log", 1000);
    char *mid = uid("msg");
    trace t = {.reader = f->s};
    store_message m = {
        .id = mid, .session_id = sid, .role = "user", .content = "hi", .created_ms = 1000};
    eventlog *log = start_log(f, &t);
    eventlog_op ops[] = {
        {.done = on_done, .arg = &t, .ev = tok(sid, "r", "m", "a")},
        {.apply = apply_fail, .done = on_done, .arg = &t, .ev = tok(sid, "r", "m", "b")},
        {.done = on_done, .arg = &t, .ev = tok("no-such-session", "r", "m", "c")},
        {.apply = apply_message, .done = NULL, .arg = &m, .ev = tok(sid, "r", "m", "d")},
        {.done = on_done, .arg = &t, .ev = NULL},
    };
    for (size_t i = 0; i < 5; i++) eventlog_submit(log, &ops[i]);
    eventlog_flush(log);
    const char *want[] = {"done 1 0",  "publish 1 token", "done 0 -42",
                          "done 0 -8", "publish 2 token", "done 0 0"};
    assert_int_equal(t.n, 6);
    for (size_t i = 0; i < 6; i++) assert_string_equal(t.lines[i], want[i]);
    assert_int_equal(count_rows(f->s, "SELECT COUNT(*) FROM chat_messages WHERE id = ?", mid), 1);
    eventlog_stats st;
    eventlog_get_stats(log, &st);
    assert_int_equal(st.events, 2);
    assert_int_equal(st.failures, 2);
    eventlog_stop(log);
    free(mid);
    free(sid);
}

static void count_commit(void *ud, double seconds)
{
    assert_true(seconds >= 0);
    (*(int *)ud)++;
}

/* eventlog_stop commits what is queued and runs the callbacks. */
static void test_eventlog_stop_commits_queue(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "log", 1000);
    trace t = {.reader = f->s};
    int commits = 0;
    eventlog *log = start_log(f, &t);
    eventlog_set_commit_observer(log, count_commit, &commits);
    for (int i = 0; i < 40; i++) eventlog_append(log, tok(sid, "r", "m", "q"));
    eventlog_stop(log);
    assert_int_equal(t.n, 40);
    assert_string_equal(t.lines[39], "publish 40 token");
    assert_true(commits >= 1 && commits <= 40);
    replay r = replay_all(f->s, sid);
    assert_int_equal(r.n, 40);
    replay_free(&r);
    free(sid);
}

/* ------------------------------------------------------------------------
 * Lost connections (PostgreSQL)
 */

/* Ends the writer's own server session the first time it runs, as a
 * database restart would in the middle of a batch. */
static int apply_kill_once(store *s, void *arg)
{
    int *calls = arg;
    if ((*calls)++ > 0) return 0;
    int rc = db_exec(store_db(s), "SELECT pg_terminate_backend(pg_backend_pid())", 0, NULL, NULL);
    return rc < 0 ? rc : 0;
}

static void assert_tokens(store *s, const char *sid, size_t n)
{
    replay r = replay_all(s, sid);
    assert_int_equal(r.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r.seqs[i], (int64_t)i + 1);
        assert_string_equal(r.types[i], "token");
    }
    replay_free(&r);
}

/* A batch whose connection dies mid-way is written again once it is back:
 * every op reports success and every event is stored once. */
static void test_eventlog_writes_again_after_lost_connection(void **state)
{
    fx *f = *state;
    skip_unless_postgres(f);
    char *sid = make_session(f->s, "lost", 1000);
    trace t = {.reader = f->s};
    int calls = 0;
    eventlog *log = start_log(f, &t);
    eventlog_op ops[] = {
        {.done = on_done, .arg = &t, .ev = tok(sid, "r", "m", "a")},
        {.apply = apply_kill_once, .done = NULL, .arg = &calls, .ev = tok(sid, "r", "m", "b")},
        {.done = on_done, .arg = &t, .ev = tok(sid, "r", "m", "c")},
    };
    for (size_t i = 0; i < 3; i++) eventlog_submit(log, &ops[i]);
    eventlog_flush(log);
    assert_int_equal(calls, 2);
    const char *want[] = {"done 1 0", "publish 1 token", "publish 2 token", "done 3 0",
                          "publish 3 token"};
    assert_int_equal(t.n, 5);
    for (size_t i = 0; i < 5; i++) assert_string_equal(t.lines[i], want[i]);
    assert_int_equal(t.failed_visible, 0);
    assert_tokens(f->s, sid, 3);
    eventlog_stats st;
    eventlog_get_stats(log, &st);
    assert_int_equal(st.failures, 0);
    eventlog_stop(log);
    free(sid);
}

/*
 * The connection dies at COMMIT (a deferred trigger ends the session the
 * first time it fires, so the transaction did not commit): the writer reads
 * the batch's first event back, finds it missing, and writes the batch
 * again, once. The trigger only fires for this test's session.
 */
static void test_eventlog_checks_a_lost_commit_before_writing_again(void **state)
{
    fx *f = *state;
    skip_unless_postgres(f);
    char *sid = make_session(f->s, "commit", 1000);
    char *name = uid("kill");
    for (char *c = name; *c; c++)
        if (*c == '-') *c = '_';
    char sql[1024];
    snprintf(sql, sizeof sql,
             "CREATE SEQUENCE %1$s_n; "
             "CREATE FUNCTION %1$s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
             "IF nextval('%1$s_n') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); "
             "END IF; RETURN NULL; END $$; "
             "CREATE CONSTRAINT TRIGGER %1$s AFTER INSERT ON stream_events DEFERRABLE "
             "INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.session_id = '%2$s') EXECUTE FUNCTION "
             "%1$s()",
             name, sid);
    assert_int_equal(db_exec_script(store_db(f->s), sql), 0);

    trace t = {.reader = f->s};
    eventlog *log = start_log(f, &t);
    for (int i = 0; i < 3; i++) {
        eventlog_op op = {.done = on_done, .arg = &t, .ev = tok(sid, "r", "m", "x")};
        eventlog_submit(log, &op);
    }
    eventlog_flush(log);
    eventlog_stop(log);
    snprintf(sql, sizeof sql, "SELECT last_value FROM %s_n", name);
    assert_true(count_rows(f->s, sql, NULL) > 1);
    snprintf(sql, sizeof sql,
             "DROP TRIGGER %1$s ON stream_events; DROP FUNCTION %1$s(); DROP SEQUENCE %1$s_n",
             name);
    assert_int_equal(db_exec_script(store_db(f->s), sql), 0);

    assert_int_equal(t.n, 6);
    for (size_t i = 0; i < 3; i++) {
        char line[32];
        snprintf(line, sizeof line, "done %zu 0", i + 1);
        assert_string_equal(t.lines[i * 2], line);
    }
    assert_tokens(f->s, sid, 3);
    free(name);
    free(sid);
}

/* ------------------------------------------------------------------------
 * Faults (SQLite)
 */

static void test_missing_directory_names_url(void **state)
{
    (void)state;
    store *s = (store *)1;
    char err[512];
    assert_int_equal(
        store_open("sqlite:/nonexistent-chatplane-dir/sub/chat.db", &s, err, sizeof err), DB_ERR);
    assert_null(s);
    assert_string_equal(err, "cannot open database sqlite:/nonexistent-chatplane-dir/sub/chat.db: "
                             "the directory /nonexistent-chatplane-dir/sub does not exist");
    assert_int_equal(store_open("sqlite:/etc/passwd/chat.db", &s, err, sizeof err), DB_ERR);
    assert_string_equal(err, "cannot open database sqlite:/etc/passwd/chat.db: unable to open "
                             "database file: Not a directory");
}

static int apply_fill_disk(store *s, void *arg)
{
    (void)arg;
    /* The database may not grow past the pages it has: the next write that
     * needs a page fails as on a full disk. */
    db_result *r = NULL;
    int rc = db_exec(store_db(s), "PRAGMA page_count", 0, NULL, &r);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %s", rc < 0 ? "1" : db_result_get(r, 0, 0));
    db_result_free(r);
    rc = db_exec(store_db(s), sql, 0, NULL, NULL);
    return rc < 0 ? rc : 0;
}

static int apply_free_disk(store *s, void *arg)
{
    (void)arg;
    int rc = db_exec(store_db(s), "PRAGMA max_page_count = 1073741823", 0, NULL, NULL);
    return rc < 0 ? rc : 0;
}

static void test_full_disk_fails_run_keeps_reads(void **state)
{
    fx *f = *state;
    skip_unless_sqlite(f);
    char *sid = make_session(f->s, "full", 1000);
    trace t = {.reader = f->s};
    eventlog *log = start_log(f, &t);
    eventlog_append(log, tok(sid, "r", "m", "before"));
    eventlog_op fill = {.apply = apply_fill_disk, .done = on_done, .arg = &t};
    eventlog_submit(log, &fill);
    eventlog_flush(log);
    assert_int_equal(t.n, 2);

    /* A batch too large for the pages left: all or nothing (each token
     * larger than the token journal takes, so all go to a transaction). */
    static char big[STORE_JOURNAL_BYTES_MAX + 4000];
    memset(big, 'x', sizeof big - 1);
    for (int i = 0; i < 50; i++) {
        eventlog_op op = {.done = on_done, .arg = &t, .ev = tok(sid, "r", "m", big)};
        eventlog_submit(log, &op);
    }
    eventlog_flush(log);
    assert_int_equal(t.n, 52);
    for (size_t i = 2; i < 52; i++) assert_string_equal(t.lines[i], "done 0 -6");

    /* Reads keep working, and nothing of the failed batch is visible. */
    replay r = replay_all(f->s, sid);
    assert_int_equal(r.n, 1);
    replay_free(&r);
    store_session ses;
    assert_int_equal(store_session_get(f->s, sid, NULL, &ses), 0);
    assert_int_equal(ses.last_seq, 1);
    store_session_cleanup(&ses);

    /* Once there is room again the writer goes on where it was. */
    eventlog_op room = {.apply = apply_free_disk, .done = on_done, .arg = &t};
    eventlog_submit(log, &room);
    eventlog_append(log, tok(sid, "r", "m", "after"));
    eventlog_flush(log);
    assert_string_equal(t.lines[t.n - 1], "publish 2 token");
    eventlog_stop(log);
    free(sid);
}

/*
 * The checks on a read-only database file; plain return codes rather than
 * cmocka assertions, since they may run in a child process. Returns 0, or
 * the number of the check that failed.
 */
static int readonly_checks(const char *url, const char *sid)
{
    store *s = NULL;
    char err[512];
    if (store_open(url, &s, err, sizeof err) != 0) return 1;
    store_session ses;
    if (store_session_get(s, sid, NULL, &ses) != 0 || ses.last_seq != 1) return 2;
    store_session_cleanup(&ses);
    evt *ev = tok(sid, "r", "m", "blocked");
    int rc = append_all(s, &ev, 1);
    evt_unref(ev);
    if (rc != DB_ERR_FULL) return 3;
    if (!strstr(store_errmsg(s), "readonly")) return 4;
    int n = 0;
    if (store_event_after(s, sid, 0, 0, count_cb, &n) != 1 || n != 1) return 5;
    store_close(s);

    trace t = {0};
    if (store_open(url, &t.reader, err, sizeof err) != 0) return 6;
    eventlog *log = NULL;
    if (eventlog_start(url, on_publish, &t, &log, err, sizeof err) != 0) return 7;
    eventlog_op op = {.done = on_done, .arg = &t, .ev = tok(sid, "r", "m", "blocked")};
    eventlog_submit(log, &op);
    eventlog_flush(log);
    eventlog_stop(log);
    store_close(t.reader);
    if (t.n != 1 || strcmp(t.lines[0], "done 0 -6") != 0) return 8;
    return 0;
}

static void test_readonly_database_fails_writes_keeps_reads(void **state)
{
    fx *f = *state;
    skip_unless_sqlite(f);
    char *sid = make_session(f->s, "ro", 1000);
    evt *ev = tok(sid, "r", "m", "kept");
    assert_int_equal(append_all(f->s, &ev, 1), 0);
    evt_unref(ev);
    store_close(f->s);
    f->s = NULL;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/test.db", f->dir);
    assert_int_equal(chmod(path, 0444), 0);
    /* SQLite needs to create the -shm file beside a WAL database to read it. */
    assert_int_equal(chmod(f->dir, 0777), 0);

    int result;
    if (geteuid() != 0) {
        result = readonly_checks(f->url, sid);
    } else {
        /* Permission bits do not bind root: check as nobody instead. */
        pid_t pid = fork();
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(100);
            _exit(readonly_checks(f->url, sid));
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        result = WEXITSTATUS(status);
        if (result == 100) {
            print_message("cannot drop root privileges here; skipping\n");
            skip();
        }
    }
    assert_int_equal(result, 0);
    f->s = fixture_open(f->url);
    free(sid);
}

/* ------------------------------------------------------------------------
 * The queued run of a session (store_queue.c)
 */

static void assert_no_queue(store *s, const char *sid)
{
    store_session got = {0};
    assert_int_equal(store_session_get(s, sid, NULL, &got), 0);
    assert_null(got.queued_run_id);
    assert_null(got.queued_message);
    assert_null(got.queued_mode);
    assert_int_equal(got.queued_ms, 0);
    store_session_cleanup(&got);
}

/* A run is queued only behind an active run and only one at a time; it is
 * found by its id as a run with status queued; taking it or dropping it
 * clears it, a drop writing its stopped run row. */
/* A run's release reads the queue it leaves behind, and keeps it. */
static void test_queue_seen_by_the_release(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "queues", 1000);
    char *qid = uid("run");
    char *active = make_run(f->s, sid, 1500, 1500);
    assert_int_equal(store_session_claim_run(f->s, sid, active, 1500), 0);
    assert_int_equal(store_queue_put(f->s, sid, qid, "next", NULL, 2000), 0);
    bool queued = false;
    assert_int_equal(store_session_release_run(f->s, sid, active, 2500, &queued), 0);
    assert_true(queued);
    store_session got = {0};
    assert_int_equal(store_session_get(f->s, sid, NULL, &got), 0);
    assert_null(got.active_run_id);
    assert_string_equal(got.queued_run_id, qid);
    store_session_cleanup(&got);
    /* The database is shared with later tests on PostgreSQL, and an
     * orphaned queue would be theirs to recover. */
    assert_int_equal(store_queue_take(f->s, sid, qid), 1);
    free(active);
    free(qid);
    free(sid);
}

static void test_queue_put_take_and_drop(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s, "queues", 1000);
    char *qid = uid("run"), *other = uid("run");
    /* No active run: nothing to queue behind. */
    assert_int_equal(store_queue_put(f->s, sid, qid, "next", NULL, 2000), STORE_CONFLICT);
    assert_string_equal(store_errmsg(f->s), "the session has no active run");
    assert_int_equal(store_queue_put(f->s, "no-such-session", qid, "next", NULL, 2000),
                     STORE_NOT_FOUND);
    char *active = make_run(f->s, sid, 1500, 1500);
    assert_int_equal(store_session_claim_run(f->s, sid, active, 1500), 0);
    assert_int_equal(store_queue_put(f->s, sid, qid, "next", "deep", 2000), 0);
    assert_int_equal(store_queue_put(f->s, sid, other, "again", NULL, 2001), STORE_CONFLICT);
    assert_string_equal(store_errmsg(f->s), "the session has a queued run already");

    store_session got = {0};
    assert_int_equal(store_session_get(f->s, sid, NULL, &got), 0);
    assert_string_equal(got.queued_run_id, qid);
    assert_string_equal(got.queued_message, "next");
    assert_string_equal(got.queued_mode, "deep");
    assert_int_equal(got.queued_ms, 2000);
    store_session_cleanup(&got);
    assert_int_equal(store_queue_find(f->s, qid, &got), 0);
    assert_string_equal(got.id, sid);
    store_session_cleanup(&got);
    assert_int_equal(store_queue_find(f->s, other, &got), STORE_NOT_FOUND);

    /* As a run: queued, in its mode's limits (read from chat_budgets),
     * zero usage, started when it was queued. */
    store_run run = {0};
    assert_int_equal(store_queue_run_get(f->s, qid, &run), 0);
    assert_string_equal(run.status, "queued");
    assert_string_equal(run.session_id, sid);
    assert_string_equal(run.mode, "deep");
    assert_int_equal(json_integer_value(json_object_get(run.limits, "steps")), 40);
    assert_int_equal(json_integer_value(json_object_get(run.usage, "steps")), 0);
    assert_int_equal(run.started_ms, 2000);
    assert_int_equal(run.ended_ms, 0);
    assert_null(run.stop_reason);
    /* A run with a row is read as it is. */
    store_run_cleanup(&run);
    assert_int_equal(store_queue_run_get(f->s, active, &run), 0);
    assert_string_equal(run.status, "running");
    store_run_cleanup(&run);
    assert_int_equal(store_queue_run_get(f->s, other, &run), STORE_NOT_FOUND);

    /* Taking another id changes nothing; taking it clears the queue. */
    assert_int_equal(store_queue_take(f->s, sid, other), 0);
    assert_int_equal(store_queue_take(f->s, sid, qid), 1);
    assert_no_queue(f->s, sid);
    assert_int_equal(store_queue_take(f->s, sid, qid), 0);

    /* A drop: the row as store_queue_row_dropped makes it. */
    assert_int_equal(store_queue_put(f->s, sid, other, "later", NULL, 3000), 0);
    assert_int_equal(store_session_get(f->s, sid, NULL, &got), 0);
    assert_int_equal(store_queue_row(f->s, &got, NULL, &run), 0);
    store_session_cleanup(&got);
    assert_string_equal(run.mode, "standard");
    store_queue_row_dropped(&run, STOP_USER_STOPPED, "dropped", 3500);
    assert_int_equal(store_queue_drop(f->s, &run), 0);
    assert_no_queue(f->s, sid);
    /* A second drop of the same run finds it gone. */
    assert_int_equal(store_queue_drop(f->s, &run), STORE_CONFLICT);
    evt *ev = store_queue_dropped_event(&run);
    assert_int_equal(ev->type, EVT_RUN_STOPPED);
    assert_string_equal(ev->run_id, other);
    assert_string_equal(json_string_value(json_object_get(ev->fields, "reason")), "user_stopped");
    assert_string_equal(json_string_value(json_object_get(ev->fields, "detail")), "dropped");
    assert_null(json_object_get(ev->fields, "diagnosis"));
    evt_unref(ev);
    store_run_cleanup(&run);
    assert_int_equal(store_run_get(f->s, other, &run), 0);
    assert_string_equal(run.status, "stopped");
    assert_string_equal(run.stop_reason, "user_stopped");
    assert_string_equal(run.stop_detail, "dropped");
    assert_string_equal(run.recovery_suggestion,
                        "The message was not sent: send it again if you still want it answered.");
    assert_int_equal(json_array_size(run.actions), 0);
    assert_null(run.diagnosis);
    assert_null(run.owner_instance);
    assert_int_equal(run.started_ms, 3000);
    assert_int_equal(run.ended_ms, 3500);
    store_run_cleanup(&run);
    free(active);
    free(qid);
    free(other);
    free(sid);
}

/* After a restart: the queued run of a session whose active run is over
 * is dropped as interrupted, with its run_stopped event; a queue behind a
 * live run, or in a session changed after stale_before_ms, stays. */
static void test_queue_recover_drops_orphaned_queues(void **state)
{
    fx *f = *state;
    char *old = make_session(f->s, "queue-recover", 1000);
    char *live = make_session(f->s, "queue-recover", 1000);
    char *fresh = make_session(f->s, "queue-recover", 1000);
    char *ids[3], *runs[3];
    char *sids[3] = {old, live, fresh};
    for (int i = 0; i < 3; i++) {
        runs[i] = make_run(f->s, sids[i], 1100, 1100);
        ids[i] = uid("run");
        assert_int_equal(store_session_claim_run(f->s, sids[i], runs[i], 1100), 0);
        assert_int_equal(store_queue_put(f->s, sids[i], ids[i], "queued text", NULL, 1200), 0);
    }
    /* old's run ended long ago; fresh's ended after the stale time. */
    assert_int_equal(store_session_release_run(f->s, old, runs[0], 1300, NULL), 0);
    assert_int_equal(store_session_release_run(f->s, fresh, runs[2], 900000000, NULL), 0);
    assert_int_equal(store_queue_recover(f->s, 5000000, 6000000), 1);

    store_run run = {0};
    assert_int_equal(store_run_get(f->s, ids[0], &run), 0);
    assert_string_equal(run.status, "stopped");
    assert_string_equal(run.stop_reason, "interrupted");
    assert_string_equal(run.stop_detail, "the server stopped before the queued run could start");
    assert_non_null(run.diagnosis);
    assert_int_equal(run.ended_ms, 6000000);
    store_run_cleanup(&run);
    assert_no_queue(f->s, old);
    store_session got = {0};
    assert_int_equal(store_session_get(f->s, old, NULL, &got), 0);
    assert_int_equal(got.last_seq, 1);
    store_session_cleanup(&got);
    assert_int_equal(store_session_get(f->s, live, NULL, &got), 0);
    assert_string_equal(got.queued_run_id, ids[1]);
    store_session_cleanup(&got);
    assert_int_equal(store_session_get(f->s, fresh, NULL, &got), 0);
    assert_string_equal(got.queued_run_id, ids[2]);
    store_session_cleanup(&got);
    assert_int_equal(store_run_get(f->s, ids[1], &run), STORE_NOT_FOUND);
    /* Once nothing is left to drop, nothing more happens. */
    assert_int_equal(store_queue_recover(f->s, 5000000, 6000001), 0);
    for (int i = 0; i < 3; i++) {
        free(ids[i]);
        free(runs[i]);
    }
    free(old);
    free(live);
    free(fresh);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_migrations_apply_once),
        T(test_embedded_migrations_cover_both_dialects),
        T(test_concurrent_migrations_apply_once),
        T(test_version_1_database_is_upgraded),
        T(test_schema_too_new_is_refused),
        T(test_session_crud),
        T(test_session_list_pages_newest_first),
        T(test_session_list_ties_by_id),
        T(test_session_list_cursor_of_another_owner),
        T(test_claim_run_conflict),
        T(test_claim_run_sets_title_and_mode),
        T(test_queue_seen_by_the_release),
        T(test_queue_put_take_and_drop),
        T(test_queue_recover_drops_orphaned_queues),
        T(test_run_crud),
        T(test_row_defaults_and_round_trip),
        T(test_running_runs_and_heartbeat),
        T(test_messages_keep_stored_order),
        T(test_run_latest),
        T(test_message_list_recent_reads_only_the_newest),
        T(test_message_list_recent_counts_what_the_model_sees),
        T(test_tool_executions),
        T(test_approvals),
        T(test_inputs),
        T(test_recovery_cancels_pending_approvals),
        T(test_recovery_cancels_pending_inputs),
        T(test_session_delete_cascades),
        T(test_modes_seeded_from_presets),
        T(test_mode_edits_persist),
        T(test_preset_edit_survives_migrate),
        T(test_tokens),
        T(test_event_seq_gapless_across_batches_and_sessions),
        T(test_event_seq_cache_moved_on),
        T(test_event_seq_across_many_sessions),
        T(test_event_append_to_missing_session_fails_whole_batch),
        T(test_event_after_with_limit),
        T(test_compaction_keeps_message_events),
        T(test_token_rows_read_as_events),
        T(test_token_rows_from_a_transaction),
        T(test_replay_crosses_gaps),
        T(test_page_cache_sizes),
        T(test_recovery_stops_interrupted_run),
        T(test_recovery_of_every_running_run),
        T(test_eventlog_commits_then_publishes_in_order),
        T(test_eventlog_stores_what_an_apply_emits),
        T(test_eventlog_seqs_within_a_transaction),
        T(test_eventlog_paces_commits),
        T(test_eventlog_urgent_ends_the_pace),
        T(test_eventlog_urgent_goes_ahead_of_other_sessions),
        T(test_eventlog_urgent_goes_ahead_once_in_a_row),
        T(test_eventlog_urgent_keeps_its_sessions_order),
        T(test_eventlog_hold_wakes_the_writer_once),
        T(test_eventlog_writes_on_the_loop_while_the_writer_idles),
        T(test_token_journal_holds_lone_tokens),
        T(test_token_journal_stored_after_idle),
        T(test_token_journal_stored_past_the_mark),
        T(test_token_journal_store_waits_for_a_commit),
        T(test_token_journal_timed_on_the_loop),
        T(test_token_journal_takes_tokens_beside_other_writes),
        T(test_token_journal_taken_by_the_loop_while_the_writer_writes),
        T(test_token_journal_loop_append_leaves_stored_sessions),
        T(test_token_journal_loop_appends_while_a_session_settles),
        T(test_token_journal_holds_one_run_per_session),
        T(test_token_journal_takes_nothing_after_a_failed_transaction),
        T(test_token_journal_shares_room_past_eight),
        T(test_token_journal_takes_status_events),
        T(test_token_journal_takes_part_of_a_batch),
        T(test_token_journal_full_file_empties_over_commits),
        T(test_token_journal_loop_appends_during_a_flush),
        T(test_token_journal_flush_in_id_order),
        T(test_token_journal_starts_over_in_the_other_half),
        T(test_token_journal_recovers_both_halves_in_order),
        T(test_token_journal_recovered_at_start),
        T(test_eventlog_failed_op_is_isolated),
        T(test_eventlog_stop_commits_queue),
        T(test_eventlog_writes_again_after_lost_connection),
        T(test_eventlog_checks_a_lost_commit_before_writing_again),
        T(test_missing_directory_names_url),
        T(test_full_disk_fails_run_keeps_reads),
        T(test_readonly_database_fails_writes_keeps_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
