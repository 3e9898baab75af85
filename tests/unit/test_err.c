/* Unit tests for lib/err: one space of distinct codes with names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/sse.h"
#include "engine/engine.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "store/db.h"
#include "store/store.h"

/* Every module's code is distinct from every other's, so a code that
 * travels up is never read as another module's. */
static void test_codes_are_distinct(void **state)
{
    (void)state;
    const int codes[] = {BUF_TOOBIG,
                         DB_ERR,
                         DB_ERR_CONFLICT,
                         DB_ERR_BUSY,
                         DB_ERR_CONN,
                         DB_ERR_FULL,
                         DB_ERR_RETRY,
                         STORE_NOT_FOUND,
                         STORE_CONFLICT,
                         STORE_TOO_NEW,
                         ENGINE_ERR_RUN_ACTIVE,
                         ENGINE_ERR_NO_RUN,
                         ENGINE_ERR_NOTHING,
                         ENGINE_ERR_TOO_MANY,
                         ENGINE_ERR_UNAVAILABLE,
                         ENGINE_ERR_BAD_MODE,
                         DB_ERR_CLAIMED};
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        assert_true(codes[i] < 0);
        for (size_t j = i + 1; j < n; j++) assert_int_not_equal(codes[i], codes[j]);
    }
    /* The same meaning keeps one code. */
    assert_int_equal(SSE_ERR_TOOBIG, BUF_TOOBIG);
    assert_int_equal(ENGINE_ERR_NOT_FOUND, STORE_NOT_FOUND);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(err_name(0), "ok");
    assert_string_equal(err_name(BUF_TOOBIG), "toobig");
    assert_string_equal(err_name(DB_ERR_CONFLICT), "db_conflict");
    assert_string_equal(err_name(DB_ERR_RETRY), "db_retry");
    assert_string_equal(err_name(STORE_NOT_FOUND), "not_found");
    assert_string_equal(err_name(ENGINE_ERR_NO_RUN), "no_run");
    assert_string_equal(err_name(ENGINE_ERR_BAD_MODE), "bad_mode");
    assert_string_equal(err_name(DB_ERR_CLAIMED), "db_claimed");
    assert_string_equal(err_name(ENGINE_ERR_NOTHING_TO_REGENERATE), "no_user_message");
    assert_string_equal(err_name(ERR__LAST - 1), "unknown");
    assert_string_equal(err_name(1), "unknown");
    for (int c = ERR__LAST; c <= 0; c++) assert_string_not_equal(err_name(c), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_are_distinct),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
