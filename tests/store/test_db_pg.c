/*
 * Tests of the PostgreSQL driver (store/db_pg.c) through the public db API,
 * against the server named by CHATPLANE_TEST_DB_URL (a postgres:// URL, as
 * `make test` sets it from scripts/pg-test-cluster). With any other URL the
 * tests are reported as skipped: the driver needs a server to talk to.
 *
 * Every test works in temporary tables, so it leaves the database as it
 * found it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "store/db.h"

static const char *test_url(void)
{
    const char *url = getenv("CHATPLANE_TEST_DB_URL");
    if (!url || (strncmp(url, "postgres://", 11) != 0 && strncmp(url, "postgresql://", 13) != 0))
        return NULL;
    return url;
}

static db *connect_or_skip(void)
{
    const char *url = test_url();
    if (!url) {
        print_message("CHATPLANE_TEST_DB_URL is not a postgres:// URL; skipping\n");
        skip();
    }
    db *d = NULL;
    char err[512] = "";
    int rc = db_open(url, &d, err, sizeof err);
    if (rc != 0) fail_msg("db_open(%s): %s", url, err);
    assert_int_equal(db_get_kind(d), DB_POSTGRES);
    return d;
}

/* Runs a one-value query and returns a copy of the value ("(null)" for
 * NULL, "(error)" on failure). */
static char *query1(db *d, const char *sql, int n, const char *const *params)
{
    db_result *r = NULL;
    int rc = db_exec(d, sql, n, params, &r);
    if (rc < 0) return strdup("(error)");
    const char *v = db_result_rows(r) > 0 ? db_result_get(r, 0, 0) : NULL;
    char *out = strdup(v ? v : "(null)");
    db_result_free(r);
    return out;
}

static void assert_query1(db *d, const char *sql, int n, const char *const *params,
                          const char *want)
{
    char *got = query1(d, sql, n, params);
    if (strcmp(got, want) != 0) fail_msg("%s: got \"%s\", want \"%s\"", sql, got, want);
    free(got);
}

static void test_open_failure_names_url_without_password(void **state)
{
    (void)state;
    if (!test_url()) skip();
    db *d = NULL;
    char err[512] = "";
    /* Port 1 on loopback refuses at once. */
    int rc = db_open("postgresql://alice:s3cret@127.0.0.1:1/nowhere", &d, err, sizeof err);
    assert_int_equal(rc, DB_ERR_CONN);
    assert_null(d);
    assert_non_null(strstr(err, "postgresql://alice:***@127.0.0.1:1/nowhere"));
    assert_non_null(strstr(err, "Connection refused"));
    assert_null(strstr(err, "s3cret"));
    assert_null(strchr(err, '\n'));
}

static void test_session_settings(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    assert_query1(d, "SHOW TIME ZONE", 0, NULL, "UTC");
    assert_query1(d, "SHOW client_min_messages", 0, NULL, "warning");
    assert_query1(d, "SELECT current_setting('application_name')", 0, NULL, "chatplane");
    db_close(d);
}

/* Question marks inside literals, quoted identifiers and comments are not
 * placeholders; the others become $1, $2, … in order. */
static void test_placeholders_outside_quotes(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    const char *sql = "SELECT ? || '?' || E'\\'?' || $$?$$ || $t$?$t$ || ? AS \"a?\" -- ?\n"
                      "/* ? /* ? */ ? */";
    const char *params[] = {"x", "y"};
    db_result *r = NULL;
    assert_int_equal(db_exec(d, sql, 2, params, &r), 0);
    assert_int_equal(db_result_rows(r), 1);
    assert_int_equal(db_result_cols(r), 1);
    assert_string_equal(db_result_get(r, 0, 0), "x?'???y");
    db_result_free(r);

    /* The same text again comes from the cache. */
    const char *params2[] = {"1", "2"};
    assert_query1(d, sql, 2, params2, "1?'???2");
    db_close(d);
}

static void test_param_count_mismatch(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    const char *params[] = {"1"};
    assert_int_equal(db_exec(d, "SELECT ?::int + ?::int", 1, params, NULL), DB_ERR);
    assert_string_equal(db_errmsg(d),
                        "the statement has 2 placeholders but 1 parameters were given");
    db_close(d);
}

