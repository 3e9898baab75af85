/* Unit tests for core/agentproto: thread ids and the sessions they name,
 * SSE data frames, the text of parts, the lists of tool call ids, error
 * messages, approval decisions, stop reasons and the translators' shared
 * state (text, tool calls, the wait for a decision). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/agentproto.h"

static void test_thread_valid(void **state)
{
    (void)state;
    char s[AGENTPROTO_THREAD_MAX + 2];
    memset(s, 'a', AGENTPROTO_THREAD_MAX);
    s[AGENTPROTO_THREAD_MAX] = '\0';
    assert_true(agentproto_thread_valid(s));
    s[AGENTPROTO_THREAD_MAX] = 'a';
    s[AGENTPROTO_THREAD_MAX + 1] = '\0';
    assert_false(agentproto_thread_valid(s));
    assert_true(agentproto_thread_valid("Az09._:-"));
    assert_false(agentproto_thread_valid(""));
    assert_false(agentproto_thread_valid(NULL));
    assert_false(agentproto_thread_valid("a b"));
    assert_false(agentproto_thread_valid("a/b"));
    assert_false(agentproto_thread_valid("\xc3\xa9"));
}

/* SHA-256 over "thread\n", the owner, a NUL and the thread id. */
static void test_session_id(void **state)
{
    (void)state;
    char id[ID_MAX];
    agentproto_session_id("alice", "t-1", id);
    assert_string_equal(id, "ses_010ec3693e48b113bc2a87ca");
    agentproto_session_id(NULL, "t-1", id);
    assert_string_equal(id, "ses_87bb9acba9083b5b77683140");
    agentproto_session_id("", "t-1", id);
    assert_string_equal(id, "ses_87bb9acba9083b5b77683140");
    agentproto_session_id("ab", "c", id);
    assert_string_equal(id, "ses_08690f01906fa739e57d46f5");
    agentproto_session_id("a", "bc", id);
    assert_string_equal(id, "ses_4f4bf5e25ff19927a1626cf8");
}

static void test_emit(void **state)
{
    (void)state;
    buf out;
    buf_init(&out, 64);
    assert_int_equal(agentproto_emit(&out, json_pack("{s:s, s:f}", "type", "x", "n", 0.1)), 0);
    assert_string_equal(out.data, "data: {\"type\":\"x\",\"n\":0.1}\n\n");
    buf_cleanup(&out);
    buf_init(&out, 8);
    assert_int_equal(agentproto_emit(&out, json_pack("{s:s}", "type", "long")), BUF_TOOBIG);
    buf_cleanup(&out);
}

static void test_text(void **state)
{
    (void)state;
    char err[128] = "";
    json_t *parts = json_loads("[{\"type\":\"text\",\"text\":\"a \"},{\"type\":\"text\",\"text\":"
                               "\"b\"}]",
                               0, NULL);
    char *t = agentproto_text(parts, "m", err, sizeof err);
    assert_string_equal(t, "a b");
    free(t);
    json_decref(parts);
    parts = json_array();
    t = agentproto_text(parts, "m", err, sizeof err);
    assert_string_equal(t, "");
    free(t);
    json_decref(parts);
    parts = json_loads("[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image\"}]", 0, NULL);
    assert_null(agentproto_text(parts, "messages[1].parts", err, sizeof err));
    assert_string_equal(err, "messages[1].parts[1]: only text parts are supported");
    json_decref(parts);
    parts = json_loads("[{\"type\":\"text\",\"text\":7}]", 0, NULL);
    assert_null(agentproto_text(parts, "p", err, sizeof err));
    assert_string_equal(err, "p[0]: only text parts are supported");
    json_decref(parts);
    parts = json_object();
    assert_null(agentproto_text(parts, "p", err, sizeof err));
    assert_string_equal(err, "p must be a list");
    json_decref(parts);
}

