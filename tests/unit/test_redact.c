/* Unit tests for lib/redact: fragments of known secrets masked in text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/redact.h"

/* 35 characters; upstreams echo the first 31 of it. */
#define KEY    "sk-live-S3CR3Tk3y0123456789abcdWXYZ"
#define KEY31  "sk-live-S3CR3Tk3y0123456789abcd"
#define DBPASS "pg-Passw0rd!"

static redact_set set;

static int setup(void **state)
{
    (void)state;
    redact_set_init(&set);
    assert_int_equal(redact_set_add(&set, KEY, strlen(KEY)), REDACT_ADDED);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    redact_set_cleanup(&set);
    return 0;
}

/* Redacts text (a C string) through set and checks the result exactly. */
static void check(const char *text, const char *want)
{
    size_t n;
    bool found;
    char *out = redact_text(&set, text, strlen(text), &n, &found);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    assert_int_equal(found, strcmp(text, want) != 0);
    free(out);
}

static void test_whole_secret(void **state)
{
    (void)state;
    check("Incorrect API key provided: " KEY ".", "Incorrect API key provided: [redacted].");
    check(KEY, "[redacted]");
    check("nothing secret here", "nothing secret here");
}

static void test_cut_at_the_end(void **state)
{
    (void)state;
    check("Incorrect API key provided: " KEY31, "Incorrect API key provided: [redacted]");
    /* Starred in the middle, as some servers do: both visible runs go. */
    check("key sk-live-S3CR****************WXYZ end", "key [redacted]****************WXYZ end");
}

static void test_cut_at_the_start(void **state)
{
    (void)state;
    check("...3Tk3y0123456789abcdWXYZ\" is invalid", "...[redacted]\" is invalid");
}

static void test_short_fragment_kept(void **state)
{
    (void)state;
    /* Seven characters of the key, the start and the end: kept. */
    check("sk-live is a prefix; so is bcdWXYZ", "sk-live is a prefix; so is bcdWXYZ");
    /* Eight are not. */
    check("sk-live- is a prefix; so is abcdWXYZ", "[redacted] is a prefix; so is [redacted]");
}

static void test_two_secrets(void **state)
{
    (void)state;
    assert_int_equal(redact_set_add(&set, DBPASS, strlen(DBPASS)), REDACT_ADDED);
    check("db " DBPASS " model " KEY, "db [redacted] model [redacted]");
    /* Side by side they make one stretch, one mark. */
    check(KEY DBPASS, "[redacted]");
    /* The same secret again is not kept twice. */
    assert_int_equal(redact_set_add(&set, DBPASS, strlen(DBPASS)), REDACT_IGNORED);
    assert_int_equal(set.n, 2);
}

static void test_overlapping_occurrences(void **state)
{
    (void)state;
    redact_set s2;
    redact_set_init(&s2);
    assert_int_equal(redact_set_add(&s2, "abababab12", 10), REDACT_ADDED);
    /* Windows that overlap each other and run past the secret's length. */
    char *out = redact_text(&s2, "x abababababab12 y", 18, NULL, NULL);
    assert_string_equal(out, "x [redacted] y");
    free(out);
    /* Two occurrences that share bytes are one stretch. */
    out = redact_text(&s2, "ababab12ababab12", 16, NULL, NULL);
    assert_string_equal(out, "[redacted]");
    free(out);
    redact_set_cleanup(&s2);
}

static void test_utf8_boundaries(void **state)
{
    (void)state;
    redact_set s2;
    redact_set_init(&s2);
    /* "ä" (C3 A4) + "sswort12", and "sswort12" + the first two bytes of "€". */
    assert_int_equal(redact_set_add(&s2, "\xc3\xa4sswort12", 10), REDACT_ADDED);
    assert_int_equal(redact_set_add(&s2, "Xsswort34\xe2\x82", 11), REDACT_ADDED);
    /* The match starts at the last byte of "₤" (E2 82 A4): the whole
     * character goes, not two thirds of it. */
    char *out = redact_text(&s2, "a\xe2\x82\xa4sswort12b", 13, NULL, NULL);
    assert_string_equal(out, "a[redacted]b");
    free(out);
    /* The match ends inside "€" (E2 82 AC): its last byte goes too. */
    out = redact_text(&s2, "x sswort34\xe2\x82\xac y", 15, NULL, NULL);
    assert_string_equal(out, "x [redacted] y");
    free(out);
    /* Characters around a stretch stay whole. */
    out = redact_text(&s2, "\xc3\xa9\xc3\xa4sswort12\xc3\xa9", 14, NULL, NULL);
    assert_string_equal(out, "\xc3\xa9[redacted]\xc3\xa9");
    free(out);
    redact_set_cleanup(&s2);
}

