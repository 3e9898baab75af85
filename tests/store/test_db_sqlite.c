/*
 * The SQLite driver's in-process write lock (store/db_sqlite.c): a write
 * transaction that waits for another thread's gets the database as soon as
 * that one ends, instead of after SQLite's busy backoff, and the lock is
 * released however a transaction ends; and its checkpoints
 * (store/db_sqlite_ckpt.c), which a thread of their own runs while the WAL
 * stays bounded, falling back to the committing connection when that
 * thread is held back. Each test uses a fresh file in a temporary
 * directory. Also sqlite::memory:, one database for the whole process,
 * and the claim a process takes on a database file, and the file layer
 * that writes each transaction's WAL frames with one system call
 * (store/db_sqlite_vfs.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/holdback.h"
#include "store/db.h"
#include "store/db_sqlite_ckpt.h"
#include "store/db_sqlite_vfs.h"

#include <sqlite3.h>

/* Long enough that SQLite's own backoff (sleeps of 1, 2, 5, 10, 15, 20,
 * 25, 25, 25, 50 ms) would take the lock 48 ms after it was released. */
#define HOLD_MS     130
#define LATE_MAX_MS 30

typedef struct fx {
    char dir[64];
    char url[128];
} fx;

typedef struct holder {
    const char *url;
    int hold_ms;
    bool commit; /* false: close the connection inside the transaction */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool begun;
    int64_t ending_ns; /* when it began to end the transaction */
    int rc_begin, rc_end;
} holder;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static db *open_db(const char *url)
{
    char err[256];
    db *d = NULL;
    assert_int_equal(db_open(url, &d, err, sizeof err), 0);
    return d;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/chatplane-dbsq.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->url, sizeof f->url, "sqlite:%s/t.db", f->dir);
    db *d = open_db(f->url);
    assert_int_equal(db_exec_script(d, "CREATE TABLE t (v INTEGER)"), 0);
    db_close(d);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Begins a write transaction, says so, holds it, then commits or closes
 * the connection inside it. */
static void *hold(void *arg)
{
    holder *h = arg;
    db *d = open_db(h->url);
    h->rc_begin = db_begin(d);
    db_exec(d, "INSERT INTO t VALUES (1)", 0, NULL, NULL);
    pthread_mutex_lock(&h->mu);
    h->begun = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    usleep((useconds_t)h->hold_ms * 1000);
    h->ending_ns = now_ns();
    h->rc_end = h->commit ? db_commit(d) : 0;
    db_close(d);
    return NULL;
}

/* Runs hold() on a thread and returns once its transaction has begun. */
static void start_holder(holder *h, pthread_t *th)
{
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    assert_int_equal(pthread_create(th, NULL, hold, h), 0);
    pthread_mutex_lock(&h->mu);
    while (!h->begun) pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static void finish_holder(holder *h, pthread_t th)
{
    pthread_join(th, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    assert_int_equal(h->rc_begin, 0);
    assert_int_equal(h->rc_end, 0);
}

/* db_commit_later on SQLite is db_commit: the row is stored when it
 * returns, before any other statement of the connection. */
static void test_commit_later_commits_at_once(void **state)
{
    fx *f = *state;
    db *d = open_db(f->url), *other = open_db(f->url);
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec(d, "INSERT INTO t VALUES (7)", 0, NULL, NULL), 1);
    assert_int_equal(db_commit_later(d), 0);
    db_result *r = NULL;
    assert_int_equal(db_exec(other, "SELECT count(*) FROM t WHERE v = 7", 0, NULL, &r), 0);
    assert_string_equal(db_result_get(r, 0, 0), "1");
    db_result_free(r);
    /* No transaction is left open: a new one begins. */
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_rollback(d), 0);
    db_close(other);
    db_close(d);
}

/* SQLite has no round trips to save: the answer is there at once, and no
 * row (or NULL) keeps the value. */
