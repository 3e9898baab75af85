/* Unit tests for core/control: the messages between instances, to text and
 * back. The texts are pinned byte for byte: instances of other versions
 * read them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/control.h"
#include "core/mode.h"

/* Encodes m and compares the text with want (NULL: encoding must fail). */
static void check_encode(const control_msg *m, const char *want)
{
    char *text = control_encode(m);
    if (!want) {
        assert_null(text);
        return;
    }
    assert_non_null(text);
    assert_string_equal(text, want);
    free(text);
}

static const mode test_mode = {
    .name = "quick",
    .description = "Short \"answers\"",
    .limits =
        {.steps = 3, .seconds = 60, .tokens = -1, .tool_calls = 5, .retries = 2, .cost_usd = 0.25},
    .guard = {.loop_warn = 2, .loop_stop = 3, .fail_warn = 2, .fail_stop = 4, .stale_steps = 3},
};

#define MODE_TEXT                                                                                  \
    "{\"name\":\"quick\",\"description\":\"Short \\\"answers\\\"\",\"limits\":{\"steps\":3,"       \
    "\"seconds\":60,\"tokens\":null,\"tool_calls\":5,\"retries\":2,\"cost_usd\":0.25},\"guard\":{" \
    "\"loop_warn\":2,\"loop_stop\":3,\"fail_warn\":2,\"fail_stop\":4,\"stale_steps\":3},"          \
    "\"approval\":\"never\"}"

static void test_encode_wire_format(void **state)
{
    (void)state;
    control_msg stop = {.kind = CONTROL_STOP, .instance = "ins_a", .run_id = "run_1"};
    check_encode(&stop, "{\"instance\":\"ins_a\",\"run_id\":\"run_1\",\"action\":\"stop\"}");
    control_msg mode_msg = {
        .kind = CONTROL_MODE, .instance = "ins_a", .run_id = "run_1", .mode_name = "deep"};
    check_encode(&mode_msg,
                 "{\"instance\":\"ins_a\",\"run_id\":\"run_1\",\"action\":\"mode\",\"mode\":"
                 "\"deep\"}");
    control_msg deleted = {.kind = CONTROL_SESSION_DELETED,
                           .instance = CONTROL_EVERY,
                           .from = "ins_b",
                           .session_id = "ses_9"};
    check_encode(&deleted, "{\"instance\":\"*\",\"from\":\"ins_b\",\"action\":\"session_deleted\","
                           "\"session_id\":\"ses_9\"}");
    json_t *mj = mode_to_json(&test_mode);
    control_msg put = {
        .kind = CONTROL_PUT_MODE, .instance = CONTROL_EVERY, .from = "ins_b", .mode = mj};
    check_encode(
        &put,
        "{\"instance\":\"*\",\"from\":\"ins_b\",\"action\":\"put_mode\",\"mode\":" MODE_TEXT "}");
    /* The mode object is borrowed: the caller's reference is its only one. */
    assert_int_equal(mj->refcount, 1);
    json_decref(mj);
    control_msg decided = {.kind = CONTROL_APPROVAL_DECIDED,
                           .instance = "ins_a",
                           .run_id = "run_1",
                           .item_id = "apr_2"};
    check_encode(&decided, "{\"instance\":\"ins_a\",\"run_id\":\"run_1\",\"action\":"
                           "\"approval_decided\",\"approval_id\":\"apr_2\"}");
    control_msg answered = {
        .kind = CONTROL_INPUT_ANSWERED, .instance = "ins_a", .run_id = "run_1", .item_id = "inp_3"};
    check_encode(&answered, "{\"instance\":\"ins_a\",\"run_id\":\"run_1\",\"action\":"
                            "\"input_answered\",\"input_id\":\"inp_3\"}");
    /* Strings are escaped as JSON; non-ASCII stays as it is. */
    control_msg odd = {.kind = CONTROL_STOP, .instance = "a\"b\\c/é", .run_id = "r"};
    check_encode(&odd, "{\"instance\":\"a\\\"b\\\\c/é\",\"run_id\":\"r\",\"action\":\"stop\"}");
}

