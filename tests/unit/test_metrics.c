/* Unit tests for lib/metrics (the registry and its Prometheus text) and for
 * the families the server registers (app/server.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "app/server.h"
#include "lib/metrics.h"

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
    metrics_family *c = metrics_counter_new("t_plain_total", "Plain.", NULL);
    metrics_family *l = metrics_counter_new("t_labelled_total", "Labelled.", "code");
    metrics_family *g = metrics_gauge_new("t_gauge", "A gauge.");
    metrics_reset();
    metrics_seed(l, "500");
    metrics_add(c, NULL, 1);
    metrics_add(c, NULL, 1);
    metrics_add(l, "200", 1);
    metrics_add(l, "404", 1);
    metrics_add(l, "200", 1);
    metrics_add(l, NULL, 1);
    metrics_add(g, NULL, 3);
    metrics_add(g, NULL, -1);
    char *t = render();
    assert_has(t, "# HELP t_plain_total Plain.\n# TYPE t_plain_total counter\nt_plain_total 2\n");
    assert_has(t, "# TYPE t_labelled_total counter\n"
                  "t_labelled_total{code=\"500\"} 0\n"
                  "t_labelled_total{code=\"200\"} 2\n"
                  "t_labelled_total{code=\"404\"} 1\n"
                  "t_labelled_total{code=\"unknown\"} 1\n");
    assert_has(t, "# TYPE t_gauge gauge\nt_gauge 2\n");
    free(t);
    /* A gauge never goes below zero; a reset keeps only seeded series. */
    metrics_add(g, NULL, -5);
    metrics_reset();
    t = render();
    assert_has(t, "t_gauge 0\n");
    assert_has(t, "t_labelled_total{code=\"500\"} 0\n# HELP");
    assert_null(strstr(t, "code=\"200\""));
    free(t);
}

static void test_two_labels_and_labelled_gauges(void **state)
{
    (void)state;
    metrics_family *c = metrics_counter_new("t_two_total", "Two labels.", "action,outcome");
    metrics_family *g = metrics_gauge_labelled_new("t_open", "Labelled gauge.", "provider");
    metrics_reset();
    metrics_seed(c, "condense_context,ok");
    metrics_add(c, "fallback_model,ok", 2);
    metrics_add(c, "lonely", 1); /* no second value: rendered as other */
    metrics_seed(g, "primary");
    metrics_add(g, "backup", 1);
    metrics_add(g, "backup", -3);
    metrics_add(g, "primary", 1);
    char *t = render();
    assert_has(t, "# TYPE t_two_total counter\n"
                  "t_two_total{action=\"condense_context\",outcome=\"ok\"} 0\n"
                  "t_two_total{action=\"fallback_model\",outcome=\"ok\"} 2\n"
                  "t_two_total{action=\"lonely\",outcome=\"other\"} 1\n");
    assert_has(t, "# TYPE t_open gauge\n"
                  "t_open{provider=\"primary\"} 1\n"
                  "t_open{provider=\"backup\"} 0\n");
    free(t);
}

/* A gauge of several labels is set, not added to, and names each label;
 * the overflow series "other" fills every label. */
static void test_gauge_of_several_labels(void **state)
{
    (void)state;
    metrics_family *g = metrics_gauge_labelled_new("t_used", "Used.", "owner,dimension,period");
    metrics_reset();
    metrics_set(g, "alice,tokens,day", 120);
    metrics_set(g, "alice,cost_usd,week", 0.25);
    metrics_set(g, "alice,tokens,day", 300);
    metrics_set(g, "bob,tokens,month", -4);
    char *t = render();
    assert_has(t, "# TYPE t_used gauge\n"
                  "t_used{owner=\"alice\",dimension=\"tokens\",period=\"day\"} 300\n"
                  "t_used{owner=\"alice\",dimension=\"cost_usd\",period=\"week\"} 0.25\n"
                  "t_used{owner=\"bob\",dimension=\"tokens\",period=\"month\"} 0\n");
    free(t);
    for (int i = 0; i < METRICS_LABELS_MAX + 2; i++) {
        char v[32];
        snprintf(v, sizeof v, "o%d,tokens,day", i);
        metrics_set(g, v, 1);
    }
    t = render();
    assert_has(t, "t_used{owner=\"other\",dimension=\"other\",period=\"other\"} 1\n");
    free(t);
    metrics_reset();
}

