/*
 * bench_search: how long finding sessions by text takes (GET
 * /api/sessions?q=, store_session_search) with and without the index of
 * migration 11, on SQLite and PostgreSQL.
 *
 * It fills a new database with --sessions sessions of one owner holding
 * --messages messages in all (100,000 over 1,000 by default): text of
 * 8 to 30 words from a small vocabulary, so every trigram of a common word
 * is everywhere, with "heliotrope" in one message of every 100th session.
 * Then it times the first page (50) of four searches, each --repeat times
 * (default 3), and prints the median and the best:
 *   hit     "heliotrope" (10 sessions match)
 *   miss    "xylophone" (none match; every session must be ruled out)
 *   common  "budget report" (in a fifth of the messages)
 *   short   "zq" (two characters: never the index; none match)
 * each through the index (store_session_search), and without it: on
 * SQLite the scan that short text takes (store_session_search_scan), on
 * PostgreSQL the same search after the two trigram indexes are dropped.
 *
 *   bench_search [--messages N] [--sessions N] [--repeat N] [--pg URL] [--no-sqlite]
 *                [--fill-cost]
 *
 * --fill-cost first fills a database without the index too (SQLite: the
 * triggers dropped; PostgreSQL: the two indexes), to show what keeping
 * the index costs the writes.
 *
 * SQLite runs on a new file in $TMPDIR. PostgreSQL runs on --pg URL or
 * CHATPLANE_TEST_DB_URL (its sessions are deleted first); without one it
 * is skipped, saying so.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/id.h"
#include "store/db.h"
#include "store/store.h"

#define REPEAT_MAX 15
#define BATCH      5000 /* messages per transaction while filling */

static const char *const WORDS[] = {
    "model",  "answer", "tool",    "call",   "step",    "token",  "limit",   "stream",
    "server", "chat",   "message", "event",  "session", "run",    "mode",    "quick",
    "deep",   "plan",   "result",  "error",  "retry",   "budget", "approve", "input",
    "health", "fork",   "queue",   "export", "title",   "page",   "search",  "index",
    "river",  "stone",  "garden",  "window", "letter",  "number", "table",   "story",
};
#define NWORDS (sizeof WORDS / sizeof WORDS[0])

static const struct {
    const char *name, *text;
    int found; /* sessions expected on the first page; -1: one in 100 */
} QUERIES[] = {
    {"hit", "heliotrope", -1},
    {"miss", "xylophone", 0},
    {"common", "budget report", 50},
    {"short", "zq", 0},
};
#define NQUERIES (sizeof QUERIES / sizeof QUERIES[0])

/* What is printed after the table: the time each fill took. */
static char bench_notes[1024];

static void bench_die(const char *what, const char *why)
{
    fprintf(stderr, "bench_search: %s: %s\n", what, why);
    exit(1);
}

static uint64_t bench_rng = 0x9e3779b97f4a7c15u;

static unsigned bench_rand(unsigned n)
{
    bench_rng = bench_rng * 6364136223846793005u + 1442695040888963407u;
    return (unsigned)((bench_rng >> 33) % n);
}

/* Message text: 8 to 30 words; "budget report" in every fifth message. */
static void bench_text(char *out, size_t len, unsigned msg, bool rare)
{
    size_t n = 0;
    unsigned words = 8 + bench_rand(23);
    for (unsigned w = 0; w < words && n + 16 < len; w++)
        n += (size_t)snprintf(out + n, len - n, "%s%s", w ? " " : "", WORDS[bench_rand(NWORDS)]);
    if (msg % 5 == 0) n += (size_t)snprintf(out + n, len - n, " budget report");
    if (rare) snprintf(out + n, len - n, " heliotrope");
}

