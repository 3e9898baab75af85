/*
 * The listening connection (store/pgnotify.c) against a real server: it
 * hears event and control notifications, comes back by itself when the
 * server ends it, and keeps trying quietly when there is no server. Pure
 * parsing is tests/unit/test_pgnotify.c.
 *
 * CHATPLANE_TEST_DB_URL names the database as for the store suite; the
 * test that needs a server is skipped on SQLite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/event.h>
#include <limits.h>

#include "store/db.h"
#include "store/pgnotify.h"
#include "store/store.h"

#include "fixture.h"

typedef fixture fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (fixture_start(f, "chatplane-pgnotify") != 0) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_stop(*state);
    free(*state);
    return 0;
}

/* What the handlers of a pgnotify heard. */
typedef struct heard {
    struct event_base *base;
    int ups;
    char events[512];
    char control[512];
} heard;

static void heard_events(void *ud, const char *session_id, int64_t seq)
{
    heard *h = ud;
    size_t len = strlen(h->events);
    snprintf(h->events + len, sizeof h->events - len, "%s%s=%lld", len ? " " : "", session_id,
             (long long)seq);
}

static void heard_control(void *ud, const char *payload)
{
    heard *h = ud;
    size_t len = strlen(h->control);
    snprintf(h->control + len, sizeof h->control - len, "%s%s", len ? " " : "", payload);
}

static void heard_up(void *ud)
{
    ((heard *)ud)->ups++;
}

/* Runs the loop until cond holds or ms pass; returns whether it holds. */
static bool loop_until(heard *h, bool (*cond)(const heard *h, const pgnotify *n), pgnotify *n,
                       int ms)
{
    for (int waited = 0; waited < ms; waited += 10) {
        if (cond(h, n)) return true;
        struct timeval tv = {0, 10000};
        event_base_loopexit(h->base, &tv);
        event_base_dispatch(h->base);
    }
    return cond(h, n);
}

static bool is_up_once(const heard *h, const pgnotify *n)
{
    return h->ups == 1 && pgnotify_is_up(n);
}

static bool is_up_twice(const heard *h, const pgnotify *n)
{
    return h->ups == 2 && pgnotify_is_up(n);
}

static bool is_down(const heard *h, const pgnotify *n)
{
    (void)h;
    return !pgnotify_is_up(n);
}

static bool heard_two(const heard *h, const pgnotify *n)
{
    (void)n;
    return strchr(h->events, ' ') && strlen(h->control) > 0;
}

static bool heard_three(const heard *h, const pgnotify *n)
{
    (void)n;
    return strchr(strchr(h->events, ' ') + 1, ' ') != NULL;
}

static void test_pgnotify_hears_and_reconnects(void **state)
{
    fx *f = *state;
    fixture_skip_unless_postgres(f);
    heard h = {.base = event_base_new()};
    pgnotify_handlers hs = {heard_events, heard_control, heard_up, &h};
    pgnotify *n = pgnotify_start(h.base, f->url, &hs);
    assert_false(pgnotify_is_up(n));
    assert_true(loop_until(&h, is_up_once, n, 5000));

    assert_int_equal(store_notify(f->s, STORE_EVENTS_CHANNEL, "ses_a:7"), 0);
    assert_int_equal(store_notify(f->s, STORE_EVENTS_CHANNEL, "malformed"), 0);
    assert_int_equal(store_notify(f->s, STORE_EVENTS_CHANNEL, "ses:b:12"), 0);
    assert_int_equal(store_notify(f->s, STORE_CONTROL_CHANNEL, "{\"action\":\"stop\"}"), 0);
    assert_true(loop_until(&h, heard_two, n, 5000));
    assert_string_equal(h.events, "ses_a=7 ses:b=12");
    assert_string_equal(h.control, "{\"action\":\"stop\"}");

    /* The server ends the listening connection: it comes back by itself. */
    db_result *r = NULL;
    assert_int_equal(db_exec(store_db(f->s),
                             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query "
                             "LIKE 'LISTEN " STORE_EVENTS_CHANNEL "%' AND pid <> "
                             "pg_backend_pid()",
                             0, NULL, &r),
                     0);
    assert_true(db_result_rows(r) >= 1);
    db_result_free(r);
    assert_true(loop_until(&h, is_down, n, 5000));
    assert_true(loop_until(&h, is_up_twice, n, 5000));
    assert_int_equal(store_notify(f->s, STORE_EVENTS_CHANNEL, "ses_c:1"), 0);
    assert_true(loop_until(&h, heard_three, n, 5000));
    assert_string_equal(h.events, "ses_a=7 ses:b=12 ses_c=1");
    pgnotify_stop(n);
    event_base_free(h.base);
}

static bool never(const heard *h, const pgnotify *n)
{
    (void)h;
    (void)n;
    return false;
}

/* A server that is not there: the connection keeps trying, quietly. */
static void test_pgnotify_without_a_server(void **state)
{
    (void)state;
    heard h = {.base = event_base_new()};
    pgnotify_handlers hs = {heard_events, heard_control, heard_up, &h};
    pgnotify *n = pgnotify_start(h.base, "postgresql://nobody@127.0.0.1:1/none", &hs);
    loop_until(&h, never, n, 700);
    assert_false(pgnotify_is_up(n));
    assert_int_equal(h.ups, 0);
    pgnotify_stop(n);
    event_base_free(h.base);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_pgnotify_hears_and_reconnects),
        T(test_pgnotify_without_a_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
