/* Unit tests for core/textchunk: which chunks it reads itself, the exact
 * text it decodes, and that it declines everything else unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/textchunk.h"

/* Runs the scanner on a NUL-terminated chunk with text already holding
 * "ab"; returns its result and leaves the text in out. */
static textchunk_end last_end;

static int scan(const char *chunk, buf *out)
{
    buf_init(out, 1 << 20);
    buf_append_str(out, "ab");
    return textchunk_read(chunk, strlen(chunk), out, &last_end);
}

/* Asserts that chunk is read, appending exactly want. */
static void assert_reads(const char *chunk, const char *want)
{
    buf t;
    int rc = scan(chunk, &t);
    if (rc != 1) fail_msg("declined: %s", chunk);
    assert_int_equal(t.len, 2 + strlen(want));
    assert_memory_equal(t.data, "ab", 2);
    assert_memory_equal(t.data + 2, want, strlen(want));
    assert_int_equal(t.data[t.len], '\0');
    buf_cleanup(&t);
}

/* Asserts that chunk is declined and the text left as it was. */
static void assert_declines(const char *chunk)
{
    buf t;
    int rc = scan(chunk, &t);
    if (rc != 0) fail_msg("read (%d): %s", rc, chunk);
    assert_int_equal(t.len, 2);
    assert_string_equal(t.data, "ab");
    buf_cleanup(&t);
}

static void test_openai_chunk(void **state)
{
    (void)state;
    assert_reads(
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1732000000,"
        "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"content\":\" Hello\"},\"logprobs\":null,\"finish_reason\":null}],"
        "\"usage\":null,\"obfuscation\":\"xYz\"}",
        " Hello");
}

static void test_first_chunk_role_and_empty_content(void **state)
{
    (void)state;
    assert_reads("{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
                 "\"refusal\":null},\"finish_reason\":null}]}",
                 "");
    assert_reads("{\"choices\":[{\"delta\":{\"content\":null}}]}", "");
    assert_reads("{\"choices\":[]}", "");
    assert_reads("{\"choices\":[{}]}", "");
    assert_reads("{}", "");
    assert_reads(" \t\r\n{ \"choices\" : [ { \"delta\" : { \"content\" : \"x\" } } ] } \n", "x");
}

static void test_escapes_decoded(void **state)
{
    (void)state;
    assert_reads("{\"choices\":[{\"delta\":{\"content\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\te\"}}]}",
                 "a\"b\\c/d\b\f\n\r\te");
    /* \u escapes: one, two and three bytes of UTF-8, and a surrogate pair. */
    assert_reads(
        "{\"choices\":[{\"delta\":{\"content\":\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"}}]}",
        "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    /* Raw UTF-8 passes through unchanged. */
    assert_reads(
        "{\"choices\":[{\"delta\":{\"content\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}}]}",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    /* Escaped keys are still recognised. */
    assert_reads("{\"ch\\u006fices\":[{\"delta\":{\"cont\\u0065nt\":\"k\"}}]}", "k");
}

static void test_other_values_skipped(void **state)
{
    (void)state;
    assert_reads(
        "{\"x\":[1,-2,3.5,-0.25,true,false,null,{\"a\":[[]],\"b\":{}}],"
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"z\",\"reasoning\":{\"k\":[1]}},"
        "\"logprobs\":{\"content\":[{\"token\":\"z\"}]}}],\"object\":42}",
        "z");
    /* A long key is none of ours, and is skipped like any other. */
    assert_reads(
        "{\"choices_but_a_much_longer_key_name\":1,\"choices\":[{\"delta\":{\"content\":\"q\"}}]}",
        "q");
}

static void test_more_than_text_declines(void **state)
{
    (void)state;
    assert_declines("{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}");
    assert_declines("{\"choices\":[],\"usage\":5}");
    assert_declines("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":1}]}");
    assert_declines("{\"error\":{\"message\":\"boom\"}}");
    assert_declines("{\"error\":null}");
    assert_declines("{\"object\":\"error\",\"message\":\"boom\"}");
    assert_declines("{\"choices\":[{\"message\":{\"content\":\"x\"}}]}");
    assert_declines("{\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"}}]}");
    assert_declines("{\"choices\":[{\"index\":0.0,\"delta\":{\"content\":\"x\"}}]}");
    assert_declines("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}},"
                    "{\"index\":1,\"delta\":{\"content\":\"y\"}}]}");
    assert_declines("{\"choices\":[1]}");
    assert_declines("{\"choices\":{}}");
    assert_declines("{\"choices\":[{\"delta\":\"x\"}]}");
    assert_declines("{\"choices\":[{\"delta\":{\"content\":5}}]}");
}

