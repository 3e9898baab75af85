/* Unit tests for core/diagnosis: one playbook per cause, the summary a
 * person reads and the evidence behind it (docs/runs.md, Diagnosis). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/diagnosis.h"

/* The diagnosis as compact JSON text with sorted keys, freed by the caller. */
static char *diag_text(const diagnosis_facts *f)
{
    json_t *d = diagnosis_build(f);
    if (!d) return NULL;
    char *s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(d);
    return s;
}

static void expect(const diagnosis_facts *f, const char *want)
{
    char *got = diag_text(f);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_no_diagnosis_for_an_answer_or_a_stop_by_the_person(void **state)
{
    (void)state;
    diagnosis_facts f = {.reason = STOP_COMPLETED};
    assert_null(diagnosis_build(&f));
    assert_null(diagnosis_playbook(&f));
    f.reason = STOP_USER_STOPPED;
    assert_null(diagnosis_build(&f));
    assert_null(diagnosis_action(&f));
}

static void test_model_auth(void **state)
{
    (void)state;
    diagnosis_facts f = {.reason = STOP_LLM_ERROR,
                         .provider = "primary",
                         .model = "gpt-4o-mini",
                         .http_status = 401,
                         .error_code = "invalid_api_key",
                         .error_text = "HTTP 401: Incorrect API key provided",
                         .attempts = 1};
    expect(&f, "{\"evidence\":{\"attempts\":1,\"error\":\"HTTP 401: Incorrect API key provided\","
               "\"error_code\":\"invalid_api_key\",\"http_status\":401,\"model\":\"gpt-4o-mini\","
               "\"provider\":\"primary\"},\"playbook\":\"model_auth\",\"summary\":\"The model "
               "endpoint rejected the API key (HTTP 401)\"}");
    f.http_status = 403;
    assert_string_equal(diagnosis_playbook(&f), "model_auth");
}

static void test_model_quota(void **state)
{
    (void)state;
    diagnosis_facts f = {.reason = STOP_LLM_ERROR,
                         .http_status = 429,
                         .error_code = "insufficient_quota",
                         .error_text = "HTTP 429: quota"};
    expect(&f, "{\"evidence\":{\"error\":\"HTTP 429: quota\",\"error_code\":\"insufficient_quota\","
               "\"http_status\":429},\"playbook\":\"model_quota\",\"summary\":\"The model account "
               "is out of quota (insufficient_quota)\"}");
    /* Rate limited until the retries ran out. */
    diagnosis_facts g = {.reason = STOP_MAX_RETRIES,
                         .http_status = 429,
                         .attempts = 4,
                         .error_text = "HTTP 429: slow down"};
    expect(&g,
           "{\"evidence\":{\"attempts\":4,\"error\":\"HTTP 429: slow down\",\"http_status\":429},"
           "\"playbook\":\"model_quota\",\"summary\":\"The model endpoint kept answering HTTP "
           "429 (too many requests) until the retries were spent\"}");
}

static void test_model_down(void **state)
{
    (void)state;
    diagnosis_facts f = {.reason = STOP_MAX_RETRIES,
                         .attempts = 4,
                         .error_text = "could not connect to 127.0.0.1:9: Connection refused"};
    expect(&f, "{\"evidence\":{\"attempts\":4,\"error\":\"could not connect to 127.0.0.1:9: "
               "Connection refused\",\"http_status\":null},\"playbook\":\"model_down\",\"summary\":"
               "\"The model endpoint could not be reached until the retries were spent: could not "
               "connect to 127.0.0.1:9: Connection refused\"}");
    diagnosis_facts g = {.reason = STOP_MAX_RETRIES, .http_status = 503, .error_text = "HTTP 503"};
    expect(&g, "{\"evidence\":{\"error\":\"HTTP 503\",\"http_status\":503},\"playbook\":"
               "\"model_down\",\"summary\":\"The model endpoint kept failing (HTTP 503) until the "
               "retries were spent: HTTP 503\"}");
    /* A stream cut off after its first token, not retryable: still down. */
    diagnosis_facts h = {.reason = STOP_LLM_ERROR, .http_status = 200};
    assert_string_equal(diagnosis_playbook(&h), "model_down");
    char *s = diag_text(&h);
    assert_non_null(
        strstr(s, "\"summary\":\"The model endpoint kept failing (HTTP 200): no error text\""));
    free(s);
}

static void test_model_rejected_and_context_overflow(void **state)
{
    (void)state;
    diagnosis_facts f = {.reason = STOP_LLM_ERROR,
                         .http_status = 404,
                         .error_code = "model_not_found",
                         .error_text = "The model `gpt-9` does not exist"};
    expect(&f, "{\"evidence\":{\"error\":\"The model `gpt-9` does not exist\",\"error_code\":"
               "\"model_not_found\",\"http_status\":404},\"playbook\":\"model_rejected\","
               "\"summary\":\"The model endpoint refused the request (HTTP 404): The model `gpt-9` "
               "does not exist\"}");
    f.http_status = 400;
    assert_string_equal(diagnosis_playbook(&f), "model_rejected");
    /* An overflow is its own cause whatever the status says. */
    f.context_overflow = true;
    assert_string_equal(diagnosis_playbook(&f), "context_overflow");
    char *s = diag_text(&f);
    assert_non_null(
        strstr(s, "\"summary\":\"The conversation no longer fits the model's context window\""));
    free(s);
}

static void test_tool_server_down_offers_a_restart(void **state)
{
    (void)state;
    json_t *calls = json_pack("{s:s, s:i}", "tool", "files__read_file", "count", 3);
    diagnosis_facts f = {.reason = STOP_REPEATED_FAILURES,
                         .detail = "files__read_file failed 3 times in a row",
                         .guard_evidence = calls,
                         .server = "files",
                         .server_down_since_ms = 1796292120000, /* 2026-12-03 10:02 UTC */
                         .server_error = "spawn failed: ENOENT"};
    expect(&f,
           "{\"evidence\":{\"calls\":{\"count\":3,\"tool\":\"files__read_file\"},"
           "\"down_since_ms\":1796292120000,\"error\":\"spawn failed: ENOENT\",\"server\":"
           "\"files\"},\"playbook\":\"tool_server_down\",\"summary\":\"files has been down since "
           "2026-12-03 10:02 UTC: spawn failed: ENOENT\"}");
    json_t *a = diagnosis_action(&f);
    char *s = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"kind\":\"restart_tool_server\",\"label\":\"Restart files\","
                           "\"server\":\"files\"}");
    free(s);
    json_decref(a);
    /* The same failures with the server up: the tools fail, nothing to restart. */
    f.server = NULL;
    expect(&f, "{\"evidence\":{\"count\":3,\"tool\":\"files__read_file\"},\"playbook\":"
               "\"tools_failing\",\"summary\":\"A tool kept failing: files__read_file failed 3 "
               "times in a row\"}");
    assert_null(diagnosis_action(&f));
    json_decref(calls);
}

