/*
 * The store's side of several instances on one database: a run is stopped
 * only once (store_run_update, store_recover_interrupted racing each
 * other), heartbeats by run, notifications sent on commit
 * (store_event_append, store_notify), and seqs that stay gapless when two
 * connections append to one session at once. The listening connection
 * (store/pgnotify.c) is tests/store/test_pgnotify.c.
 *
 * CHATPLANE_TEST_DB_URL names the database as for the store suite; the
 * tests of notifications and concurrency need PostgreSQL and are skipped
 * on SQLite. Every test makes its own rows, so a shared database is fine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "core/evt.h"
#include "core/mode.h"
#include "lib/id.h"
#include "store/store.h"

#include "fixture.h"

typedef fixture fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (fixture_start(f, "chatplane-store-instances") != 0) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_stop(*state);
    free(*state);
    return 0;
}

static bool on_postgres(const fx *f)
{
    return *f->dir == '\0';
}

static char *uid(const char *prefix)
{
    static int counter;
    char id[ID_MAX];
    id_new(id, prefix, 1700000000000 + __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
    return strdup(id);
}

static char *make_session(store *s)
{
    char *id = uid("ses");
    store_session row = {.id = id,
                         .owner = "instances",
                         .title = "t",
                         .mode = "standard",
                         .created_ms = 1000,
                         .updated_ms = 1000};
    assert_int_equal(store_session_insert(s, &row), 0);
    return id;
}

/* A running run of the session that holds its claim, beaten at beat_ms. */
static char *make_run(store *s, const char *session_id, int64_t beat_ms)
{
    char *id = uid("run");
    json_t *limits = mode_limits_to_json(&mode_preset("quick")->limits);
    json_t *usage = json_pack("{s:i,s:f,s:i,s:i,s:i,s:f}", "steps", 1, "seconds", 0.5, "tokens", 10,
                              "tool_calls", 0, "retries", 0, "cost_usd", 0.0);
    store_run row = {.id = id,
                     .session_id = (char *)session_id,
                     .mode = "quick",
                     .status = "running",
                     .limits = limits,
                     .usage = usage,
                     .owner_instance = "ins-gone",
                     .heartbeat_ms = beat_ms,
                     .started_ms = beat_ms};
    assert_int_equal(store_run_insert(s, &row), 0);
    assert_int_equal(store_session_claim_run(s, session_id, id, beat_ms), 0);
    json_decref(limits);
    json_decref(usage);
    return id;
}

/* A token of the run's one assistant message (message ids are unique in
 * the database, and recovery stores the run's text under it). */
static evt *tok(const char *sid, const char *rid, const char *text)
{
    evt_origin o = {sid, rid, 1000};
    char mid[ID_MAX + 8];
    snprintf(mid, sizeof mid, "msg-%s", rid);
    return evt_token(&o, mid, text, strlen(text));
}

/* Appends n token events in one transaction. */
static int append_tokens(store *s, const char *sid, const char *rid, size_t n)
{
    evt *evs[8];
    for (size_t i = 0; i < n; i++) evs[i] = tok(sid, rid, "x");
    int rc = store_begin(s);
    if (rc == 0) rc = store_event_append(s, evs, n);
    if (rc == 0) {
        rc = store_commit(s);
    } else {
        store_rollback(s);
    }
    for (size_t i = 0; i < n; i++) evt_unref(evs[i]);
    return rc;
}

static int count_cb(void *ud, int64_t seq, const char *type, const char *json, size_t len)
{
    (void)json;
    (void)len;
    int64_t *c = ud;
    if (strcmp(type, "run_stopped") == 0) c[0]++;
    if (seq != c[1] + 1) c[2]++; /* a gap or a repeat */
    c[1] = seq;
    return 0;
}

/* ------------------------------------------------------------------------
 * Both dialects
 */

/* The row of run rid, read back and stopped as completed. */
static void stopped_row(store *s, const char *rid, store_run *row)
{
    assert_int_equal(store_run_get(s, rid, row), 0);
    free(row->status);
    row->status = strdup("stopped");
    row->stop_reason = strdup("completed");
    row->ended_ms = 2000;
}

/* A second stop of rid was refused with rc: the message names the run,
 * and the stored stop is the first one. Frees row. */
