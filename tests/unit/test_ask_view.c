/* Unit tests for cli/ask_view: the exact bytes of the json, plain and tty
 * views of `chatplane ask` for a given sequence of events. */
#define _GNU_SOURCE /* open_memstream under -std=c11 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/ask_view.h"

/* A captured stream: what a view wrote to it so far. */
typedef struct capture {
    FILE *f;
    char *data;
    size_t len;
} capture;

static void capture_open(capture *c)
{
    c->data = NULL;
    c->len = 0;
    c->f = open_memstream(&c->data, &c->len);
    assert_non_null(c->f);
}

static const char *capture_text(capture *c)
{
    fflush(c->f);
    return c->data;
}

static void capture_close(capture *c)
{
    fclose(c->f);
    free(c->data);
}

/* The test's monotonic clock. */
static int64_t fake_now;
static int64_t fake_clock(void)
{
    return fake_now;
}

typedef struct fixture {
    capture out, err;
    ask_view *v;
} fixture;

static void open_view(fixture *x, ask_view_kind kind, bool shared, bool utf8, bool color, int width)
{
    capture_open(&x->out);
    capture_open(&x->err);
    fake_now = 1000;
    ask_view_opts o = {.kind = kind,
                       .out = x->out.f,
                       .err = x->err.f,
                       .base = NULL,
                       .color = color,
                       .shared = shared,
                       .utf8 = utf8,
                       .width = width,
                       .now_ms = fake_clock};
    x->v = ask_view_new(&o);
}

static void close_view(fixture *x)
{
    ask_view_free(x->v);
    capture_close(&x->out);
    capture_close(&x->err);
}

/* Feeds one event of type with the given fields (JSON text) to the view. */
static void feed(fixture *x, evt_type type, const char *fields)
{
    json_error_t e;
    json_t *f = json_loads(fields, 0, &e);
    assert_non_null(f);
    evt_origin o = {"ses_1", "run_1", 0};
    evt *ev = evt_new(type, &o, f);
    ev->seq = 7;
    assert_int_equal(evt_encode(ev), 0);
    ask_view_event(x->v, ev);
    evt_unref(ev);
}

#define LIMITS                                                                                     \
    "{\"steps\":10,\"seconds\":120,\"tokens\":50000,\"tool_calls\":15,\"retries\":3,\"cost_usd\":" \
    "null}"
#define USAGE(steps, tools, tokens, secs)                                                          \
    "{\"steps\":" #steps ",\"seconds\":" #secs ",\"tokens\":" #tokens ",\"tool_calls\":" #tools    \
    ",\"retries\":0,\"cost_usd\":0.0}"

static void feed_started(fixture *x)
{
    feed(x, EVT_RUN_STARTED, "{\"mode\":\"standard\",\"limits\":" LIMITS ",\"continues\":null}");
}

static void feed_stopped(fixture *x)
{
    feed(x, EVT_RUN_STOPPED,
         "{\"reason\":\"completed\",\"detail\":\"answered in 2 steps with 1 tool call\","
         "\"recovery_suggestion\":\"Send a new message to go on.\",\"actions\":[],"
         "\"wrapped_up\":false,\"usage\":" USAGE(2, 1, 527, 1.25) "}");
}

static void test_json_prints_the_encoded_event(void **state)
{
    (void)state;
    fixture x;
    open_view(&x, ASK_VIEW_JSON, false, false, false, 80);
    feed(&x, EVT_STATUS, "{\"status\":\"thinking\",\"detail\":null}");
    assert_string_equal(capture_text(&x.out),
                        "{\"type\":\"status\",\"seq\":7,\"session_id\":\"ses_1\",\"run_id\":"
                        "\"run_1\",\"ts\":\"1970-01-01T00:00:00.000Z\",\"status\":\"thinking\","
                        "\"detail\":null}\n");
    ask_view_end(x.v);
    assert_string_equal(capture_text(&x.err), "");
    close_view(&x);
}

