/*
 * Unit tests for lib/loopprio: the server's loop looks at what became
 * ready after at most LOOPPRIO_PASS callbacks of the streams, so a
 * descriptor of the start's priority is not left waiting for a whole pass
 * over them, and leaves the start's own callbacks alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "lib/loopprio.h"

#define PASS_EVENTS 200

/* The order in which the callbacks ran: the pipe's is recorded at
 * pipe_at, each other's by counting. */
typedef struct pass {
    int fds[2];
    int ran;     /* callbacks of the pass run so far */
    int pipe_at; /* how many had run when the pipe's did; -1 before */
} pass;

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    pass *p = arg;
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
    p->pipe_at = p->ran;
}

/* The first callback makes the pipe ready, as the event log's writer does
 * when it hands a batch back while the loop works through the streams. */
static void on_work(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pass *p = arg;
    if (p->ran++ == 0) assert_int_equal(write(p->fds[1], "x", 1), 1);
}

/* Runs PASS_EVENTS ready callbacks at work_prio, the pipe watched at the
 * start's priority; returns after how many of them the pipe's ran. */
static int run_pass(struct event_base *base, int work_prio)
{
    pass p = {.pipe_at = -1};
    assert_int_equal(pipe(p.fds), 0);
    struct event *rd = event_new(base, p.fds[0], EV_READ, on_pipe, &p);
    assert_int_equal(event_priority_set(rd, LOOPPRIO_START), 0);
    assert_int_equal(event_add(rd, NULL), 0);
    struct event *work[PASS_EVENTS];
    for (int i = 0; i < PASS_EVENTS; i++) {
        work[i] = event_new(base, -1, 0, on_work, &p);
        assert_int_equal(event_priority_set(work[i], work_prio), 0);
        event_active(work[i], EV_TIMEOUT, 0);
    }
    /* 1: it returned once nothing was left to wait for. */
    assert_int_equal(event_base_dispatch(base), 1);
    assert_int_equal(p.ran, PASS_EVENTS);
    for (int i = 0; i < PASS_EVENTS; i++) event_free(work[i]);
    event_free(rd);
    close(p.fds[0]);
    close(p.fds[1]);
    return p.pipe_at;
}

static void test_a_ready_descriptor_waits_for_at_most_a_pass(void **state)
{
    (void)state;
    struct event_base *base = loopprio_base_new();
    assert_non_null(base);
    assert_int_equal(event_base_get_npriorities(base), LOOPPRIO_LEVELS);
    int at = run_pass(base, LOOPPRIO_STREAM);
    assert_true(at >= 1);
    assert_true(at <= LOOPPRIO_PASS);
    /* The default priority is limited as the streams are. */
    at = run_pass(base, LOOPPRIO_DEFAULT);
    assert_true(at >= 1 && at <= LOOPPRIO_PASS);
    /* The start's own callbacks run to the end of their pass. */
    assert_int_equal(run_pass(base, LOOPPRIO_START), PASS_EVENTS);
    event_base_free(base);
}

/* What the limit changes: libevent's own loop runs the whole pass first. */
static void test_without_the_limit_the_whole_pass_runs_first(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    assert_int_equal(event_base_priority_init(base, LOOPPRIO_LEVELS), 0);
    assert_int_equal(run_pass(base, LOOPPRIO_STREAM), PASS_EVENTS);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_ready_descriptor_waits_for_at_most_a_pass),
        cmocka_unit_test(test_without_the_limit_the_whole_pass_runs_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