static void test_later_answers_at_once(void **state)
{
    fx *f = *state;
    db *d = open_db(f->url);
    assert_int_equal(db_exec(d, "INSERT INTO t VALUES (7)", 0, NULL, NULL), 1);
    const char *seven[] = {"7"}, *eight[] = {"8"};
    int64_t v = -1;
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(
        db_exec_later_int(d, "UPDATE t SET v = v WHERE v = ? RETURNING v * 2", 1, seven, &v), 0);
    assert_int_equal(v, 14);
    v = -1;
    assert_int_equal(
        db_exec_later_int(d, "UPDATE t SET v = v WHERE v = ? RETURNING v * 2", 1, eight, &v), 0);
    assert_int_equal(v, -1);
    assert_int_equal(db_exec_later_int(d, "SELECT NULL", 0, NULL, &v), 0);
    assert_int_equal(v, -1);
    assert_int_equal(db_exec_later_int(d, "SELEC 1", 0, NULL, &v), DB_ERR);
    assert_int_equal(v, -1);
    db_result *r = NULL;
    assert_int_equal(db_exec_later_rows(d, "SELECT v, v + 1 FROM t", 0, NULL, &r), 0);
    assert_int_equal(db_result_rows(r), 1);
    assert_string_equal(db_result_get(r, 0, 1), "8");
    db_result_free(r);
    assert_int_equal(db_exec_later_rows(d, "SELEC 1", 0, NULL, &r), DB_ERR);
    assert_null(r);
    assert_int_equal(db_rollback(d), 0);
    db_close(d);
}

/* A second writer waits for the first and gets the database within
 * LATE_MAX_MS of its commit, where SQLite's backoff would take 48 ms. */
static void test_waiter_goes_next_at_commit(void **state)
{
    fx *f = *state;
    holder h = {.url = f->url, .hold_ms = HOLD_MS, .commit = true};
    pthread_t th;
    start_holder(&h, &th);
    db *d = open_db(f->url);
    int64_t t0 = now_ns();
    assert_int_equal(db_begin(d), 0);
    int64_t got = now_ns();
    assert_int_equal(db_exec(d, "INSERT INTO t VALUES (2)", 0, NULL, NULL), 1);
    assert_int_equal(db_commit(d), 0);
    finish_holder(&h, th);
    assert_true(got >= h.ending_ns);
    assert_true(got - t0 >= (int64_t)(HOLD_MS - 20) * 1000000);
    assert_true(got - h.ending_ns < (int64_t)LATE_MAX_MS * 1000000);
    db_result *r = NULL;
    assert_int_equal(db_exec(d, "SELECT count(*) FROM t", 0, NULL, &r), 0);
    assert_string_equal(db_result_get(r, 0, 0), "2");
    db_result_free(r);
    db_close(d);
}

/* A connection closed inside its transaction releases the lock: the next
 * writer does not wait out the 5 s busy timeout. */
static void test_close_inside_transaction_releases(void **state)
{
    fx *f = *state;
    holder h = {.url = f->url, .hold_ms = 20, .commit = false};
    pthread_t th;
    start_holder(&h, &th);
    db *d = open_db(f->url);
    int64_t t0 = now_ns();
    assert_int_equal(db_begin(d), 0);
    assert_true(now_ns() - t0 < 1000000000);
    assert_int_equal(db_rollback(d), 0);
    finish_holder(&h, th);
    db_close(d);
}

/* ROLLBACK releases the lock, and a transaction after it begins at once. */
static void test_rollback_releases(void **state)
{
    fx *f = *state;
    db *a = open_db(f->url);
    assert_int_equal(db_begin(a), 0);
    assert_int_equal(db_rollback(a), 0);
    holder h = {.url = f->url, .hold_ms = 0, .commit = true};
    pthread_t th;
    int64_t t0 = now_ns();
    start_holder(&h, &th);
    finish_holder(&h, th);
    assert_true(now_ns() - t0 < 1000000000);
    assert_int_equal(db_begin(a), 0);
    assert_int_equal(db_commit(a), 0);
    db_close(a);
}

/* The WAL's length in frames of a 4 KiB page, from its file's size. */
static long wal_frames(const fx *f)
{
    char path[160];
    snprintf(path, sizeof path, "%s/t.db-wal", f->dir);
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    return st.st_size <= 32 ? 0 : (long)((st.st_size - 32) / (4096 + 24));
}

/*
 * Commits n rows of 3,000 random bytes, one per transaction, pausing
 * pause_us after every `every` commits, and returns the longest WAL seen
 * after a commit. A checkpoint that runs while commits go on cannot copy
 * what they add, so the pauses decide whether a passive checkpoint ever
 * copies all of the WAL, after which SQLite reuses it from its start.
 */