/* The chunks that end an answer: the finish reason and the token counts
 * are read as the full parse takes them. */
static void test_finish_and_usage(void **state)
{
    (void)state;
    assert_reads("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}", "");
    assert_string_equal(last_end.finish_reason, "stop");
    assert_int_equal(last_end.prompt_tokens, -1);
    assert_int_equal(last_end.completion_tokens, -1);
    assert_reads("{\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"\"}]}", "x");
    assert_string_equal(last_end.finish_reason, "");
    assert_reads("{\"choices\":[{\"delta\":{},\"finish_reason\":\"content_\\u0066ilter\"}]}", "");
    assert_string_equal(last_end.finish_reason, "content_filter");
    assert_reads("{\"choices\":[{\"delta\":{\"content\":\"y\"},\"finish_reason\":null}]}", "y");
    assert_string_equal(last_end.finish_reason, "");
    /* One byte short of the room, and one over it. */
    assert_reads("{\"choices\":[{\"finish_reason\":\"0123456789012345678901234567890\"}]}", "");
    assert_string_equal(last_end.finish_reason, "0123456789012345678901234567890");
    assert_declines("{\"choices\":[{\"finish_reason\":\"01234567890123456789012345678901\"}]}");

    assert_reads("{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
                 "\"completion_tokens\":34,\"total_tokens\":46,\"prompt_tokens_details\":"
                 "{\"cached_tokens\":0}}}",
                 "");
    assert_int_equal(last_end.prompt_tokens, 12);
    assert_int_equal(last_end.completion_tokens, 34);
    assert_string_equal(last_end.finish_reason, "");
    /* What is not a whole number of at least 0 is left, as jansson's
     * reading leaves it; "-0" is the integer 0 to it. */
    assert_reads("{\"usage\":{\"prompt_tokens\":-3,\"completion_tokens\":2.0}}", "");
    assert_int_equal(last_end.prompt_tokens, -1);
    assert_int_equal(last_end.completion_tokens, -1);
    assert_reads("{\"usage\":{\"prompt_tokens\":-0,\"completion_tokens\":\"7\"}}", "");
    assert_int_equal(last_end.prompt_tokens, 0);
    assert_int_equal(last_end.completion_tokens, -1);
    assert_reads("{\"usage\":{\"prompt_tokens\":null,\"completion_tokens\":{}}}", "");
    assert_int_equal(last_end.prompt_tokens, -1);
    assert_int_equal(last_end.completion_tokens, -1);
    assert_reads("{\"usage\":{}}", "");
    assert_reads("{\"usage\":null}", "");
    /* Declined late: nothing is left of what was read. */
    assert_declines("{\"choices\":[{\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1},"
                    "\"error\":1}");
    assert_string_equal(last_end.finish_reason, "");
    assert_int_equal(last_end.prompt_tokens, -1);
}

static void test_duplicates_decline(void **state)
{
    (void)state;
    /* The full parser keeps the last of duplicate keys; leave it to it. */
    assert_declines("{\"choices\":[{\"delta\":{\"content\":\"a\",\"content\":\"b\"}}]}");
    assert_declines("{\"choices\":[],\"choices\":[{\"delta\":{\"content\":\"b\"}}]}");
    assert_declines("{\"choices\":[{\"delta\":{\"content\":\"a\"},\"delta\":{}}]}");
    assert_declines("{\"choices\":[{\"index\":0,\"index\":0,\"delta\":{\"content\":\"a\"}}]}");
    assert_declines("{\"usage\":null,\"usage\":null}");
    assert_declines("{\"usage\":{\"prompt_tokens\":1,\"prompt_tokens\":2}}");
    assert_declines("{\"usage\":{\"completion_tokens\":1,\"completion_tokens\":2}}");
    assert_declines("{\"choices\":[{\"finish_reason\":null,\"finish_reason\":\"stop\"}]}");
    assert_declines("{\"object\":\"x\",\"object\":\"error\"}");
}

static void test_text_taken_back_when_declined_late(void **state)
{
    (void)state;
    /* The text is decoded before the error that turns the chunk down. */
    assert_declines("{\"choices\":[{\"delta\":{\"content\":\"long text here\"}}],\"error\":{}}");
    assert_declines("{\"choices\":[{\"delta\":{\"content\":\"x\"}}]} trailing");
}

