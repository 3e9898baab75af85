/* Unit tests for net/framing: the rules on a request's head, the end of
 * a head, header splitting, and the chunked body reader fed in pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/framing.h"

/* Checks a head given as text (request line included). */
static void check(const char *head, uint64_t limit, framing_verdict *v)
{
    size_t end = framing_head_end(head, strlen(head), 0);
    assert_int_equal(end, strlen(head));
    framing_header h[16];
    int n = framing_split(head, end, h, 16);
    assert_true(n >= 0);
    framing_check(h, n, limit, v);
}

static void test_rules(void **state)
{
    (void)state;
    framing_verdict v;
    check("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 100, &v);
    assert_int_equal(v.status, 0);
    assert_false(v.chunked);
    check("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 100, &v);
    assert_int_equal(v.status, 400);
    assert_string_equal(v.message, "the request has 2 Host headers; exactly one is allowed");
    check("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 100, &v);
    assert_int_equal(v.status, 400);
    assert_string_equal(v.message, "the request has Content-Length headers that differ");
    check("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", 100, &v);
    assert_int_equal(v.status, 0);
    check("POST / HTTP/1.1\r\nContent-Length:  +2 \r\n\r\n", 100, &v);
    assert_int_equal(v.status, 400);
    assert_string_equal(v.message, "Content-Length must be digits only, not \"+2\"");
    check("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 100, &v);
    assert_int_equal(v.status, 413);
    assert_string_equal(v.code, "payload_too_large");
    check("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n", 100, &v);
    assert_int_equal(v.status, 0);
    check("POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n", UINT64_MAX, &v);
    assert_int_equal(v.status, 413);
    check("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 100, &v);
    assert_int_equal(v.status, 501);
    assert_string_equal(v.code, "not_implemented");
    assert_string_equal(v.message, "Transfer-Encoding \"gzip\" is not supported; only chunked is");
    check("POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n", 100, &v);
    assert_int_equal(v.status, 0);
    assert_true(v.chunked);
    check("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 100, &v);
    assert_int_equal(v.status, 400);
    check("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
          100, &v);
    assert_int_equal(v.status, 501);
}

static void test_head_end_and_split(void **state)
{
    (void)state;
    const char *h = "GET / HTTP/1.1\nA: 1\n\nbody";
    assert_int_equal(framing_head_end(h, strlen(h), 0), 21);
    const char *c = "GET / HTTP/1.1\r\nA: 1\r\n\r\nbody";
    /* A search resumed after any shorter length without an end (the end
     * may straddle it) finds the same end. */
    for (size_t from = 0; from <= 23; from++) assert_int_equal(framing_head_end(c, 24, from), 24);
    assert_int_equal(framing_head_end(c, 23, 0), 0);
    framing_header hs[4];
    const char *f = "GET / HTTP/1.1\r\nA:  x y \r\n folded\r\nB:\r\n\r\n";
    assert_int_equal(framing_split(f, strlen(f), hs, 4), 2);
    assert_int_equal(hs[0].value_len, 3);
    assert_memory_equal(hs[0].value, "x y", 3);
    assert_int_equal(hs[1].value_len, 0);
    assert_int_equal(framing_split(f, strlen(f), hs, 1), -1);
    const char *nc = "GET / HTTP/1.1\r\nno colon\r\n\r\n";
    assert_int_equal(framing_split(nc, strlen(nc), hs, 4), -1);
}

/* Feeds body in pieces of step bytes; returns the last result. */
static int feed(const char *body, size_t step, uint64_t limit, size_t *at, char *err)
{
    framing_chunks c;
    framing_chunks_init(&c, limit);
    size_t len = strlen(body);
    *at = 0;
    while (*at < len) {
        size_t k = len - *at < step ? len - *at : step, used = 0;
        int rc = framing_chunks_feed(&c, body + *at, k, &used, err, 160);
        if (rc != FRAMING_MORE) {
            *at += used;
            return rc;
        }
        *at += k;
    }
    return FRAMING_MORE;
}

static void test_chunks(void **state)
{
    (void)state;
    char err[160];
    size_t at;
    const char *ok = "5\r\nhello\r\nA \r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nGET /next";
    for (size_t step = 1; step <= strlen(ok); step++) {
        assert_int_equal(feed(ok, step, 15, &at, err), FRAMING_DONE);
        assert_int_equal(at, strlen(ok) - strlen("GET /next"));
    }
    assert_int_equal(feed(ok, 3, 14, &at, err), FRAMING_TOO_LARGE);
    assert_int_equal(feed("2\n{}\n0\n\n", 1, 10, &at, err), FRAMING_DONE);
    assert_int_equal(feed("5\r\nhel", 2, 10, &at, err), FRAMING_MORE);
    assert_int_equal(feed("zz\r\n", 1, 10, &at, err), FRAMING_BAD);
    assert_string_equal(err,
                        "the chunked body is malformed: a chunk size must be hex digits, not 'z'");
    assert_int_equal(feed("-2\r\n", 1, 10, &at, err), FRAMING_BAD);
    assert_int_equal(feed("0x2\r\n", 1, 10, &at, err), FRAMING_BAD);
    assert_int_equal(feed("2;a=b\r\n", 1, 10, &at, err), FRAMING_BAD);
    assert_int_equal(feed("2\r\nabX", 1, 10, &at, err), FRAMING_BAD);
    assert_string_equal(
        err, "the chunked body is malformed: a chunk's data must be followed by CRLF, not 'X'");
    assert_int_equal(feed("2\r\x01", 1, 10, &at, err), FRAMING_BAD);
    assert_string_equal(
        err, "the chunked body is malformed: a chunk size line must end in CRLF, not byte 0x01");
    assert_int_equal(feed("fffffffffffffffff\r\n", 4, UINT64_MAX, &at, err), FRAMING_TOO_LARGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_head_end_and_split),
        cmocka_unit_test(test_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