static void test_encode_refuses_what_cannot_be_sent(void **state)
{
    (void)state;
    check_encode(&(control_msg){.kind = CONTROL_STOP, .run_id = "r"}, NULL);
    check_encode(&(control_msg){.kind = CONTROL_STOP, .instance = "i"}, NULL);
    check_encode(&(control_msg){.kind = CONTROL_MODE, .instance = "i", .run_id = "r"}, NULL);
    check_encode(&(control_msg){.kind = CONTROL_SESSION_DELETED, .instance = "*", .from = "i"},
                 NULL);
    check_encode(&(control_msg){.kind = CONTROL_PUT_MODE, .instance = "*", .from = "i"}, NULL);
    check_encode(&(control_msg){.kind = CONTROL_APPROVAL_DECIDED, .instance = "i", .run_id = "r"},
                 NULL);
    check_encode(&(control_msg){.kind = CONTROL_INPUT_ANSWERED, .instance = "i", .item_id = "x"},
                 NULL);
    json_t *nameless = json_pack("{s:s}", "description", "x");
    check_encode(
        &(control_msg){.kind = CONTROL_PUT_MODE, .instance = "*", .from = "i", .mode = nameless},
        NULL);
    json_decref(nameless);
    check_encode(&(control_msg){.kind = (control_kind)99, .instance = "i", .run_id = "r"}, NULL);
    /* Not UTF-8: jansson cannot hold it. */
    check_encode(&(control_msg){.kind = CONTROL_STOP, .instance = "i\xff", .run_id = "r"}, NULL);

    /* The size cap: a text of exactly CONTROL_MAX bytes goes, one more does not. */
    const size_t frame = strlen("{\"instance\":\"\",\"run_id\":\"r\",\"action\":\"stop\"}");
    char *big = malloc(CONTROL_MAX + 2);
    memset(big, 'x', CONTROL_MAX + 1);
    big[CONTROL_MAX - frame] = '\0';
    char *text =
        control_encode(&(control_msg){.kind = CONTROL_STOP, .instance = big, .run_id = "r"});
    assert_non_null(text);
    assert_int_equal(strlen(text), CONTROL_MAX);
    free(text);
    big[CONTROL_MAX - frame] = 'x';
    big[CONTROL_MAX - frame + 1] = '\0';
    check_encode(&(control_msg){.kind = CONTROL_STOP, .instance = big, .run_id = "r"}, NULL);
    free(big);
}

/* Decodes text, which must succeed. */
static void decode_ok(const char *text, control_msg *m)
{
    char err[200] = "";
    int rc = control_decode(text, strlen(text), m, err, sizeof err);
    if (rc != 0) fail_msg("%s: %s", text, err);
}

static void test_decode_each_kind(void **state)
{
    (void)state;
    control_msg m;
    decode_ok("{\"instance\":\"ins_a\",\"run_id\":\"run_1\",\"action\":\"stop\"}", &m);
    assert_int_equal(m.kind, CONTROL_STOP);
    assert_string_equal(m.instance, "ins_a");
    assert_string_equal(m.run_id, "run_1");
    assert_null(m.from);
    assert_null(m.mode_name);
    assert_null(m.session_id);
    assert_null(m.mode);
    control_msg_cleanup(&m);
    assert_null(m.doc);

    /* Key order, white space and keys of no kind do not matter. */
    decode_ok(" {\"mode\":\"deep\", \"action\":\"mode\",\"run_id\":\"r\",\"instance\":\"i\","
              "\"later\":[1,2]} ",
              &m);
    assert_int_equal(m.kind, CONTROL_MODE);
    assert_string_equal(m.instance, "i");
    assert_string_equal(m.run_id, "r");
    assert_string_equal(m.mode_name, "deep");
    control_msg_cleanup(&m);

    decode_ok("{\"instance\":\"*\",\"from\":\"ins_b\",\"action\":\"put_mode\",\"mode\":" MODE_TEXT
              "}",
              &m);
    assert_int_equal(m.kind, CONTROL_PUT_MODE);
    assert_string_equal(m.instance, CONTROL_EVERY);
    assert_string_equal(m.from, "ins_b");
    assert_string_equal(m.mode_name, "quick");
    mode back = {0};
    char err[200];
    assert_int_equal(mode_limits_apply_json(&back.limits, json_object_get(m.mode, "limits"),
                                            "limits", err, sizeof err),
                     0);
    assert_int_equal(back.limits.steps, 3);
    assert_int_equal(back.limits.tokens, MODE_UNLIMITED);
    assert_true(back.limits.cost_usd == 0.25);
    control_msg_cleanup(&m);

    decode_ok("{\"instance\":\"*\",\"from\":\"ins_b\",\"action\":\"session_deleted\","
              "\"session_id\":\"ses_9\"}",
              &m);
    assert_int_equal(m.kind, CONTROL_SESSION_DELETED);
    assert_string_equal(m.from, "ins_b");
    assert_string_equal(m.session_id, "ses_9");
    control_msg_cleanup(&m);

    decode_ok("{\"instance\":\"ins_a\",\"run_id\":\"r\",\"action\":\"approval_decided\","
              "\"approval_id\":\"apr_1\"}",
              &m);
    assert_int_equal(m.kind, CONTROL_APPROVAL_DECIDED);
    assert_string_equal(m.run_id, "r");
    assert_string_equal(m.item_id, "apr_1");
    assert_null(m.session_id);
    control_msg_cleanup(&m);
    decode_ok("{\"instance\":\"ins_a\",\"run_id\":\"r\",\"action\":\"input_answered\","
              "\"input_id\":\"inp_1\"}",
              &m);
    assert_int_equal(m.kind, CONTROL_INPUT_ANSWERED);
    assert_string_equal(m.item_id, "inp_1");
    control_msg_cleanup(&m);

    /* Cleaning up twice, a zeroed message and NULL are fine. */
    control_msg_cleanup(&m);
    control_msg_cleanup(NULL);
}

