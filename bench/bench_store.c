/*
 * bench_store: how fast the event log commits, on SQLite and PostgreSQL.
 *
 * Throughput: one producer (this thread, playing the loop thread) appends
 * token events round-robin across 1, 10 and 100 sessions through the real
 * eventlog (writer thread, group commit), keeping at most WINDOW events in
 * flight, and measures the time until N events are published, i.e.
 * committed and handed back.
 *
 * Latency: the producer appends at a fixed pace (10,000 events/s by
 * default) across 10 sessions; each event's latency runs from its append to
 * its done callback, which the log runs after the commit.
 *
 *   bench_store [--events N] [--sessions N] [--rate R] [--seconds S]
 *               [--repeat N] [--pg URL] [--no-sqlite] [--no-latency]
 *
 * Every case runs --repeat times (default 3): the throughput table shows
 * the median and the best run, the latency table every run, since other
 * work on the machine shows up as noise in single runs.
 * --sessions runs the throughput case of that many sessions only, and
 * --no-latency leaves out the latency run: both for profiling one case.
 *
 * SQLite runs on a new file in $TMPDIR for every case. PostgreSQL runs on
 * --pg URL or CHATPLANE_TEST_DB_URL (its stream_events and chat_sessions
 * are emptied before each case); without one it is skipped, saying so.
 */
/* ppoll, for waits finer than a millisecond while pacing. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/evt.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"
#include "store/eventlog.h"
#include "store/store.h"

/* Events in flight at most during the throughput runs: enough that a full
 * batch is always queued while the previous one commits. */
#define WINDOW       (4 * EVENTLOG_BATCH_MAX)
#define SESSIONS_MAX 100
#define REPEAT_MAX   9

typedef struct bench {
    const char *url;
    int sessions;
    char ids[SESSIONS_MAX][32];
    uint64_t sent, committed, failed, target;
    int64_t end_ns; /* when the target-th event was published */
} bench;

typedef struct lat_slot {
    int64_t sent_ns, lat_ns;
} lat_slot;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, why);
    exit(1);
}

/* Migrates the database, empties what earlier cases wrote, and creates the
 * sessions the events go to. */
static void bench_prepare(bench *b)
{
    char err[512];
    store *s = NULL;
    if (store_open(b->url, &s, err, sizeof err) != 0) die("open", err);
    if (store_migrate(s, NULL, NULL, err, sizeof err) != 0) die("migrate", err);
    if (db_get_kind(store_db(s)) == DB_POSTGRES &&
        db_exec_script(store_db(s), "TRUNCATE stream_events, chat_sessions CASCADE") != 0)
        die("truncate", db_errmsg(store_db(s)));
    int64_t now = clock_wall_ms();
    for (int i = 0; i < b->sessions; i++) {
        snprintf(b->ids[i], sizeof b->ids[i], "ses_bench%03d", i);
        store_session row = {.id = b->ids[i],
                             .title = "bench",
                             .mode = "standard",
                             .created_ms = now,
                             .updated_ms = now};
        if (store_session_insert(s, &row) != 0) die("session insert", store_errmsg(s));
    }
    store_close(s);
}

static evt *bench_event(bench *b, uint64_t i)
{
    static const char *const words[] = {"The",   " quick", " brown", " fox", " jumps",
                                        " over", " the",   " lazy",  " dog", "."};
    const char *w = words[i % 10];
    evt_origin o = {b->ids[i % (uint64_t)b->sessions], "run_bench", clock_wall_ms()};
    return evt_token(&o, "msg_bench", w, strlen(w));
}

static void on_publish(void *ud, evt *ev)
{
    (void)ev;
    bench *b = ud;
    if (++b->committed == b->target) b->end_ns = clock_mono_ns();
}

static eventlog *bench_start_log(bench *b)
{
    char err[512];
    eventlog *log = NULL;
    if (eventlog_start(b->url, on_publish, b, &log, err, sizeof err) != 0)
        die("eventlog_start", err);
    return log;
}

/* Waits up to timeout_ns for the log's fd and drains it. */
static void bench_wait(eventlog *log, int64_t timeout_ns)
{
    struct pollfd pfd = {.fd = eventlog_fd(log), .events = POLLIN};
    if (timeout_ns < 0) timeout_ns = 0;
    struct timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
    int n = ppoll(&pfd, 1, &ts, NULL);
    if (n < 0 && errno != EINTR) die("ppoll", strerror(errno));
    if (n > 0) eventlog_drain(log);
}

