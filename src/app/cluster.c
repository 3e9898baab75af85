/*
 * cluster: notifications, heartbeats and the orphan sweep of an instance
 * on a shared PostgreSQL database (see cluster.h).
 *
 * One timer drives both the heartbeat and the sweep. The sweep also tells
 * whether this instance reaches the database: a sweep (or, during the
 * grace period after an outage, a ping) that fails marks the database lost,
 * as does a notification connection that was up and went down; the first
 * success after that starts the grace period.
 */
#include "app/cluster.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "core/control.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/dbpool.h"
#include "store/pgnotify.h"

struct cluster {
    cluster_deps d;
    pgnotify *notify;
    dbpool *pool; /* one thread: heartbeats and sweeps */
    struct event *pool_ev, *tick;
    int64_t interval_ms;
    bool sweeping;      /* a sweep or ping is in flight */
    bool notify_was_up; /* the notification connection has been up once */
    bool db_lost;       /* the database failed since the last success */
    int64_t back_ms;    /* wall ms when it answered again; 0: never lost */
};

/* One sweep: recover the orphans, or only check the database during the
 * grace period. Runs on the cluster's pool thread. */
typedef struct cluster_sweep {
    cluster *c;
    bool recover;
    int64_t now_ms, stale_before_ms;
    int rc;
} cluster_sweep;

int64_t cluster_interval_ms(int64_t orphan_timeout_ms)
{
    int64_t ms = orphan_timeout_ms / 6;
    if (ms < 250) ms = 250;
    if (ms > 5000) ms = 5000;
    return ms;
}

static void cluster__sweep_work(store *s, void *arg)
{
    cluster_sweep *w = arg;
    w->rc =
        w->recover ? store_recover_interrupted(s, w->stale_before_ms, w->now_ms) : store_ping(s);
}

static void cluster__sweep_done(void *arg)
{
    cluster_sweep *w = arg;
    cluster *c = w->c;
    c->sweeping = false;
    if (w->rc < 0) {
        if (!c->db_lost)
            LOG(LOG_WARN, "the orphan sweep cannot reach the database", "code=%d", w->rc);
        c->db_lost = true;
    } else {
        if (c->db_lost && pgnotify_is_up(c->notify)) {
            c->db_lost = false;
            c->back_ms = clock_wall_ms();
            LOG(LOG_INFO, "the database answers again; sweeping orphans after a grace period",
                "grace_ms=%lld", (long long)c->d.orphan_timeout_ms);
        }
        if (w->recover && w->rc > 0)
            LOG(LOG_WARN, "stopped runs whose instance stopped beating", "count=%d", w->rc);
    }
    free(w);
}

static void cluster__on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cluster *c = arg;
    engine_heartbeat(c->d.engine, c->pool);
    if (!c->d.sweep) return;
    if (pgnotify_is_up(c->notify)) {
        c->notify_was_up = true;
    } else if (c->notify_was_up) {
        c->db_lost = true;
    }
    if (c->sweeping) return;
    int64_t now = clock_wall_ms();
    cluster_sweep *w = xcalloc(1, sizeof *w);
    w->c = c;
    w->now_ms = now;
    w->stale_before_ms = now - c->d.orphan_timeout_ms;
    w->recover = !c->db_lost && (c->back_ms == 0 || now - c->back_ms >= c->d.orphan_timeout_ms);
    c->sweeping = true;
    dbpool_submit(c->pool, cluster__sweep_work, cluster__sweep_done, w);
}

static void cluster__on_pool_fd(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dbpool_drain(arg);
}

static void cluster__on_events(void *ud, const char *session_id, int64_t seq)
{
    cluster *c = ud;
    if (c->d.on_events) c->d.on_events(c->d.ud, session_id, seq);
}

/* Session deletions are the cluster's own messages; everything else is
 * about runs and modes and goes to the engine. A message this instance
 * cannot read (a newer version's, or a broken one) is logged and dropped. */
static void cluster__on_control(void *ud, const char *payload)
{
    cluster *c = ud;
    control_msg m;
    char err[160];
    if (control_decode(payload, strlen(payload), &m, err, sizeof err) != 0) {
        LOG(LOG_WARN, "ignoring a control notification", "error=\"%s\"", err);
        return;
    }
    if (m.kind == CONTROL_SESSION_DELETED) {
        if (strcmp(m.from, c->d.instance_id) != 0 && c->d.on_session_deleted)
            c->d.on_session_deleted(c->d.ud, m.session_id);
    } else {
        engine_control(c->d.engine, &m);
    }
    control_msg_cleanup(&m);
}

static void cluster__notify_work(store *s, void *arg)
{
    if (store_notify(s, STORE_CONTROL_CHANNEL, arg) < 0)
        LOG(LOG_WARN, "cannot tell the other instances of a deleted session", "error=\"%s\"",
            store_errmsg(s));
}

void cluster_session_deleted(cluster *c, const char *session_id)
{
    if (!c) return;
    control_msg m = {.kind = CONTROL_SESSION_DELETED,
                     .instance = CONTROL_EVERY,
                     .from = c->d.instance_id,
                     .session_id = session_id};
    char *text = control_encode(&m);
    if (!text) {
        LOG(LOG_WARN, "cannot tell the other instances of a deleted session", "session_id=%s",
            session_id);
        return;
    }
    dbpool_submit(c->pool, cluster__notify_work, free, text);
}

static void cluster__on_up(void *ud)
{
    cluster *c = ud;
    if (c->d.on_up) c->d.on_up(c->d.ud);
}

int cluster_start(const cluster_deps *d, cluster **out, char *err, size_t errlen)
{
    *out = NULL;
    cluster *c = xcalloc(1, sizeof *c);
    c->d = *d;
    c->interval_ms = cluster_interval_ms(d->orphan_timeout_ms);
    if (dbpool_start(d->url, 1, &c->pool, err, errlen) != 0) {
        free(c);
        return -1;
    }
    c->pool_ev =
        event_new(d->base, dbpool_fd(c->pool), EV_READ | EV_PERSIST, cluster__on_pool_fd, c->pool);
    event_add(c->pool_ev, NULL);
    pgnotify_handlers h = {cluster__on_events, cluster__on_control, cluster__on_up, c};
    c->notify = pgnotify_start(d->base, d->url, &h);
    c->tick = event_new(d->base, -1, EV_PERSIST, cluster__on_tick, c);
    struct timeval tv = {(time_t)(c->interval_ms / 1000),
                         (suseconds_t)(c->interval_ms % 1000 * 1000)};
    event_add(c->tick, &tv);
    *out = c;
    return 0;
}

void cluster_stop(cluster *c)
{
    if (!c) return;
    event_free(c->tick);
    pgnotify_stop(c->notify);
    dbpool_stop(c->pool);
    event_free(c->pool_ev);
    free(c);
}

bool cluster_healthy(const cluster *c)
{
    return !c || pgnotify_is_up(c->notify);
}