static void test_nulls_both_ways(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    const char *params[] = {NULL, "v"};
    db_result *r = NULL;
    assert_int_equal(db_exec(d, "SELECT ?::text IS NULL, ?::text, NULL::text", 2, params, &r), 0);
    assert_int_equal(db_result_cols(r), 3);
    assert_string_equal(db_result_get(r, 0, 0), "t");
    assert_true(db_result_bool(r, 0, 0));
    assert_string_equal(db_result_get(r, 0, 1), "v");
    assert_null(db_result_get(r, 0, 2));
    assert_int_equal(db_result_int(r, 0, 2, -7), -7);
    db_result_free(r);
    db_close(d);
}

static void test_changed_rows_and_results(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    assert_int_equal(db_exec_script(d, "CREATE TEMP TABLE t_rows (id bigint PRIMARY KEY, v text);"
                                       "INSERT INTO t_rows VALUES (1, 'a');"),
                     0);
    const char *p3[] = {"2", "b", "3", "c"};
    assert_int_equal(db_exec(d, "INSERT INTO t_rows (id, v) VALUES (?, ?), (?, ?)", 4, p3, NULL),
                     2);
    const char *pu[] = {"z", "2"};
    assert_int_equal(db_exec(d, "UPDATE t_rows SET v = ? WHERE id >= ?", 2, pu, NULL), 2);
    /* A SELECT changes nothing, however many rows it reads. */
    db_result *r = NULL;
    assert_int_equal(db_exec(d, "SELECT id, v FROM t_rows ORDER BY id", 0, NULL, &r), 0);
    assert_int_equal(db_result_rows(r), 3);
    assert_int_equal(db_result_cols(r), 2);
    assert_int_equal(db_result_int(r, 2, 0, 0), 3);
    assert_string_equal(db_result_get(r, 0, 1), "a");
    assert_string_equal(db_result_get(r, 2, 1), "z");
    db_result_free(r);
    /* RETURNING counts the rows changed and returns them. */
    const char *pd[] = {"1"};
    assert_int_equal(db_exec(d, "DELETE FROM t_rows WHERE id > ? RETURNING id", 1, pd, &r), 2);
    assert_int_equal(db_result_rows(r), 2);
    db_result_free(r);
    db_close(d);
}

static void test_error_codes(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    assert_int_equal(db_exec_script(d, "CREATE TEMP TABLE t_err (id int PRIMARY KEY)"), 0);
    const char *p[] = {"1"};
    assert_int_equal(db_exec(d, "INSERT INTO t_err VALUES (?)", 1, p, NULL), 1);
    assert_int_equal(db_exec(d, "INSERT INTO t_err VALUES (?)", 1, p, NULL), DB_ERR_CONFLICT);
    assert_string_equal(db_errmsg(d), "duplicate key value violates unique constraint "
                                      "\"t_err_pkey\" (SQLSTATE 23505)");

    assert_int_equal(db_exec(d, "SELEC 1", 0, NULL, NULL), DB_ERR);
    assert_string_equal(db_errmsg(d), "syntax error at or near \"SELEC\" (SQLSTATE 42601)");
    /* A statement that failed to prepare is not cached: it fails again. */
    assert_int_equal(db_exec(d, "SELEC 1", 0, NULL, NULL), DB_ERR);

    /* A write in a read-only transaction reads as "the store cannot take
     * writes", like a read-only SQLite file. (Temporary tables stay
     * writable, hence a real one.) */
    assert_int_equal(db_exec_script(d, "DROP TABLE IF EXISTS t_ro; CREATE TABLE t_ro (id int)"), 0);
    assert_int_equal(db_exec(d, "BEGIN READ ONLY", 0, NULL, NULL), 0);
    assert_int_equal(db_exec(d, "INSERT INTO t_ro VALUES (?)", 1, p, NULL), DB_ERR_FULL);
    assert_string_equal(db_errmsg(d),
                        "cannot execute INSERT in a read-only transaction (SQLSTATE 25006)");
    assert_int_equal(db_rollback(d), 0);
    assert_int_equal(db_exec_script(d, "DROP TABLE t_ro"), 0);

    assert_int_equal(db_exec_script(d, "SELECT 1; SELECT nosuchcolumn"), DB_ERR);
    assert_string_equal(db_errmsg(d), "column \"nosuchcolumn\" does not exist (SQLSTATE 42703)");

    /* The checks of chatplane's own functions: their message as raised. */
    assert_int_equal(
        db_exec_script(d, "DO $$ BEGIN RAISE EXCEPTION 'run r1 not found' USING ERRCODE = "
                          "'CP404'; END $$"),
        DB_ERR_NOT_FOUND);
    assert_string_equal(db_errmsg(d), "run r1 not found");
    assert_int_equal(
        db_exec_script(d, "DO $$ BEGIN RAISE EXCEPTION 'run r1 has already stopped' USING "
                          "ERRCODE = 'CP409'; END $$"),
        DB_ERR_STATE);
    assert_string_equal(db_errmsg(d), "run r1 has already stopped");
    db_close(d);
}

