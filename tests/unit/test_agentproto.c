/* Unit tests for core/agentproto: thread ids and the sessions they name,
 * SSE data frames, the text of parts and the lists of tool call ids. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_valid), cmocka_unit_test(test_session_id),
        cmocka_unit_test(test_emit),         cmocka_unit_test(test_text),
        cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