static long write_rows(db *d, const fx *f, int n, int every, useconds_t pause_us)
{
    long longest = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(db_begin(d), 0);
        assert_int_equal(db_exec(d, "INSERT INTO t VALUES (randomblob(3000))", 0, NULL, NULL), 1);
        assert_int_equal(db_commit(d), 0);
        long frames = wal_frames(f);
        if (frames > longest) longest = frames;
        if (i % every == every - 1) usleep(pause_us);
    }
    return longest;
}

/* What one write_rows did to the WAL. */
typedef struct wal_trial {
    long longest;             /* the longest WAL seen, in frames */
    long pages;               /* the database's pages at the end */
    unsigned long background; /* checkpoints by the checkpointer meanwhile */
    unsigned long fallback;   /* checkpoints by commits at the hard length */
} wal_trial;

/* Runs write_rows on a new connection with the checkpointer woken at soft
 * pages, the fallback at hard and the checkpointer held back when paused,
 * then puts the defaults back. */
static wal_trial wal_trial_run(const fx *f, unsigned soft, unsigned hard, bool paused, int n,
                               int every, useconds_t pause_us)
{
    wal_trial t = {0};
    unsigned long bg0, fb0, bg1, fb1;
    db__sqlite_ckpt_tune(soft, hard, paused);
    db__sqlite_ckpt_counts(&bg0, &fb0);
    db *d = open_db(f->url);
    t.longest = write_rows(d, f, n, every, pause_us);
    db__sqlite_ckpt_counts(&bg1, &fb1);
    db_result *r = NULL;
    assert_int_equal(db_exec(d, "PRAGMA page_count", 0, NULL, &r), 0);
    t.pages = atol(db_result_get(r, 0, 0));
    db_result_free(r);
    db_close(d);
    db__sqlite_ckpt_tune(0, 0, false);
    t.background = bg1 - bg0;
    t.fallback = fb1 - fb0;
    return t;
}

/*
 * With the checkpointer woken at 100 pages and no fallback before 100,000,
 * 3,000 commits that write over 3,000 pages, pausing 50 ms every 100 of
 * them, leave a WAL far shorter than that: the checkpointer ran and the
 * WAL's frames were reused. On an idle machine the longest WAL is 600 to
 * 1,200 frames; the bound of two thirds leaves room for a loaded one, on
 * which a checkpoint may miss a pause or two before the WAL starts over
 * (without the checkpointer it would hold every one of the 3,000 frames).
 */
static void test_checkpointer_bounds_wal(void **state)
{
    fx *f = *state;
    wal_trial t = wal_trial_run(f, 100, 100000, false, 3000, 100, 50000);
    assert_true(t.pages > 3000);
    assert_true(t.background > 0);
    assert_int_equal(t.fallback, 0);
    assert_true(t.longest > 100);
    assert_true(t.longest < t.pages * 2 / 3);
}

/*
 * Under commits with hardly a pause between them a passive checkpoint never
 * copies the WAL's end before the next commit lands, so the WAL would grow
 * to the hard length and the committing connection would checkpoint
 * itself. Once the WAL is half that long the checkpointer finishes
 * its checkpoint under the process's write lock instead, and the WAL
 * starts over: no fallback, and the WAL stays under the hard length.
 */
static void test_a_long_wal_starts_over_under_steady_commits(void **state)
{
    fx *f = *state;
    wal_trial t = wal_trial_run(f, 100, 4000, false, 8000, 1, 200);
    assert_true(t.background > 0);
    assert_int_equal(t.fallback, 0);
    assert_true(t.longest >= 2000);
    assert_true(t.longest < 4000);
}

/*
 * A checkpointer begins a checkpoint no sooner than the pause after its
 * previous one began: commits that wake it for 600 ms with a pause of
 * 150 ms get at most five checkpoints (at 0, 150, 300, 450 and 600 ms),
 * and at least one. Without the pause the same commits get more.
 */