/* A row lock asked for with NOWAIT while another connection holds it is
 * DB_ERR_BUSY (SQLSTATE 55P03). */
static void test_lock_not_available_is_busy(void **state)
{
    (void)state;
    db *a = connect_or_skip();
    db *b = connect_or_skip();
    assert_int_equal(db_exec_script(a, "DROP TABLE IF EXISTS t_busy;"
                                       "CREATE TABLE t_busy (id int PRIMARY KEY);"
                                       "INSERT INTO t_busy VALUES (1)"),
                     0);
    assert_int_equal(db_begin(a), 0);
    assert_int_equal(db_exec(a, "SELECT id FROM t_busy FOR UPDATE", 0, NULL, NULL), 0);
    assert_int_equal(db_begin(b), 0);
    assert_int_equal(db_exec(b, "SELECT id FROM t_busy FOR UPDATE NOWAIT", 0, NULL, NULL),
                     DB_ERR_BUSY);
    assert_int_equal(db_rollback(b), 0);
    assert_int_equal(db_commit(a), 0);
    assert_int_equal(db_exec_script(a, "DROP TABLE t_busy"), 0);
    db_close(b);
    db_close(a);
}

typedef struct dl_arg {
    db *d;
    int rc;
} dl_arg;

static void *dl_lock_second(void *arg)
{
    dl_arg *a = arg;
    a->rc = db_exec(a->d, "SELECT id FROM t_dl WHERE id = 2 FOR UPDATE", 0, NULL, NULL);
    return NULL;
}

/* Two transactions that each wait for the other's row: PostgreSQL fails
 * one of them (SQLSTATE 40P01), which is DB_ERR_RETRY, and the other goes
 * on. */
static void test_deadlock_is_retry(void **state)
{
    (void)state;
    db *a = connect_or_skip();
    db *b = connect_or_skip();
    assert_int_equal(db_exec_script(a, "DROP TABLE IF EXISTS t_dl;"
                                       "CREATE TABLE t_dl (id int PRIMARY KEY);"
                                       "INSERT INTO t_dl VALUES (1), (2)"),
                     0);
    assert_int_equal(db_begin(a), 0);
    assert_int_equal(db_exec(a, "SELECT id FROM t_dl WHERE id = 1 FOR UPDATE", 0, NULL, NULL), 0);
    assert_int_equal(db_begin(b), 0);
    assert_int_equal(db_exec(b, "SELECT id FROM t_dl WHERE id = 2 FOR UPDATE", 0, NULL, NULL), 0);
    dl_arg arg = {a, 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, dl_lock_second, &arg), 0);
    /* Let a wait for row 2 first, then close the cycle. */
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    int rc_b = db_exec(b, "SELECT id FROM t_dl WHERE id = 1 FOR UPDATE", 0, NULL, NULL);
    pthread_join(t, NULL);
    /* Exactly one of the two was the victim. */
    assert_true((arg.rc == DB_ERR_RETRY && rc_b == 0) || (arg.rc == 0 && rc_b == DB_ERR_RETRY));
    assert_non_null(strstr(db_errmsg(arg.rc == DB_ERR_RETRY ? a : b), "(SQLSTATE 40P01)"));
    assert_int_equal(db_rollback(a), 0);
    assert_int_equal(db_rollback(b), 0);
    assert_int_equal(db_exec_script(a, "DROP TABLE t_dl"), 0);
    db_close(b);
    db_close(a);
}

static void test_transactions(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    assert_int_equal(db_exec_script(d, "CREATE TEMP TABLE t_tx (id int)"), 0);
    const char *p[] = {"1"};
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec(d, "INSERT INTO t_tx VALUES (?)", 1, p, NULL), 1);
    assert_int_equal(db_rollback(d), 0);
    assert_query1(d, "SELECT count(*) FROM t_tx", 0, NULL, "0");
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec(d, "INSERT INTO t_tx VALUES (?)", 1, p, NULL), 1);
    assert_int_equal(db_commit(d), 0);
    assert_query1(d, "SELECT count(*) FROM t_tx", 0, NULL, "1");
    db_close(d);
}