static void test_invalid_json_declines(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "   ",
        "[]",
        "\"s\"",
        "{",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}]",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":[1,]}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":-}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":\"x\ty\"}",             /* a raw control character */
        "{\"a\":\"\\x\"}",              /* an unknown escape */
        "{\"a\":\"\\u12\"}",            /* a short \u */
        "{\"a\":\"\\u00G0\"}",          /* not hex */
        "{\"a\":\"\\u0000\"}",          /* NUL: jansson refuses it */
        "{\"a\":\"\\ud83d\"}",          /* a lone high surrogate */
        "{\"a\":\"\\ude00\"}",          /* a lone low surrogate */
        "{\"a\":\"\\ud83d\\u0041\"}",   /* a high surrogate and no low one */
        "{\"a\":\"\xc3\"}",             /* a cut sequence */
        "{\"a\":\"\xc0\xaf\"}",         /* overlong */
        "{\"a\":\"\xe0\x80\xaf\"}",     /* overlong */
        "{\"a\":\"\xed\xa0\x80\"}",     /* an encoded surrogate */
        "{\"a\":\"\xf4\x90\x80\x80\"}", /* above U+10FFFF */
        "{\"a\":\"\xff\"}",
        "{\"a\":\"unterminated}",
        "{\"a\":1}{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_declines(bad[i]);
}

static void test_numbers_jansson_may_refuse_decline(void **state)
{
    (void)state;
    assert_declines("{\"a\":1e5,\"choices\":[]}");
    assert_declines("{\"a\":1E-5,\"choices\":[]}");
    assert_declines("{\"a\":99999999999999999999,\"choices\":[]}");
    assert_declines("{\"a\":1.0000000000000001,\"choices\":[]}");
    assert_reads("{\"a\":123456789012345,\"choices\":[]}", "");
}

static void test_deep_nesting_declines(void **state)
{
    (void)state;
    char deep[200];
    size_t n = 0;
    deep[n++] = '{';
    memcpy(deep + n, "\"a\":", 4);
    n += 4;
    for (int i = 0; i < 40; i++) deep[n++] = '[';
    for (int i = 0; i < 40; i++) deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    assert_declines(deep);
    /* Shallower nesting is fine. */
    assert_reads("{\"a\":[[[[[[[[[[]]]]]]]]]],\"choices\":[]}", "");
}

static void test_embedded_nul_declines(void **state)
{
    (void)state;
    const char chunk[] = "{\"choices\":[{\"delta\":{\"content\":\"a\0b\"}}]}";
    buf t;
    buf_init(&t, 64);
    assert_int_equal(textchunk_read(chunk, sizeof chunk - 1, &t, &last_end), 0);
    assert_int_equal(t.len, 0);
    buf_cleanup(&t);
}

static void test_cap_overflow(void **state)
{
    (void)state;
    buf t;
    buf_init(&t, 8);
    buf_append_str(&t, "12345");
    const char *c = "{\"choices\":[{\"delta\":{\"content\":\"6789\"}}]}";
    assert_int_equal(textchunk_read(c, strlen(c), &t, &last_end), BUF_TOOBIG);
    assert_int_equal(t.len, 5);
    assert_string_equal(t.data, "12345");
    const char *d = "{\"choices\":[{\"delta\":{\"content\":\"678\"}}]}";
    assert_int_equal(textchunk_read(d, strlen(d), &t, &last_end), 1);
    assert_string_equal(t.data, "12345678");
    buf_cleanup(&t);
}

/* A chunk of the mock's shape with content c (already JSON-escaped). */
#define MEMO_HEAD                                                                                  \
    "{\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1,"                   \
    "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
#define MEMO_TAIL     "},\"finish_reason\":null}]}"
#define MEMO_CHUNK(c) MEMO_HEAD "\"" c "\"" MEMO_TAIL

/* Reads chunk through memo into t; returns the result. */
static int memo_read(const char *chunk, buf *t, textchunk_memo *memo)
{
    return textchunk_read_memo(chunk, strlen(chunk), t, &last_end, memo);
}