static double bench_fill(store *s, int sessions, int messages)
{
    int64_t t0 = clock_mono_ns();
    int per = messages / sessions;
    char text[512], sid[ID_MAX], mid[ID_MAX], title[64];
    int64_t ms = 1700000000000;
    if (store_begin(s) != 0) bench_die("begin", store_errmsg(s));
    int in_tx = 0;
    for (int i = 0; i < sessions; i++) {
        id_new(sid, "ses", ms);
        snprintf(title, sizeof title, "Session %d", i);
        store_session row = {
            .id = sid, .owner = "bench", .title = title, .mode = "standard", .created_ms = ms++};
        if (store_session_insert(s, &row) != 0) bench_die("session insert", store_errmsg(s));
        for (int m = 0; m < per; m++) {
            id_new(mid, "msg", ms);
            bench_text(text, sizeof text, (unsigned)(i * per + m), i % 100 == 7 && m == per / 2);
            store_message msg = {.id = mid,
                                 .session_id = sid,
                                 .role = m % 2 ? "assistant" : "user",
                                 .content = text,
                                 .created_ms = ms++};
            if (store_message_insert(s, &msg) != 0) bench_die("message insert", store_errmsg(s));
            if (++in_tx == BATCH) {
                if (store_commit(s) != 0 || store_begin(s) != 0)
                    bench_die("commit", store_errmsg(s));
                in_tx = 0;
            }
        }
    }
    if (store_commit(s) != 0) bench_die("commit", store_errmsg(s));
    /* A stored message waits to be indexed (docs/storage.md); the server
     * copies the waiting ones into the index a moment later, and so does
     * this fill, so that the searches below meet the index as they would
     * in use, not the waiting messages' scan. */
    int k;
    while ((k = store_session_index_pending(s, 1000)) > 0) continue;
    if (k < 0) bench_die("index", store_errmsg(s));
    return (double)(clock_mono_ns() - t0) / 1e9;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef int (*bench_search_fn)(store *, const char *, const char *, int, const char *,
                               store_session **, size_t *);

/* Times the first page of query q repeat times; prints median and best. */
static void bench_time(store *s, const char *backend, const char *how, bench_search_fn fn, int q,
                       int repeat, int sessions)
{
    double ms[REPEAT_MAX];
    int want = QUERIES[q].found < 0 ? sessions / 100 : QUERIES[q].found;
    for (int r = 0; r < repeat; r++) {
        store_session *rows = NULL;
        size_t n = 0;
        int64_t t0 = clock_mono_ns();
        if (fn(s, "bench", QUERIES[q].text, 50, NULL, &rows, &n) != 0)
            bench_die("search", store_errmsg(s));
        ms[r] = (double)(clock_mono_ns() - t0) / 1e6;
        if ((int)n != want) {
            fprintf(stderr, "bench_search: \"%s\" found %zu sessions, expected %d\n",
                    QUERIES[q].text, n, want);
            exit(1);
        }
        store_session_list_free(rows, n);
    }
    qsort(ms, (size_t)repeat, sizeof ms[0], bench_cmp);
    printf("| %-10s | %-8s | %-7s | %9.2f | %9.2f |\n", backend, how, QUERIES[q].name,
           ms[repeat / 2], ms[0]);
    fflush(stdout);
}

static void bench_header(void)
{
    printf("| backend    | index    | search  | median ms | best ms   |\n");
    printf("|------------|----------|---------|-----------|-----------|\n");
}

/* SQL that takes the index away, and puts PostgreSQL's back (a SQLite run
 * without it has a file of its own, thrown away after). */
static const char *const BENCH_DROP[2] = {
    "DROP TRIGGER chat_search_session_insert; DROP TRIGGER chat_search_session_title; DROP "
    "TRIGGER chat_search_session_delete; DROP TRIGGER chat_search_message_insert; DROP TRIGGER "
    "chat_search_message_content; DROP TRIGGER chat_search_message_delete",
    "DROP INDEX chat_sessions_title_search; DROP INDEX chat_messages_content_search",
};
static const char *const BENCH_PG_INDEXES =
    "CREATE INDEX chat_sessions_title_search ON chat_sessions USING gin (chatplane_fold(title) "
    "gin_trgm_ops); CREATE INDEX chat_messages_content_search ON chat_messages USING gin "
    "(chatplane_fold(content) gin_trgm_ops)";

/* Opens and migrates url, with no session in it (a shared PostgreSQL
 * database is emptied); *pg says which backend it is. */
static store *bench_open(const char *url, bool *pg)
{
    char err[512];
    store *s = NULL;
    if (store_open(url, &s, err, sizeof err) != 0) bench_die("open", err);
    if (store_migrate(s, NULL, NULL, err, sizeof err) != 0) bench_die("migrate", err);
    *pg = db_get_kind(store_db(s)) != DB_SQLITE;
    if (*pg && db_exec(store_db(s), "DELETE FROM chat_sessions", 0, NULL, NULL) < 0)
        bench_die("empty", store_errmsg(s));
    return s;
}

/* --fill-cost: the fill's time without the index, to set against the
 * time with it. */
static void bench_fill_bare(const char *url, const char *backend, int sessions, int messages)
{
    bool pg;
    store *s = bench_open(url, &pg);
    if (db_exec_script(store_db(s), BENCH_DROP[pg]) != 0) bench_die("drop", store_errmsg(s));
    double fill = bench_fill(s, sessions, messages);
    if (pg && (db_exec(store_db(s), "DELETE FROM chat_sessions", 0, NULL, NULL) < 0 ||
               db_exec_script(store_db(s), BENCH_PG_INDEXES) != 0))
        bench_die("restore", store_errmsg(s));
    size_t used = strlen(bench_notes);
    snprintf(bench_notes + used, sizeof bench_notes - used,
             "%s: the same without the index stored in %.1f s\n", backend, fill);
    store_close(s);
}

static void bench_backend(const char *url, const char *backend, int sessions, int messages,
                          int repeat)
{
    bool pg;
    store *s = bench_open(url, &pg);
    double fill = bench_fill(s, sessions, messages);
    if (pg) db_exec(store_db(s), "VACUUM ANALYZE", 0, NULL, NULL);
    size_t used = strlen(bench_notes);
    snprintf(bench_notes + used, sizeof bench_notes - used,
             "%s: %d messages over %d sessions stored in %.1f s\n", backend, messages, sessions,
             fill);
    for (size_t q = 0; q < NQUERIES; q++)
        bench_time(s, backend, q == 3 ? "(never)" : "trigram", store_session_search, (int)q, repeat,
                   sessions);
    if (pg && db_exec_script(store_db(s), BENCH_DROP[1]) != 0)
        bench_die("drop index", store_errmsg(s));
    for (size_t q = 0; q + 1 < NQUERIES; q++)
        bench_time(s, backend, "none", pg ? store_session_search : store_session_search_scan,
                   (int)q, repeat, sessions);
    /* Put back what the benchmark took away from the shared database. */
    if (pg && db_exec_script(store_db(s), BENCH_PG_INDEXES) != 0)
        bench_die("restore", store_errmsg(s));
    store_close(s);
}

int main(int argc, char **argv)
{
    int sessions = 1000, messages = 100000, repeat = 3;
    bool sqlite = true, fill_cost = false;
    const char *pg = getenv("CHATPLANE_TEST_DB_URL");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--messages") == 0 && i + 1 < argc)
            messages = atoi(argv[++i]);
        else if (strcmp(argv[i], "--sessions") == 0 && i + 1 < argc)
            sessions = atoi(argv[++i]);
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (strcmp(argv[i], "--pg") == 0 && i + 1 < argc)
            pg = argv[++i];
        else if (strcmp(argv[i], "--no-sqlite") == 0)
            sqlite = false;
        else if (strcmp(argv[i], "--fill-cost") == 0)
            fill_cost = true;
        else
            sessions = 0, i = argc;
    }
    if (sessions < 100 || messages < sessions || repeat < 1 || repeat > REPEAT_MAX) {
        fprintf(stderr,
                "usage: bench_search [--messages N] [--sessions N>=100] [--repeat 1..%d] "
                "[--pg URL] [--no-sqlite] [--fill-cost]\n",
                REPEAT_MAX);
        return 2;
    }
    double load[3] = {0, 0, 0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
        fclose(f);
    }
    printf("%d messages over %d sessions; first page of 50; %d rounds; load average %.2f %.2f "
           "%.2f\n\n",
           messages, sessions, repeat, load[0], load[1], load[2]);
    bench_header();
    if (sqlite) {
        char dir[256], url[300], cmd[300];
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/chatplane-bench-search-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) bench_die("mkdtemp", dir);
        snprintf(url, sizeof url, "sqlite:%s/bench.db", dir);
        if (fill_cost) {
            snprintf(url, sizeof url, "sqlite:%s/bare.db", dir);
            bench_fill_bare(url, "SQLite", sessions, messages);
        }
        snprintf(url, sizeof url, "sqlite:%s/bench.db", dir);
        bench_backend(url, "SQLite", sessions, messages, repeat);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "bench_search: cannot remove %s\n", dir);
    }
    if (pg && *pg && fill_cost) bench_fill_bare(pg, "PostgreSQL", sessions, messages);
    if (pg && *pg)
        bench_backend(pg, "PostgreSQL", sessions, messages, repeat);
    else
        fprintf(stderr,
                "bench_search: no PostgreSQL URL (--pg or CHATPLANE_TEST_DB_URL); skipped\n");
    printf("\n%s", bench_notes);
    return 0;
}