static void count_is(db *d, const char *want)
{
    assert_query1(d, "SELECT count(*) FROM t_later", 0, NULL, want);
}

/* db_exec_later: a prepared statement inside a transaction is answered
 * with the next call, which reports its failure; a ROLLBACK (whole or to a
 * savepoint) undoes it; outside a transaction, or not prepared yet, it
 * runs at once. */
static void test_later_statements(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    db *other = connect_or_skip();
    assert_int_equal(db_exec_script(other, "DROP TABLE IF EXISTS t_later;"
                                           "CREATE TABLE t_later (id int PRIMARY KEY)"),
                     0);
    const char *ins = "INSERT INTO t_later VALUES (?::int)";
    const char *one[] = {"1"}, *two[] = {"2"}, *three[] = {"3"}, *four[] = {"4"};

    /* Not prepared yet: its failure is its own, at once. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later(d, "INSERT INTO t_nowhere VALUES (1)", 0, NULL), DB_ERR);
    assert_int_equal(db_rollback(d), 0);

    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later(d, ins, 1, one), 0);
    assert_int_equal(db_commit(d), 0);
    /* Both prepared now: sent ahead, answered with the read after them. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later(d, ins, 1, two), 0);
    count_is(d, "2");
    assert_int_equal(db_commit(d), 0);
    count_is(other, "2");

    /* A failure is the commit's; the statements after it are skipped. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later(d, ins, 1, three), 0);
    assert_int_equal(db_exec_later(d, ins, 1, one), 0);
    assert_int_equal(db_exec_later(d, ins, 1, four), 0);
    assert_int_equal(db_commit(d), DB_ERR_CONFLICT);
    assert_non_null(strstr(db_errmsg(d), "23505"));
    /* The transaction is over, as after any failed COMMIT. */
    count_is(d, "2");
    count_is(other, "2");

    /* A read after a failure reports it and does not run. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later(d, ins, 1, two), 0);
    db_result *r = NULL;
    assert_int_equal(db_exec(d, "SELECT count(*) FROM t_later", 0, NULL, &r), DB_ERR_CONFLICT);
    assert_null(r);
    assert_int_equal(db_rollback(d), 0);

    /* Undone to a savepoint, the transaction goes on. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec(d, "SAVEPOINT t_sp", 0, NULL, NULL), 0);
    assert_int_equal(db_exec_later(d, ins, 1, one), 0);
    assert_int_equal(db_exec(d, "ROLLBACK TO SAVEPOINT t_sp", 0, NULL, NULL), 0);
    assert_int_equal(db_exec_later(d, ins, 1, three), 0);
    assert_int_equal(db_commit(d), 0);
    count_is(other, "3");

    /* More than are owed at most (64): all of them stored. */
    char ids[200][12];
    assert_int_equal(db_begin(d), 0);
    for (int i = 0; i < 200; i++) {
        snprintf(ids[i], sizeof ids[i], "%d", 100 + i);
        const char *p[] = {ids[i]};
        assert_int_equal(db_exec_later(d, ins, 1, p), 0);
    }
    assert_int_equal(db_commit(d), 0);
    count_is(other, "203");

    /* Outside a transaction it runs at once, its failure its own. */
    assert_int_equal(db_exec_later(d, ins, 1, four), 0);
    count_is(other, "204");
    assert_int_equal(db_exec_later(d, ins, 1, four), DB_ERR_CONFLICT);
    count_is(d, "204");

    assert_int_equal(db_exec_script(d, "DROP TABLE t_later"), 0);
    db_close(other);
    db_close(d);
}

/* Sends 3 and then second ahead, and the COMMIT later, in t_cl (which
 * holds 1 and 2) when second must fail the transaction: the read after
 * the COMMIT reports the failure (its SQLSTATE state) and does not run,
 * the rollback ends the transaction, nothing is stored, and the
 * connection goes on. Returns the read's code. */