static void test_memo_keeps_the_shape_around_the_text(void **state)
{
    (void)state;
    textchunk_memo memo = {0};
    buf t;
    buf_init(&t, 1 << 20);
    assert_int_equal(memo_read(MEMO_CHUNK("Hi"), &t, &memo), 1);
    assert_int_equal(memo.head_len, strlen(MEMO_HEAD));
    assert_memory_equal(memo.head, MEMO_HEAD, strlen(MEMO_HEAD));
    assert_int_equal(memo.tail_len, strlen(MEMO_TAIL));
    assert_memory_equal(memo.tail, MEMO_TAIL, strlen(MEMO_TAIL));
    /* The next chunk of that shape takes what the chunk says besides its
     * text from memo: marked here, to see that its text alone was read. */
    memo.end.prompt_tokens = 99;
    assert_int_equal(memo_read(MEMO_CHUNK(" there\\n\\u00e9\\\""), &t, &memo), 1);
    assert_string_equal(t.data, "Hi there\n\xc3\xa9\"");
    assert_int_equal(last_end.prompt_tokens, 99);
    assert_int_equal(memo_read(MEMO_CHUNK(""), &t, &memo), 1);
    assert_int_equal(last_end.prompt_tokens, 99);
    assert_string_equal(t.data, "Hi there\n\xc3\xa9\"");
    buf_cleanup(&t);
}

static void test_memo_reads_other_shapes_in_full(void **state)
{
    (void)state;
    textchunk_memo memo = {0};
    buf t;
    buf_init(&t, 1 << 20);
    assert_int_equal(memo_read(MEMO_CHUNK("a"), &t, &memo), 1);
    memo.end.prompt_tokens = 99;
    /* A text that stops short of the kept tail: the rest is read in full
     * (here a member the full read ignores), and its shape kept instead. */
    const char *extra = MEMO_HEAD "\"b\",\"x\":1" MEMO_TAIL;
    assert_int_equal(memo_read(extra, &t, &memo), 1);
    assert_int_equal(last_end.prompt_tokens, -1);
    assert_int_equal(memo.tail_len, strlen(",\"x\":1" MEMO_TAIL));
    /* A text that runs into the tail with invalid JSON after it. */
    memo.end.prompt_tokens = 99;
    const char *bad = MEMO_HEAD "\"c\"}" MEMO_TAIL;
    assert_int_equal(memo_read(bad, &t, &memo), 0);
    /* Another head (a created time that moved), then the end of the
     * answer, which has no text and leaves the kept shape alone. */
    const char *moved = "{\"created\":2,\"choices\":[{\"delta\":{\"content\":\"d\"}}]}";
    assert_int_equal(memo_read(moved, &t, &memo), 1);
    assert_int_equal(last_end.prompt_tokens, -1);
    assert_int_equal(memo.head_len, strlen("{\"created\":2,\"choices\":[{\"delta\":{\"content\":"));
    const char *fin = "{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],"
                      "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}";
    assert_int_equal(memo_read(fin, &t, &memo), 1);
    assert_string_equal(last_end.finish_reason, "stop");
    assert_int_equal(last_end.completion_tokens, 4);
    assert_int_equal(memo.head_len, strlen("{\"created\":2,\"choices\":[{\"delta\":{\"content\":"));
    assert_string_equal(t.data, "abd");
    /* A raw control byte in the text declines, through the memo as in full. */
    const char *ctl = "{\"created\":2,\"choices\":[{\"delta\":{\"content\":\"e\tf\"}}]}";
    assert_int_equal(memo_read(ctl, &t, &memo), 0);
    assert_string_equal(t.data, "abd");
    buf_cleanup(&t);
}

static void test_memo_cap_overflow(void **state)
{
    (void)state;
    textchunk_memo memo = {0};
    buf t;
    buf_init(&t, 8);
    assert_int_equal(memo_read(MEMO_CHUNK("12345"), &t, &memo), 1);
    assert_int_equal(memo_read(MEMO_CHUNK("6789"), &t, &memo), BUF_TOOBIG);
    assert_string_equal(t.data, "12345");
    assert_int_equal(memo_read(MEMO_CHUNK("678"), &t, &memo), 1);
    assert_string_equal(t.data, "12345678");
    buf_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_chunk),
        cmocka_unit_test(test_first_chunk_role_and_empty_content),
        cmocka_unit_test(test_escapes_decoded),
        cmocka_unit_test(test_other_values_skipped),
        cmocka_unit_test(test_more_than_text_declines),
        cmocka_unit_test(test_duplicates_decline),
        cmocka_unit_test(test_finish_and_usage),
        cmocka_unit_test(test_text_taken_back_when_declined_late),
        cmocka_unit_test(test_invalid_json_declines),
        cmocka_unit_test(test_numbers_jansson_may_refuse_decline),
        cmocka_unit_test(test_deep_nesting_declines),
        cmocka_unit_test(test_embedded_nul_declines),
        cmocka_unit_test(test_cap_overflow),
        cmocka_unit_test(test_memo_keeps_the_shape_around_the_text),
        cmocka_unit_test(test_memo_reads_other_shapes_in_full),
        cmocka_unit_test(test_memo_cap_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