static long checkpoints_while_committing(const fx *f, int pause_ms)
{
    unsigned long bg0, fb0, bg1, fb1;
    db__sqlite_ckpt_tune(1, 100000, false);
    db__sqlite_ckpt_tune_pause(pause_ms);
    db__sqlite_ckpt_counts(&bg0, &fb0);
    db *d = open_db(f->url);
    int64_t t0 = now_ns();
    while (now_ns() - t0 < 600 * 1000000LL) {
        assert_int_equal(db_begin(d), 0);
        assert_int_equal(db_exec(d, "INSERT INTO t VALUES (randomblob(3000))", 0, NULL, NULL), 1);
        assert_int_equal(db_commit(d), 0);
        usleep(1000);
    }
    db__sqlite_ckpt_counts(&bg1, &fb1);
    db_close(d);
    db__sqlite_ckpt_tune(0, 0, false);
    db__sqlite_ckpt_tune_pause(-1);
    assert_int_equal(fb1, fb0);
    return (long)(bg1 - bg0);
}

static void test_checkpoints_are_paced(void **state)
{
    fx *f = *state;
    long paced = checkpoints_while_committing(f, 150);
    assert_true(paced >= 1);
    assert_true(paced <= 5);
    assert_true(checkpoints_while_committing(f, 0) > 5);
}

/* The time a checkpoint may begin, from the pause and a run's start. */
static void test_checkpoint_due(void **state)
{
    (void)state;
    const int64_t ms = 1000000;
    /* No checkpoint yet and no start: at once. */
    assert_int_equal(db__sqlite_ckpt_due(0, 50 * ms, 0, 7 * ms, 1000, 16000), 0);
    /* The pause after the previous checkpoint. */
    assert_int_equal(db__sqlite_ckpt_due(1000 * ms, 50 * ms, 0, 1010 * ms, 1000, 16000), 1050 * ms);
    /* A start at 1,020 ms holds it until 1,120 ms, past the pause. */
    assert_int_equal(db__sqlite_ckpt_due(1000 * ms, 50 * ms, 1020 * ms, 1010 * ms, 1000, 16000),
                     1120 * ms);
    /* A start long ago leaves the pause. */
    assert_int_equal(db__sqlite_ckpt_due(1000 * ms, 50 * ms, 500 * ms, 1010 * ms, 1000, 16000),
                     1050 * ms);
    /* Starts that go on hold it no later than a second after it was asked. */
    assert_int_equal(db__sqlite_ckpt_due(1000 * ms, 50 * ms, 2000 * ms, 1010 * ms, 1000, 16000),
                     2010 * ms);
    /* A WAL at half the hard length is not held back: the pause
     * only. Just below it, it is. */
    assert_int_equal(db__sqlite_ckpt_due(1000 * ms, 50 * ms, 1020 * ms, 1010 * ms, 8000, 16000),
                     1050 * ms);
    assert_int_equal(db__sqlite_ckpt_due(1000 * ms, 50 * ms, 1020 * ms, 1010 * ms, 7999, 16000),
                     1120 * ms);
    assert_int_equal(db__sqlite_ckpt_due(0, 50 * ms, 1020 * ms, 1010 * ms, 8000, 16000), 0);
}

/* Commits one row, which wakes the checkpointer (woken at 1 page), and
 * returns how long, in ms, until it has run a checkpoint, while
 * db_hold_background is called every hold_every_ms (0: only once, before
 * the commit). *longest_gap_ms is the longest time between two calls. */
static long ms_until_checkpoint(db *d, int hold_every_ms, long *longest_gap_ms)
{
    unsigned long bg0, fb0, bg, fb;
    db__sqlite_ckpt_counts(&bg0, &fb0);
    int64_t t0 = now_ns(), held = t0;
    db_hold_background();
    *longest_gap_ms = 0;
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec(d, "INSERT INTO t VALUES (randomblob(3000))", 0, NULL, NULL), 1);
    assert_int_equal(db_commit(d), 0);
    for (;;) {
        db__sqlite_ckpt_counts(&bg, &fb);
        int64_t now = now_ns();
        if (bg > bg0) return (long)((now - t0) / 1000000);
        assert_true(now - t0 < 10 * 1000000000LL);
        if (hold_every_ms && now - held >= hold_every_ms * 1000000LL) {
            long gap = (long)((now - held) / 1000000);
            if (gap > *longest_gap_ms) *longest_gap_ms = gap;
            db_hold_background();
            held = now;
        }
        usleep(2000);
    }
}