static int commit_later_fails(db *d, db *other, const char *const *second, const char *state)
{
    const char *ins = "INSERT INTO t_cl VALUES (?::int)", *three[] = {"3"};
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later(d, ins, 1, three), 0);
    assert_int_equal(db_exec_later(d, ins, 1, second), 0);
    assert_int_equal(db_commit_later(d), 0);
    db_result *r = NULL;
    int rc = db_exec(d, "SELECT count(*) FROM t_cl", 0, NULL, &r);
    assert_true(rc < 0);
    assert_null(r);
    assert_non_null(strstr(db_errmsg(d), state));
    assert_int_equal(db_rollback(d), 0);
    assert_query1(d, "SELECT count(*) FROM t_cl", 0, NULL, "2");
    assert_query1(other, "SELECT count(*) FROM t_cl", 0, NULL, "2");
    return rc;
}

/* db_commit_later: the COMMIT is answered with the next statement, which
 * runs after the transaction; a failure before the COMMIT, or of the
 * COMMIT itself, is that statement's, and nothing was stored. */
static void test_commit_later(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    db *other = connect_or_skip();
    assert_int_equal(
        db_exec_script(other, "DROP TABLE IF EXISTS t_cl;"
                              "CREATE TABLE t_cl (id int UNIQUE DEFERRABLE INITIALLY DEFERRED)"),
        0);
    const char *ins = "INSERT INTO t_cl VALUES (?::int)";
    const char *cnt = "SELECT count(*) FROM t_cl";
    const char *one[] = {"1"}, *two[] = {"2"}, *three[] = {"3"};

    /* The first COMMIT is not prepared yet: it runs at once. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec(d, ins, 1, one, NULL), 1);
    assert_int_equal(db_commit_later(d), 0);
    assert_query1(other, cnt, 0, NULL, "1");
    assert_query1(d, cnt, 0, NULL, "1");

    /* Prepared: the read after it answers for both, outside the
     * transaction, and sees what it stored. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later(d, ins, 1, two), 0);
    assert_int_equal(db_commit_later(d), 0);
    assert_query1(d, cnt, 0, NULL, "2");
    assert_query1(other, cnt, 0, NULL, "2");
    /* No transaction is left open: a rollback undoes nothing. */
    assert_int_equal(db_rollback(d), 0);
    assert_query1(other, cnt, 0, NULL, "2");

    /* A COMMIT that fails itself (the deferred unique check). */
    assert_int_equal(commit_later_fails(d, other, one, "23505"), DB_ERR_CONFLICT);
    /* A statement before the COMMIT that fails (a type the column cannot
     * take): the COMMIT is skipped. */
    const char *bad[] = {"x"};
    assert_true(commit_later_fails(d, other, bad, "22P02") < 0);

    /* And the next transaction commits as usual. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later(d, ins, 1, three), 0);
    assert_int_equal(db_commit(d), 0);
    assert_query1(other, cnt, 0, NULL, "3");

    assert_int_equal(db_exec_script(d, "DROP TABLE t_cl"), 0);
    db_close(other);
    db_close(d);
}

/* More distinct statements than the cache holds: the oldest are
 * deallocated, and every statement still answers correctly. */
/* A statement sent ahead with its integer answer: the answer arrives with
 * the next statement's round trip; no row keeps the value; outside a
 * transaction, or not prepared yet, it runs at once. */
static void test_later_int(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    assert_int_equal(db_exec_script(d, "DROP TABLE IF EXISTS t_li; CREATE TABLE t_li (id int, q "
                                       "int); INSERT INTO t_li VALUES (1, 7), (2, NULL)"),
                     0);
    const char *upd = "UPDATE t_li SET id = id WHERE id = ?::int RETURNING q";
    const char *one[] = {"1"}, *two[] = {"2"}, *nine[] = {"9"};
    int64_t a = -1, b = -1, c = -1;

    /* Not prepared yet: at once, even in a transaction. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later_int(d, upd, 1, one, &a), 0);
    assert_int_equal(a, 7);
    assert_int_equal(db_commit(d), 0);

    /* Prepared: the three answers come with the COMMIT. */
    a = -1;
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later_int(d, upd, 1, one, &a), 0);
    assert_int_equal(db_exec_later_int(d, upd, 1, two, &b), 0);
    assert_int_equal(db_exec_later_int(d, upd, 1, nine, &c), 0);
    assert_int_equal(a, -1);
    assert_int_equal(db_commit(d), 0);
    assert_int_equal(a, 7);
    assert_int_equal(b, -1); /* NULL */
    assert_int_equal(c, -1); /* no row */

    /* A statement after one that failed is skipped: its value stays. */
    a = -1;
    const char *bad[] = {"x"};
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later_int(d, upd, 1, bad, &b), 0);
    assert_int_equal(db_exec_later_int(d, upd, 1, one, &a), 0);
    assert_int_equal(db_commit(d), DB_ERR);
    assert_int_equal(a, -1);
    assert_int_equal(db_rollback(d), 0);

    /* Outside a transaction: at once. */
    assert_int_equal(db_exec_later_int(d, upd, 1, one, &a), 0);
    assert_int_equal(a, 7);
    assert_int_equal(db_exec_script(d, "DROP TABLE t_li"), 0);
    db_close(d);
}

