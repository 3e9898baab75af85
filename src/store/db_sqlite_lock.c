#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "lib/clock.h"
#include "store/db_sqlite_lock.h"

/*
 * The process's write lock. A release while threads wait hands the lock to
 * one of them (handoff): the releasing thread, typically the event log's
 * writer about to start its next batch, queues behind them instead of
 * taking the lock straight back.
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool held, handoff;
    unsigned waiting;
} write_lock = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, 0};

/* A thread that holds the lock through one connection and begins on
 * another does not wait for itself: SQLite decides, as before. */
static _Thread_local bool write_lock_mine;

bool db__sqlite_write_lock(int timeout_ms)
{
    if (write_lock_mine) return false;
    struct timespec dl;
    clock_deadline(&dl, timeout_ms);
    bool queued = false, got = false, late = false;
    pthread_mutex_lock(&write_lock.mu);
    for (;;) {
        if (!write_lock.held && (!write_lock.handoff || queued)) {
            write_lock.held = got = true;
            write_lock.handoff = false;
            break;
        }
        if (late) break;
        if (!queued) {
            queued = true;
            write_lock.waiting++;
        }
        late = pthread_cond_timedwait(&write_lock.cv, &write_lock.mu, &dl) == ETIMEDOUT;
    }
    if (queued && --write_lock.waiting == 0 && !write_lock.held) write_lock.handoff = false;
    pthread_mutex_unlock(&write_lock.mu);
    write_lock_mine = got;
    return got;
}

bool db__sqlite_write_trylock(void)
{
    if (write_lock_mine) return false;
    pthread_mutex_lock(&write_lock.mu);
    bool got = !write_lock.held && !write_lock.handoff;
    if (got) write_lock.held = true;
    pthread_mutex_unlock(&write_lock.mu);
    write_lock_mine = got;
    return got;
}

void db__sqlite_write_unlock(void)
{
    pthread_mutex_lock(&write_lock.mu);
    write_lock.held = false;
    write_lock.handoff = write_lock.waiting > 0;
    pthread_cond_broadcast(&write_lock.cv);
    pthread_mutex_unlock(&write_lock.mu);
    write_lock_mine = false;
}