/*
 * After a run's start a checkpoint waits until no start has come for
 * 100 ms; starts every 20 ms hold it back for a second after the commit
 * that asked for it, and no longer. (Were this thread kept off its core
 * for 100 ms between two starts, the checkpoint could begin in the pause,
 * so that case is not judged.)
 */
static void test_checkpoints_hold_back_after_a_start(void **state)
{
    fx *f = *state;
    long gap_once, gap_steady;
    db__sqlite_ckpt_tune(1, 100000, false);
    db *d = open_db(f->url);
    long once = ms_until_checkpoint(d, 0, &gap_once);
    /* The next one is past the previous one's pause (50 ms) as well. */
    usleep(60000);
    long steady = ms_until_checkpoint(d, 20, &gap_steady);
    db_close(d);
    db__sqlite_ckpt_tune(0, 0, false);
    assert_true(once >= HOLDBACK_QUIET_MS);
    assert_true(once < HOLDBACK_LATEST_MS);
    assert_true(steady >= HOLDBACK_LATEST_MS || gap_steady >= HOLDBACK_QUIET_MS);
    assert_true(steady < 3 * HOLDBACK_LATEST_MS);
}

/*
 * A WAL at half the hard length is checkpointed while starts go
 * on: the checkpointer, waiting out a start's hold for a short WAL, is
 * woken by the commit that makes it long and begins at once, rather than
 * letting the WAL run on to the hard length.
 */
static void test_a_long_wal_is_not_held_back(void **state)
{
    fx *f = *state;
    unsigned long bg0, fb0, bg, fb;
    db__sqlite_ckpt_tune(1, 400, false);
    db *d = open_db(f->url);
    usleep(60000); /* past the pause after any earlier checkpoint */
    db__sqlite_ckpt_counts(&bg0, &fb0);
    db_hold_background();
    assert_int_equal(db_begin(d), 0);
    assert_int_equal(db_exec(d, "INSERT INTO t VALUES (randomblob(10))", 0, NULL, NULL), 1);
    assert_int_equal(db_commit(d), 0);
    usleep(1000);
    db__sqlite_ckpt_counts(&bg, &fb);
    assert_int_equal(bg, bg0); /* held */
    int64_t t0 = now_ns(), held = t0;
    assert_int_equal(db_begin(d), 0);
    for (int i = 0; i < 300; i++)
        assert_int_equal(db_exec(d, "INSERT INTO t VALUES (randomblob(3000))", 0, NULL, NULL), 1);
    assert_int_equal(db_commit(d), 0);
    for (;;) {
        db__sqlite_ckpt_counts(&bg, &fb);
        int64_t now = now_ns();
        if (bg > bg0) break;
        assert_true(now - t0 < 10 * 1000000000LL);
        if (now - held >= 20 * 1000000LL) {
            db_hold_background();
            held = now;
        }
        usleep(1000);
    }
    long waited = (long)((now_ns() - t0) / 1000000);
    db_close(d);
    db__sqlite_ckpt_tune(0, 0, false);
    assert_int_equal(fb, fb0);
    /* Not woken, it would have begun at the end of the first hold, about
     * HOLDBACK_QUIET_MS after it. */
    assert_true(waited < HOLDBACK_QUIET_MS / 2);
}

/*
 * With the checkpointer held back, the committing connection checkpoints
 * once the WAL reaches 200 pages, and the WAL never grows past that bound
 * by more than one commit's pages.
 */
static void test_fallback_when_checkpointer_held(void **state)
{
    fx *f = *state;
    wal_trial t = wal_trial_run(f, 50, 200, true, 1000, 100, 50000);
    assert_int_equal(t.background, 0);
    assert_true(t.fallback > 0);
    assert_true(t.longest >= 200);
    assert_true(t.longest <= 210);
}

/* The text of a small file, or "" when it cannot be read. */
static void read_small(const char *path, char *out, size_t outlen)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    ssize_t n = read(fd, out, outlen - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
}

static int64_t count_t(db *d)
{
    db_result *r = NULL;
    assert_int_equal(db_exec(d, "SELECT COUNT(*) FROM t", 0, NULL, &r), 0);
    int64_t n = db_result_int(r, 0, 0, -1);
    db_result_free(r);
    return n;
}