typedef struct throughput {
    double seconds, per_sec, mean_batch, mean_commit_ms;
} throughput;

/* Orders runs by throughput, slowest first. */
static int cmp_throughput(const void *a, const void *b)
{
    double x = ((const throughput *)a)->per_sec, y = ((const throughput *)b)->per_sec;
    return (x > y) - (x < y);
}

static throughput bench_throughput(bench *b, uint64_t n)
{
    bench_prepare(b);
    eventlog *log = bench_start_log(b);
    b->sent = b->committed = 0;
    b->target = n;
    int64_t t0 = clock_mono_ns();
    eventlog_stats st;
    while (b->committed < n) {
        while (b->sent < n && b->sent - b->committed < WINDOW)
            eventlog_append(log, bench_event(b, b->sent++));
        bench_wait(log, 1000000000);
        /* A failed event is never published: stop rather than wait for it. */
        eventlog_get_stats(log, &st);
        if (st.failures) die("throughput", "a batch failed (see the log above)");
    }
    eventlog_get_stats(log, &st);
    eventlog_stop(log);
    throughput t;
    t.seconds = (double)(b->end_ns - t0) / 1e9;
    t.per_sec = (double)n / t.seconds;
    t.mean_batch = st.batches ? (double)st.events / (double)st.batches : 0;
    t.mean_commit_ms = st.batches ? (double)st.commit_ns_total / (double)st.batches / 1e6 : 0;
    return t;
}