/* Every message encodes to a text that decodes to the same message and
 * encodes to the same text again. */
static void test_round_trips(void **state)
{
    (void)state;
    json_t *mj = mode_to_json(&test_mode);
    const control_msg msgs[] = {
        {.kind = CONTROL_STOP, .instance = "ins_a", .run_id = "run_1"},
        {.kind = CONTROL_MODE, .instance = "ins_a", .run_id = "run_1", .mode_name = "standard"},
        {.kind = CONTROL_PUT_MODE, .instance = "*", .from = "ins_c", .mode = mj},
        {.kind = CONTROL_SESSION_DELETED, .instance = "*", .from = "ins_c", .session_id = "s"},
        {.kind = CONTROL_STOP, .instance = "\xe2\x82\xac \"\\\n", .run_id = ""},
        {.kind = CONTROL_APPROVAL_DECIDED, .instance = "ins_a", .run_id = "r", .item_id = "a"},
        {.kind = CONTROL_INPUT_ANSWERED, .instance = "ins_a", .run_id = "r", .item_id = "i"},
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        char *text = control_encode(&msgs[i]);
        assert_non_null(text);
        control_msg m;
        decode_ok(text, &m);
        assert_int_equal(m.kind, msgs[i].kind);
        assert_string_equal(m.instance, msgs[i].instance);
#define SAME(f)                                                                                    \
    do {                                                                                           \
        if (msgs[i].f)                                                                             \
            assert_string_equal(m.f, msgs[i].f);                                                   \
        else if (msgs[i].kind != CONTROL_PUT_MODE || strcmp(#f, "mode_name") != 0)                 \
            assert_null(m.f);                                                                      \
    } while (0)
        SAME(from);
        SAME(run_id);
        SAME(mode_name);
        SAME(session_id);
        SAME(item_id);
#undef SAME
        if (msgs[i].mode) assert_true(json_equal(m.mode, msgs[i].mode));
        char *again = control_encode(&m);
        assert_non_null(again);
        assert_string_equal(again, text);
        free(again);
        free(text);
        control_msg_cleanup(&m);
    }
    json_decref(mj);
}

/* Decodes text[0..len), which must fail with exactly want. */
static void check_bad_len(const char *text, size_t len, const char *want)
{
    control_msg m;
    memset(&m, 0xab, sizeof m);
    char err[200] = "";
    assert_int_equal(control_decode(text, len, &m, err, sizeof err), -1);
    assert_string_equal(err, want);
    assert_null(m.doc);
    assert_null(m.instance);
    control_msg_cleanup(&m);
}

static void check_bad(const char *text, const char *want)
{
    check_bad_len(text, strlen(text), want);
}

/* As check_bad_len for text that is not JSON: the message starts with
 * want, and jansson's own words follow, which vary between its versions. */
static void check_not_json(const char *text, size_t len)
{
    control_msg m;
    char err[200] = "";
    const char *want = "the control message is not JSON: ";
    assert_int_equal(control_decode(text, len, &m, err, sizeof err), -1);
    if (strncmp(err, want, strlen(want)) != 0 || strlen(err) == strlen(want)) fail_msg("%s", err);
    assert_null(m.doc);
}

static void test_decode_rejects_bad_input(void **state)
{
    (void)state;
    check_not_json("", 0);
    check_not_json("{\"instance\":", strlen("{\"instance\":"));
    check_not_json("{} x", 4);
    check_bad("[]", "the control message is not a JSON object");
    check_bad("{}", "the control message has no string \"action\"");
    check_bad("{\"action\":7,\"instance\":\"i\"}", "the control message has no string \"action\"");
    check_bad("{\"action\":\"stop\"}", "the control message has no string \"instance\"");
    check_bad("{\"action\":\"stop\",\"instance\":null}",
              "the control message has no string \"instance\"");
    check_bad("{\"action\":\"stop\",\"instance\":\"i\"}",
              "the control message has no string \"run_id\"");
    check_bad("{\"action\":\"stop\",\"instance\":\"i\",\"run_id\":[]}",
              "the control message has no string \"run_id\"");
    check_bad("{\"action\":\"mode\",\"instance\":\"i\",\"run_id\":\"r\"}",
              "the control message has no string \"mode\"");
    check_bad("{\"action\":\"mode\",\"instance\":\"i\",\"run_id\":\"r\",\"mode\":{}}",
              "the control message has no string \"mode\"");
    check_bad("{\"action\":\"put_mode\",\"instance\":\"*\",\"mode\":{\"name\":\"q\"}}",
              "the control message has no string \"from\"");
    check_bad("{\"action\":\"put_mode\",\"instance\":\"*\",\"from\":\"f\"}",
              "the control message's mode is not an object with a name");
    check_bad("{\"action\":\"put_mode\",\"instance\":\"*\",\"from\":\"f\",\"mode\":\"quick\"}",
              "the control message's mode is not an object with a name");
    check_bad("{\"action\":\"put_mode\",\"instance\":\"*\",\"from\":\"f\",\"mode\":{\"name\":1}}",
              "the control message's mode is not an object with a name");
    check_bad("{\"action\":\"session_deleted\",\"instance\":\"*\",\"session_id\":\"s\"}",
              "the control message has no string \"from\"");
    check_bad("{\"action\":\"session_deleted\",\"instance\":\"*\",\"from\":\"f\"}",
              "the control message has no string \"session_id\"");
    check_bad("{\"action\":\"approval_decided\",\"instance\":\"i\",\"approval_id\":\"a\"}",
              "the control message has no string \"run_id\"");
    check_bad("{\"action\":\"approval_decided\",\"instance\":\"i\",\"run_id\":\"r\","
              "\"input_id\":\"a\"}",
              "the control message has no string \"approval_id\"");
    check_bad("{\"action\":\"input_answered\",\"instance\":\"i\",\"run_id\":\"r\"}",
              "the control message has no string \"input_id\"");
    check_bad("{\"action\":\"restart\",\"instance\":\"*\"}",
              "the control message's action 'restart' is not one of stop, mode, put_mode, "
              "session_deleted, approval_decided, input_answered");
    /* An action is shown safely and briefly. */
    check_bad("{\"action\":\"a\\\"b\\nc d\",\"instance\":\"*\"}",
              "the control message's action 'a?b?c?d' is not one of stop, mode, put_mode, "
              "session_deleted, approval_decided, input_answered");
    check_bad("{\"action\":\"abcdefghijklmnopqrstuvwxyz0123456789\",\"instance\":\"*\"}",
              "the control message's action 'abcdefghijklmnopqrstuvwxyz012345…' is not one of "
              "stop, mode, put_mode, session_deleted, approval_decided, input_answered");
    /* A NUL inside a string, bytes that are not UTF-8, and a text cut short
     * (only len bytes are read). */
    const char *nul = "{\"action\":\"stop\",\"instance\":\"a\\u0000b\",\"run_id\":\"r\"}";
    check_not_json(nul, strlen(nul));
    const char *bad = "{\"action\":\"stop\",\"instance\":\"\xff\",\"run_id\":\"r\"}";
    check_not_json(bad, strlen(bad));
    const char *whole = "{\"instance\":\"i\",\"run_id\":\"r\",\"action\":\"stop\"}";
    check_not_json(whole, strlen(whole) - 1);
}

static void test_decode_size_cap(void **state)
{
    (void)state;
    /* A text of CONTROL_MAX bytes is read; one byte more is refused unread. */
    const char *head = "{\"instance\":\"i\",\"run_id\":\"r\",\"action\":\"stop\",\"pad\":\"";
    char *text = malloc(CONTROL_MAX + 2);
    size_t h = strlen(head);
    memcpy(text, head, h);
    memset(text + h, 'x', CONTROL_MAX - h - 2);
    memcpy(text + CONTROL_MAX - 2, "\"}", 3);
    assert_int_equal(strlen(text), CONTROL_MAX);
    control_msg m;
    decode_ok(text, &m);
    assert_int_equal(m.kind, CONTROL_STOP);
    control_msg_cleanup(&m);
    memcpy(text + CONTROL_MAX - 2, "x\"}", 4);
    char want[100];
    snprintf(want, sizeof want, "the control message is %d bytes, more than %d", CONTROL_MAX + 1,
             CONTROL_MAX);
    check_bad(text, want);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_wire_format),
        cmocka_unit_test(test_encode_refuses_what_cannot_be_sent),
        cmocka_unit_test(test_decode_each_kind),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_decode_rejects_bad_input),
        cmocka_unit_test(test_decode_size_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
