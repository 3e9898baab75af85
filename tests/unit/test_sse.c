/* Unit tests for core/sse: event framing and the browser-compatible parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/sse.h"

/*
 * Records every dispatched event as one line "[event|id|data]" in a buf, so a
 * test compares the whole outcome of a parse with one exact string. stop_at,
 * when non-zero, makes the callback return stop_rc on that event.
 */
typedef struct collector {
    buf log;
    int count;
    int stop_at;
    int stop_rc;
} collector;

static int collect(void *ud, const sse_event *ev)
{
    collector *c = ud;
    c->count++;
    /* The data must be NUL-terminated at data_len. */
    assert_int_equal(ev->data[ev->data_len], '\0');
    buf_printf(&c->log, "[%s|%s|", ev->event, ev->id);
    buf_append(&c->log, ev->data, ev->data_len);
    buf_append_str(&c->log, "]\n");
    return c->count == c->stop_at ? c->stop_rc : 0;
}

static void collector_init(collector *c)
{
    buf_init(&c->log, 1 << 20);
    c->count = 0;
    c->stop_at = 0;
    c->stop_rc = 0;
}

/* Parses s in pieces of at most step bytes (0: all at once) and returns the
 * event log; the caller frees it. *rc receives the first non-zero return of
 * a feed, or 0. */
static char *parse_steps(const char *s, size_t len, size_t cap, size_t step, int *rc)
{
    collector c;
    sse_parser p;
    collector_init(&c);
    sse_parser_init(&p, cap, collect, &c);
    *rc = 0;
    if (step == 0) step = len ? len : 1;
    for (size_t i = 0; i < len && *rc == 0; i += step) {
        size_t n = len - i < step ? len - i : step;
        *rc = sse_parser_feed(&p, s + i, n);
    }
    sse_parser_cleanup(&p);
    return buf_detach(&c.log, NULL);
}

/* Parses s all at once with a roomy cap, expects success and the given log,
 * and checks that feeding it one byte at a time gives the same log. */
static void expect_events(const char *s, size_t len, const char *want)
{
    int rc;
    char *all = parse_steps(s, len, 4096, 0, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(all, want);
    char *bytes = parse_steps(s, len, 4096, 1, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(bytes, want);
    free(all);
    free(bytes);
}

#define EXPECT(lit, want) expect_events(lit, sizeof(lit) - 1, want)

static void test_frame_bytes(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 256);
    assert_int_equal(sse_frame(&b, 42, "run.started", "{\"a\":1}", 7), 0);
    assert_string_equal(b.data, "id: 42\nevent: run.started\ndata: {\"a\":1}\n\n");
    /* data_len is honoured, not the string's length. */
    assert_int_equal(sse_frame(&b, -1, "x", "abcdef", 3), 0);
    assert_string_equal(b.data, "id: 42\nevent: run.started\ndata: {\"a\":1}\n\n"
                                "id: -1\nevent: x\ndata: abc\n\n");
    buf_reset(&b);
    assert_int_equal(sse_frame(&b, INT64_MAX, "t", "", 0), 0);
    assert_string_equal(b.data, "id: 9223372036854775807\nevent: t\ndata: \n\n");
    buf_cleanup(&b);
}

/* The frame written in place is the one sse_frame appends, and its size
 * is known beforehand. */
static void test_frame_write_in_place(void **state)
{
    (void)state;
    const int64_t ids[] = {0, 7, -1, 123456789, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        buf b;
        buf_init(&b, 256);
        assert_int_equal(sse_frame(&b, ids[i], "token", "{\"text\":\"hi\"}x", 15), 0);
        size_t size = sse_frame_size(ids[i], "token", 15);
        assert_int_equal(size, b.len);
        char out[128];
        memset(out, 'z', sizeof out);
        assert_int_equal(sse_frame_write(out, ids[i], "token", "{\"text\":\"hi\"}x", 15), size);
        assert_int_equal(out[size], '\0');
        assert_int_equal(out[size + 1], 'z');
        assert_memory_equal(out, b.data, size);
        buf_cleanup(&b);
    }
    char out[64];
    assert_int_equal(sse_frame_write(out, 42, "status", "{}", 2), 31);
    assert_string_equal(out, "id: 42\nevent: status\ndata: {}\n\n");
    assert_int_equal(sse_frame_size(42, "status", 2), 31);
    /* The bound of any frame is the size of the one with the longest id. */
    assert_int_equal(sse_frame_size(INT64_MIN, "status", 2), SSE_FRAME_OVERHEAD_MAX + 6 + 2);
}

static void test_frame_retry_and_comment(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 64);
    assert_int_equal(sse_frame_retry(&b, 2000), 0);
    assert_string_equal(b.data, "retry: 2000\n\n");
    assert_int_equal(sse_frame_comment(&b, "ping"), 0);
    assert_string_equal(b.data, "retry: 2000\n\n: ping\n\n");
    assert_int_equal(b.len, 21);
    buf_cleanup(&b);
}