/* A query sent ahead with its rows: they arrive with the next statement's
 * round trip, after a COMMIT sent ahead too; a failure before it leaves
 * them NULL; outside a transaction, or not prepared yet, at once. */
static void test_later_rows(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    assert_int_equal(db_exec_script(d, "DROP TABLE IF EXISTS t_lr; CREATE TABLE t_lr (id int, v "
                                       "text); INSERT INTO t_lr VALUES (1, 'a'), (2, NULL)"),
                     0);
    const char *sel = "SELECT id, v FROM t_lr WHERE id >= ?::int ORDER BY id";
    const char *one[] = {"1"}, *two[] = {"2"}, *bad[] = {"x"};
    db_result *r = NULL;

    /* Not prepared yet: at once. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later_rows(d, sel, 1, one, &r), 0);
    assert_non_null(r);
    assert_int_equal(db_result_rows(r), 2);
    db_result_free(r);
    assert_int_equal(db_commit(d), 0);

    /* Prepared, after a COMMIT sent ahead: both answer with the next read. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(
        db_exec_later(d, "INSERT INTO t_lr VALUES (?::int, 'c')", 1, (const char *const[]){"3"}),
        0);
    assert_int_equal(db_commit_later(d), 0);
    assert_int_equal(db_exec_later_rows(d, sel, 1, two, &r), 0);
    assert_null(r);
    assert_query1(d, "SELECT count(*) FROM t_lr", 0, NULL, "3");
    assert_non_null(r);
    assert_int_equal(db_result_rows(r), 2);
    assert_int_equal(db_result_cols(r), 2);
    assert_string_equal(db_result_get(r, 0, 0), "2");
    assert_null(db_result_get(r, 0, 1));
    assert_string_equal(db_result_get(r, 1, 1), "c");
    db_result_free(r);

    /* Skipped after a failure: NULL. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later_rows(d, sel, 1, bad, &r), 0);
    db_result *after = NULL;
    assert_int_equal(db_exec_later_rows(d, sel, 1, one, &after), 0);
    assert_int_equal(db_commit(d), DB_ERR);
    assert_null(r);
    assert_null(after);
    assert_int_equal(db_rollback(d), 0);

    /* Outside a transaction: at once. */
    assert_int_equal(db_exec_later_rows(d, sel, 1, one, &r), 0);
    assert_int_equal(db_result_rows(r), 3);
    db_result_free(r);
    assert_int_equal(db_exec_script(d, "DROP TABLE t_lr"), 0);
    db_close(d);
}

static void test_statement_cache_is_capped(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    char sql[64], want[16];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 300; i++) {
            snprintf(sql, sizeof sql, "SELECT %d + ?::int", i);
            snprintf(want, sizeof want, "%d", i + round);
            const char *p[] = {round ? "1" : "0"};
            assert_query1(d, sql, 1, p, want);
        }
    }
    /* The count query itself takes one slot: exactly the cap. */
    assert_query1(d, "SELECT count(*) FROM pg_prepared_statements", 0, NULL, "256");
    db_close(d);
}

static int backend_pid(db *d)
{
    char *pid = query1(d, "SELECT pg_backend_pid()", 0, NULL);
    int n = atoi(pid);
    free(pid);
    return n;
}

static void terminate(db *killer, int pid)
{
    char s[16];
    snprintf(s, sizeof s, "%d", pid);
    const char *p[] = {s};
    assert_query1(killer, "SELECT pg_terminate_backend(?::int, 5000)", 1, p, "t");
}

/* A connection killed by the server fails one call with DB_ERR_CONN; the
 * next call reconnects, with the session settings and a fresh statement
 * cache. */
