/*
 * Unit tests for engine/mcp_stdio, the stdio transport, against small
 * shell children: messages both ways, the order of on_eof and on_closed and
 * what on_closed says, a close from inside on_frame, an over-long line,
 * start failures, and the shutdown of several children in one wait.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "engine/mcp.h"
#include "engine/mcp_stdio.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* What the transport reported, in order, as one string. */
typedef struct seen {
    mcp_transport *t;
    char log[4096];
    int frames, eofs, closes, toobigs;
    bool close_on_frame;
} seen;

static void note(seen *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(seen *s, const char *fmt, ...)
{
    size_t used = strlen(s->log);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->log + used, sizeof s->log - used, fmt, ap);
    va_end(ap);
}

static void on_frame(void *ud, const char *data, size_t len)
{
    seen *s = ud;
    assert_int_equal(strlen(data), len);
    s->frames++;
    note(s, "frame %s;", data);
    if (s->close_on_frame) mcp_transport_close(s->t);
}

static void on_toobig(void *ud, size_t len, size_t max, int64_t id)
{
    seen *s = ud;
    s->toobigs++;
    note(s, "toobig %zu %zu %lld;", len, max, (long long)id);
}

static void on_eof(void *ud)
{
    seen *s = ud;
    s->eofs++;
    note(s, "eof;");
}

static void on_closed(void *ud, const char *how)
{
    seen *s = ud;
    s->closes++;
    note(s, "closed %s;", how);
}

typedef struct fixture {
    struct event_base *base;
    mcp_stdio_reaper *reaper;
} fixture;

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    f->base = event_base_new();
    f->reaper = mcp_stdio_reaper_new(f->base);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    mcp_stdio_reaper_release(f->reaper);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* A transport running `sh -c script`, reporting to s. */
static mcp_transport *new_sh(fixture *f, const char *script, seen *s)
{
    char *args[] = {"sh", "-c", (char *)script, NULL};
    char *env[] = {NULL};
    mcp_server_config cfg = {.name = "t", .command = "sh", .args = args, .env = env};
    mcp_transport *t = mcp_stdio_new(f->base, &cfg, f->reaper);
    t->name = "t";
    t->cb = (mcp_transport_callbacks){
        .on_frame = on_frame, .on_toobig = on_toobig, .on_eof = on_eof, .on_closed = on_closed};
    t->ud = s;
    s->t = t;
    return t;
}

static void wait_for(fixture *f, const int *counter, int want, int ms)
{
    int64_t end = clock_mono_ms() + ms;
    while (*counter < want && clock_mono_ms() < end) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
    }
}

static void test_messages_both_ways_then_exit_status(void **state)
{
    fixture *f = *state;
    seen s = {0};
    mcp_transport *t =
        new_sh(f, "read l; echo \"got $l\"; printf '\\n\\r\\n{\"b\":2}\\n'; exit 3", &s);
    char err[256] = "";
    assert_int_equal(mcp_transport_start(t, err, sizeof err), 0);
    assert_memory_equal(t->peer, "pid=", 4);
    assert_int_equal(mcp_transport_send(t, "{\"a\":1}\n", 8), 0);
    wait_for(f, &s.closes, 1, 5000);
    assert_string_equal(s.log, "frame got {\"a\":1};frame {\"b\":2};eof;closed exited (status 3);");
    mcp_transport_close(t);
    assert_string_equal(t->peer, "");
    /* Closed: nothing more goes out. */
    assert_int_equal(mcp_transport_send(t, "{}\n", 3), -1);
    mcp_transport_free(t);
}

static void test_restart_on_the_same_transport(void **state)
{
    fixture *f = *state;
    seen s = {0};
    mcp_transport *t = new_sh(f, "echo '{\"n\":1}'", &s);
    char err[256] = "";
    for (int round = 1; round <= 2; round++) {
        assert_int_equal(mcp_transport_start(t, err, sizeof err), 0);
        wait_for(f, &s.closes, round, 5000);
        mcp_transport_close(t);
    }
    assert_string_equal(s.log, "frame {\"n\":1};eof;closed exited (status 0);"
                               "frame {\"n\":1};eof;closed exited (status 0);");
    mcp_transport_free(t);
}

/* A close from inside on_frame ends the delivery of the bytes already
 * read, and nothing of that connection calls back later. */
static void test_close_inside_a_frame_is_the_last_callback(void **state)
{
    fixture *f = *state;
    seen s = {.close_on_frame = true};
    mcp_transport *t = new_sh(f, "printf '{\"a\":1}\\n{\"b\":2}\\n'; exec sleep 30", &s);
    char err[256] = "";
    assert_int_equal(mcp_transport_start(t, err, sizeof err), 0);
    wait_for(f, &s.frames, 1, 5000);
    int never = 0;
    wait_for(f, &never, 1, 200);
    assert_string_equal(s.log, "frame {\"a\":1};");
    mcp_transport_free(t);
}

