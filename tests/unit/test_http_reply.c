/* Unit tests for core/http_reply: the model client's response parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/http_reply.h"

/* Records what the parser reported as one string:
 * "S<status>;H<name>=<value>;B<body bytes>" pieces in order. */
typedef struct seen {
    buf log;
    int stop_after; /* on_body says stop after this many calls, 0 never */
    int bodies;
    bool last_body; /* the last entry logged is a body */
} seen;

static void on_status(void *ud, int status)
{
    seen *s = ud;
    s->last_body = false;
    buf_printf(&s->log, "S%d;", status);
}

static void on_header(void *ud, const char *n, size_t nl, const char *v, size_t vl)
{
    seen *s = ud;
    s->last_body = false;
    buf_printf(&s->log, "H%.*s=%.*s;", (int)nl, n, (int)vl, v);
}

/* Body pieces in a row are logged as one, so that a log does not depend on
 * how the bytes were split. */
static bool on_body(void *ud, const char *d, size_t n)
{
    seen *s = ud;
    if (s->last_body) {
        s->log.len--; /* the ';' that closed the previous piece */
        s->log.data[s->log.len] = '\0';
    } else {
        buf_append_str(&s->log, "B");
    }
    buf_append(&s->log, d, n);
    buf_append_str(&s->log, ";");
    s->last_body = true;
    s->bodies++;
    return s->stop_after == 0 || s->bodies < s->stop_after;
}

static const http_reply_cb cbs = {on_status, on_header, on_body};

/* Feeds text in pieces of `step` bytes (0: whole); returns the last code
 * and leaves the log in s. */
static int parse(seen *s, http_reply *r, const char *text, size_t step, size_t *used_total)
{
    size_t len = strlen(text), at = 0, used = 0;
    int rc = HTTP_REPLY_MORE;
    buf_init(&s->log, 1 << 20);
    http_reply_init(r, &cbs, s);
    if (step == 0) step = len ? len : 1;
    while (at < len && rc == HTTP_REPLY_MORE) {
        size_t n = len - at < step ? len - at : step;
        rc = http_reply_feed(r, text + at, n, &used);
        at += used;
    }
    if (used_total) *used_total = at;
    return rc;
}

/* The same text must give the same log split anywhere: each step size. */
static void expect(const char *text, int want_rc, const char *want_log)
{
    for (size_t step = 0; step <= 7; step++) {
        seen s = {0};
        http_reply r;
        int rc = parse(&s, &r, text, step, NULL);
        assert_int_equal(rc, want_rc);
        assert_string_equal(s.log.data ? s.log.data : "", want_log);
        buf_cleanup(&s.log);
        http_reply_cleanup(&r);
    }
}

static void test_chunked_stream(void **state)
{
    (void)state;
    expect(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        HTTP_REPLY_DONE,
        "HContent-Type=text/event-stream;HTransfer-Encoding=chunked;S200;Bhello world;");
}

static void test_content_length_and_keep_alive(void **state)
{
    (void)state;
    seen s = {0};
    http_reply r;
    size_t used;
    const char *text =
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After:  3 \r\nContent-Length: 4\r\n\r\nbusyEXTRA";
    assert_int_equal(parse(&s, &r, text, 0, &used), HTTP_REPLY_DONE);
    assert_string_equal(s.log.data, "HRetry-After=3;HContent-Length=4;S429;Bbusy;");
    /* The bytes after the body are not taken: they belong to no response. */
    assert_int_equal(used, strlen(text) - 5);
    assert_true(r.keep_alive);
    assert_int_equal(r.status, 429);
    buf_cleanup(&s.log);
    http_reply_cleanup(&r);
}

static void test_body_to_the_end_of_the_connection(void **state)
{
    (void)state;
    seen s = {0};
    http_reply r;
    assert_int_equal(parse(&s, &r, "HTTP/1.0 200 OK\n\ndata: x\n\n", 3, NULL), HTTP_REPLY_MORE);
    assert_int_equal(http_reply_eof(&r), HTTP_REPLY_DONE);
    assert_false(r.keep_alive);
    assert_string_equal(s.log.data, "S200;Bdata: x\n\n;");
    buf_cleanup(&s.log);
    http_reply_cleanup(&r);
}

static void test_interim_responses_are_skipped(void **state)
{
    (void)state;
    expect("HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
           HTTP_REPLY_DONE, "HContent-Length=2;S200;Bok;");
}