static void test_ids(void **state)
{
    (void)state;
    json_t *ids = json_array();
    json_t *calls =
        json_loads("[{\"id\":\"c1\"},{\"function\":{}},{\"id\":\"c2\"},{\"id\":\"c1\"}]", 0, NULL);
    agentproto_ids_add_calls(ids, calls);
    agentproto_ids_add_calls(ids, NULL);
    assert_int_equal(json_array_size(ids), 3);
    assert_true(agentproto_ids_has(ids, "c2"));
    assert_false(agentproto_ids_has(ids, "c3"));
    agentproto_ids_drop(ids, "c1");
    assert_string_equal(json_string_value(json_array_get(ids, 0)), "c2");
    assert_true(agentproto_ids_has(ids, "c1"));
    agentproto_ids_drop(ids, "c1");
    agentproto_ids_drop(ids, "nope");
    assert_int_equal(json_array_size(ids), 1);
    json_decref(calls);
    json_decref(ids);
}

static void test_err(void **state)
{
    (void)state;
    char err[8] = "x";
    agentproto_err(err, sizeof err, "%s[%d]", "resume", 12);
    assert_string_equal(err, "resume[");
    agentproto_err(err, 0, "no");
    assert_string_equal(err, "resume[");
    agentproto_err(NULL, 8, "no");
}

/* Reads {"n": int} into an int; -1 "no n" without it. */
static int read_n(const json_t *in, void *out, char *err, size_t errlen)
{
    json_t *n = json_object_get(in, "n");
    if (!json_is_integer(n)) {
        agentproto_err(err, errlen, "no n");
        return -1;
    }
    *(int *)out = (int)json_integer_value(n);
    return 0;
}

static void test_parse(void **state)
{
    (void)state;
    char err[128] = "";
    int n = 0;
    assert_int_equal(agentproto_parse("{\"n\":7}", 7, read_n, &n, err, sizeof err), 0);
    assert_int_equal(n, 7);
    assert_int_equal(agentproto_parse("{\"m\":7}", 7, read_n, &n, err, sizeof err), -1);
    assert_string_equal(err, "no n");
    assert_int_equal(agentproto_parse("{\"n\":1,\"n\":2}", 13, read_n, &n, err, sizeof err), -1);
    assert_string_equal(err, "invalid JSON at line 1 column 10: duplicate object key near '\"n\"'");
    assert_int_equal(n, 7);
}

static void test_list(void **state)
{
    (void)state;
    char err[128] = "";
    json_t *v = json_loads("[1,2]", 0, NULL);
    assert_int_equal(agentproto_list(v, "resume", 2, "entries", err, sizeof err), 0);
    assert_int_equal(agentproto_list(v, "resume", 1, "entries", err, sizeof err), -1);
    assert_string_equal(err, "resume holds more than 1 entries");
    json_decref(v);
    v = json_object();
    assert_int_equal(agentproto_list(v, "messages", 5, "messages", err, sizeof err), -1);
    assert_string_equal(err, "messages must be a list");
    assert_int_equal(agentproto_list(NULL, "m", 5, "x", err, sizeof err), -1);
    json_decref(v);
}

static void test_string_opt(void **state)
{
    (void)state;
    char *s = (char *)"untouched";
    json_t *v = json_integer(1);
    assert_int_equal(agentproto_string_opt(v, &s), -1);
    assert_string_equal(s, "untouched");
    json_decref(v);
    assert_int_equal(agentproto_string_opt(NULL, &s), 0);
    assert_null(s);
    v = json_null();
    s = (char *)"untouched";
    assert_int_equal(agentproto_string_opt(v, &s), 0);
    assert_null(s);
    v = json_string("fast");
    assert_int_equal(agentproto_string_opt(v, &s), 0);
    assert_string_equal(s, "fast");
    free(s);
    json_decref(v);
}

/* Reads o from text and its decision; *reason as the string or "(null)". */
static int decide(const char *text, bool need, bool *approved, char reason[32])
{
    json_t *o = json_loads(text, 0, NULL);
    char *r = NULL;
    *approved = false;
    strcpy(reason, "(untouched)");
    int rc = agentproto_decision(o, need, approved, &r);
    if (rc == 0) snprintf(reason, 32, "%s", r ? r : "(null)");
    free(r);
    json_decref(o);
    return rc;
}