static void test_plain_lines(void **state)
{
    (void)state;
    fixture x;
    open_view(&x, ASK_VIEW_PLAIN, false, false, false, 80);
    feed_started(&x);
    feed(&x, EVT_STATUS, "{\"status\":\"responding\",\"detail\":null}");
    feed(&x, EVT_TOKEN, "{\"message_id\":\"m\",\"text\":\"Hel\"}");
    feed(&x, EVT_TOKEN, "{\"message_id\":\"m\",\"text\":\"lo\"}");
    feed(&x, EVT_STATUS, "{\"status\":\"tool_running\",\"detail\":\"running calc\"}");
    feed(&x, EVT_TOOL_FINISHED,
         "{\"execution_id\":\"e\",\"step\":1,\"server\":\"builtin\",\"tool\":\"calc\","
         "\"status\":\"error\",\"result\":\"\",\"truncated\":false,\"error\":\"division by "
         "zero\",\"duration_ms\":3}");
    feed(&x, EVT_BUDGET,
         "{\"limits\":" LIMITS ",\"usage\":" USAGE(1, 1, 238, 0.04) ",\"warnings\":[]}");
    feed(&x, EVT_GUARDRAIL,
         "{\"check\":\"loop\",\"action\":\"warn\",\"detail\":\"calc again\",\"evidence\":{}}");
    feed(&x, EVT_ERROR,
         "{\"code\":\"upstream\",\"message\":\"HTTP 503\\nbusy\",\"retryable\":true,"
         "\"message_id\":null}");
    feed(&x, EVT_REPAIR,
         "{\"playbook\":\"model_unavailable\",\"action\":\"fallback_model\",\"detail\":"
         "\"primary/a failed (HTTP 401): switching to fallback-1/b\",\"outcome\":\"ok\","
         "\"evidence\":{}}");
    feed_stopped(&x);
    ask_view_end(x.v);
    assert_string_equal(capture_text(&x.out), "Hello\n");
    assert_string_equal(
        capture_text(&x.err),
        "status: responding\n"
        "status: tool_running (running calc)\n"
        "tool: calc error 3ms: division by zero\n"
        "budget: steps 1/10, tokens 238/50000, tool_calls 1/15, retries 0/3, seconds 0.0\n"
        "guardrail: loop warn: calc again\n"
        "error: HTTP 503 busy (retrying)\n"
        "repair: fallback_model: primary/a failed (HTTP 401): switching to fallback-1/b\n"
        "stopped: completed: answered in 2 steps with 1 tool call\n"
        "suggestion: Send a new message to go on.\n");
    close_view(&x);
}

static void test_plain_end_closes_the_answer_line(void **state)
{
    (void)state;
    fixture x;
    open_view(&x, ASK_VIEW_PLAIN, false, false, false, 80);
    feed(&x, EVT_TOKEN, "{\"message_id\":\"m\",\"text\":\"line\\n\"}");
    ask_view_end(x.v);
    assert_string_equal(capture_text(&x.out), "line\n");
    close_view(&x);
}

#define STATUS_ASCII(what, secs, steps, tools, tokens)                                             \
    "\r| " what " | " secs "s/120s | steps " steps "/10 | tools " tools "/15 | tokens " tokens     \
    "/50000\033[K"

static void test_tty_status_line_and_spinner(void **state)
{
    (void)state;
    fixture x;
    open_view(&x, ASK_VIEW_TTY, false, false, false, 100);
    feed_started(&x);
    feed(&x, EVT_STATUS, "{\"status\":\"thinking\",\"detail\":null}");
    fake_now += 1250;
    ask_view_tick(x.v);
    feed(&x, EVT_STATUS, "{\"status\":\"retrying\",\"detail\":\"attempt 2 of 4, waiting 0.5 s\"}");
    assert_string_equal(capture_text(&x.err),
                        STATUS_ASCII("starting", "0.0", "0", "0", "0") STATUS_ASCII(
                            "thinking", "0.0", "0", "0",
                            "0") "\r/ thinking | 1.2s/120s | steps 0/10 | tools 0/15 | tokens "
                                 "0/50000\033[K"
                                 "\r/ retrying (attempt 2 of 4, waiting 0.5 s) | 1.2s/120s | "
                                 "steps 0/10 | tools 0/15 | tokens 0/50000\033[K");
    assert_string_equal(capture_text(&x.out), "");
    close_view(&x);
}

static void test_tty_status_line_is_cut_to_the_width(void **state)
{
    (void)state;
    fixture x;
    open_view(&x, ASK_VIEW_TTY, false, true, false, 30);
    feed(&x, EVT_STATUS, "{\"status\":\"thinking\",\"detail\":null}");
    /* 29 columns: the spinner, the words, and an ellipsis at the end. */
    assert_string_equal(capture_text(&x.err), "\r⠋ thinking · 0.0s · steps 0 …\033[K");
    close_view(&x);
}