static void test_connection_close_and_no_body(void **state)
{
    (void)state;
    seen s = {0};
    http_reply r;
    assert_int_equal(parse(&s, &r, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", 0, NULL),
                     HTTP_REPLY_DONE);
    assert_false(r.keep_alive);
    assert_true(r.no_body);
    assert_string_equal(s.log.data, "HConnection=close;S204;");
    buf_cleanup(&s.log);
    http_reply_cleanup(&r);
}

static void test_chunked_beside_a_length_is_not_reused(void **state)
{
    (void)state;
    seen s = {0};
    http_reply r;
    assert_int_equal(
        parse(&s, &r,
              "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
              "1\r\na\r\n0\r\n\r\n",
              0, NULL),
        HTTP_REPLY_DONE);
    assert_false(r.keep_alive);
    buf_cleanup(&s.log);
    http_reply_cleanup(&r);
}

/* Each malformed answer is refused with the reason that names it. */
static void test_malformed_answers(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"SSH-2.0-OpenSSH\r\n", "the answer is not an HTTP/1.x response"},
        {"HTTP/2 200\r\n", "the answer is not an HTTP/1.x response"},
        {"HTTP/1.1 2x0 OK\r\n", "the response's status is not a number"},
        {"HTTP/1.1 2000 OK\r\n", "the response's status is not a number"},
        {"HTTP/1.1 101 Switching\r\n", "the server switched protocols"},
        {"HTTP/1.1 200 OK\r\nno colon here\r\n", "a header line of the response is malformed"},
        {"HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n", "a header of the response is folded"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n",
         "the response's Content-Length is not a number"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
         "the response has two different Content-Lengths"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n",
         "the response uses a transfer coding other than chunked"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         "a chunk size of the response is not a number"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
         "a chunk of the response is longer than its size"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
         "a chunk of the response is too large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        seen s = {0};
        http_reply r;
        assert_int_equal(parse(&s, &r, cases[i].text, 0, NULL), HTTP_REPLY_BAD);
        assert_string_equal(r.error, cases[i].why);
        /* Once refused, it stays refused. */
        size_t used;
        assert_int_equal(http_reply_feed(&r, "x", 1, &used), HTTP_REPLY_BAD);
        buf_cleanup(&s.log);
        http_reply_cleanup(&r);
    }
}

static void test_caps(void **state)
{
    (void)state;
    /* A header line past 8 KiB, whole in one piece or split. */
    size_t n = HTTP_REPLY_LINE_MAX + 10;
    char *text = malloc(n + 64);
    int at = sprintf(text, "HTTP/1.1 200 OK\r\nX-Long: ");
    memset(text + at, 'a', n);
    strcpy(text + at + n, "\r\n\r\n");
    for (size_t step = 0; step <= 1000; step += 1000) {
        seen s = {0};
        http_reply r;
        assert_int_equal(parse(&s, &r, text, step, NULL), HTTP_REPLY_BAD);
        assert_string_equal(r.error, "a line of the response exceeds 8 KiB");
        buf_cleanup(&s.log);
        http_reply_cleanup(&r);
    }
    free(text);

    /* Headers past 64 KiB in all, each line short. */
    buf big;
    buf_init(&big, 1 << 20);
    buf_append_str(&big, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; big.len <= HTTP_REPLY_HEAD_MAX; i++)
        buf_printf(&big, "X-H%d: %0100d\r\n", i, 0);
    buf_append_str(&big, "\r\n");
    seen s = {0};
    http_reply r;
    assert_int_equal(parse(&s, &r, big.data, 4096, NULL), HTTP_REPLY_BAD);
    assert_string_equal(r.error, "the response's headers exceed 64 KiB");
    buf_cleanup(&s.log);
    http_reply_cleanup(&r);
    buf_cleanup(&big);
}

static void test_early_ends(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"", "the server closed the connection without a response"},
        {"HTTP/1.1 2", "the connection closed in the middle of the response's headers"},
        {"HTTP/1.1 200 OK\r\nA: b",
         "the connection closed in the middle of the response's headers"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
         "the connection closed before the response's body ended"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
         "the connection closed before the response's body ended"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        seen s = {0};
        http_reply r;
        assert_int_equal(parse(&s, &r, cases[i].text, 0, NULL), HTTP_REPLY_MORE);
        assert_int_equal(http_reply_eof(&r), HTTP_REPLY_BAD);
        assert_string_equal(r.error, cases[i].why);
        assert_int_equal(r.started, cases[i].text[0] != '\0');
        buf_cleanup(&s.log);
        http_reply_cleanup(&r);
    }
}

static void test_body_callback_stops(void **state)
{
    (void)state;
    seen s = {.stop_after = 1};
    http_reply r;
    size_t used;
    buf_init(&s.log, 1 << 20);
    http_reply_init(&r, &cbs, &s);
    const char *text =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n";
    assert_int_equal(http_reply_feed(&r, text, strlen(text), &used), HTTP_REPLY_STOPPED);
    assert_string_equal(s.log.data, "HTransfer-Encoding=chunked;S200;Ba;");
    assert_int_equal(http_reply_feed(&r, "x", 1, &used), HTTP_REPLY_STOPPED);
    assert_int_equal(s.bodies, 1);
    buf_cleanup(&s.log);
    http_reply_cleanup(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_stream),
        cmocka_unit_test(test_content_length_and_keep_alive),
        cmocka_unit_test(test_body_to_the_end_of_the_connection),
        cmocka_unit_test(test_interim_responses_are_skipped),
        cmocka_unit_test(test_connection_close_and_no_body),
        cmocka_unit_test(test_chunked_beside_a_length_is_not_reused),
        cmocka_unit_test(test_malformed_answers),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_early_ends),
        cmocka_unit_test(test_body_callback_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