static void test_short_secrets_whole_only(void **state)
{
    (void)state;
    redact_set s2;
    redact_set_init(&s2);
    assert_int_equal(redact_set_add(&s2, "hunter2", 7), REDACT_ADDED);
    assert_int_equal(redact_set_add(&s2, "abc", 3), REDACT_IGNORED);
    assert_int_equal(redact_set_add(&s2, "", 0), REDACT_IGNORED);
    assert_int_equal(redact_set_add(&s2, NULL, 0), REDACT_IGNORED);
    char *out = redact_text(&s2, "my hunter2, not hunter or abc", 29, NULL, NULL);
    assert_string_equal(out, "my [redacted], not hunter or abc");
    free(out);
    redact_set_cleanup(&s2);
}

static void test_bytes_kept_as_they_are(void **state)
{
    (void)state;
    static const char text[] = "a\0b " KEY31 "\0c";
    size_t n;
    bool found;
    char *out = redact_text(&set, text, sizeof text - 1, &n, &found);
    static const char want[] = "a\0b [redacted]\0c";
    assert_true(found);
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(out, want, n);
    assert_int_equal(out[n], '\0');
    free(out);
    /* A secret may hold a NUL byte too. */
    redact_set s2;
    redact_set_init(&s2);
    assert_int_equal(redact_set_add(&s2, "ab\0cdefghij", 11), REDACT_ADDED);
    out = redact_text(&s2, "x ab\0cdefgh y", 14, &n, &found);
    assert_true(found);
    assert_string_equal(out, "x [redacted] y");
    free(out);
    redact_set_cleanup(&s2);
    /* An empty set and an empty text copy. */
    redact_set empty;
    redact_set_init(&empty);
    out = redact_text(&empty, KEY, strlen(KEY), &n, &found);
    assert_string_equal(out, KEY);
    assert_false(found);
    free(out);
    out = redact_text(&set, "", 0, &n, NULL);
    assert_string_equal(out, "");
    assert_int_equal(n, 0);
    free(out);
}

static void test_set_is_capped(void **state)
{
    (void)state;
    redact_set s2;
    redact_set_init(&s2);
    char secret[32];
    for (int i = 0; i < REDACT_MAX_COUNT; i++) {
        snprintf(secret, sizeof secret, "secret-number-%03d", i);
        assert_int_equal(redact_set_add(&s2, secret, strlen(secret)), REDACT_ADDED);
    }
    assert_int_equal(redact_set_add(&s2, "one-too-many", 12), REDACT_FULL);
    redact_set_cleanup(&s2);
}

static void test_registry_and_urls(void **state)
{
    (void)state;
    redact_reset();
    assert_int_equal(redact_register(KEY), REDACT_ADDED);
    /* A userinfo password, as written and percent-decoded. */
    assert_int_equal(redact_register_url("postgres://app:p%40ss-w0rd@db.local:5432/chat"), 2);
    /* libpq keywords and query parameters. */
    assert_int_equal(redact_register_url("host=db password=kw-secret-1 dbname=chat"), 1);
    assert_int_equal(redact_register_url("postgres://db/chat?user=a&password=q-secret-2&x=1"), 1);
    /* Nothing to take: no password. */
    assert_int_equal(redact_register_url("http://user@127.0.0.1:8080/v1"), 0);
    assert_int_equal(redact_register_url("sqlite:chat.db"), 0);
    assert_int_equal(redact_register_url(NULL), 0);

    size_t n;
    static const char text[] = "auth p@ss-w0rd kw-secret-1 q-secret-2 " KEY31;
    char *out = redact_string(text, sizeof text - 1, &n);
    assert_string_equal(out, "auth [redacted] [redacted] [redacted] [redacted]");
    assert_int_equal(n, strlen(out));
    free(out);

    char *s = strdup("HTTP 401: Incorrect API key provided: " KEY31);
    redact_in_place(&s);
    assert_string_equal(s, "HTTP 401: Incorrect API key provided: [redacted]");
    free(s);
    char *none = NULL;
    redact_in_place(&none);
    assert_null(none);

    redact_reset();
    out = redact_string(KEY, strlen(KEY), NULL);
    assert_string_equal(out, KEY);
    free(out);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_whole_secret),
        T(test_cut_at_the_end),
        T(test_cut_at_the_start),
        T(test_short_fragment_kept),
        T(test_two_secrets),
        T(test_overlapping_occurrences),
        T(test_utf8_boundaries),
        T(test_short_secrets_whole_only),
        T(test_bytes_kept_as_they_are),
        T(test_set_is_capped),
        T(test_registry_and_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