static void test_decision(void **state)
{
    (void)state;
    bool ok;
    char reason[32];
    assert_int_equal(decide("{\"approved\":true,\"reason\":\"fine\"}", true, &ok, reason), 0);
    assert_true(ok);
    assert_string_equal(reason, "fine");
    assert_int_equal(decide("{\"approved\":false,\"reason\":null}", true, &ok, reason), 0);
    assert_false(ok);
    assert_string_equal(reason, "(null)");
    assert_int_equal(decide("{\"approved\":\"yes\"}", true, &ok, reason), AGENTPROTO_BAD_APPROVED);
    assert_string_equal(reason, "(untouched)");
    assert_int_equal(decide("{}", true, &ok, reason), AGENTPROTO_BAD_APPROVED);
    /* Not needed: a missing or odd approved reads as false. */
    assert_int_equal(decide("{\"approved\":\"yes\"}", false, &ok, reason), 0);
    assert_false(ok);
    assert_string_equal(reason, "(null)");
    assert_int_equal(decide("{\"approved\":true,\"reason\":3}", true, &ok, reason),
                     AGENTPROTO_BAD_REASON);
    assert_false(ok);
    assert_string_equal(reason, "(untouched)");
    /* A bad approved is named before a bad reason. */
    assert_int_equal(decide("{\"approved\":1,\"reason\":3}", true, &ok, reason),
                     AGENTPROTO_BAD_APPROVED);
    assert_int_equal(decide("{\"approved\":1,\"reason\":3}", false, &ok, reason),
                     AGENTPROTO_BAD_REASON);
    /* No object at all (an AG-UI resume entry without payload). */
    char *r = NULL;
    ok = true;
    assert_int_equal(agentproto_decision(NULL, false, &ok, &r), 0);
    assert_false(ok);
    assert_null(r);
    assert_int_equal(agentproto_decision(NULL, true, &ok, &r), AGENTPROTO_BAD_APPROVED);
}

static void test_stop_kind(void **state)
{
    (void)state;
    assert_int_equal(agentproto_stop_kind("llm_error"), AGENTPROTO_STOP_ERROR);
    assert_int_equal(agentproto_stop_kind("max_retries"), AGENTPROTO_STOP_ERROR);
    assert_int_equal(agentproto_stop_kind("interrupted"), AGENTPROTO_STOP_ERROR);
    assert_int_equal(agentproto_stop_kind("owner_budget"), AGENTPROTO_STOP_ERROR);
    assert_int_equal(agentproto_stop_kind("user_stopped"), AGENTPROTO_STOP_CANCELLED);
    assert_int_equal(agentproto_stop_kind("approval_timeout"), AGENTPROTO_STOP_CANCELLED);
    assert_int_equal(agentproto_stop_kind("completed"), AGENTPROTO_STOP_DONE);
    assert_int_equal(agentproto_stop_kind("max_steps"), AGENTPROTO_STOP_DONE);
    assert_int_equal(agentproto_stop_kind(""), AGENTPROTO_STOP_DONE);
}

static const agentproto_dialect test_dialect = {
    .text_start = "S",
    .text_delta = "D",
    .text_end = "E",
    .text_key = "k",
    .start_role = "assistant",
};

/* Feeds the event JSON to fn and checks the frames that went out. */
static void feed(agentproto_xlate *x, int (*fn)(agentproto_xlate *, const json_t *, buf *),
                 const char *ev, const char *want)
{
    buf out;
    buf_init(&out, 4096);
    json_t *e = json_loads(ev, 0, NULL);
    assert_non_null(e);
    assert_int_equal(fn(x, e, &out), 0);
    assert_string_equal(out.data ? out.data : "", want);
    json_decref(e);
    buf_cleanup(&out);
}