/*
 * Every connection of the process to sqlite::memory: sees one database:
 * what one commits the others read; without a WAL, a reader waits (within
 * the busy timeout) for another connection's open write transaction and
 * then reads what it committed, and a second writer waits the same way; no
 * checkpoint ever runs; and the database is gone once its last connection
 * closes.
 */
static void test_memory_is_one_database_for_the_process(void **state)
{
    (void)state;
    const char *url = "sqlite::memory:";
    unsigned long bg0, fb0, bg1, fb1;
    db__sqlite_ckpt_tune(1, 2, false);
    db__sqlite_ckpt_counts(&bg0, &fb0);
    db *a = open_db(url), *b = open_db(url);
    db_result *r = NULL;
    assert_int_equal(db_exec(a, "PRAGMA journal_mode", 0, NULL, &r), 0);
    assert_string_equal(db_result_get(r, 0, 0), "memory");
    db_result_free(r);
    assert_int_equal(db_exec_script(a, "CREATE TABLE t (v INTEGER)"), 0);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(db_begin(a), 0);
        assert_int_equal(db_exec(a, "INSERT INTO t VALUES (1)", 0, NULL, NULL), 1);
        assert_int_equal(db_commit(a), 0);
    }
    assert_int_equal(count_t(b), 50);

    holder h = {.url = url, .hold_ms = HOLD_MS, .commit = true};
    pthread_t th;
    start_holder(&h, &th);
    int64_t t0 = now_ns();
    assert_int_equal(count_t(b), 51);
    assert_true(now_ns() - t0 > (int64_t)(HOLD_MS / 2) * 1000000);
    assert_int_equal(db_begin(b), 0);
    assert_int_equal(db_exec(b, "INSERT INTO t VALUES (2)", 0, NULL, NULL), 1);
    assert_int_equal(db_commit(b), 0);
    finish_holder(&h, th);
    assert_int_equal(count_t(a), 52);

    db__sqlite_ckpt_counts(&bg1, &fb1);
    db__sqlite_ckpt_tune(0, 0, false);
    assert_int_equal(bg1, bg0);
    assert_int_equal(fb1, fb0);
    db_close(a);
    db_close(b);
    db *c = open_db(url);
    assert_true(db_exec(c, "SELECT COUNT(*) FROM t", 0, NULL, NULL) < 0);
    assert_non_null(strstr(db_errmsg(c), "no such table: t"));
    db_close(c);
}

/*
 * The claim on a database file: held, it names this process in the lock
 * file and refuses a second claim, naming the database, the process and
 * the lock file; released, it can be taken again. URLs that need no claim
 * give none.
 */
static void test_claim_is_exclusive(void **state)
{
    fx *f = *state;
    char err[512], lock[160], text[64], want[512];
    snprintf(lock, sizeof lock, "%s/t.db.lock", f->dir);
    db_claim *c = NULL, *again = NULL;
    assert_int_equal(db_claim_take(f->url, &c, err, sizeof err), 0);
    assert_non_null(c);
    read_small(lock, text, sizeof text);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    assert_string_equal(text, pid);

    assert_int_equal(db_claim_take(f->url, &again, err, sizeof err), DB_ERR_CLAIMED);
    assert_null(again);
    snprintf(want, sizeof want,
             "cannot use database %s: another chatplane process (pid %ld) is using it and holds "
             "its lock file %s; only one process at a time may serve, ask or migrate on a SQLite "
             "database",
             f->url, (long)getpid(), lock);
    assert_string_equal(err, want);
    /* The database itself still opens: the claim is for whole processes. */
    db_close(open_db(f->url));

    db_claim_release(c);
    read_small(lock, text, sizeof text);
    assert_string_equal(text, "");
    assert_int_equal(db_claim_take(f->url, &again, err, sizeof err), 0);
    assert_non_null(again);
    db_claim_release(again);

    for (const char *const *u = (const char *const[]){"sqlite::memory:", "postgres://h/db", NULL};
         *u; u++) {
        c = (db_claim *)1;
        assert_int_equal(db_claim_take(*u, &c, err, sizeof err), 0);
        assert_null(c);
        db_claim_release(c);
    }
    assert_int_equal(db_claim_take("sqlite:/nonexistent-chatplane-dir/x.db", &c, err, sizeof err),
                     DB_ERR);
    assert_string_equal(err, "cannot use database sqlite:/nonexistent-chatplane-dir/x.db: cannot "
                             "open its lock file /nonexistent-chatplane-dir/x.db.lock: No such "
                             "file or directory");
}

