/*
 * dbpool: store work off the loop thread. A few threads, each with its own
 * store connection, run submitted work functions; their done callbacks run
 * back on the loop thread inside dbpool_drain, which the loop calls when
 * dbpool_fd becomes readable. Reads go here; writes that must be ordered
 * with events go through the eventlog instead.
 */
#ifndef CHATPLANE_DBPOOL_H
#define CHATPLANE_DBPOOL_H

#include <stddef.h>

#include "store/store.h"

typedef struct dbpool dbpool;

/* Runs on a pool thread with that thread's connection. */
typedef void (*dbpool_work_fn)(store *s, void *arg);
/* Runs on the loop thread after work finished. */
typedef void (*dbpool_done_fn)(void *arg);

int dbpool_start(const char *url, int threads, dbpool **out, char *err, size_t errlen);
/* Finishes queued work, stops the threads, runs remaining done callbacks
 * and, on the calling thread, any work they submit meanwhile. */
void dbpool_stop(dbpool *p);
void dbpool_submit(dbpool *p, dbpool_work_fn work, dbpool_done_fn done, void *arg);
int dbpool_fd(const dbpool *p);
void dbpool_drain(dbpool *p);

#endif
