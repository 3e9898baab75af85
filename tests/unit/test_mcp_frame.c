/* Unit tests for engine/mcp_frame: the capped line reader, id sniffing,
 * message classification, encoding, and tool result text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/mcp_frame.h"
#include "lib/xmalloc.h"

/* Every line the reader delivered, as "text" or "TOOBIG len id head". */
typedef struct lines {
    char got[16][512];
    int n;
    int stop_at; /* return 7 from this line (1-based); 0: never */
} lines;

static int collect(void *ud, const mcp_line *l)
{
    lines *ls = ud;
    assert_true(ls->n < 16);
    if (l->toobig) {
        assert_null(l->data);
        snprintf(ls->got[ls->n], sizeof ls->got[0], "TOOBIG %zu %lld %.*s", l->len,
                 (long long)l->id, (int)l->head_len, l->head);
    } else {
        assert_int_equal(strlen(l->data), l->len);
        assert_false(l->toobig);
        snprintf(ls->got[ls->n], sizeof ls->got[0], "%s", l->data);
    }
    ls->n++;
    return ls->stop_at == ls->n ? 7 : 0;
}

static void test_lines_split_across_feeds(void **state)
{
    (void)state;
    mcp_reader r;
    lines ls = {0};
    mcp_reader_init(&r, 64);
    assert_int_equal(mcp_reader_feed(&r, "{\"a\":1}\n{\"b\"", 12, collect, &ls), 0);
    assert_int_equal(ls.n, 1);
    assert_int_equal(mcp_reader_feed(&r, ":2}\r\n\n\r\nxy", 10, collect, &ls), 0);
    assert_int_equal(mcp_reader_feed(&r, "z\n", 2, collect, &ls), 0);
    /* The empty line is left out; a lone CR line becomes empty too. */
    assert_int_equal(ls.n, 3);
    assert_string_equal(ls.got[0], "{\"a\":1}");
    assert_string_equal(ls.got[1], "{\"b\":2}");
    assert_string_equal(ls.got[2], "xyz");
    mcp_reader_cleanup(&r);
}

static void test_line_at_cap_is_kept_one_over_is_not(void **state)
{
    (void)state;
    mcp_reader r;
    lines ls = {0};
    mcp_reader_init(&r, 8);
    assert_int_equal(mcp_reader_feed(&r, "12345678\n123456789\nok\n", 22, collect, &ls), 0);
    assert_int_equal(ls.n, 3);
    assert_string_equal(ls.got[0], "12345678");
    assert_string_equal(ls.got[1], "TOOBIG 9 -1 123456789");
    assert_string_equal(ls.got[2], "ok");
    mcp_reader_cleanup(&r);
}

/* An over-long line fed in small pieces is never buffered whole: its length
 * is counted, its id found from its last bytes, and the next line is fine. */
static void test_toobig_line_in_pieces_finds_id_at_end(void **state)
{
    (void)state;
    mcp_reader r;
    lines ls = {0};
    mcp_reader_init(&r, 100);
    const char *start = "{\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"";
    assert_int_equal(mcp_reader_feed(&r, start, strlen(start), collect, &ls), 0);
    size_t total = strlen(start);
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(mcp_reader_feed(&r, chunk, sizeof chunk, collect, &ls), 0);
        total += sizeof chunk;
    }
    assert_true(r.line.alloc <= 101);
    const char *end = "\"}]},\"jsonrpc\":\"2.0\",\"id\":42}\n{\"id\":1,\"result\":{}}\n";
    assert_int_equal(mcp_reader_feed(&r, end, strlen(end), collect, &ls), 0);
    total += strlen("\"}]},\"jsonrpc\":\"2.0\",\"id\":42}");
    assert_int_equal(ls.n, 2);
    /* The head is the first MCP_FRAME_SNIFF bytes: the start, then x's. */
    char want[512];
    int n = snprintf(want, sizeof want, "TOOBIG %zu 42 %s", total, start);
    memset(want + n, 'x', MCP_FRAME_SNIFF - strlen(start));
    want[n + MCP_FRAME_SNIFF - strlen(start)] = '\0';
    assert_string_equal(ls.got[0], want);
    assert_string_equal(ls.got[1], "{\"id\":1,\"result\":{}}");
    mcp_reader_cleanup(&r);
}