static void assert_stopped_once(store *s, const char *rid, store_run *row, int rc)
{
    assert_int_equal(rc, STORE_CONFLICT);
    char want[128];
    snprintf(want, sizeof want, "run %s has already stopped", rid);
    assert_string_equal(store_errmsg(s), want);
    store_run_cleanup(row);
    assert_int_equal(store_run_get(s, rid, row), 0);
    assert_string_equal(row->stop_reason, "completed");
    store_run_cleanup(row);
}

static void test_a_stopped_run_is_not_stopped_again(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s);
    char *rid = make_run(f->s, sid, 1000);
    store_run row;
    stopped_row(f->s, rid, &row);
    assert_int_equal(store_run_update(f->s, &row), 0);
    free(row.stop_reason);
    row.stop_reason = strdup("user_stopped");
    assert_stopped_once(f->s, rid, &row, store_run_update(f->s, &row));
    store_run missing = {.id = "run-none", .status = "stopped"};
    assert_int_equal(store_run_update(f->s, &missing), STORE_NOT_FOUND);
    free(rid);
    free(sid);
}

/* A run's end as the event log writes it: the run's row and the
 * session's release in one transaction. */
static int end_run(store *s, const store_run *row, int64_t *queued)
{
    int rc = store_begin(s);
    if (rc == 0) rc = store_run_update(s, row);
    if (rc == 0) rc = store_session_release_run_later(s, row->session_id, row->id, 3000, queued);
    if (rc == 0) rc = store_commit(s);
    if (rc < 0) store_rollback(s);
    return rc;
}

/* On PostgreSQL the two go ahead and the COMMIT reads their answers: the
 * release's flag arrives by then, and a run stopped already (or missing)
 * fails the transaction with the code and message it has alone. Twice:
 * the first time the statements are not prepared and run at once. */
static void test_a_runs_end_answers_with_its_commit(void **state)
{
    fx *f = *state;
    for (int i = 0; i < 2; i++) {
        char *sid = make_session(f->s);
        char *rid = make_run(f->s, sid, 1000);
        char *qid = uid("run");
        if (i == 1) assert_int_equal(store_queue_put(f->s, sid, qid, "next", NULL, 1500), 0);
        store_run row;
        stopped_row(f->s, rid, &row);
        int64_t queued = -1;
        assert_int_equal(end_run(f->s, &row, &queued), 0);
        assert_int_equal(queued, i == 1);
        store_session ses;
        assert_int_equal(store_session_get(f->s, sid, NULL, &ses), 0);
        assert_string_equal(ses.status, "idle");
        assert_null(ses.active_run_id);
        store_session_cleanup(&ses);

        /* Again, as if another instance had stopped it first. */
        free(row.stop_reason);
        row.stop_reason = strdup("user_stopped");
        assert_stopped_once(f->s, rid, &row, end_run(f->s, &row, &queued));

        store_run missing = {.id = "run-none", .session_id = sid, .status = "stopped"};
        assert_int_equal(end_run(f->s, &missing, &queued), STORE_NOT_FOUND);
        assert_string_equal(store_errmsg(f->s), "run run-none not found");
        free(qid);
        free(rid);
        free(sid);
    }
}

static void test_beat_one_run(void **state)
{
    fx *f = *state;
    char *sid = make_session(f->s);
    char *rid = make_run(f->s, sid, 1000);
    assert_int_equal(store_run_beat(f->s, rid, 1700000000123), 1);
    store_run row;
    assert_int_equal(store_run_get(f->s, rid, &row), 0);
    assert_int_equal(row.heartbeat_ms, 1700000000123);
    free(row.status);
    row.status = strdup("stopped");
    row.stop_reason = strdup("completed");
    assert_int_equal(store_run_update(f->s, &row), 0);
    store_run_cleanup(&row);
    assert_int_equal(store_run_beat(f->s, rid, 1700000000456), 0);
    assert_int_equal(store_run_get(f->s, rid, &row), 0);
    assert_int_equal(row.heartbeat_ms, 1700000000123);
    store_run_cleanup(&row);
    assert_int_equal(store_run_beat(f->s, "run-none", 1700000000456), 0);
    free(rid);
    free(sid);
}

static void test_notify_outside_postgres_does_nothing(void **state)
{
    fx *f = *state;
    if (on_postgres(f)) skip();
    assert_int_equal(store_notify(f->s, STORE_CONTROL_CHANNEL, "{}"), 0);
}

/* ------------------------------------------------------------------------
 * PostgreSQL: notifications
 */

