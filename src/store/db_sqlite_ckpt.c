/*
 * db_sqlite_ckpt: WAL checkpoints off the committing connection.
 *
 * SQLite's automatic checkpoint runs inside the commit that takes the WAL
 * past 1,000 pages: that commit copies the WAL back into the database and
 * syncs it, 10 to 25 ms on the event log's writer thread, and every stream
 * waits for it. Here each connection turns automatic checkpoints off and
 * registers a WAL hook instead. A commit that leaves the WAL at
 * DB_SQLITE_CKPT_SOFT pages or more wakes the checkpointer of its database
 * file: one thread per file in the process, started at the first wake-up,
 * with a connection of its own, running PASSIVE checkpoints, which go on
 * while the writer commits. So that the WAL stays bounded when that thread
 * falls behind (or cannot open the file), a commit that leaves it at
 * DB_SQLITE_CKPT_HARD pages or more runs a PASSIVE checkpoint itself, as
 * SQLite would have.
 *
 * Once past the soft length every commit wakes the checkpointer, and under
 * a steady stream of commits its checkpoints never catch up with the WAL's
 * end, so it would run back to back: over a thousand checkpoints in six
 * seconds of a hundred streams, each copying the same hot pages again and
 * syncing the file twice. A checkpointer therefore begins a checkpoint no
 * sooner than DB_SQLITE_CKPT_PAUSE_MS after its previous one began; a
 * wake-up during the pause is kept for its end.
 *
 * A checkpoint copies a thousand pages or more and syncs the file twice,
 * milliseconds of a core, and commits cross the soft length when a burst
 * of runs ends, which is when the next burst starts. While runs start
 * (db_hold_background) checkpoints therefore hold back by the rule of
 * core/holdback.h, from the commit that asked for one, but only while the
 * WAL is shorter than half the hard length: a burst of a thousand starts
 * writes that much within a second, and a WAL let run to the hard
 * length makes a commit checkpoint itself, 60 ms or more during which
 * every writer of the process waits.
 *
 * The registry of checkpointers, their flags and the tuning for tests are
 * guarded by one mutex, which every commit takes briefly.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/holdback.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"
#include "store/db.h"
#include "store/db_sqlite_ckpt.h"
#include "store/db_sqlite_lock.h"

struct db_sqlite_ckpt {
    struct db_sqlite_ckpt *next;
    char *path; /* the database file's full name; owned */
    unsigned refs;
    pthread_cond_t cv;
    pthread_t thread;
    bool started, pending, stop;
    int64_t asked_ns; /* when pending was last set (clock_mono_ns) */
    unsigned pages;   /* the WAL's length at the latest commit past the soft one */
    bool long_told;   /* the checkpointer was woken for a long WAL while held */
};

static struct {
    pthread_mutex_t mu;
    db_sqlite_ckpt *list;
    unsigned soft, hard;
    bool paused;
    int64_t pause_ns;
} ck = {PTHREAD_MUTEX_INITIALIZER, NULL,  DB_SQLITE_CKPT_SOFT,
        DB_SQLITE_CKPT_HARD,       false, DB_SQLITE_CKPT_PAUSE_MS * 1000000LL};

static atomic_ulong background_checkpoints, fallback_checkpoints;

int64_t db__sqlite_ckpt_due(int64_t last_ns, int64_t pause_ns, int64_t hold_ns, int64_t asked_ns,
                            unsigned pages, unsigned hard)
{
    int64_t due = last_ns ? last_ns + pause_ns : 0;
    if (pages >= hard / 2) return due;
    int64_t held = holdback_until(hold_ns, asked_ns);
    return held > due ? held : due;
}

/*
 * Opens the checkpointer's connection. A new connection has not read the
 * file yet and would take a checkpoint for a no-op, so it reads the
 * schema version once, which opens the WAL.
 */