static void test_histograms(void **state)
{
    (void)state;
    static const double bounds[] = {0.005, 0.01, 0.25, 0.5, 60};
    metrics_family *h = metrics_histogram_new("t_seconds", "Durations.", bounds, 5);
    metrics_reset();
    metrics_observe(h, 0.004);
    metrics_observe(h, 0.3);
    metrics_observe(h, 100);
    metrics_add(h, NULL, 1); /* not a counter: ignored */
    char *t = render();
    assert_has(t, "# HELP t_seconds Durations.\n# TYPE t_seconds histogram\n"
                  "t_seconds_bucket{le=\"0.005\"} 1\n"
                  "t_seconds_bucket{le=\"0.01\"} 1\n"
                  "t_seconds_bucket{le=\"0.25\"} 1\n"
                  "t_seconds_bucket{le=\"0.5\"} 2\n"
                  "t_seconds_bucket{le=\"60\"} 2\n"
                  "t_seconds_bucket{le=\"+Inf\"} 3\n"
                  "t_seconds_sum 100.304\n"
                  "t_seconds_count 3\n");
    free(t);
}

static void test_histogram_quantiles(void **state)
{
    (void)state;
    static const double bounds[] = {0.001, 0.01, 0.1};
    metrics_family *h = metrics_histogram_new("t_q_seconds", "Quantiles.", bounds, 3);
    metrics_reset();
    assert_true(metrics_histogram_quantile(h, 0.99) == -1);
    assert_true(metrics_histogram_quantile(NULL, 0.5) == -1);
    /* 100 observations: 50 below 1 ms, 40 up to 10 ms, 10 up to 100 ms. */
    for (int i = 0; i < 50; i++) metrics_observe(h, 0.0005);
    for (int i = 0; i < 40; i++) metrics_observe(h, 0.005);
    for (int i = 0; i < 10; i++) metrics_observe(h, 0.05);
    /* Rank 50 ends the first bucket; rank 70 is half way through the
     * second; rank 99 is nine tenths into the third. */
    assert_true(metrics_histogram_quantile(h, 0.5) == 0.001);
    assert_float_equal(metrics_histogram_quantile(h, 0.7), 0.0055, 1e-12);
    assert_float_equal(metrics_histogram_quantile(h, 0.99), 0.091, 1e-12);
    /* A rank past the last bound gives the last bound. */
    metrics_observe(h, 5);
    metrics_observe(h, 5);
    assert_true(metrics_histogram_quantile(h, 1.0) == 0.1);
    metrics_family *c = metrics_counter_new("t_q_total", "Not a histogram.", NULL);
    assert_true(metrics_histogram_quantile(c, 0.5) == -1);
}

static void test_label_table_is_capped(void **state)
{
    (void)state;
    metrics_family *l = metrics_counter_new("t_many_total", "Many.", "v");
    metrics_reset();
    char v[16];
    for (int i = 0; i < 200; i++) {
        snprintf(v, sizeof v, "%d", 1000 + i);
        metrics_add(l, v, 1);
    }
    char *t = render();
    assert_has(t, "t_many_total{v=\"1062\"} 1\n");
    assert_has(t, "t_many_total{v=\"other\"} 137\n");
    assert_null(strstr(t, "v=\"1063\""));
    free(t);
}

static void test_same_name_same_family_and_null_is_inert(void **state)
{
    (void)state;
    metrics_family *a = metrics_counter_new("t_shared_total", "Shared.", NULL);
    assert_ptr_equal(metrics_counter_new("t_shared_total", "Shared.", NULL), a);
    metrics_add(NULL, "x", 1);
    metrics_observe(NULL, 1);
    metrics_seed(NULL, "x");
}

/* The server's families, in the order /metrics shows them, seeded. */
static void test_server_families(void **state)
{
    (void)state;
    server_metrics_register();
    server_metrics_register();
    metrics_reset();
    char *t = render();
    static const char *const order[] = {
        "chatplane_runs_active 0\n",
        "chatplane_runs_started_total 0\n",
        "chatplane_runs_stopped_total{reason=\"max_steps\"} 0\n",
        "chatplane_events_total{type=\"run_stopped\"} 0\n",
        "chatplane_sse_subscribers 0\n",
        "chatplane_tool_calls_total{status=\"timeout\"} 0\n",
        "chatplane_tool_duration_seconds_bucket{le=\"0.005\"} 0\n",
        "chatplane_llm_first_token_seconds_count 0\n",
        "chatplane_llm_tokens_total{kind=\"prompt\"} 0\n"
        "chatplane_llm_tokens_total{kind=\"completion\"} 0\n",
        "chatplane_store_commit_seconds_bucket{le=\"0.0005\"} 0\n",
        "# TYPE chatplane_http_requests_total counter\n",
    };
    const char *at = t;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *p = strstr(at, order[i]);
        if (!p) fail_msg("missing or out of order: %s\nin:\n%s", order[i], t);
        at = p;
    }
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_and_gauges),
        cmocka_unit_test(test_two_labels_and_labelled_gauges),
        cmocka_unit_test(test_gauge_of_several_labels),
        cmocka_unit_test(test_histograms),
        cmocka_unit_test(test_histogram_quantiles),
        cmocka_unit_test(test_label_table_is_capped),
        cmocka_unit_test(test_same_name_same_family_and_null_is_inert),
        cmocka_unit_test(test_server_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