static void test_frame_toobig(void **state)
{
    (void)state;
    const char *want = "id: 7\nevent: e\ndata: abc\n\n"; /* 26 bytes */
    buf b;

    buf_init(&b, 26);
    assert_int_equal(sse_frame(&b, 7, "e", "abc", 3), 0);
    assert_string_equal(b.data, want);
    buf_cleanup(&b);

    /* One byte short, and with earlier contents: nothing is written. */
    buf_init(&b, 28);
    buf_append_str(&b, "xy");
    assert_int_equal(sse_frame(&b, 7, "e", "abcd", 4), BUF_TOOBIG);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "xy");
    assert_int_equal(sse_frame(&b, 7, "e", "abc", 3), 0);
    assert_int_equal(b.len, 28);
    buf_cleanup(&b);

    /* A huge data_len must not wrap around the size check. */
    buf_init(&b, 64);
    assert_int_equal(sse_frame(&b, 7, "e", "abc", SIZE_MAX), BUF_TOOBIG);
    assert_int_equal(b.len, 0);
    buf_cleanup(&b);

    buf_init(&b, 12);
    assert_int_equal(sse_frame_retry(&b, 2000), BUF_TOOBIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(sse_frame_comment(&b, "ping"), 0);
    assert_int_equal(sse_frame_comment(&b, "ping"), BUF_TOOBIG);
    assert_string_equal(b.data, ": ping\n\n");
    buf_cleanup(&b);

    buf_init(&b, 13);
    assert_int_equal(sse_frame_retry(&b, 2000), 0);
    assert_string_equal(b.data, "retry: 2000\n\n");
    buf_cleanup(&b);
}

static void test_line_endings(void **state)
{
    (void)state;
    EXPECT("data: a\ndata: b\n\n", "[message||a\nb]\n");
    EXPECT("data: a\r\ndata: b\r\n\r\n", "[message||a\nb]\n");
    EXPECT("data: a\rdata: b\r\r", "[message||a\nb]\n");
    /* Mixed endings; CR CR is two line endings, the second a blank line. */
    EXPECT("data: a\r\rdata: b\n\r\ndata: c\r\n\n", "[message||a]\n[message||b]\n[message||c]\n");
    /* LF-ended lines before and after CRs in one feed: the CR found for
     * the first line is the end of a later one. */
    EXPECT("data: a\n\ndata: b\n\ndata: c\r\rdata: d\n\ndata: e\r\n\r\n",
           "[message||a]\n[message||b]\n[message||c]\n[message||d]\n[message||e]\n");
}

static void test_cr_split_across_feeds(void **state)
{
    (void)state;
    collector c;
    sse_parser p;
    collector_init(&c);
    sse_parser_init(&p, 64, collect, &c);
    assert_int_equal(sse_parser_feed(&p, "data: a\r", 8), 0);
    assert_int_equal(sse_parser_feed(&p, "", 0), 0);
    /* This LF completes the CR above: it is not a blank line. */
    assert_int_equal(sse_parser_feed(&p, "\ndata: b\n", 9), 0);
    assert_int_equal(c.count, 0);
    assert_int_equal(sse_parser_feed(&p, "\r", 1), 0);
    assert_int_equal(c.count, 1);
    assert_int_equal(sse_parser_feed(&p, "\n\n", 2), 0);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.log.data, "[message||a\nb]\n");
    sse_parser_cleanup(&p);
    buf_cleanup(&c.log);
}

