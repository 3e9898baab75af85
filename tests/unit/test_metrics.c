/* Unit tests for app/metrics: the Prometheus text exposition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "app/metrics.h"

static char *render(void)
{
    buf b;
    buf_init(&b, 1u << 20);
    assert_int_equal(metrics_render(&b), 0);
    size_t len;
    return buf_detach(&b, &len);
}

static void assert_has(const char *text, const char *line)
{
    if (!strstr(text, line)) fail_msg("missing: %s\nin:\n%s", line, text);
}

static void test_counters_and_gauges(void **state)
{
    (void)state;
    metrics_reset();
    metrics_run_started();
    metrics_run_started();
    metrics_run_stopped("completed");
    metrics_event("token");
    metrics_event("token");
    metrics_event("message");
    metrics_http_request(200);
    metrics_http_request(404);
    metrics_http_request(200);
    metrics_sse_subscribers_add(3);
    metrics_sse_subscribers_add(-1);
    metrics_llm_tokens(100, 20);
    char *t = render();
    assert_has(t, "# HELP chatplane_runs_active Runs going on now.\n"
                  "# TYPE chatplane_runs_active gauge\nchatplane_runs_active 1\n");
    assert_has(t, "# TYPE chatplane_runs_started_total counter\nchatplane_runs_started_total 2\n");
    assert_has(t, "chatplane_runs_stopped_total{reason=\"completed\"} 1\n");
    assert_has(t, "chatplane_runs_stopped_total{reason=\"max_steps\"} 0\n");
    assert_has(t, "chatplane_events_total{type=\"token\"} 2\n");
    assert_has(t, "chatplane_events_total{type=\"message\"} 1\n");
    assert_has(t, "chatplane_events_total{type=\"run_stopped\"} 0\n");
    assert_has(t, "chatplane_sse_subscribers 2\n");
    assert_has(t, "chatplane_http_requests_total{code=\"200\"} 2\n");
    assert_has(t, "chatplane_http_requests_total{code=\"404\"} 1\n");
    assert_has(t, "chatplane_llm_tokens_total{kind=\"prompt\"} 100\n");
    assert_has(t, "chatplane_llm_tokens_total{kind=\"completion\"} 20\n");
    assert_has(t, "chatplane_tool_calls_total{status=\"timeout\"} 0\n");
    free(t);
}

static void test_histograms(void **state)
{
    (void)state;
    metrics_reset();
    metrics_tool_call("ok", 0.004);
    metrics_tool_call("error", 0.3);
    metrics_tool_call("ok", 100);
    metrics_store_commit(0.002);
    char *t = render();
    assert_has(t, "# TYPE chatplane_tool_duration_seconds histogram\n"
                  "chatplane_tool_duration_seconds_bucket{le=\"0.005\"} 1\n"
                  "chatplane_tool_duration_seconds_bucket{le=\"0.01\"} 1\n");
    assert_has(t, "chatplane_tool_duration_seconds_bucket{le=\"0.25\"} 1\n"
                  "chatplane_tool_duration_seconds_bucket{le=\"0.5\"} 2\n");
    assert_has(t, "chatplane_tool_duration_seconds_bucket{le=\"60\"} 2\n"
                  "chatplane_tool_duration_seconds_bucket{le=\"+Inf\"} 3\n"
                  "chatplane_tool_duration_seconds_sum 100.304\n"
                  "chatplane_tool_duration_seconds_count 3\n");
    assert_has(t, "chatplane_tool_calls_total{status=\"ok\"} 2\n");
    assert_has(t, "chatplane_store_commit_seconds_bucket{le=\"0.001\"} 0\n"
                  "chatplane_store_commit_seconds_bucket{le=\"0.0025\"} 1\n");
    assert_has(t, "chatplane_llm_first_token_seconds_count 0\n");
    free(t);
}

static void test_label_table_is_capped(void **state)
{
    (void)state;
    metrics_reset();
    for (int i = 0; i < 200; i++) metrics_http_request(1000 + i);
    char *t = render();
    assert_has(t, "chatplane_http_requests_total{code=\"1062\"} 1\n");
    assert_has(t, "chatplane_http_requests_total{code=\"other\"} 137\n");
    assert_null(strstr(t, "code=\"1063\""));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_and_gauges),
        cmocka_unit_test(test_histograms),
        cmocka_unit_test(test_label_table_is_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