/* A plain libpq connection listening on channel. */
static PGconn *listen_on(const fx *f, const char *channel)
{
    PGconn *c = PQconnectdb(f->url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    char sql[96];
    snprintf(sql, sizeof sql, "LISTEN %s", channel);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    return c;
}

/* The payloads that arrive within ms and start with prefix, joined by
 * spaces (notifications of other tests are left out). */
static void collect(PGconn *c, const char *prefix, int ms, char *out, size_t outlen)
{
    out[0] = '\0';
    struct pollfd p = {PQsocket(c), POLLIN, 0};
    for (int waited = 0; waited < ms; waited += 20) {
        poll(&p, 1, 20);
        PQconsumeInput(c);
        PGnotify *n;
        while ((n = PQnotifies(c)) != NULL) {
            if (strncmp(n->extra, prefix, strlen(prefix)) == 0) {
                size_t len = strlen(out);
                snprintf(out + len, outlen - len, "%s%s", len ? " " : "", n->extra);
            }
            PQfreemem(n);
        }
    }
}

static void test_events_are_announced_on_commit_only(void **state)
{
    fx *f = *state;
    fixture_skip_unless_postgres(f);
    PGconn *c = listen_on(f, STORE_EVENTS_CHANNEL);
    char *sid = make_session(f->s);
    char *rid = make_run(f->s, sid, 1000);
    evt *evs[] = {tok(sid, rid, "a"), tok(sid, rid, "b"), tok(sid, rid, "c")};
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_event_append(f->s, evs, 3), 0);
    char got[256];
    collect(c, sid, 200, got, sizeof got);
    assert_string_equal(got, "");
    assert_int_equal(store_commit(f->s), 0);
    collect(c, sid, 500, got, sizeof got);
    char want[128];
    snprintf(want, sizeof want, "%s:3", sid);
    assert_string_equal(got, want);

    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_event_append(f->s, evs, 2), 0);
    assert_int_equal(store_rollback(f->s), 0);
    collect(c, sid, 300, got, sizeof got);
    assert_string_equal(got, "");

    assert_int_equal(append_tokens(f->s, sid, rid, 2), 0);
    collect(c, sid, 500, got, sizeof got);
    snprintf(want, sizeof want, "%s:5", sid);
    assert_string_equal(got, want);
    for (size_t i = 0; i < 3; i++) evt_unref(evs[i]);
    PQfinish(c);
    free(rid);
    free(sid);
}

/* Whether the space-separated list has word. */
static bool has_word(const char *list, const char *word)
{
    size_t len = strlen(word);
    for (const char *w = strstr(list, word); w; w = strstr(w + 1, word))
        if ((w == list || w[-1] == ' ') && (w[len] == ' ' || w[len] == '\0')) return true;
    return false;
}

/* One batch over 70 sessions (their seqs reserved in chunks of 64, 4 and
 * 2 sessions): each session is announced once, with its own last seq, at
 * commit. */
static void test_every_session_of_a_batch_is_announced(void **state)
{
    fx *f = *state;
    fixture_skip_unless_postgres(f);
    enum { SESSIONS = 70 };
    PGconn *c = listen_on(f, STORE_EVENTS_CHANNEL);
    char *sids[SESSIONS];
    for (int i = 0; i < SESSIONS; i++) sids[i] = make_session(f->s);
    char *rid = make_run(f->s, sids[0], 1000);
    evt *evs[SESSIONS * 2];
    size_t n = 0;
    for (int i = SESSIONS - 1; i >= 0; i--) {
        /* Odd sessions get two events, even ones one. */
        evs[n++] = tok(sids[i], rid, "a");
        if (i % 2) evs[n++] = tok(sids[i], rid, "b");
    }
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_event_append(f->s, evs, n), 0);
    char got[8192];
    collect(c, "ses_", 200, got, sizeof got);
    assert_string_equal(got, "");
    assert_int_equal(store_commit(f->s), 0);
    collect(c, "ses_", 500, got, sizeof got);
    size_t words = *got ? 1 : 0;
    for (const char *p = got; *p; p++) words += *p == ' ';
    assert_int_equal(words, SESSIONS);
    for (int i = 0; i < SESSIONS; i++) {
        char want[128];
        snprintf(want, sizeof want, "%s:%d", sids[i], i % 2 ? 2 : 1);
        if (!has_word(got, want)) fail_msg("%s was not announced in: %s", want, got);
    }
    for (size_t i = 0; i < n; i++) evt_unref(evs[i]);
    for (int i = 0; i < SESSIONS; i++) free(sids[i]);
    PQfinish(c);
    free(rid);
}

