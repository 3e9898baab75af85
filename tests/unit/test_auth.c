/* Unit tests for net/auth: tokens, their hash, names, and the parsing of
 * the Authorization, Cookie, Origin and Host headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/auth.h"

static void test_token_new(void **state)
{
    (void)state;
    char a[AUTH_TOKEN_LEN + 1], b[AUTH_TOKEN_LEN + 1];
    auth_token_new(a);
    auth_token_new(b);
    assert_int_equal(strlen(a), 68);
    assert_memory_equal(a, "cpt_", 4);
    assert_int_equal(strspn(a + 4, "0123456789abcdef"), 64);
    assert_string_not_equal(a, b);
    assert_true(auth_token_wellformed(a));
}

static void test_token_hash(void **state)
{
    (void)state;
    char h[SHA256_HEX_LEN + 1];
    auth_token_hash("abc", h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_names(void **state)
{
    (void)state;
    assert_true(auth_name_valid("alice"));
    assert_true(auth_name_valid("ops-1.team_a@example"));
    char n64[65];
    memset(n64, 'a', 64);
    n64[64] = '\0';
    assert_true(auth_name_valid(n64));
    char n65[66];
    memset(n65, 'a', 65);
    n65[65] = '\0';
    assert_false(auth_name_valid(n65));
    assert_false(auth_name_valid(""));
    assert_false(auth_name_valid("a b"));
    assert_false(auth_name_valid("a/b"));
    assert_false(auth_name_valid("é"));
}

static void test_bearer(void **state)
{
    (void)state;
    char t[32];
    assert_int_equal(auth_bearer("Bearer cpt_abc", t, sizeof t), 0);
    assert_string_equal(t, "cpt_abc");
    assert_int_equal(auth_bearer("  bearer \t xyz  ", t, sizeof t), 0);
    assert_string_equal(t, "xyz");
    assert_int_equal(auth_bearer("BEARER q", t, sizeof t), 0);
    assert_string_equal(t, "q");
    static const char *const bad[] = {"Basic abc",  "Bearer",      "Bearer ",    "Bearerabc",
                                      "Bearer a b", "Bearer a\"b", "Bearer a;b", "Token abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(auth_bearer(bad[i], t, sizeof t), -1);
    assert_int_equal(auth_bearer(NULL, t, sizeof t), -1);
    /* 31 characters fit in 32 bytes, 32 do not. */
    assert_int_equal(auth_bearer("Bearer 1234567890123456789012345678901", t, sizeof t), 0);
    assert_int_equal(auth_bearer("Bearer 12345678901234567890123456789012", t, sizeof t), -1);
}

static void test_cookie(void **state)
{
    (void)state;
    char v[32];
    assert_int_equal(auth_cookie("chatplane_session=tok", AUTH_COOKIE, v, sizeof v), 0);
    assert_string_equal(v, "tok");
    assert_int_equal(auth_cookie("a=1; chatplane_session=t2; b=2", AUTH_COOKIE, v, sizeof v), 0);
    assert_string_equal(v, "t2");
    assert_int_equal(auth_cookie("a=1;chatplane_session=\"t3\"", AUTH_COOKIE, v, sizeof v), 0);
    assert_string_equal(v, "t3");
    /* A cookie whose name only ends like ours is another cookie. */
    assert_int_equal(auth_cookie("xchatplane_session=t4", AUTH_COOKIE, v, sizeof v), -1);
    assert_int_equal(auth_cookie("chatplane_sessionx=t5", AUTH_COOKIE, v, sizeof v), -1);
    assert_int_equal(auth_cookie("chatplane_session=", AUTH_COOKIE, v, sizeof v), -1);
    assert_int_equal(auth_cookie("chatplane_session=a b", AUTH_COOKIE, v, sizeof v), -1);
    assert_int_equal(auth_cookie("", AUTH_COOKIE, v, sizeof v), -1);
    assert_int_equal(auth_cookie(NULL, AUTH_COOKIE, v, sizeof v), -1);
    assert_int_equal(auth_cookie(";;;", AUTH_COOKIE, v, sizeof v), -1);
}

static void test_origin(void **state)
{
    (void)state;
    assert_true(auth_origin_matches("http://127.0.0.1:8080", "127.0.0.1:8080"));
    assert_true(auth_origin_matches("https://Chat.Example.com", "chat.example.com"));
    assert_true(auth_origin_matches("http://localhost:8080/", "localhost:8080"));
    assert_false(auth_origin_matches("http://127.0.0.1:8081", "127.0.0.1:8080"));
    assert_false(auth_origin_matches("http://evil.example", "127.0.0.1:8080"));
    assert_false(auth_origin_matches("http://127.0.0.1:8080.evil", "127.0.0.1:8080"));
    assert_false(auth_origin_matches("http://127.0.0.1:8080/x", "127.0.0.1:8080"));
    assert_false(auth_origin_matches("null", "127.0.0.1:8080"));
    assert_false(auth_origin_matches("ftp://127.0.0.1:8080", "127.0.0.1:8080"));
    assert_false(auth_origin_matches("http://", ""));
    assert_false(auth_origin_matches(NULL, "h"));
    assert_false(auth_origin_matches("http://h", NULL));
}

static void test_loopback_host(void **state)
{
    (void)state;
    static const char *const yes[] = {"localhost",    "LOCALHOST:8080", "127.0.0.1",
                                      "127.0.0.1:80", "127.255.0.9:1",  "[::1]",
                                      "[::1]:8080"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(auth_host_is_loopback(yes[i]));
    static const char *const no[] = {"evil.example",
                                     "127.0.0.1.evil.example",
                                     "128.0.0.1",
                                     "127.0.0.256",
                                     "localhost.evil",
                                     "[::2]:80",
                                     "[::1]x",
                                     "127.0.0.1:80x",
                                     "",
                                     "0.0.0.0:8080",
                                     "127.0.0.1 "};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(auth_host_is_loopback(no[i]));
    assert_false(auth_host_is_loopback(NULL));
}

static void test_paths_and_methods(void **state)
{
    (void)state;
    assert_true(auth_path_needs_token("/api/info"));
    assert_true(auth_path_needs_token("/api/logout"));
    assert_true(auth_path_needs_token("/api"));
    assert_true(auth_path_needs_token("/api/login/x"));
    assert_false(auth_path_needs_token("/api/login"));
    assert_false(auth_path_needs_token("/"));
    assert_false(auth_path_needs_token("/healthz"));
    assert_false(auth_path_needs_token("/metrics"));
    assert_false(auth_path_needs_token("/apix"));
    assert_false(auth_method_writes("GET"));
    assert_false(auth_method_writes("HEAD"));
    assert_true(auth_method_writes("POST"));
    assert_true(auth_method_writes("DELETE"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_new),     cmocka_unit_test(test_token_hash),
        cmocka_unit_test(test_names),         cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_cookie),        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_loopback_host), cmocka_unit_test(test_paths_and_methods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