static int db_sqlite_ckpt__open_conn(const char *path, sqlite3 **conn)
{
    int rc = sqlite3_open_v2(path, conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(*conn, "PRAGMA schema_version", NULL, NULL, NULL);
    return rc;
}

/*
 * One checkpoint of the checkpointer. A passive checkpoint copies what it
 * can while commits go on, but under a steady stream of commits it never
 * copies the WAL's last frames before the next commit lands, and the WAL
 * starts over from its beginning only after a checkpoint that copied it
 * all: the WAL grows on to the hard length, where a commit checkpoints
 * itself while every writer waits, 60 ms or more at a thousand runs. So
 * once the WAL is long (restart), a second passive checkpoint runs under
 * the process's write lock: it copies only what came in during the first,
 * no commit lands meanwhile, and the next commit starts the WAL over.
 * Returns true when the checkpoint ran.
 */
static bool db_sqlite_ckpt__run(sqlite3 *conn, bool restart)
{
    int rc = sqlite3_wal_checkpoint_v2(conn, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK || !restart) return rc == SQLITE_OK;
    if (!db__sqlite_write_lock(DB_SQLITE_CKPT_LOCK_WAIT_MS)) return true;
    (void)sqlite3_wal_checkpoint_v2(conn, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    db__sqlite_write_unlock();
    return true;
}

/*
 * The checkpointer's thread: waits for a wake-up, checkpoints, and closes
 * its connection when told to stop. Its connection is opened at the first
 * checkpoint; if that fails it tries again at the next wake-up, and the
 * writers' fallback bounds the WAL meanwhile.
 */
static void *db_sqlite_ckpt__checkpointer_main(void *arg)
{
    db_sqlite_ckpt *c = arg;
    sqlite3 *conn = NULL;
    int64_t last = 0; /* when the previous checkpoint began; 0 before the first */
    pthread_mutex_lock(&ck.mu);
    for (;;) {
        while (!c->stop && (!c->pending || ck.paused)) pthread_cond_wait(&c->cv, &ck.mu);
        if (c->stop) break;
        int64_t due = db__sqlite_ckpt_due(last, ck.pause_ns, db_background_held_ns(), c->asked_ns,
                                          c->pages, ck.hard);
        int64_t now = clock_mono_ns();
        if (now < due) {
            struct timespec until = {due / 1000000000, due % 1000000000};
            pthread_cond_timedwait(&c->cv, &ck.mu, &until);
            continue;
        }
        last = now;
        c->pending = false;
        c->long_told = false;
        bool restart = c->pages >= ck.hard / 2;
        pthread_mutex_unlock(&ck.mu);
        if (!conn && db_sqlite_ckpt__open_conn(c->path, &conn) != SQLITE_OK) {
            sqlite3_close_v2(conn);
            conn = NULL;
        }
        if (conn && db_sqlite_ckpt__run(conn, restart))
            atomic_fetch_add(&background_checkpoints, 1);
        pthread_mutex_lock(&ck.mu);
    }
    pthread_mutex_unlock(&ck.mu);
    sqlite3_close_v2(conn);
    return NULL;
}

/*
 * The WAL hook, called after every commit with the WAL's length in pages.
 * Past the hard length the committing connection checkpoints itself;
 * past the soft one it wakes the checkpointer, starting it the first time.
 */
static int db_sqlite_ckpt__on_wal_commit(void *arg, sqlite3 *conn, const char *schema, int pages)
{
    db_sqlite_ckpt *c = arg;
    pthread_mutex_lock(&ck.mu);
    unsigned soft = ck.soft, hard = ck.hard;
    if ((unsigned)pages >= soft) {
        if (!c->started)
            c->started =
                pthread_create(&c->thread, NULL, db_sqlite_ckpt__checkpointer_main, c) == 0;
        /* Signalled once per checkpoint: a checkpointer that already knows
         * of work is either checkpointing or pausing until it may, and
         * waking it for every commit meanwhile costs each commit a thread
         * switch. */
        if (!c->pending) {
            pthread_cond_signal(&c->cv);
            c->asked_ns = clock_mono_ns();
        } else if (!c->long_told && (unsigned)pages >= hard / 2) {
            /* It may be waiting out a hold that this length ends. */
            pthread_cond_signal(&c->cv);
            c->long_told = true;
        }
        c->pending = true;
    }
    c->pages = (unsigned)pages;
    pthread_mutex_unlock(&ck.mu);
    if ((unsigned)pages >= hard &&
        sqlite3_wal_checkpoint_v2(conn, schema, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) == SQLITE_OK)
        atomic_fetch_add(&fallback_checkpoints, 1);
    return SQLITE_OK;
}

db_sqlite_ckpt *db__sqlite_ckpt_attach(sqlite3 *conn)
{
    const char *path = sqlite3_db_filename(conn, "main");
    if (!path || !*path) return NULL;
    if (sqlite3_exec(conn, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL) != SQLITE_OK)
        return NULL;
    pthread_mutex_lock(&ck.mu);
    db_sqlite_ckpt *c = ck.list;
    while (c && strcmp(c->path, path) != 0) c = c->next;
    if (!c) {
        c = xcalloc(1, sizeof *c);
        c->path = xstrdup(path);
        /* Timed waits count on the monotonic clock, like clock_mono_ns. */
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&c->cv, &attr);
        pthread_condattr_destroy(&attr);
        c->next = ck.list;
        ck.list = c;
    }
    c->refs++;
    pthread_mutex_unlock(&ck.mu);
    sqlite3_wal_hook(conn, db_sqlite_ckpt__on_wal_commit, c);
    return c;
}

/*
 * Drops one reference. The last one unlinks the checkpointer, so that a
 * new connection to the same file gets a new one, then stops and joins its
 * thread outside the registry's mutex, which the thread needs to see the
 * stop.
 */
void db__sqlite_ckpt_detach(db_sqlite_ckpt *c)
{
    if (!c) return;
    pthread_mutex_lock(&ck.mu);
    if (--c->refs > 0) {
        pthread_mutex_unlock(&ck.mu);
        return;
    }
    db_sqlite_ckpt **p = &ck.list;
    while (*p != c) p = &(*p)->next;
    *p = c->next;
    c->stop = true;
    pthread_cond_signal(&c->cv);
    bool started = c->started;
    pthread_mutex_unlock(&ck.mu);
    if (started) pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->cv);
    free(c->path);
    free(c);
}

void db__sqlite_ckpt_tune(unsigned soft, unsigned hard, bool paused)
{
    pthread_mutex_lock(&ck.mu);
    ck.soft = soft ? soft : DB_SQLITE_CKPT_SOFT;
    ck.hard = hard ? hard : DB_SQLITE_CKPT_HARD;
    ck.paused = paused;
    for (db_sqlite_ckpt *c = ck.list; c; c = c->next) pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&ck.mu);
}

void db__sqlite_ckpt_tune_pause(int ms)
{
    pthread_mutex_lock(&ck.mu);
    ck.pause_ns = (ms < 0 ? DB_SQLITE_CKPT_PAUSE_MS : ms) * 1000000LL;
    for (db_sqlite_ckpt *c = ck.list; c; c = c->next) pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&ck.mu);
}

void db__sqlite_ckpt_counts(unsigned long *background, unsigned long *fallback)
{
    *background = atomic_load(&background_checkpoints);
    *fallback = atomic_load(&fallback_checkpoints);
}