static void test_xlate_text(void **state)
{
    (void)state;
    agentproto_xlate x;
    agentproto_xlate_init(&x, &test_dialect, NULL);
    feed(&x, agentproto_xlate_token, "{\"message_id\":\"m1\",\"text\":\"Hi\"}",
         "data: {\"type\":\"S\",\"k\":\"m1\",\"role\":\"assistant\"}\n\n"
         "data: {\"type\":\"D\",\"k\":\"m1\",\"delta\":\"Hi\"}\n\n");
    /* The same message: only the delta; an empty text: nothing. */
    feed(&x, agentproto_xlate_token, "{\"message_id\":\"m1\",\"text\":\"!\"}",
         "data: {\"type\":\"D\",\"k\":\"m1\",\"delta\":\"!\"}\n\n");
    feed(&x, agentproto_xlate_token, "{\"message_id\":\"m1\",\"text\":\"\"}", "");
    feed(&x, agentproto_xlate_token, "{\"text\":\"no id\"}", "");
    /* An error of another message leaves m1 open; its own ends it. */
    feed(&x, agentproto_xlate_error, "{\"message_id\":\"m0\"}", "");
    feed(&x, agentproto_xlate_error, "{\"message_id\":\"m1\"}",
         "data: {\"type\":\"E\",\"k\":\"m1\"}\n\n");
    assert_null(x.text_id);
    feed(&x, agentproto_xlate_error, "{\"message_id\":\"m1\"}", "");
    /* A new message ends the open one. */
    buf out;
    buf_init(&out, 4096);
    assert_int_equal(agentproto_text_open(&x, "m2", &out), 0);
    assert_int_equal(agentproto_text_open(&x, "m3", &out), 0);
    assert_string_equal(out.data, "data: {\"type\":\"S\",\"k\":\"m2\",\"role\":\"assistant\"}\n\n"
                                  "data: {\"type\":\"E\",\"k\":\"m2\"}\n\n"
                                  "data: {\"type\":\"S\",\"k\":\"m3\",\"role\":\"assistant\"}\n\n");
    buf_cleanup(&out);
    /* The assistant message m3 ends the text its tokens opened. */
    buf_init(&out, 4096);
    assert_int_equal(agentproto_xlate_text(&x, "m3", "whole", &out), 0);
    assert_string_equal(out.data, "data: {\"type\":\"E\",\"k\":\"m3\"}\n\n");
    buf_cleanup(&out);
    /* Unseen tokens: the whole text at once; no text: nothing. */
    buf_init(&out, 4096);
    assert_int_equal(agentproto_xlate_text(&x, "m4", "", &out), 0);
    assert_int_equal(agentproto_xlate_text(&x, "m4", NULL, &out), 0);
    assert_null(out.data);
    assert_int_equal(agentproto_xlate_text(&x, "m4", "whole", &out), 0);
    assert_string_equal(out.data, "data: {\"type\":\"S\",\"k\":\"m4\",\"role\":\"assistant\"}\n\n"
                                  "data: {\"type\":\"D\",\"k\":\"m4\",\"delta\":\"whole\"}\n\n"
                                  "data: {\"type\":\"E\",\"k\":\"m4\"}\n\n");
    assert_null(x.text_id);
    buf_cleanup(&out);
    /* A frame over the cap is BUF_TOOBIG. */
    buf_init(&out, 16);
    assert_int_equal(agentproto_text_open(&x, "m5", &out), BUF_TOOBIG);
    buf_cleanup(&out);
    agentproto_xlate_cleanup(&x);
    assert_null(x.pending);
}

/* Writes "id name args;" for each call; fails at id "stop". */
static int test_call(void *ud, const char *id, const char *name, const char *args, buf *out)
{
    (void)out;
    if (strcmp(id, "stop") == 0) return BUF_TOOBIG;
    size_t n = strlen(ud);
    snprintf((char *)ud + n, 128 - n, "%s %s %s;", id, name ? name : "-", args ? args : "-");
    return 0;
}

