/* Unit tests for the URL handling of store/db: password masking and the
 * messages for URLs that name no known kind of database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/db.h"

static void assert_redacts(const char *url, const char *want)
{
    char *got = db_url_redact(url);
    assert_string_equal(got, want);
    free(got);
}

static void test_redact_userinfo(void **state)
{
    (void)state;
    assert_redacts("postgres://alice:s3cret@db.example:5432/chat",
                   "postgres://alice:***@db.example:5432/chat");
    assert_redacts("postgresql://bob:pw@localhost/chat?sslmode=require",
                   "postgresql://bob:***@localhost/chat?sslmode=require");
    /* An unescaped '@', '/' or '?' in the password is masked whole. */
    assert_redacts("postgres://u:p@ss/w?rd@host/db", "postgres://u:***@host/db");
}

static void test_redact_leaves_urls_without_password(void **state)
{
    (void)state;
    assert_redacts("postgres://alice@host/db", "postgres://alice@host/db");
    assert_redacts("postgres://host:5432/db", "postgres://host:5432/db");
    assert_redacts("postgres://alice:@host/db", "postgres://alice:@host/db");
    assert_redacts("sqlite:chatplane.db", "sqlite:chatplane.db");
    assert_redacts("sqlite::memory:", "sqlite::memory:");
    assert_redacts("", "");
}

static void test_redact_password_parameter(void **state)
{
    (void)state;
    assert_redacts("postgres://host/db?user=a&password=hunter2&sslmode=disable",
                   "postgres://host/db?user=a&password=***&sslmode=disable");
    assert_redacts("postgres://host/db?password=x", "postgres://host/db?password=***");
    assert_redacts("host=h password=secret dbname=d", "host=h password=*** dbname=d");
    /* A parameter that merely ends in "password" is not the password. */
    assert_redacts("postgres://host/db?oldpassword=x", "postgres://host/db?oldpassword=x");
    assert_redacts("postgres://a:b@host/db?password=c", "postgres://a:***@host/db?password=***");
}

static void test_unknown_scheme_names_url_and_forms(void **state)
{
    (void)state;
    db *d = (db *)1;
    char err[512];
    assert_int_equal(db_open("mysql://root:toor@host/db", &d, err, sizeof err), DB_ERR);
    assert_null(d);
    assert_string_equal(err, "cannot open database mysql://root:***@host/db: unknown kind of URL; "
                             "use sqlite:PATH, sqlite::memory:, "
                             "postgres://user:pass@host:port/db or "
                             "postgresql://user:pass@host:port/db");
}

static void test_empty_urls(void **state)
{
    (void)state;
    db *d = NULL;
    char err[512];
    assert_int_equal(db_open("", &d, err, sizeof err), DB_ERR);
    assert_string_equal(err, "no database URL given; use sqlite:PATH, sqlite::memory:, "
                             "postgres://user:pass@host:port/db or "
                             "postgresql://user:pass@host:port/db");
    assert_int_equal(db_open("sqlite:", &d, err, sizeof err), DB_ERR);
    assert_null(d);
    assert_string_equal(err, "cannot open database sqlite:: the path is empty; use sqlite:PATH, "
                             "sqlite::memory:, postgres://user:pass@host:port/db or "
                             "postgresql://user:pass@host:port/db");
}

static void test_memory_database_opens(void **state)
{
    (void)state;
    db *d = NULL;
    char err[512] = "";
    assert_int_equal(db_open("sqlite::memory:", &d, err, sizeof err), 0);
    assert_int_equal(db_get_kind(d), DB_SQLITE);
    db_result *r = NULL;
    assert_int_equal(db_exec(d, "SELECT chatplane_ms(chatplane_ts(?)), ?", 2,
                             (const char *const[]){"1700000000123", NULL}, &r),
                     0);
    assert_int_equal(db_result_rows(r), 1);
    assert_int_equal(db_result_cols(r), 2);
    assert_int_equal(db_result_int(r, 0, 0, -1), 1700000000123);
    assert_null(db_result_get(r, 0, 1));
    assert_int_equal(db_result_int(r, 0, 1, -7), -7);
    db_result_free(r);
    db_close(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_userinfo),
        cmocka_unit_test(test_redact_leaves_urls_without_password),
        cmocka_unit_test(test_redact_password_parameter),
        cmocka_unit_test(test_unknown_scheme_names_url_and_forms),
        cmocka_unit_test(test_empty_urls),
        cmocka_unit_test(test_memory_database_opens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