static void test_guardrails_and_the_rest(void **state)
{
    (void)state;
    json_t *ev = json_pack("{s:s, s:i}", "tool", "calc", "count", 3);
    diagnosis_facts f = {.reason = STOP_LOOP_DETECTED,
                         .detail = "calc was called 3 times with the same arguments",
                         .guard_evidence = ev};
    expect(&f,
           "{\"evidence\":{\"count\":3,\"tool\":\"calc\"},\"playbook\":\"loop\",\"summary\":"
           "\"The model was repeating the same tool call: calc was called 3 times with the same "
           "arguments\"}");
    json_decref(ev);
    diagnosis_facts g = {.reason = STOP_NO_PROGRESS,
                         .detail = "the model returned 3 empty turns in a row"};
    expect(&g, "{\"evidence\":{},\"playbook\":\"no_progress\",\"summary\":\"The run stopped "
               "making progress: the model returned 3 empty turns in a row\"}");
    diagnosis_facts h = {.reason = STOP_APPROVAL_TIMEOUT};
    expect(&h, "{\"evidence\":{},\"playbook\":\"approval_timeout\",\"summary\":\"Nobody answered "
               "an approval in time\"}");
    json_t *budget = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:s}", "owner", "alice", "dimension",
                               "tokens", "period", "day", "limit", 2000, "used", 1990, "reserved",
                               0, "resets_at", "2026-12-04T00:00:00.000Z");
    diagnosis_facts o = {.reason = STOP_OWNER_BUDGET,
                         .detail = "alice used 1990 of 2000 tokens this day; it resets at "
                                   "2026-12-04T00:00:00Z",
                         .guard_evidence = budget};
    expect(&o, "{\"evidence\":{\"dimension\":\"tokens\",\"limit\":2000,\"owner\":\"alice\","
               "\"period\":\"day\",\"reserved\":0,\"resets_at\":\"2026-12-04T00:00:00.000Z\","
               "\"used\":1990},\"playbook\":\"owner_budget\",\"summary\":\"The owner's budget "
               "for the period is used up: alice used 1990 of 2000 tokens this day; it resets at "
               "2026-12-04T00:00:00Z\"}");
    json_decref(budget);
    diagnosis_facts i = {.reason = STOP_INTERRUPTED,
                         .detail = "the server stopped while the run was going"};
    expect(&i, "{\"evidence\":{\"detail\":\"the server stopped while the run was going\"},"
               "\"playbook\":\"interrupted\",\"summary\":\"The server stopped or restarted while "
               "the run was working\"}");
}

static void test_budget_names_its_dimension(void **state)
{
    (void)state;
    static const struct {
        stop_reason r;
        const char *dimension;
    } cases[] = {{STOP_MAX_STEPS, "steps"},
                 {STOP_MAX_SECONDS, "seconds"},
                 {STOP_MAX_TOKENS, "tokens"},
                 {STOP_MAX_TOOL_CALLS, "tool_calls"},
                 {STOP_MAX_COST, "cost"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        diagnosis_facts f = {.reason = cases[k].r, .mode = "quick", .detail = "used 3 of 3 steps"};
        json_t *d = diagnosis_build(&f);
        assert_string_equal(json_string_value(json_object_get(d, "playbook")), "budget");
        assert_string_equal(json_string_value(json_object_get(d, "summary")),
                            "The run used up its budget: used 3 of 3 steps");
        json_t *e = json_object_get(d, "evidence");
        assert_string_equal(json_string_value(json_object_get(e, "dimension")), cases[k].dimension);
        assert_string_equal(json_string_value(json_object_get(e, "mode")), "quick");
        json_decref(d);
    }
    /* max_retries is the model's failure, not a budget the person set. */
    diagnosis_facts r = {.reason = STOP_MAX_RETRIES, .http_status = 502};
    assert_string_equal(diagnosis_playbook(&r), "model_down");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_diagnosis_for_an_answer_or_a_stop_by_the_person),
        cmocka_unit_test(test_model_auth),
        cmocka_unit_test(test_model_quota),
        cmocka_unit_test(test_model_down),
        cmocka_unit_test(test_model_rejected_and_context_overflow),
        cmocka_unit_test(test_tool_server_down_offers_a_restart),
        cmocka_unit_test(test_guardrails_and_the_rest),
        cmocka_unit_test(test_budget_names_its_dimension),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
