/* Unit tests for net/http_error: the cleaning of error messages to UTF-8
 * and the JSON error bodies built on it. The module's .c is included to
 * reach its static cleaning function; the test then does not pull
 * http_error.o from the library. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/http_error.c"

#define R UTF8_REPLACEMENT

/* Cleans src into a buffer of cap bytes and checks the exact result. */
static void check_clean(const char *src, size_t cap, const char *want)
{
    char dst[64];
    assert_true(cap <= sizeof dst);
    memset(dst, 'X', sizeof dst);
    http_error__utf8_clean(dst, cap, src);
    assert_string_equal(dst, want);
    /* Nothing is written past the terminating NUL. */
    size_t n = strlen(want);
    for (size_t i = n + 1; i < sizeof dst; i++) assert_int_equal(dst[i], 'X');
}

static void test_clean_bytes_that_are_not_utf8(void **state)
{
    (void)state;
    /* What %FF%FE in a path decodes to: neither byte starts a character. */
    check_clean("no session \xff\xfe", 64, "no session " R R);
    /* The overlong form of '/': C0 never starts a character, and AF alone
     * is a stray continuation byte. */
    check_clean("\xc0\xaf", 64, R R);
    /* A surrogate and a code point above U+10FFFF are refused byte by byte. */
    check_clean("\xed\xa0\x80", 64, R R R);
    check_clean("\xf4\x90\x80\x80", 64, R R R R);
    check_clean("a\x80z", 64, "a" R "z");
}

static void test_clean_cut_sequences(void **state)
{
    (void)state;
    /* A character cut short: each of its bytes becomes one U+FFFD, at the
     * end of the text and before the next character alike. */
    check_clean("x\xe2\x82", 64, "x" R R);
    check_clean("\xe2\x82y", 64, R R "y");
    check_clean("\xf0\x9f\x98", 64, R R R);
    check_clean("\xc3", 64, R);
    /* A cut sequence followed by a whole character keeps the character. */
    check_clean("\xe2\x82\xe2\x82\xac", 64, R R "\xe2\x82\xac");
}

static void test_clean_keeps_valid_text(void **state)
{
    (void)state;
    check_clean("", 64, "");
    check_clean("no route for GET /api/x", 64, "no route for GET /api/x");
    /* Two-, three- and four-byte characters, the first and the last. */
    static const char text[] = "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\x80 \xf4\x8f\xbf\xbf";
    check_clean(text, 64, text);
}

static void test_clean_respects_the_cap(void **state)
{
    (void)state;
    /* cap counts the NUL: "ab" and a four-byte character need 7 bytes. */
    check_clean("ab\xf0\x9f\x98\x80", 7, "ab\xf0\x9f\x98\x80");
    check_clean("ab\xf0\x9f\x98\x80", 6, "ab");
    check_clean("ab\xf0\x9f\x98\x80", 3, "ab");
    check_clean("ab\xf0\x9f\x98\x80", 2, "a");
    check_clean("ab", 1, "");
    /* A replacement is never split either, and nothing after the first
     * piece that does not fit is taken, even when it would fit. */
    check_clean("a\xff", 5, "a" R);
    check_clean("a\xff", 4, "a");
    check_clean("a\xff"
                "b",
                4, "a");
    check_clean("\xc3\xa9\xc3\xa9", 4, "\xc3\xa9");
}

static void test_error_json(void **state)
{
    (void)state;
    char *text = http__error_json("not_found", "no session \xff\xfe");
    assert_string_equal(text,
                        "{\"error\":{\"code\":\"not_found\",\"message\":\"no session " R R "\"}}");
    free(text);
    /* The longest message http_reply_error formats (1023 bytes), every
     * byte replaced, still fits whole. */
    char msg[1024];
    memset(msg, '\xff', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    text = http__error_json("bad_request", msg);
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    const char *m = json_string_value(json_object_get(json_object_get(v, "error"), "message"));
    assert_non_null(m);
    assert_int_equal(strlen(m), 3 * (sizeof msg - 1));
    for (size_t i = 0; i < sizeof msg - 1; i++) assert_memory_equal(m + 3 * i, R, 3);
    json_decref(v);
    free(text);
}

static void test_error_response(void **state)
{
    (void)state;
    struct evbuffer *out = evbuffer_new();
    http__error_response(out, "HTTP/1.0", 413, "payload_too_large", "too large \xc0");
    static const char body[] =
        "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"too large " R "\"}}";
    char want[512];
    snprintf(want, sizeof want,
             "HTTP/1.0 413 Payload Too Large\r\n"
             "Content-Type: application/json\r\n"
             "Content-Length: %zu\r\n"
             "Connection: close\r\n"
             "Content-Security-Policy: default-src 'self'\r\n"
             "X-Content-Type-Options: nosniff\r\n"
             "Referrer-Policy: no-referrer\r\n"
             "X-Frame-Options: DENY\r\n"
             "\r\n%s",
             sizeof body - 1, body);
    size_t len = evbuffer_get_length(out);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(evbuffer_pullup(out, -1), want, len);
    evbuffer_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_bytes_that_are_not_utf8),
        cmocka_unit_test(test_clean_cut_sequences),
        cmocka_unit_test(test_clean_keeps_valid_text),
        cmocka_unit_test(test_clean_respects_the_cap),
        cmocka_unit_test(test_error_json),
        cmocka_unit_test(test_error_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