/* A stream touching every rule, parsed whole, byte by byte, and split in
 * two at every position: the log must always be the same. */
static void test_any_split_same_events(void **state)
{
    (void)state;
    static const char s[] = "\xEF\xBB\xBF: comment\r\n"
                            "retry: 10\r"
                            "event: first\r\n"
                            "id: 1\n"
                            "data: one\r"
                            "data\r\n"
                            "data:two\n"
                            "\r\n"
                            "id\n"
                            "event: ignored\n"
                            "\n"
                            "data:  three\r"
                            "\r"
                            "unknown: x\n"
                            "id: 5\n"
                            "data: {\"a\":1}\n"
                            "\n"
                            "data: never dispatched\n";
    const char *want = "[first|1|one\n\ntwo]\n"
                       "[message|| three]\n"
                       "[message|5|{\"a\":1}]\n";
    size_t len = sizeof s - 1;
    int rc;

    expect_events(s, len, want);
    for (size_t cut = 0; cut <= len; cut++) {
        collector c;
        sse_parser p;
        collector_init(&c);
        sse_parser_init(&p, 4096, collect, &c);
        assert_int_equal(sse_parser_feed(&p, s, cut), 0);
        assert_int_equal(sse_parser_feed(&p, s + cut, len - cut), 0);
        assert_int_equal(p.retry_ms, 10);
        assert_string_equal(c.log.data, want);
        sse_parser_cleanup(&p);
        buf_cleanup(&c.log);
    }
    for (size_t step = 2; step < 8; step++) {
        char *log = parse_steps(s, len, 4096, step, &rc);
        assert_int_equal(rc, 0);
        assert_string_equal(log, want);
        free(log);
    }
}

static void test_comments_ignored(void **state)
{
    (void)state;
    EXPECT(": hello\ndata: x\n:\n:data: y\n\n", "[message||x]\n");
    /* A comment is not a blank line: it does not dispatch. */
    EXPECT("data: x\n: c\ndata: y\n\n", "[message||x\ny]\n");
}

static void test_data_field_forms(void **state)
{
    (void)state;
    EXPECT("data: a\ndata: b\ndata: c\n\n", "[message||a\nb\nc]\n");
    /* "data" without a colon is a data line with an empty value. */
    EXPECT("data\n\n", "[message||]\n");
    EXPECT("data\ndata\n\n", "[message||\n]\n");
    EXPECT("data:\n\n", "[message||]\n");
    EXPECT("data:x\n\n", "[message||x]\n");
    /* Only one space after the colon is removed. */
    EXPECT("data:  x\n\n", "[message|| x]\n");
    EXPECT("data: a:b: c\n\n", "[message||a:b: c]\n");
    EXPECT("data: x \n\n", "[message||x ]\n");
    /* Field names are case-sensitive and exact. */
    EXPECT("DATA: x\ndata : y\ndatas: z\ndata: w\n\n", "[message||w]\n");
}

static void test_data_with_nul(void **state)
{
    (void)state;
    static const char s[] = "data: a\0b\n\n";
    collector c;
    sse_parser p;
    collector_init(&c);
    sse_parser_init(&p, 64, collect, &c);
    assert_int_equal(sse_parser_feed(&p, s, sizeof s - 1), 0);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.log.len, 15);
    assert_memory_equal(c.log.data, "[message||a\0b]\n", 15);
    sse_parser_cleanup(&p);
    buf_cleanup(&c.log);
}

static void test_event_name_reset(void **state)
{
    (void)state;
    EXPECT("event: foo\ndata: 1\n\ndata: 2\n\n", "[foo||1]\n[message||2]\n");
    /* A blank line without data still forgets the event name. */
    EXPECT("event: foo\n\ndata: 2\n\n", "[message||2]\n");
    /* The last event field wins; an empty one means "message". */
    EXPECT("event: a\nevent: b\ndata: 1\n\nevent: c\nevent:\ndata: 2\n\n",
           "[b||1]\n[message||2]\n");
}

