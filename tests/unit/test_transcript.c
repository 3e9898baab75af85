/* Unit tests for core/transcript: a session's export as Markdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/transcript.h"

static const char *const EXPORT =
    "{\"session\": {\"id\": \"ses_1\", \"title\": \"Sums\", \"mode\": \"quick\", \"created_at\": "
    "\"2026-12-03T10:02:00.123Z\"},"
    " \"messages\": ["
    "  {\"id\": \"m1\", \"run_id\": \"run_1\", \"role\": \"user\", \"content\": \"what is 6*7?\", "
    "\"tool_calls\": null, \"tool_call_id\": null, \"partial\": false, \"created_at\": "
    "\"2026-12-03T10:02:01.000Z\"},"
    "  {\"id\": \"m2\", \"run_id\": \"run_1\", \"role\": \"assistant\", \"content\": \"\", "
    "\"tool_calls\": [{\"id\": \"call_1\", \"type\": \"function\", \"function\": {\"name\": "
    "\"calc\", \"arguments\": \"{\\\"expression\\\":\\\"6*7\\\"}\"}}], \"tool_call_id\": null, "
    "\"partial\": false, \"created_at\": \"2026-12-03T10:02:02.000Z\"},"
    "  {\"id\": \"m3\", \"run_id\": \"run_1\", \"role\": \"tool\", \"content\": \"42\", "
    "\"tool_calls\": null, \"tool_call_id\": \"call_1\", \"partial\": false, \"created_at\": "
    "\"2026-12-03T10:02:02.100Z\"},"
    "  {\"id\": \"m4\", \"run_id\": \"run_1\", \"role\": \"assistant\", \"content\": \"It is "
    "**42**.\", \"tool_calls\": null, \"tool_call_id\": null, \"partial\": false, \"created_at\": "
    "\"2026-12-03T10:02:03.000Z\"},"
    "  {\"id\": \"m5\", \"run_id\": \"run_2\", \"role\": \"user\", \"content\": \"and in "
    "code?\", \"tool_calls\": null, \"tool_call_id\": null, \"partial\": false, \"created_at\": "
    "\"2026-12-03T10:03:00.000Z\"},"
    "  {\"id\": \"m6\", \"run_id\": \"run_2\", \"role\": \"assistant\", \"content\": "
    "\"```\\nx = 6*7\\n```\", \"tool_calls\": null, \"tool_call_id\": null, \"partial\": true, "
    "\"created_at\": \"2026-12-03T10:03:01.000Z\"}],"
    " \"runs\": ["
    "  {\"id\": \"run_1\", \"mode\": \"quick\", \"stop_reason\": \"completed\", \"stop_detail\": "
    "\"answered in 2 steps with 1 tool call\"},"
    "  {\"id\": \"run_2\", \"mode\": \"quick\", \"stop_reason\": \"user_stopped\", "
    "\"stop_detail\": null}],"
    " \"tool_executions\": ["
    "  {\"id\": \"exe_1\", \"run_id\": \"run_1\", \"tool\": \"calc\", \"server\": \"builtin\", "
    "\"status\": \"ok\", \"duration_ms\": 3}]}";

static void test_a_session_as_markdown(void **state)
{
    (void)state;
    json_t *e = json_loads(EXPORT, 0, NULL);
    assert_non_null(e);
    char *md = transcript_markdown(e);
    assert_string_equal(md,
                        "# Sums\n\n"
                        "Session `ses_1`, mode quick, started 2026-12-03 10:02 UTC.\n\n"
                        "## User · 2026-12-03 10:02 UTC\n\n"
                        "what is 6*7?\n\n"
                        "## Assistant · 2026-12-03 10:02 UTC\n\n"
                        "**Tool call** `calc` (`call_1`)\n\n"
                        "```json\n{\"expression\":\"6*7\"}\n```\n\n"
                        "**Tool result** (`call_1`)\n\n"
                        "```\n42\n```\n\n"
                        "## Assistant · 2026-12-03 10:02 UTC\n\n"
                        "It is **42**.\n\n"
                        "*Run run_1 (quick mode) stopped: completed — answered in 2 steps with 1 "
                        "tool call*\n\n"
                        "| tool | server | status | ms |\n|---|---|---|---|\n"
                        "| calc | builtin | ok | 3 |\n\n"
                        "## User · 2026-12-03 10:03 UTC\n\n"
                        "and in code?\n\n"
                        "## Assistant · 2026-12-03 10:03 UTC (cut short)\n\n"
                        "```\nx = 6*7\n```\n\n"
                        "*Run run_2 (quick mode) stopped: user_stopped*\n\n");
    free(md);
    json_decref(e);
}

static void test_a_fence_outlasts_the_backticks_inside(void **state)
{
    (void)state;
    json_t *e = json_loads(
        "{\"session\": {\"id\": \"s\", \"title\": \"T\", \"mode\": \"quick\", \"created_at\": "
        "\"x\"}, \"messages\": [{\"run_id\": \"r\", \"role\": \"tool\", \"content\": \"a ```` b\", "
        "\"tool_call_id\": \"c\"}], \"runs\": [], \"tool_executions\": []}",
        0, NULL);
    char *md = transcript_markdown(e);
    assert_string_equal(md, "# T\n\nSession `s`, mode quick, started x.\n\n"
                            "**Tool result** (`c`)\n\n`````\na ```` b\n`````\n\n");
    free(md);
    json_decref(e);
}

static void test_not_an_export(void **state)
{
    (void)state;
    json_t *e = json_loads("{\"session\": {}, \"messages\": []}", 0, NULL);
    assert_null(transcript_markdown(e));
    assert_null(transcript_markdown(NULL));
    json_decref(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_session_as_markdown),
        cmocka_unit_test(test_a_fence_outlasts_the_backticks_inside),
        cmocka_unit_test(test_not_an_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