/* The head keeps filling after skipping began, so an id early in the line
 * is found however the line was cut into feeds. */
static void test_toobig_head_fills_across_feeds(void **state)
{
    (void)state;
    mcp_reader r;
    lines ls = {0};
    mcp_reader_init(&r, 4);
    const char *parts[] = {"{\"a\"", ":1,\"", "id\":5,\"b\":\"", "zzz\"}\n"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(mcp_reader_feed(&r, parts[i], strlen(parts[i]), collect, &ls), 0);
    assert_int_equal(ls.n, 1);
    assert_string_equal(ls.got[0], "TOOBIG 24 5 {\"a\":1,\"id\":5,\"b\":\"zzz\"}");
    mcp_reader_cleanup(&r);
}

static void test_callback_stop_drops_rest(void **state)
{
    (void)state;
    mcp_reader r;
    lines ls = {.stop_at = 2};
    mcp_reader_init(&r, 64);
    assert_int_equal(mcp_reader_feed(&r, "a\nb\nc\n", 6, collect, &ls), 7);
    assert_int_equal(ls.n, 2);
    mcp_reader_cleanup(&r);
}

static int64_t sniff(const char *head, const char *tail)
{
    return mcp_frame_sniff_id(head, strlen(head), tail, strlen(tail));
}

static void test_sniff_head(void **state)
{
    (void)state;
    assert_int_equal(sniff("{\"jsonrpc\":\"2.0\",\"id\":17,\"result\":{\"a\"", ""), 17);
    assert_int_equal(sniff(" { \"id\" : 5 , \"result\"", ""), 5);
    /* Members before id are skipped whole, nested ones included. */
    assert_int_equal(sniff("{\"x\":{\"id\":3,\"y\":[1,{\"z\":\"}\"}]},\"id\":9,", ""), 9);
    assert_int_equal(sniff("{\"s\":\"a\\\"id\\\":4\",\"id\":8}", ""), 8);
    /* A nested id does not count; a number cut by the window end does not. */
    assert_int_equal(sniff("{\"result\":{\"id\":3,\"text\":\"xxx", ""), -1);
    assert_int_equal(sniff("{\"id\":12", ""), -1);
    assert_int_equal(sniff("{\"id\":-3,", ""), -1);
    assert_int_equal(sniff("{\"id\":\"abc\",", ""), -1);
    assert_int_equal(sniff("[\"id\",1]", ""), -1);
}

static void test_sniff_tail(void **state)
{
    (void)state;
    assert_int_equal(sniff("{\"result\":{\"t\":\"xx", "xxx\"}},\"jsonrpc\":\"2.0\",\"id\":42}"),
                     42);
    assert_int_equal(sniff("", "xx\"}}, \"id\" : 7 }\r"), 7);
    assert_int_equal(sniff("", "{\"id\":3}"), 3);
    /* Inside a string the quotes are escaped, so this is no member. */
    assert_int_equal(sniff("", "xx\\\"id\\\":5}\"}"), -1);
    assert_int_equal(sniff("", "\"text\":\"a \\\"id\\\":5}"), -1);
    assert_int_equal(sniff("", "\"x\":\"jsonrpc\\\":\\\"2.0\"}"), -1);
    assert_int_equal(sniff("", "\"id\":1.5}"), -1);
    assert_int_equal(sniff("", "\"id\":-5}"), -1);
    assert_int_equal(sniff("", "\"id\":5]"), -1);
    assert_int_equal(sniff("", "\"id\":12345678901234567890}"), -1);
    assert_int_equal(sniff("", ""), -1);
}

static mcp_msg parse_ok(const char *text)
{
    mcp_msg m;
    char err[128] = "";
    int rc = mcp_msg_parse(text, strlen(text), &m, err, sizeof err);
    if (rc != 0) fail_msg("%s: %s", text, err);
    return m;
}

static void expect_invalid(const char *text, const char *why)
{
    mcp_msg m;
    char err[128] = "";
    assert_int_equal(mcp_msg_parse(text, strlen(text), &m, err, sizeof err), -1);
    assert_int_equal(m.kind, MCP_MSG_INVALID);
    assert_string_equal(err, why);
    mcp_msg_cleanup(&m);
}

static void test_classify(void **state)
{
    (void)state;
    mcp_msg m = parse_ok("{\"result\":{\"tools\":[]},\"jsonrpc\":\"2.0\",\"id\":2}");
    assert_int_equal(m.kind, MCP_MSG_RESULT);
    assert_true(m.id_is_int);
    assert_int_equal(m.id_int, 2);
    assert_true(json_is_array(json_object_get(m.result, "tools")));
    mcp_msg_cleanup(&m);

    m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32602,\"message\":\"bad\"}}");
    assert_int_equal(m.kind, MCP_MSG_ERROR);
    assert_int_equal(m.error_code, -32602);
    char *t = mcp_msg_error_text(&m);
    assert_string_equal(t, "JSON-RPC error -32602: bad");
    free(t);
    mcp_msg_cleanup(&m);

    m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700}}");
    assert_int_equal(m.kind, MCP_MSG_ERROR);
    assert_null(m.id);
    assert_false(m.id_is_int);
    t = mcp_msg_error_text(&m);
    assert_string_equal(t, "JSON-RPC error -32700");
    free(t);
    mcp_msg_cleanup(&m);

    m = parse_ok("{\"method\":\"ping\",\"jsonrpc\":\"2.0\",\"id\":\"s1\"}");
    assert_int_equal(m.kind, MCP_MSG_REQUEST);
    assert_string_equal(m.method, "ping");
    assert_false(m.id_is_int);
    assert_string_equal(json_string_value(m.id), "s1");
    mcp_msg_cleanup(&m);

    m = parse_ok("{\"method\":\"notifications/progress\",\"params\":{\"progressToken\":3,"
                 "\"progress\":1},\"jsonrpc\":\"2.0\"}");
    assert_int_equal(m.kind, MCP_MSG_NOTIFICATION);
    assert_null(m.id);
    assert_int_equal(json_integer_value(json_object_get(m.params, "progressToken")), 3);
    mcp_msg_cleanup(&m);

    /* Without "jsonrpc" a message is still taken. */
    m = parse_ok("{\"id\":4,\"result\":null}");
    assert_int_equal(m.kind, MCP_MSG_RESULT);
    mcp_msg_cleanup(&m);
}