static void test_overlong_line_is_reported_with_its_id(void **state)
{
    fixture *f = *state;
    seen s = {0};
    mcp_transport *t = new_sh(f,
                              "printf '{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":\"'; "
                              "head -c 4200000 /dev/zero | tr '\\0' x; printf '\"}\\n{}\\n'",
                              &s);
    char err[256] = "";
    assert_int_equal(mcp_transport_start(t, err, sizeof err), 0);
    wait_for(f, &s.closes, 1, 10000);
    char want[256];
    size_t len = strlen("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":\"") + 4200000 + strlen("\"}");
    snprintf(want, sizeof want, "toobig %zu %u 7;frame {};eof;closed exited (status 0);", len,
             MCP_LINE_MAX);
    assert_string_equal(s.log, want);
    mcp_transport_free(t);
}

static void test_start_failure_says_why(void **state)
{
    fixture *f = *state;
    seen s = {0};
    char *args[] = {"chatplane-no-such-command", NULL};
    char *env[] = {"PATH=/nonexistent", NULL};
    mcp_server_config cfg = {
        .name = "t", .command = "chatplane-no-such-command", .args = args, .env = env};
    mcp_transport *t = mcp_stdio_new(f->base, &cfg, f->reaper);
    t->ud = &s;
    char err[256] = "";
    assert_int_equal(mcp_transport_start(t, err, sizeof err), -1);
    assert_string_equal(err, "command 'chatplane-no-such-command' not found in PATH");
    assert_string_equal(t->peer, "");
    assert_int_equal(mcp_transport_send(t, "{}\n", 3), -1);
    mcp_transport_free(t);
    assert_string_equal(s.log, "");
}

/* Children that end when their stdin closes are stopped together well
 * within the grace period; no callback runs for them. */
static void test_stop_all_ends_every_child(void **state)
{
    fixture *f = *state;
    seen a = {0}, b = {0};
    mcp_transport *ts[2] = {new_sh(f, "cat >/dev/null", &a), new_sh(f, "cat >/dev/null", &b)};
    char err[256] = "";
    assert_int_equal(mcp_transport_start(ts[0], err, sizeof err), 0);
    assert_int_equal(mcp_transport_start(ts[1], err, sizeof err), 0);
    int64_t t0 = clock_mono_ms();
    ts[0]->ops->stop_all(ts, 2);
    assert_true(clock_mono_ms() - t0 < 1500);
    assert_int_equal(mcp_transport_send(ts[0], "{}\n", 3), -1);
    mcp_transport_free(ts[0]);
    mcp_transport_free(ts[1]);
    assert_string_equal(a.log, "");
    assert_string_equal(b.log, "");
}

/* The lines of stderr_lines, over two connections of the same transport:
 * 150 lines each, then the transport is freed. */
static void stderr_twice(fixture *f)
{
    seen s = {0};
    mcp_transport *t =
        new_sh(f, "i=0; while [ $i -lt 150 ]; do echo \"err $i\" >&2; i=$((i+1)); done", &s);
    char err[256] = "";
    for (int round = 1; round <= 2; round++) {
        assert_int_equal(mcp_transport_start(t, err, sizeof err), 0);
        wait_for(f, &s.closes, round, 5000);
        mcp_transport_close(t);
    }
    /* Freeing the transport writes the summary of what was dropped. */
    mcp_transport_free(t);
}

/* The stderr lines logged are limited across connections: the burst is
 * written, the rest is counted in one summary. */
static void test_stderr_lines_are_limited(void **state)
{
    fixture *f = *state;
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(fileno(stderr));
    assert_true(saved >= 0 && dup2(fileno(tmp), fileno(stderr)) >= 0);
    log_min_level = LOG_INFO;
    stderr_twice(f);
    log_min_level = LOG_ERROR;
    fflush(stderr);
    assert_true(dup2(saved, fileno(stderr)) >= 0);
    close(saved);
    long n = ftell(tmp);
    char *out = xcalloc(1, (size_t)n + 1);
    rewind(tmp);
    assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);

    static const char line[] = "level=info msg=\"mcp stderr\" server=t line=";
    static const char summary[] = "level=warn msg=\"mcp server output dropped: over the rate "
                                  "limit\" server=t stream=stderr dropped=";
    int written = 0, summaries = 0;
    long dropped = 0;
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (strncmp(l, line, sizeof line - 1) == 0) {
            if (written == 0) assert_string_equal(l + sizeof line - 1, "\"err 0\"");
            if (written == 150) assert_string_equal(l + sizeof line - 1, "\"err 0\"");
            written++;
        } else if (strncmp(l, summary, sizeof summary - 1) == 0) {
            summaries++;
            dropped += strtol(l + sizeof summary - 1, NULL, 10);
        }
    }
    free(out);
    /* A slow machine may refill a few lines (20 a second) meanwhile. */
    assert_true(written >= 200 && written <= 210);
    assert_int_equal(summaries, 1);
    assert_int_equal(written + dropped, 300);
}

int main(void)
{
    log_min_level = LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_messages_both_ways_then_exit_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_on_the_same_transport, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_inside_a_frame_is_the_last_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_overlong_line_is_reported_with_its_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_start_failure_says_why, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_all_ends_every_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stderr_lines_are_limited, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