static void test_xlate_calls(void **state)
{
    (void)state;
    agentproto_xlate x;
    agentproto_xlate_init(&x, &test_dialect, NULL);
    json_t *calls =
        json_loads("[{\"id\":\"c1\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},"
                   "{\"function\":{\"name\":\"g\"}},{\"id\":\"c2\"}]",
                   0, NULL);
    char seen[128] = "";
    assert_int_equal(agentproto_xlate_calls(&x, calls, test_call, seen, NULL), 0);
    assert_string_equal(seen, "c1 f {};c2 - -;");
    assert_int_equal(json_array_size(x.pending), 2);
    assert_string_equal(json_string_value(json_array_get(x.pending, 1)), "c2");
    json_decref(calls);
    calls = json_loads("[{\"id\":\"stop\"},{\"id\":\"c3\"}]", 0, NULL);
    seen[0] = '\0';
    assert_int_equal(agentproto_xlate_calls(&x, calls, test_call, seen, NULL), BUF_TOOBIG);
    assert_string_equal(seen, "");
    /* The ids wait for results even when a frame failed. */
    assert_int_equal(json_array_size(x.pending), 4);
    json_decref(calls);
    agentproto_xlate_cleanup(&x);
}

static int wait_for(agentproto_xlate *x, const char *text)
{
    json_t *ev = json_loads(text, 0, NULL);
    int rc = agentproto_xlate_wait(x, json_string_value(json_object_get(ev, "type")), ev);
    json_decref(ev);
    return rc;
}

static void test_xlate_wait(void **state)
{
    (void)state;
    agentproto_xlate x;
    agentproto_xlate_init(&x, &test_dialect, NULL);
    assert_int_equal(wait_for(&x, "{\"type\":\"token\"}"), AGENTPROTO_PASS);
    agentproto_xlate_cleanup(&x);
    agentproto_xlate_init(&x, &test_dialect, "apr_1");
    assert_string_equal(x.wait_approval, "apr_1");
    assert_int_equal(wait_for(&x, "{\"type\":\"message\",\"role\":\"assistant\","
                                  "\"tool_calls\":[{\"id\":\"c1\"},{\"id\":\"c2\"}]}"),
                     AGENTPROTO_HOLD);
    assert_int_equal(wait_for(&x, "{\"type\":\"message\",\"role\":\"tool\","
                                  "\"tool_call_id\":\"c1\"}"),
                     AGENTPROTO_HOLD);
    assert_int_equal(json_array_size(x.pending), 1);
    assert_string_equal(json_string_value(json_array_get(x.pending, 0)), "c2");
    assert_int_equal(wait_for(&x, "{\"type\":\"token\",\"text\":\"x\"}"), AGENTPROTO_HOLD);
    assert_int_equal(wait_for(&x, "{\"type\":\"approval_decided\",\"approval_id\":\"apr_0\"}"),
                     AGENTPROTO_HOLD);
    assert_int_equal(wait_for(&x, "{\"type\":\"approval_decided\"}"), AGENTPROTO_HOLD);
    assert_int_equal(wait_for(&x, "{\"type\":\"approval_requested\",\"approval_id\":\"apr_1\"}"),
                     AGENTPROTO_HOLD);
    assert_int_equal(wait_for(&x, "{\"type\":\"run_stopped\"}"), AGENTPROTO_PASS);
    assert_string_equal(x.wait_approval, "apr_1");
    assert_int_equal(wait_for(&x, "{\"type\":\"approval_decided\",\"approval_id\":\"apr_1\"}"),
                     AGENTPROTO_DECIDED);
    assert_null(x.wait_approval);
    assert_int_equal(wait_for(&x, "{\"type\":\"message\",\"role\":\"tool\","
                                  "\"tool_call_id\":\"c2\"}"),
                     AGENTPROTO_PASS);
    assert_int_equal(json_array_size(x.pending), 1);
    agentproto_xlate_cleanup(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_valid), cmocka_unit_test(test_session_id),
        cmocka_unit_test(test_emit),         cmocka_unit_test(test_text),
        cmocka_unit_test(test_ids),          cmocka_unit_test(test_err),
        cmocka_unit_test(test_string_opt),   cmocka_unit_test(test_decision),
        cmocka_unit_test(test_stop_kind),    cmocka_unit_test(test_xlate_text),
        cmocka_unit_test(test_xlate_calls),  cmocka_unit_test(test_xlate_wait),
        cmocka_unit_test(test_parse),        cmocka_unit_test(test_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