static void test_id_persists(void **state)
{
    (void)state;
    EXPECT("id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 9\n\ndata: d\n\n",
           "[message|7|a]\n[message|7|b]\n[message||c]\n[message|9|d]\n");
    /* An id holding a NUL byte is ignored; the previous id stays. */
    static const char s[] = "id: 8\ndata: a\n\nid: 9\0x\ndata: b\n\n";
    expect_events(s, sizeof s - 1, "[message|8|a]\n[message|8|b]\n");
}

static void test_retry_digits_only(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        int64_t want;
    } cases[] = {
        {"retry: 1500\n", 1500},
        {"retry: 15x\n", 1500},
        {"retry: -1\n", 1500},
        {"retry: +5\n", 1500},
        {"retry:\n", 1500},
        {"retry\n", 1500},
        {"retry:  10\n", 1500},
        {"retry: 1 0\n", 1500},
        {"retry: 99999999999999999999\n", 1500},
        {"retry: 9223372036854775807\n", INT64_MAX},
        {"retry:0\n", 0},
        {"retry: 3000\n", 3000},
    };
    collector c;
    sse_parser p;
    collector_init(&c);
    sse_parser_init(&p, 64, collect, &c);
    assert_int_equal(p.retry_ms, -1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(sse_parser_feed(&p, cases[i].line, strlen(cases[i].line)), 0);
        assert_int_equal(p.retry_ms, cases[i].want);
    }
    /* retry alone dispatches nothing. */
    assert_int_equal(sse_parser_feed(&p, "\n", 1), 0);
    assert_int_equal(c.count, 0);
    sse_parser_cleanup(&p);
    buf_cleanup(&c.log);
}

static void test_blank_without_data(void **state)
{
    (void)state;
    EXPECT("\n\n\r\n\revent: x\nid: 3\n\n: c\n\nfoo\n\n", "");
    /* The id of such an event still becomes the last event id. */
    EXPECT("id: 3\n\ndata: y\n\n", "[message|3|y]\n");
}

static void test_bom(void **state)
{
    (void)state;
    EXPECT("\xEF\xBB\xBF"
           "data: x\n\n",
           "[message||x]\n");
    EXPECT("\xEF\xBB\xBF\n"
           "data: x\n\n",
           "[message||x]\n");
    /* Only one BOM, and only at the very start of the stream. */
    EXPECT("\xEF\xBB\xBF\xEF\xBB\xBF"
           "data: x\n\ndata: y\n\n",
           "[message||y]\n");
    EXPECT("data: a\n\n\xEF\xBB\xBF"
           "data: b\n\n",
           "[message||a]\n");
    /* A prefix of a BOM is not one. */
    EXPECT("\xEF\xBB"
           "data: x\n\n",
           "");
}

static void test_model_stream_shape(void **state)
{
    (void)state;
    EXPECT("data: {\"a\":1}\n\ndata: [DONE]\n\n", "[message||{\"a\":1}]\n[message||[DONE]]\n");
}

static void test_incomplete_event_not_dispatched(void **state)
{
    (void)state;
    EXPECT("data: x\n", "");
    EXPECT("data: x", "");
    EXPECT("data: x\n\ndata: y\r", "[message||x]\n");
}