static void on_done(void *arg, evt *ev, int status)
{
    (void)ev;
    lat_slot *slot = arg;
    slot->lat_ns = status == 0 ? clock_mono_ns() - slot->sent_ns : -1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct latency {
    double p50_ms, p99_ms, max_ms, achieved_rate;
    uint64_t events, failed;
} latency;

static latency bench_latency(bench *b, double rate, double seconds)
{
    bench_prepare(b);
    eventlog *log = bench_start_log(b);
    uint64_t n = (uint64_t)(rate * seconds);
    lat_slot *slots = xcalloc(n, sizeof *slots);
    b->committed = 0;
    b->target = n;
    int64_t interval = (int64_t)(1e9 / rate);
    int64_t start = clock_mono_ns();
    for (uint64_t i = 0; i < n; i++) {
        int64_t due = start + (int64_t)i * interval;
        for (int64_t now = clock_mono_ns(); now < due; now = clock_mono_ns())
            bench_wait(log, due - now);
        slots[i].sent_ns = clock_mono_ns();
        eventlog_op op = {.done = on_done, .arg = &slots[i], .ev = bench_event(b, i)};
        eventlog_submit(log, &op);
    }
    int64_t sent_end = clock_mono_ns();
    eventlog_flush(log);
    eventlog_stop(log);

    latency l = {0};
    int64_t *lat = xmalloc(n * sizeof *lat);
    size_t k = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (slots[i].lat_ns < 0) {
            l.failed++;
        } else {
            lat[k++] = slots[i].lat_ns;
        }
    }
    qsort(lat, k, sizeof *lat, cmp_i64);
    if (k) {
        l.p50_ms = (double)lat[k / 2] / 1e6;
        l.p99_ms = (double)lat[(k * 99) / 100] / 1e6;
        l.max_ms = (double)lat[k - 1] / 1e6;
    }
    l.events = n;
    l.achieved_rate = (double)n / ((double)(sent_end - start) / 1e9);
    free(lat);
    free(slots);
    return l;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_store [--events N] [--sessions N] [--rate R] [--seconds S] "
                    "[--repeat N] [--pg URL] [--no-sqlite] [--no-latency]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t events = 200000;
    double rate = 10000, seconds = 5;
    const char *pg = getenv("CHATPLANE_TEST_DB_URL");
    bool sqlite = true, with_latency = true;
    int only_sessions = 0, repeat = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--events") == 0 && i + 1 < argc) {
            events = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
            rate = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--pg") == 0 && i + 1 < argc) {
            pg = argv[++i];
        } else if (strcmp(argv[i], "--sessions") == 0 && i + 1 < argc) {
            only_sessions = atoi(argv[++i]);
            if (only_sessions < 1 || only_sessions > SESSIONS_MAX) usage();
        } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            repeat = atoi(argv[++i]);
            if (repeat < 1 || repeat > REPEAT_MAX) usage();
        } else if (strcmp(argv[i], "--no-sqlite") == 0) {
            sqlite = false;
        } else if (strcmp(argv[i], "--no-latency") == 0) {
            with_latency = false;
        } else {
            usage();
        }
    }
    if (events == 0 || rate <= 0 || seconds <= 0) usage();
    if (pg && strncmp(pg, "postgres", 8) != 0) pg = NULL;

    const char *tmp = getenv("TMPDIR");
    char dir[256];
    snprintf(dir, sizeof dir, "%s/chatplane-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (sqlite && !mkdtemp(dir)) die("mkdtemp", strerror(errno));

    /* Other work on the machine shows in the figures; say how much there was. */
    FILE *la = fopen("/proc/loadavg", "r");
    char load[64] = "unknown";
    if (la) {
        if (fgets(load, sizeof load, la)) load[strcspn(load, "\n")] = '\0';
        fclose(la);
    }
    printf("Load average before the runs: %s\n", load);

    int counts[3] = {1, 10, 100};
    size_t ncounts = 3;
    if (only_sessions) {
        counts[0] = only_sessions;
        ncounts = 1;
    }
    printf("Throughput: %" PRIu64 " token events through the eventlog, at most %d in flight, "
           "median and best of %d runs\n",
           events, WINDOW, repeat);
    printf("%-10s %8s %10s %12s %12s %10s %14s\n", "backend", "sessions", "events", "events/s",
           "best/s", "avg batch", "avg commit ms");
    for (int k = 0; k < 2; k++) {
        if (k == 0 && !sqlite) continue;
        if (k == 1 && !pg) {
            printf("%-10s skipped: no postgres:// URL (--pg or CHATPLANE_TEST_DB_URL)\n",
                   "postgres");
            continue;
        }
        for (size_t c = 0; c < ncounts; c++) {
            throughput runs[REPEAT_MAX];
            for (int r = 0; r < repeat; r++) {
                bench b = {.sessions = counts[c]};
                char url[320];
                if (k == 0) {
                    snprintf(url, sizeof url, "sqlite:%s/tp%d-%d.db", dir, counts[c], r);
                    b.url = url;
                } else {
                    b.url = pg;
                }
                runs[r] = bench_throughput(&b, events);
            }
            qsort(runs, (size_t)repeat, sizeof *runs, cmp_throughput);
            const throughput *med = &runs[repeat / 2];
            printf("%-10s %8d %10" PRIu64 " %12.0f %12.0f %10.1f %14.2f\n",
                   k ? "postgres" : "sqlite", counts[c], events, med->per_sec,
                   runs[repeat - 1].per_sec, med->mean_batch, med->mean_commit_ms);
            fflush(stdout);
        }
    }

    if (!with_latency) goto out;
    printf("\nCommit latency at %.0f events/s for %.0f s across 10 sessions "
           "(append to done callback), %d runs\n",
           rate, seconds, repeat);
    printf("%-10s %10s %12s %9s %9s %9s %7s\n", "backend", "events", "achieved/s", "p50 ms",
           "p99 ms", "max ms", "failed");
    for (int k = 0; k < 2; k++) {
        if ((k == 0 && !sqlite) || (k == 1 && !pg)) continue;
        for (int r = 0; r < repeat; r++) {
            bench b = {.sessions = 10};
            char url[320];
            if (k == 0) {
                snprintf(url, sizeof url, "sqlite:%s/lat-%d.db", dir, r);
                b.url = url;
            } else {
                b.url = pg;
            }
            latency l = bench_latency(&b, rate, seconds);
            printf("%-10s %10" PRIu64 " %12.0f %9.3f %9.3f %9.3f %7" PRIu64 "\n",
                   k ? "postgres" : "sqlite", l.events, l.achieved_rate, l.p50_ms, l.p99_ms,
                   l.max_ms, l.failed);
            fflush(stdout);
        }
    }

out:
    if (sqlite) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "bench_store: could not remove %s\n", dir);
    }
    return 0;
}