static void test_classify_invalid(void **state)
{
    (void)state;
    expect_invalid("garbage", "not JSON: '[' or '{' expected near 'garbage' at column 7");
    expect_invalid("[1,2]", "not a JSON object");
    expect_invalid("{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":{}}", "\"jsonrpc\" is not \"2.0\"");
    expect_invalid("{\"id\":1.5,\"result\":{}}", "\"id\" is neither a string nor an integer");
    expect_invalid("{\"method\":7}", "\"method\" is not a string");
    expect_invalid("{\"method\":\"x\",\"id\":null}", "a request's \"id\" is null");
    expect_invalid("{\"jsonrpc\":\"2.0\"}", "neither a \"method\" nor an \"id\"");
    expect_invalid("{\"id\":1}",
                   "a response needs exactly one of \"result\" and an \"error\" object");
    expect_invalid("{\"id\":1,\"result\":{},\"error\":{}}",
                   "a response needs exactly one of \"result\" and an \"error\" object");
    expect_invalid("{\"id\":1,\"error\":\"no\"}",
                   "a response needs exactly one of \"result\" and an \"error\" object");
}

static void test_encode(void **state)
{
    (void)state;
    size_t len;
    json_t *params = json_pack("{s:s,s:{s:s}}", "name", "echo", "arguments", "message", "a\nb");
    char *s = mcp_frame_request(3, "tools/call", params, &len);
    assert_string_equal(s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":"
                           "{\"name\":\"echo\",\"arguments\":{\"message\":\"a\\nb\"}}}\n");
    assert_int_equal(len, strlen(s));
    free(s);
    s = mcp_frame_request(1, "tools/list", NULL, NULL);
    assert_string_equal(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n");
    free(s);
    s = mcp_frame_notification("notifications/cancelled",
                               json_pack("{s:i,s:s}", "requestId", 3, "reason", "timed out"), &len);
    assert_string_equal(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":"
                           "{\"requestId\":3,\"reason\":\"timed out\"}}\n");
    free(s);
    s = mcp_frame_notification("notifications/initialized", NULL, NULL);
    assert_string_equal(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
    free(s);
}

static void test_answer_server_requests(void **state)
{
    (void)state;
    mcp_msg m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":\"p-1\",\"method\":\"ping\"}");
    char *s = mcp_frame_answer(&m, NULL);
    assert_string_equal(s, "{\"jsonrpc\":\"2.0\",\"id\":\"p-1\",\"result\":{}}\n");
    free(s);
    mcp_msg_cleanup(&m);
    m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"roots/list\"}");
    s = mcp_frame_answer(&m, NULL);
    assert_string_equal(s, "{\"jsonrpc\":\"2.0\",\"id\":0,\"error\":{\"code\":-32601,"
                           "\"message\":\"Method not found: roots/list\"}}\n");
    free(s);
    mcp_msg_cleanup(&m);
}