static void test_line_cap(void **state)
{
    (void)state;
    /* "data: 0123456789" is 16 bytes: exactly the cap. */
    static const char ok[] = "data: 0123456789\n\n";
    static const char big[] = "data: 0123456789A\n\n";
    int rc;
    char *log = parse_steps(ok, sizeof ok - 1, 16, 0, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(log, "[message||0123456789]\n");
    free(log);
    log = parse_steps(big, sizeof big - 1, 16, 0, &rc);
    assert_int_equal(rc, SSE_ERR_TOOBIG);
    assert_string_equal(log, "");
    free(log);
    log = parse_steps(big, sizeof big - 1, 16, 1, &rc);
    assert_int_equal(rc, SSE_ERR_TOOBIG);
    free(log);

    /* Too long already before its line ending arrives. */
    collector c;
    sse_parser p;
    collector_init(&c);
    sse_parser_init(&p, 16, collect, &c);
    assert_int_equal(sse_parser_feed(&p, ": 34567890123456", 16), 0);
    assert_int_equal(sse_parser_feed(&p, "7", 1), SSE_ERR_TOOBIG);
    sse_parser_cleanup(&p);
    buf_cleanup(&c.log);
    /* A comment line is capped like any other. */
    log = parse_steps(": 345678901234567\n", 18, 16, 0, &rc);
    assert_int_equal(rc, SSE_ERR_TOOBIG);
    free(log);
}

static void test_data_cap(void **state)
{
    (void)state;
    /* 10 + LF + 5 = 16 bytes of data: exactly the cap. */
    static const char ok[] = "data: 0123456789\ndata: 01234\n\n";
    static const char big[] = "data: 0123456789\ndata: 012345\n\n";
    static const char big_lf[] = "data: 0123456789\ndata: 01234\ndata\n\n";
    int rc;
    char *log = parse_steps(ok, sizeof ok - 1, 16, 0, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(log, "[message||0123456789\n01234]\n");
    free(log);
    log = parse_steps(big, sizeof big - 1, 16, 0, &rc);
    assert_int_equal(rc, SSE_ERR_TOOBIG);
    assert_string_equal(log, "");
    free(log);
    /* The joining LF counts too. */
    log = parse_steps(big_lf, sizeof big_lf - 1, 16, 0, &rc);
    assert_int_equal(rc, SSE_ERR_TOOBIG);
    assert_string_equal(log, "");
    free(log);
    /* The cap is per event: data is counted afresh after a dispatch. */
    log = parse_steps("data: 0123456789\n\ndata: 0123456789\n\n", 36, 16, 0, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(log, "[message||0123456789]\n[message||0123456789]\n");
    free(log);
}

static void test_callback_stops(void **state)
{
    (void)state;
    static const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    collector c;
    sse_parser p;
    collector_init(&c);
    c.stop_at = 2;
    c.stop_rc = 7;
    sse_parser_init(&p, 64, collect, &c);
    assert_int_equal(sse_parser_feed(&p, s, sizeof s - 1), 7);
    assert_int_equal(c.count, 2);
    assert_string_equal(c.log.data, "[message||1]\n[message||2]\n");
    sse_parser_cleanup(&p);
    buf_cleanup(&c.log);

    /* Stopping on the first event of a byte-at-a-time feed. */
    collector_init(&c);
    c.stop_at = 1;
    c.stop_rc = -5;
    sse_parser_init(&p, 64, collect, &c);
    int rc = 0;
    size_t i;
    for (i = 0; i < sizeof s - 1 && rc == 0; i++) rc = sse_parser_feed(&p, s + i, 1);
    assert_int_equal(rc, -5);
    assert_int_equal(i, 9);
    assert_string_equal(c.log.data, "[message||1]\n");
    sse_parser_cleanup(&p);
    buf_cleanup(&c.log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_bytes),
        cmocka_unit_test(test_frame_write_in_place),
        cmocka_unit_test(test_frame_retry_and_comment),
        cmocka_unit_test(test_frame_toobig),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_cr_split_across_feeds),
        cmocka_unit_test(test_any_split_same_events),
        cmocka_unit_test(test_comments_ignored),
        cmocka_unit_test(test_data_field_forms),
        cmocka_unit_test(test_data_with_nul),
        cmocka_unit_test(test_event_name_reset),
        cmocka_unit_test(test_id_persists),
        cmocka_unit_test(test_retry_digits_only),
        cmocka_unit_test(test_blank_without_data),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_model_stream_shape),
        cmocka_unit_test(test_incomplete_event_not_dispatched),
        cmocka_unit_test(test_line_cap),
        cmocka_unit_test(test_data_cap),
        cmocka_unit_test(test_callback_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