static void test_reconnects_after_connection_loss(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    db *killer = connect_or_skip();
    const char *p[] = {"41"};
    assert_query1(d, "SELECT ?::int + 1", 1, p, "42");
    int pid = backend_pid(d);
    terminate(killer, pid);

    assert_int_equal(db_exec(d, "SELECT ?::int + 1", 1, p, NULL), DB_ERR_CONN);
    assert_non_null(strstr(db_errmsg(d), "lost"));
    assert_query1(d, "SELECT ?::int + 1", 1, p, "42");
    assert_true(backend_pid(d) != pid);
    assert_query1(d, "SHOW TIME ZONE", 0, NULL, "UTC");
    db_close(killer);
    db_close(d);
}

/* A transaction that died with its connection is not silently continued in
 * autocommit mode: statements fail until the caller rolls back. */
static void test_transaction_lost_with_connection(void **state)
{
    (void)state;
    db *d = connect_or_skip();
    db *killer = connect_or_skip();
    assert_int_equal(db_exec_script(killer, "DROP TABLE IF EXISTS t_lost;"
                                            "CREATE TABLE t_lost (id int)"),
                     0);
    const char *p[] = {"1"};
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec(d, "INSERT INTO t_lost VALUES (?)", 1, p, NULL), 1);
    terminate(killer, backend_pid(d));

    assert_int_equal(db_exec(d, "INSERT INTO t_lost VALUES (?)", 1, p, NULL), DB_ERR_CONN);
    /* Reconnected, but still inside the dead transaction. */
    assert_int_equal(db_exec(d, "INSERT INTO t_lost VALUES (?)", 1, p, NULL), DB_ERR_CONN);
    assert_non_null(strstr(db_errmsg(d), "inside a transaction"));
    assert_int_equal(db_commit(d), DB_ERR_CONN);
    assert_int_equal(db_rollback(d), 0);
    assert_query1(d, "SELECT count(*) FROM t_lost", 0, NULL, "0");

    /* Lost with statements sent ahead (db_exec_later): the commit fails,
     * the rollback succeeds, and nothing was stored. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec_later(d, "INSERT INTO t_lost VALUES (?)", 1, p), 0);
    terminate(killer, backend_pid(d));
    assert_int_equal(db_exec_later(d, "INSERT INTO t_lost VALUES (?)", 1, p), 0);
    assert_int_equal(db_commit(d), DB_ERR_CONN);
    assert_int_equal(db_rollback(d), 0);
    assert_query1(d, "SELECT count(*) FROM t_lost", 0, NULL, "0");
    assert_int_equal(db_exec_script(d, "DROP TABLE t_lost"), 0);
    db_close(killer);
    db_close(d);
}

struct locker {
    db *d;
    int rc;
    volatile int done;
};

static void *lock_thread(void *arg)
{
    struct locker *l = arg;
    l->rc = db_lock_migrations(l->d);
    l->done = 1;
    return NULL;
}

/* The migration lock is held across connections: a second taker waits
 * until the first releases it. */
static void test_migration_lock_waits(void **state)
{
    (void)state;
    db *a = connect_or_skip();
    struct locker l = {connect_or_skip(), -99, 0};
    assert_int_equal(db_lock_migrations(a), 0);

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, lock_thread, &l), 0);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(l.done, 0);
    assert_query1(a,
                  "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted = false",
                  0, NULL, "1");

    assert_int_equal(db_unlock_migrations(a), 0);
    pthread_join(t, NULL);
    assert_int_equal(l.rc, 0);
    assert_int_equal(db_unlock_migrations(l.d), 0);
    assert_query1(a, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", 0, NULL, "0");
    db_close(l.d);
    db_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_failure_names_url_without_password),
        cmocka_unit_test(test_session_settings),
        cmocka_unit_test(test_placeholders_outside_quotes),
        cmocka_unit_test(test_param_count_mismatch),
        cmocka_unit_test(test_nulls_both_ways),
        cmocka_unit_test(test_changed_rows_and_results),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_lock_not_available_is_busy),
        cmocka_unit_test(test_deadlock_is_retry),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_later_statements),
        cmocka_unit_test(test_commit_later),
        cmocka_unit_test(test_later_int),
        cmocka_unit_test(test_later_rows),
        cmocka_unit_test(test_statement_cache_is_capped),
        cmocka_unit_test(test_reconnects_after_connection_loss),
        cmocka_unit_test(test_transaction_lost_with_connection),
        cmocka_unit_test(test_migration_lock_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