static void test_tty_shared_terminal_keeps_the_answer_intact(void **state)
{
    (void)state;
    fixture x;
    open_view(&x, ASK_VIEW_TTY, true, false, false, 100);
    feed_started(&x);
    size_t before = strlen(capture_text(&x.err));
    /* A token clears the status line before its text. */
    feed(&x, EVT_TOKEN, "{\"message_id\":\"m\",\"text\":\"Hi \\u001b[2J there\"}");
    assert_string_equal(capture_text(&x.err) + before, "\r\033[K");
    before = strlen(capture_text(&x.err));
    /* Mid-line, neither the spinner nor a status change draws. */
    ask_view_tick(x.v);
    feed(&x, EVT_STATUS, "{\"status\":\"responding\",\"detail\":null}");
    assert_int_equal(strlen(capture_text(&x.err)), before);
    /* The message ends the line, and the status line comes back. */
    feed(&x, EVT_MESSAGE,
         "{\"message_id\":\"m\",\"role\":\"assistant\",\"content\":\"Hi there\","
         "\"tool_calls\":null,\"tool_call_id\":null,\"partial\":false}");
    assert_string_equal(capture_text(&x.out), "Hi ?[2J there\n");
    /* The spinner kept turning while hidden. */
    assert_string_equal(capture_text(&x.err) + before,
                        "\r/ responding | 0.0s/120s | steps 0/10 | tools 0/15 | tokens "
                        "0/50000\033[K");
    close_view(&x);
}

static void test_tty_permanent_lines(void **state)
{
    (void)state;
    fixture x;
    open_view(&x, ASK_VIEW_TTY, false, false, false, 200);
    feed_started(&x);
    size_t before = strlen(capture_text(&x.err));
    feed(&x, EVT_TOOL_STARTED,
         "{\"execution_id\":\"e1\",\"step\":1,\"server\":\"fake\",\"tool\":\"lookup\","
         "\"arguments\":{\"q\":\"x\"}}");
    feed(&x, EVT_TOOL_FINISHED,
         "{\"execution_id\":\"e1\",\"step\":1,\"server\":\"fake\",\"tool\":\"lookup\","
         "\"status\":\"timeout\",\"result\":\"\",\"truncated\":false,\"error\":\"timed out after "
         "60 s\",\"duration_ms\":60012}");
    feed(&x, EVT_GUARDRAIL,
         "{\"check\":\"repeated_failure\",\"action\":\"stop\",\"detail\":\"3 failures\","
         "\"evidence\":{}}");
    feed(&x, EVT_BUDGET,
         "{\"limits\":" LIMITS ",\"usage\":" USAGE(9, 2, 1200, 3.5) ",\"warnings\":[\"steps\"]}");
    feed(&x, EVT_BUDGET,
         "{\"limits\":" LIMITS ",\"usage\":" USAGE(9, 3, 1300, 3.6) ",\"warnings\":[\"steps\"]}");
    const char *s = STATUS_ASCII("starting", "0.0", "0", "0", "0");
    char *want;
    assert_true(asprintf(&want,
                         "\r\033[K"
                         "x fake/lookup timeout 60.0 s  {\"q\":\"x\"}: timed out after 60 s\n%s"
                         "\r\033[K"
                         "! guardrail repeated_failure stop: 3 failures\n%s"
                         "\r\033[K"
                         "! budget: steps past 80 %% (9 of 10)\n"
                         "%s%s%s",
                         s, s, STATUS_ASCII("starting", "0.0", "9", "2", "1200"),
                         STATUS_ASCII("starting", "0.0", "9", "2", "1200"),
                         STATUS_ASCII("starting", "0.0", "9", "3", "1300")) > 0);
    assert_string_equal(capture_text(&x.err) + before, want);
    free(want);
    close_view(&x);
}

static void test_tty_end_of_run(void **state)
{
    (void)state;
    fixture x;
    open_view(&x, ASK_VIEW_TTY, false, true, false, 100);
    feed_started(&x);
    size_t before = strlen(capture_text(&x.err));
    feed(&x, EVT_RUN_STOPPED,
         "{\"reason\":\"max_steps\",\"detail\":\"used 10 of 10 steps\","
         "\"recovery_suggestion\":\"Continue, or switch to deep.\",\"actions\":["
         "{\"kind\":\"continue\",\"label\":\"Continue\"},"
         "{\"kind\":\"switch_mode\",\"mode\":\"deep\",\"label\":\"Deep\"}],"
         "\"wrapped_up\":true,\"usage\":" USAGE(10, 4, 9000, 31.25) "}");
    ask_view_tick(x.v); /* nothing is drawn after the end */
    ask_view_end(x.v);
    assert_string_equal(capture_text(&x.err) + before,
                        "\r\033[K"
                        "■ max_steps: used 10 of 10 steps (wrapped up)\n"
                        "  31.2s/120s · steps 10/10 · tools 4/15 · tokens 9000/50000\n"
                        "→ Continue, or switch to deep.\n"
                        "  chatplane ask --session ses_1 --mode deep MESSAGE\n");
    close_view(&x);
}

