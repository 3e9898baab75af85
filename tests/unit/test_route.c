/* Unit tests for net/route: matching, parameters and their decoding, the
 * Allow list, and the limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/route.h"

static int t_sessions, t_create, t_get, t_patch, t_runs, t_run, t_info;

static route_table *table(void)
{
    route_table *t = route_table_new();
    assert_int_equal(route_add(t, "POST", "/api/sessions", &t_create), 0);
    assert_int_equal(route_add(t, "GET", "/api/sessions", &t_sessions), 0);
    assert_int_equal(route_add(t, "GET", "/api/sessions/{id}", &t_get), 0);
    assert_int_equal(route_add(t, "PATCH", "/api/sessions/{id}", &t_patch), 0);
    assert_int_equal(route_add(t, "POST", "/api/sessions/{id}/runs", &t_runs), 0);
    assert_int_equal(route_add(t, "GET", "/api/runs/{id}", &t_run), 0);
    assert_int_equal(route_add(t, "GET", "/api/info", &t_info), 0);
    return t;
}

static void test_match_and_params(void **state)
{
    (void)state;
    route_table *t = table();
    route_match m;
    route_find(t, "GET", "/api/sessions", &m);
    assert_ptr_equal(m.target, &t_sessions);
    assert_int_equal(m.nparams, 0);
    route_match_cleanup(&m);

    route_find(t, "POST", "/api/sessions/ses_1/runs", &m);
    assert_ptr_equal(m.target, &t_runs);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(route_param(&m, "id"), "ses_1");
    assert_null(route_param(&m, "name"));
    route_match_cleanup(&m);

    /* HEAD finds the GET route. */
    route_find(t, "HEAD", "/api/runs/run_9", &m);
    assert_ptr_equal(m.target, &t_run);
    assert_string_equal(route_param(&m, "id"), "run_9");
    route_match_cleanup(&m);
    route_table_free(t);
}

static void test_not_found_and_allow(void **state)
{
    (void)state;
    route_table *t = table();
    route_match m;
    route_find(t, "DELETE", "/api/sessions", &m);
    assert_null(m.target);
    assert_string_equal(m.allow, "POST, GET, HEAD");
    route_match_cleanup(&m);

    route_find(t, "PUT", "/api/sessions/x", &m);
    assert_null(m.target);
    assert_string_equal(m.allow, "GET, HEAD, PATCH");
    route_match_cleanup(&m);

    static const char *const none[] = {
        "/api/nothing",           "/api/sessions/", "/api/sessions//runs",
        "/api/sessions/x/runs/y", "api/info",       "",
        "/a/b/c/d/e/f/g/h/i"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        route_find(t, "GET", none[i], &m);
        assert_null(m.target);
        assert_string_equal(m.allow, "");
        route_match_cleanup(&m);
    }
    route_table_free(t);
}

static void test_decode(void **state)
{
    (void)state;
    char *s = route_decode("a%2Fb%20c+d", 11);
    assert_string_equal(s, "a/b c+d");
    free(s);
    s = route_decode("100%", 4);
    assert_string_equal(s, "100%");
    free(s);
    s = route_decode("%zz%4", 5);
    assert_string_equal(s, "%zz%4");
    free(s);
    s = route_decode("%41%62", 6);
    assert_string_equal(s, "Ab");
    free(s);
    /* Only len bytes are read. */
    s = route_decode("%41xyz", 3);
    assert_string_equal(s, "A");
    free(s);
    assert_null(route_decode("a%00b", 5));

    route_table *t = table();
    route_match m;
    route_find(t, "GET", "/api/sessions/ses%5F1", &m);
    assert_ptr_equal(m.target, &t_get);
    assert_string_equal(route_param(&m, "id"), "ses_1");
    route_match_cleanup(&m);
    /* An id holding a NUL byte is never a real id. */
    route_find(t, "GET", "/api/sessions/a%00b", &m);
    assert_null(m.target);
    assert_string_equal(m.allow, "");
    route_match_cleanup(&m);
    route_table_free(t);
}

static void test_bad_patterns(void **state)
{
    (void)state;
    route_table *t = route_table_new();
    int x;
    assert_int_equal(route_add(t, "GET", "no/slash", &x), -1);
    assert_int_equal(route_add(t, "GET", "/a/b/c/d/e/f/g/h/i", &x), -1);
    assert_int_equal(route_add(t, "GET", "/{a}/{b}/{c}/{d}/{e}", &x), -1);
    assert_int_equal(route_add(t, "TOOLONGMETHOD", "/a", &x), -1);
    assert_int_equal(route_add(t, "GET", "/a/b/c/d/e/f/g/h", &x), 0);
    route_match m;
    route_find(t, "GET", "/a/b/c/d/e/f/g/h", &m);
    assert_ptr_equal(m.target, &x);
    route_match_cleanup(&m);
    route_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_and_params),
        cmocka_unit_test(test_not_found_and_allow),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_bad_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