/* Inserts n rows of 3,000 random bytes (a page each) in one transaction,
 * then commits it or rolls it back. */
static void write_pages(db *d, int n, bool commit)
{
    assert_int_equal(db_begin(d), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(db_exec(d, "INSERT INTO t VALUES (randomblob(3000))", 0, NULL, NULL), 1);
    assert_int_equal(commit ? db_commit(d) : db_rollback(d), 0);
}

static void commit_pages(db *d, int n)
{
    write_pages(d, n, true);
}

/*
 * A transaction's frames (a header and a page each, two writes SQLite asks
 * for) reach the WAL with one system call, and a transaction longer than
 * the layer holds back with one call per 16 frames. The checkpointer is
 * held back so that the WAL only grows.
 */
static void test_wal_frames_written_together(void **state)
{
    fx *f = *state;
    db__sqlite_ckpt_tune(1000000, 1000000, true);
    db *d = open_db(f->url);
    commit_pages(d, 1);
    size_t calls0, writes0, calls1, writes1;
    long frames0 = wal_frames(f);
    db_sqlite_vfs_counts(&calls0, &writes0);
    commit_pages(d, 5);
    db_sqlite_vfs_counts(&calls1, &writes1);
    long frames = wal_frames(f) - frames0;
    assert_true(frames >= 5);
    assert_true(frames <= 16);
    assert_int_equal(writes1 - writes0, 2 * (size_t)frames);
    assert_int_equal(calls1 - calls0, 1);

    frames0 = wal_frames(f);
    commit_pages(d, 60);
    db_sqlite_vfs_counts(&calls0, &writes0);
    frames = wal_frames(f) - frames0;
    assert_true(frames >= 60);
    assert_int_equal(writes0 - writes1, 2 * (size_t)frames);
    assert_int_equal(calls0 - calls1, (size_t)(frames + 15) / 16);
    db_close(d);
    db__sqlite_ckpt_tune(0, 0, false);
}

/* Rows of t and PRAGMA integrity_check, read through SQLite's default
 * layer on a connection of its own: its own descriptor, nothing of this
 * process's connections but the file. */
static void read_plainly(const fx *f, long *rows, char *check, size_t checklen)
{
    char path[160];
    snprintf(path, sizeof path, "%s/t.db", f->dir);
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(c, "SELECT count(*) FROM t", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *rows = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(c, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(check, checklen, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(c);
}

/*
 * A commit is in the file when it returns: another connection, on SQLite's
 * default layer, reads every row at once while the writing connection is
 * still open. With a page cache of 5 pages, SQLite writes a transaction's
 * pages to the WAL before its commit and reads them back: a transaction
 * rolled back after that leaves nothing, and one committed after it leaves
 * its rows and an intact database.
 */
static void test_wal_commit_visible_at_once(void **state)
{
    fx *f = *state;
    db *d = open_db(f->url);
    assert_int_equal(db_exec(d, "PRAGMA cache_size = 5", 0, NULL, NULL), 0);
    long rows = -1;
    char check[64];
    commit_pages(d, 3);
    read_plainly(f, &rows, check, sizeof check);
    assert_int_equal(rows, 3);
    assert_string_equal(check, "ok");

    write_pages(d, 200, false);
    commit_pages(d, 200);
    db_result *r = NULL;
    assert_int_equal(db_exec(d, "SELECT count(*) FROM t", 0, NULL, &r), 0);
    assert_string_equal(db_result_get(r, 0, 0), "203");
    db_result_free(r);
    read_plainly(f, &rows, check, sizeof check);
    assert_int_equal(rows, 203);
    assert_string_equal(check, "ok");
    db_close(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_later_commits_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_later_answers_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiter_goes_next_at_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_inside_transaction_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpointer_bounds_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fallback_when_checkpointer_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_long_wal_starts_over_under_steady_commits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_are_paced, setup, teardown),
        cmocka_unit_test(test_checkpoint_due),
        cmocka_unit_test_setup_teardown(test_a_long_wal_is_not_held_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_hold_back_after_a_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_is_one_database_for_the_process, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_claim_is_exclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_frames_written_together, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_commit_visible_at_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