static void expect_result(const char *json, size_t cap, const char *text, bool is_error)
{
    json_t *r = json_loads(json, 0, NULL);
    assert_non_null(r);
    buf b;
    buf_init(&b, cap);
    assert_int_equal(mcp_frame_result_text(r, &b), is_error);
    assert_string_equal(b.data ? b.data : "", text);
    buf_cleanup(&b);
    json_decref(r);
}

static void test_result_text(void **state)
{
    (void)state;
    expect_result("{\"content\":[{\"type\":\"text\",\"text\":\"Echo: hi\"}]}", 100, "Echo: hi",
                  false);
    expect_result("{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image\","
                  "\"data\":\"AAA\",\"mimeType\":\"image/png\"},{\"type\":\"text\",\"text\":\"b\"}"
                  ",{\"type\":\"audio\"},{\"type\":\"resource_link\",\"uri\":\"file:///x\"},"
                  "{\"type\":\"resource\",\"resource\":{\"uri\":\"test://1\",\"blob\":\"QQ==\"}},"
                  "{\"type\":\"resource\",\"resource\":{\"uri\":\"test://2\",\"text\":\"inner\"}},"
                  "{\"type\":\"video\"},{\"text\":\"x\"}]}",
                  1000,
                  "a\n[image: image/png]\nb\n[audio]\n[resource link: file:///x]\n"
                  "[resource: test://1]\ninner\n[video]\n[content without a type]",
                  false);
    /* Text wins over structuredContent; with no parts it is the text. */
    expect_result("{\"content\":[{\"type\":\"text\",\"text\":\"hello\\n\"}],"
                  "\"structuredContent\":{\"content\":\"hello\\n\"}}",
                  100, "hello\n", false);
    expect_result("{\"content\":[],\"structuredContent\":{\"temp\":22.5,\"city\":\"Chicago\"}}",
                  100, "{\"temp\":22.5,\"city\":\"Chicago\"}", false);
    expect_result("{\"content\":[{\"type\":\"text\",\"text\":\"Access denied\"}],\"isError\":true}",
                  100, "Access denied", true);
    expect_result("{\"isError\":false}", 100, "", false);
    /* The cap cuts, never inside a UTF-8 character. */
    expect_result("{\"content\":[{\"type\":\"text\",\"text\":\"ab\xc3\xa9z\"}]}", 3, "ab", false);
    expect_result("{\"content\":[{\"type\":\"text\",\"text\":\"ab\"},{\"type\":\"text\","
                  "\"text\":\"cd\"}]}",
                  4, "ab\nc", false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_split_across_feeds),
        cmocka_unit_test(test_line_at_cap_is_kept_one_over_is_not),
        cmocka_unit_test(test_toobig_line_in_pieces_finds_id_at_end),
        cmocka_unit_test(test_toobig_head_fills_across_feeds),
        cmocka_unit_test(test_callback_stop_drops_rest),
        cmocka_unit_test(test_sniff_head),
        cmocka_unit_test(test_sniff_tail),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_classify_invalid),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_answer_server_requests),
        cmocka_unit_test(test_result_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
