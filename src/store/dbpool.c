/*
 * dbpool: a few threads with their own store connections (see dbpool.h).
 *
 * One mutex guards two FIFO queues: `pending` holds submitted work not yet
 * taken by a thread, `done` holds finished work waiting for dbpool_drain on
 * the loop thread, which an eventfd wakes. Work runs in parallel across the
 * threads, so done callbacks arrive in the order work finishes, not the
 * order it was submitted.
 */
#include "store/dbpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/xmalloc.h"

#define DBPOOL_MAX_THREADS 16

typedef struct dbpool_item {
    dbpool_work_fn work;
    dbpool_done_fn done;
    void *arg;
    struct dbpool_item *next;
} dbpool_item;

typedef struct dbpool_queue {
    dbpool_item *head, *tail;
} dbpool_queue;

typedef struct dbpool_worker {
    dbpool *pool;
    pthread_t thread;
    store *st;
} dbpool_worker;

struct dbpool {
    pthread_mutex_t mu;
    pthread_cond_t work;
    dbpool_queue pending, done;
    bool stopping;
    int efd;
    int nworkers;
    dbpool_worker workers[DBPOOL_MAX_THREADS];
};

static void dbpool__queue_push(dbpool_queue *q, dbpool_item *it)
{
    it->next = NULL;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
}

static dbpool_item *dbpool__queue_pop(dbpool_queue *q)
{
    dbpool_item *it = q->head;
    if (it) {
        q->head = it->next;
        if (!q->head) q->tail = NULL;
    }
    return it;
}

static void dbpool__wake_loop(dbpool *p)
{
    uint64_t one = 1;
    /* A full counter still wakes the loop, so a failed write is harmless. */
    ssize_t n = write(p->efd, &one, sizeof one);
    (void)n;
}

static void *dbpool__worker_main(void *arg)
{
    dbpool_worker *w = arg;
    dbpool *p = w->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->pending.head && !p->stopping) pthread_cond_wait(&p->work, &p->mu);
        dbpool_item *it = dbpool__queue_pop(&p->pending);
        if (!it) break; /* stopping with nothing left to do */
        pthread_mutex_unlock(&p->mu);
        it->work(w->st, it->arg);
        pthread_mutex_lock(&p->mu);
        dbpool__queue_push(&p->done, it);
        dbpool__wake_loop(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int dbpool_start(const char *url, int threads, dbpool **out, char *err, size_t errlen)
{
    *out = NULL;
    if (threads < 1) threads = 1;
    if (threads > DBPOOL_MAX_THREADS) threads = DBPOOL_MAX_THREADS;
    dbpool *p = xcalloc(1, sizeof *p);
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        snprintf(err, errlen, "cannot create an eventfd for the read pool");
        free(p);
        return -1;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    for (int i = 0; i < threads; i++) {
        dbpool_worker *w = &p->workers[i];
        w->pool = p;
        if (store_open(url, &w->st, err, errlen) != 0) goto fail;
        if (pthread_create(&w->thread, NULL, dbpool__worker_main, w) != 0) {
            store_close(w->st);
            snprintf(err, errlen, "cannot start a read pool thread");
            goto fail;
        }
        p->nworkers++;
    }
    *out = p;
    return 0;
fail:
    dbpool_stop(p);
    return -1;
}

void dbpool_stop(dbpool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++) pthread_join(p->workers[i].thread, NULL);
    /* Every submitted item ran; give the loop its done callbacks. A done
     * callback may still submit work (a run's model call gives back what
     * it held of its owner's budget), which runs here on the first
     * thread's connection, until nothing more is submitted. */
    for (;;) {
        dbpool_drain(p);
        pthread_mutex_lock(&p->mu);
        dbpool_item *it = dbpool__queue_pop(&p->pending);
        pthread_mutex_unlock(&p->mu);
        if (!it) break;
        if (p->nworkers > 0) it->work(p->workers[0].st, it->arg);
        pthread_mutex_lock(&p->mu);
        dbpool__queue_push(&p->done, it);
        pthread_mutex_unlock(&p->mu);
    }
    for (int i = 0; i < p->nworkers; i++) store_close(p->workers[i].st);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    close(p->efd);
    free(p);
}

void dbpool_submit(dbpool *p, dbpool_work_fn work, dbpool_done_fn done, void *arg)
{
    dbpool_item *it = xmalloc(sizeof *it);
    it->work = work;
    it->done = done;
    it->arg = arg;
    pthread_mutex_lock(&p->mu);
    dbpool__queue_push(&p->pending, it);
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

int dbpool_fd(const dbpool *p)
{
    return p->efd;
}

void dbpool_drain(dbpool *p)
{
    uint64_t n;
    ssize_t r = read(p->efd, &n, sizeof n);
    (void)r;
    pthread_mutex_lock(&p->mu);
    dbpool_queue q = p->done;
    p->done.head = p->done.tail = NULL;
    pthread_mutex_unlock(&p->mu);
    /* Done callbacks may submit more work; they run without the lock. */
    for (dbpool_item *it = q.head, *next; it; it = next) {
        next = it->next;
        if (it->done) it->done(it->arg);
        free(it);
    }
}
