/* Unit tests for net/validate: the request body and query checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/validate.h"

static const char *const modes[] = {"quick", "standard", "deep"};
static const validate_ctx ctx = {16, modes, 3};

/* Parses text and validates it against schema; returns the message, or ""
 * when it passed. */
static const char *check(const validate_schema *schema, const char *text)
{
    static char err[512];
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    assert_non_null(v);
    int rc = validate_body(schema, v, &ctx, err, sizeof err);
    json_decref(v);
    if (rc == 0) return "";
    return err;
}

static void test_run_start(void **state)
{
    (void)state;
    assert_string_equal(check(&validate_run_start, "{\"message\":\"hi\"}"), "");
    assert_string_equal(check(&validate_run_start, "{\"message\":\"hi\",\"mode\":\"deep\"}"), "");
    assert_string_equal(check(&validate_run_start, "{\"message\":\"hi\",\"mode\":null}"), "");
    /* Without a message the route decides (regenerate, or "message must be a
     * non-empty string"): the schema lets it through. */
    assert_string_equal(check(&validate_run_start, "{}"), "");
    assert_string_equal(check(&validate_run_start, "{\"regenerate\":true}"), "");
    assert_string_equal(check(&validate_run_start, "{\"regenerate\":false}"),
                        "regenerate must be true");
    assert_string_equal(check(&validate_run_start, "{\"regenerate\":\"yes\"}"),
                        "regenerate must be true");
    assert_string_equal(check(&validate_run_start, "{\"message\":\"\"}"),
                        "message must be a non-empty string");
    assert_string_equal(check(&validate_run_start, "{\"message\":7}"),
                        "message must be a non-empty string");
    assert_string_equal(check(&validate_run_start, "{\"message\":null}"), "");
    assert_string_equal(check(&validate_run_start, "{\"message\":\"12345678901234567\"}"),
                        "message must be at most 16 bytes");
    assert_string_equal(check(&validate_run_start, "{\"message\":\"1234567890123456\"}"), "");
    assert_string_equal(check(&validate_run_start, "{\"message\":\"hi\",\"mode\":\"huge\"}"),
                        "mode 'huge' is not one of quick, standard, deep");
    assert_string_equal(check(&validate_run_start, "{\"message\":\"hi\",\"mode\":3}"),
                        "mode must be a string");
    assert_string_equal(check(&validate_run_start, "{\"message\":\"hi\",\"foo\":1}"),
                        "unknown field 'foo'");
    assert_string_equal(check(&validate_run_start, "[1]"), "the body must be a JSON object");
    assert_string_equal(check(&validate_run_start, "\"x\""), "the body must be a JSON object");
}

static void test_titles(void **state)
{
    (void)state;
    char t201[202], t200[201];
    memset(t201, 'a', 201);
    t201[201] = '\0';
    memset(t200, 'a', 200);
    t200[200] = '\0';
    char body[300];
    snprintf(body, sizeof body, "{\"title\":\"%s\"}", t200);
    assert_string_equal(check(&validate_session_create, body), "");
    snprintf(body, sizeof body, "{\"title\":\"%s\"}", t201);
    assert_string_equal(check(&validate_session_create, body),
                        "title must be at most 200 characters");
    /* 200 characters of two bytes each are 400 bytes and still fine. */
    char wide[1000] = "{\"title\":\"";
    for (int i = 0; i < 200; i++) strcat(wide, "\xc3\xa9");
    strcat(wide, "\"}");
    assert_string_equal(check(&validate_session_patch, wide), "");
    assert_string_equal(check(&validate_session_create, "{\"title\":\"  \"}"),
                        "title must not be empty");
    assert_string_equal(check(&validate_session_create, "{\"title\":false}"),
                        "title must be a string");
    assert_string_equal(check(&validate_session_create, "{}"), "");
    assert_string_equal(check(&validate_session_create, "{\"mode\":\"quick\"}"), "");
}

static void test_other_bodies(void **state)
{
    (void)state;
    assert_string_equal(check(&validate_stop, "{}"), "");
    assert_string_equal(check(&validate_stop, "{\"now\":true}"), "unknown field 'now'");
    assert_string_equal(check(&validate_continue, "{\"mode\":\"deep\"}"), "");
    assert_string_equal(check(&validate_mode_put, "{\"limits\":{\"steps\":3}}"), "");
    assert_string_equal(check(&validate_mode_put, "{\"limits\":3}"), "limits must be an object");
    assert_string_equal(check(&validate_mode_put, "{\"guard\":[]}"), "guard must be an object");
    assert_string_equal(check(&validate_brain_stream, "{\"message\":\"x\",\"session_id\":\"\"}"),
                        "session_id must be a non-empty string of at most 64 bytes");
    assert_string_equal(check(&validate_brain_stream, "{\"message\":\"x\",\"session_id\":\"s\"}"),
                        "");
    assert_string_equal(check(&validate_login, "{}"), "token is required");
}

/* A choice names its field and every allowed value; null counts as absent. */
static void test_choices(void **state)
{
    (void)state;
    assert_string_equal(check(&validate_decision, "{\"decision\":\"approve\"}"), "");
    assert_string_equal(check(&validate_decision,
                              "{\"decision\":\"deny\",\"reason\":\"no\",\"remember\":\"session\"}"),
                        "");
    assert_string_equal(check(&validate_decision, "{\"decision\":\"deny\",\"remember\":null}"), "");
    assert_string_equal(check(&validate_decision, "{}"), "decision is required");
    assert_string_equal(check(&validate_decision, "{\"decision\":\"Approve\"}"),
                        "decision must be one of approve, deny");
    assert_string_equal(check(&validate_decision, "{\"decision\":true}"),
                        "decision must be one of approve, deny");
    assert_string_equal(
        check(&validate_decision, "{\"decision\":\"deny\",\"remember\":\"always\"}"),
        "remember must be one of once, run, session");
    assert_string_equal(check(&validate_mode_put, "{\"approval\":\"always\"}"), "");
    assert_string_equal(check(&validate_mode_put, "{\"approval\":\"sometimes\"}"),
                        "approval must be one of never, risky, always");
}

static void test_query_int(void **state)
{
    (void)state;
    char err[128];
    int64_t v = -1;
    assert_int_equal(validate_query_int("limit", "50", 1, 200, &v, err, sizeof err), 0);
    assert_int_equal(v, 50);
    assert_int_equal(validate_query_int("limit", "0", 1, 200, &v, err, sizeof err), -1);
    assert_string_equal(err, "limit must be an integer from 1 to 200");
    assert_int_equal(validate_query_int("limit", "201", 1, 200, &v, err, sizeof err), -1);
    assert_int_equal(validate_query_int("limit", "5x", 1, 200, &v, err, sizeof err), -1);
    assert_int_equal(validate_query_int("limit", "-5", 1, 200, &v, err, sizeof err), -1);
    assert_int_equal(validate_query_int("limit", "", 1, 200, &v, err, sizeof err), -1);
    assert_int_equal(validate_query_int("after", "x", 0, INT64_MAX, &v, err, sizeof err), -1);
    assert_string_equal(err, "after must be a non-negative integer");
    assert_int_equal(
        validate_query_int("after", "99999999999999999999", 0, INT64_MAX, &v, err, sizeof err), -1);
    assert_int_equal(validate_query_int("after", "0", 0, INT64_MAX, &v, err, sizeof err), 0);
    assert_int_equal(v, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_start),    cmocka_unit_test(test_titles),
        cmocka_unit_test(test_other_bodies), cmocka_unit_test(test_choices),
        cmocka_unit_test(test_query_int),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