static void test_control_messages_are_sent(void **state)
{
    fx *f = *state;
    fixture_skip_unless_postgres(f);
    PGconn *c = listen_on(f, STORE_CONTROL_CHANNEL);
    assert_int_equal(store_notify(f->s, STORE_CONTROL_CHANNEL, "{\"instance\":\"ins-x\"}"), 0);
    char got[256];
    collect(c, "{\"instance\":\"ins-x\"", 500, got, sizeof got);
    assert_string_equal(got, "{\"instance\":\"ins-x\"}");
    PQfinish(c);
}

/* ------------------------------------------------------------------------
 * PostgreSQL: two connections at once
 */

typedef struct racer {
    const char *url;
    pthread_barrier_t *go;
    const char *sid, *rid;
    int64_t stale_before;
    int rc;
} racer;

static void *recover_racer(void *arg)
{
    racer *x = arg;
    store *s = fixture_open(x->url);
    pthread_barrier_wait(x->go);
    x->rc = store_recover_interrupted(s, x->stale_before, 1700000009000);
    store_close(s);
    return NULL;
}

/* Two instances sweeping the same orphan at once: it is stopped once. */
static void test_concurrent_recovery_stops_a_run_once(void **state)
{
    fx *f = *state;
    fixture_skip_unless_postgres(f);
    for (int round = 0; round < 5; round++) {
        char *sid = make_session(f->s);
        char *rid = make_run(f->s, sid, 1000);
        assert_int_equal(append_tokens(f->s, sid, rid, 3), 0);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        racer xs[2] = {{f->url, &go, sid, rid, 1001, 0}, {f->url, &go, sid, rid, 1001, 0}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, recover_racer, &xs[i]);
        for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
        pthread_barrier_destroy(&go);
        assert_true(xs[0].rc >= 0 && xs[1].rc >= 0);
        int64_t c[3] = {0, 0, 0};
        assert_int_equal(store_event_after(f->s, sid, 0, 0, count_cb, c), 5);
        assert_int_equal(c[0], 1);
        assert_int_equal(c[2], 0);
        store_session ses;
        assert_int_equal(store_session_get(f->s, sid, NULL, &ses), 0);
        assert_int_equal(ses.last_seq, 5);
        assert_null(ses.active_run_id);
        store_session_cleanup(&ses);
        free(rid);
        free(sid);
    }
}

static void *append_racer(void *arg)
{
    racer *x = arg;
    store *s = fixture_open(x->url);
    pthread_barrier_wait(x->go);
    for (int i = 0; i < 50 && x->rc == 0; i++) x->rc = append_tokens(s, x->sid, x->rid, 3);
    store_close(s);
    return NULL;
}

/* Two writers appending to one session: seqs stay gapless and unique. */
static void test_concurrent_appends_keep_seqs_gapless(void **state)
{
    fx *f = *state;
    fixture_skip_unless_postgres(f);
    char *sid = make_session(f->s);
    char *rid = make_run(f->s, sid, 1000);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    racer xs[2] = {{f->url, &go, sid, rid, 0, 0}, {f->url, &go, sid, rid, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, append_racer, &xs[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    assert_int_equal(xs[0].rc, 0);
    assert_int_equal(xs[1].rc, 0);
    int64_t c[3] = {0, 0, 0};
    assert_int_equal(store_event_after(f->s, sid, 0, 0, count_cb, c), 300);
    assert_int_equal(c[1], 300);
    assert_int_equal(c[2], 0);
    store_session ses;
    assert_int_equal(store_session_get(f->s, sid, NULL, &ses), 0);
    assert_int_equal(ses.last_seq, 300);
    store_session_cleanup(&ses);
    free(rid);
    free(sid);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_a_stopped_run_is_not_stopped_again),
        T(test_a_runs_end_answers_with_its_commit),
        T(test_beat_one_run),
        T(test_notify_outside_postgres_does_nothing),
        T(test_events_are_announced_on_commit_only),
        T(test_every_session_of_a_batch_is_announced),
        T(test_control_messages_are_sent),
        T(test_concurrent_recovery_stops_a_run_once),
        T(test_concurrent_appends_keep_seqs_gapless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