static void test_tty_colours(void **state)
{
    (void)state;
    fixture x;
    open_view(&x, ASK_VIEW_TTY, false, true, true, 100);
    feed(&x, EVT_TOOL_FINISHED,
         "{\"execution_id\":\"e\",\"step\":1,\"server\":\"builtin\",\"tool\":\"calc\","
         "\"status\":\"ok\",\"result\":\"4\",\"truncated\":false,\"error\":null,"
         "\"duration_ms\":2}");
    assert_string_equal(capture_text(&x.err),
                        "\033[32m✓\033[0m \033[1mcalc\033[0m ok 2 ms\n"
                        "\r\033[36m⠋\033[0m \033[1mstarting\033[0m · 0.0s · steps 0 · tools 0 · "
                        "tokens 0\033[K");
    close_view(&x);
}

/* The stop line takes the colour of its reason's tone (core/stop.h):
 * green, none, yellow, red; a reason this version does not know is red. */
static void test_tty_stop_colours(void **state)
{
    (void)state;
    static const struct {
        const char *reason, *line;
    } cases[] = {
        {"completed", "\033[32m■\033[0m \033[32mcompleted\033[0m: d\n"},
        {"user_stopped", "■ user_stopped: d\n"},
        {"interrupted", "■ interrupted: d\n"},
        {"max_cost", "\033[33m■\033[0m \033[33mmax_cost\033[0m: d\n"},
        {"max_retries", "\033[31m■\033[0m \033[31mmax_retries\033[0m: d\n"},
        {"loop_detected", "\033[31m■\033[0m \033[31mloop_detected\033[0m: d\n"},
        {"llm_error", "\033[31m■\033[0m \033[31mllm_error\033[0m: d\n"},
        {"owner_budget", "\033[33m■\033[0m \033[33mowner_budget\033[0m: d\n"},
        {"future_reason", "\033[31m■\033[0m \033[31mfuture_reason\033[0m: d\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture x;
        open_view(&x, ASK_VIEW_TTY, false, true, true, 100);
        char fields[512];
        snprintf(fields, sizeof fields,
                 "{\"reason\":\"%s\",\"detail\":\"d\",\"recovery_suggestion\":\"\","
                 "\"actions\":[],\"wrapped_up\":false,\"usage\":" USAGE(1, 0, 9, 0.5) "}",
                 cases[i].reason);
        feed(&x, EVT_RUN_STOPPED, fields);
        const char *err = capture_text(&x.err);
        const char *line = strstr(err, "\r\033[K") ? strstr(err, "\r\033[K") + 4 : err;
        if (strncmp(line, cases[i].line, strlen(cases[i].line)) != 0)
            fail_msg("%s: got \"%s\"", cases[i].reason, line);
        ask_view_end(x.v);
        close_view(&x);
    }
}

static void test_tty_interrupt_note(void **state)
{
    (void)state;
    fixture x;
    open_view(&x, ASK_VIEW_TTY, false, false, false, 100);
    ask_view_interrupted(x.v);
    ask_view_end(x.v);
    assert_string_equal(capture_text(&x.err),
                        "stopping; press Ctrl-C again to quit at once\n"
                        "\r| starting | 0.0s | steps 0 | tools 0 | tokens 0\033[K"
                        "\r\033[K");
    close_view(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_prints_the_encoded_event),
        cmocka_unit_test(test_plain_lines),
        cmocka_unit_test(test_plain_end_closes_the_answer_line),
        cmocka_unit_test(test_tty_status_line_and_spinner),
        cmocka_unit_test(test_tty_status_line_is_cut_to_the_width),
        cmocka_unit_test(test_tty_shared_terminal_keeps_the_answer_intact),
        cmocka_unit_test(test_tty_permanent_lines),
        cmocka_unit_test(test_tty_end_of_run),
        cmocka_unit_test(test_tty_colours),
        cmocka_unit_test(test_tty_stop_colours),
        cmocka_unit_test(test_tty_interrupt_note),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
