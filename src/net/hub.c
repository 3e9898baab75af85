#include "net/hub.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/sse.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/xmalloc.h"

#define HUB__BUCKETS       1024
#define HUB__SESSIONS_MAX  1024 /* sessions kept without subscribers, for their tails */
#define HUB__PUMP_RETRY_MS 20
#define HUB__FRAME_MAX     (96u << 20)

/*
 * One encoded SSE frame, shared by reference: by the session's tail, by
 * subscribers' backlogs and by connection output buffers (each holds one
 * reference, released when the bytes are written or dropped). Only the
 * loop thread touches refs.
 */
typedef struct hub_frame {
    int refs;
    int64_t seq;
    bool run_stopped;
    char *run_id;    /* in data, after the frame; NULL for frames replayed from the store to a plain
                        stream */
    size_t json_off; /* where the event's JSON begins in data */
    size_t json_len;
    size_t len;
    char data[];
} hub_frame;

/*
 * A session's frames go out in seq order without a gap, whichever instance
 * committed them: `seq` is the last one delivered (to the tail and the live
 * subscribers) once `known`. A local event past a gap waits in `held`
 * while the events before it, committed by another instance, are read
 * from the store (`fetch`); a notification of events up to `notified`
 * starts such a read too.
 */
typedef struct hub_session {
    struct hub_session *next; /* bucket chain */
    /* id_hash of the id, compared before the id itself (docs/benchmarks.md,
     * fix 65). */
    uint64_t hash;
    hub_frame *tail[HUB_TAIL_EVENTS]; /* a ring, oldest at tail_head */
    size_t tail_head, tail_n, tail_bytes;
    hub_sub *subs; /* doubly linked */
    size_t nsubs;
    uint64_t used; /* when last touched, for eviction */
    bool known;    /* seq holds the last seq delivered */
    int64_t seq;
    int64_t notified; /* the highest seq another instance announced */
    bool due;         /* a notification asks for a read */
    bool refetch;     /* read the store again: notifications may have been missed */
    hub_frame **held; /* local frames past a gap, ascending */
    size_t held_n, held_cap;
    struct hub__query *fetch; /* the catch-up read in flight */
    char id[];                /* the session's id, in the record itself */
} hub_session;

/* The streams one owner holds, for the per-owner limit. */
typedef struct hub_owner {
    char *name;
    size_t nsubs;
    struct hub_owner *next;
} hub_owner;

enum { HUB__WATCHING, HUB__REPLAY, HUB__LIVE };

struct hub_sub {
    hub *h;
    hub_session *hs;
    hub_owner *owner; /* NULL when authentication is off */
    http_req *r;
    int state;
    int64_t sent_seq;
    char *run_id; /* run-scoped: the run whose events go out */
    bool run_scoped;
    char *follow_run; /* a followed run (hub_follow): only its events go out */
    bool has_xlate;
    hub_xlate xlate;
    bool streaming;  /* the response has started */
    bool querying;   /* a store query is in flight */
    bool dead;       /* ended; freed once no query is in flight and not pinned */
    int pinned;      /* hub__advance is working on it: not freed yet */
    bool unrecorded; /* run-scoped: its run ended without a stored run_stopped */
    bool more_in_db; /* the last page was full */
    bool db_checked; /* a page shorter than HUB_PAGE was read */
    int64_t last_write_ms;
    hub_frame **backlog; /* frames waiting to go out, in order */
    size_t bl_pos, bl_n, bl_cap, bl_bytes;
    struct event *pump_timer;
    hub_sub *prev, *next;
};

struct hub {
    struct event_base *base;
    dbpool *pool;
    eventlog *log; /* its token journal holds what the tables may not yet */
    size_t limit;
    size_t per_session, per_owner; /* 0: no limit */
    hub_owner *owners;             /* those holding a stream */
    hub_session *buckets[HUB__BUCKETS];
    size_t nsessions;
    size_t nsubs;
    uint64_t clock;
    bool stopping;
    struct event *ping_timer;
    struct event *notify_timer; /* reads for notified sessions, shortly after */
    bool notify_armed;
};

/* Open event streams on /metrics; NULL until hub_metrics_register. */
static metrics_family *hub__streams;

void hub_metrics_register(void)
{
    hub__streams = metrics_gauge_new("chatplane_sse_subscribers", "Open event streams.");
}

static void hub__advance(hub_sub *s);
static void hub__fetch(hub *h, hub_session *hs);

/* ---- frames ---- */

static hub_frame *hub__frame_new(int64_t seq, const char *type, const char *json, size_t len,
                                 const char *run_id)
{
    size_t room = SSE_FRAME_OVERHEAD_MAX + strlen(type) + len;
    if (room > HUB__FRAME_MAX) return NULL;
    /* One allocation per published event: the frame is written in place,
     * and the run's id is kept after it, in the same block. */
    size_t idlen = run_id ? strlen(run_id) + 1 : 0;
    hub_frame *f = xmalloc(sizeof *f + room + 1 + idlen);
    f->refs = 1;
    f->seq = seq;
    f->run_stopped = strcmp(type, "run_stopped") == 0;
    f->len = sse_frame_write(f->data, seq, type, json, len);
    /* The frame ends with the JSON and a blank line. */
    f->json_off = f->len - 2 - len;
    f->json_len = len;
    f->run_id = run_id ? memcpy(f->data + f->len + 1, run_id, idlen) : NULL;
    return f;
}

static void hub__frame_unref(hub_frame *f)
{
    if (f && --f->refs == 0) free(f);
}

/* The release callback of a frame handed to a connection by reference. */
static void hub__frame_release(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    hub__frame_unref(arg);
}

/* ---- sessions ---- */

static hub_session *hub__find_hashed(hub *h, const char *id, uint64_t hash)
{
    for (hub_session *hs = h->buckets[hash % HUB__BUCKETS]; hs; hs = hs->next)
        if (hs->hash == hash && strcmp(hs->id, id) == 0) return hs;
    return NULL;
}

static hub_session *hub__find(hub *h, const char *id)
{
    return hub__find_hashed(h, id, id_hash(id));
}

static void hub__session_free(hub *h, hub_session *hs)
{
    hub_session **pp = &h->buckets[hs->hash % HUB__BUCKETS];
    while (*pp != hs) pp = &(*pp)->next;
    *pp = hs->next;
    for (size_t i = 0; i < hs->tail_n; i++)
        hub__frame_unref(hs->tail[(hs->tail_head + i) % HUB_TAIL_EVENTS]);
    for (size_t i = 0; i < hs->held_n; i++) hub__frame_unref(hs->held[i]);
    free(hs->held);
    free(hs);
    h->nsessions--;
}

/* Drops the least recently used session that has no subscriber, so tails
 * of sessions nobody watches do not pile up. */
static void hub__evict(hub *h)
{
    hub_session *victim = NULL;
    for (size_t b = 0; b < HUB__BUCKETS; b++)
        for (hub_session *hs = h->buckets[b]; hs; hs = hs->next)
            if (hs->nsubs == 0 && (!victim || hs->used < victim->used)) victim = hs;
    if (victim) hub__session_free(h, victim);
}

/* The session whose id hashes to hash (id_hash), made if need be. */
static hub_session *hub__get_hashed(hub *h, const char *id, uint64_t hash)
{
    hub_session *hs = hub__find_hashed(h, id, hash);
    if (!hs) {
        if (h->nsessions >= HUB__SESSIONS_MAX) hub__evict(h);
        size_t b = hash % HUB__BUCKETS, n = strlen(id) + 1;
        hs = xcalloc(1, sizeof *hs + n);
        memcpy(hs->id, id, n);
        hs->hash = hash;
        hs->next = h->buckets[b];
        h->buckets[b] = hs;
        h->nsessions++;
    }
    hs->used = ++h->clock;
    return hs;
}

static hub_session *hub__get(hub *h, const char *id)
{
    return hub__get_hashed(h, id, id_hash(id));
}

static hub_frame *hub__tail_at(const hub_session *hs, size_t i)
{
    return hs->tail[(hs->tail_head + i) % HUB_TAIL_EVENTS];
}

/* Appends a frame to the tail (taking a reference), dropping the oldest
 * ones beyond the tail's limits. The events that the tables do not hold
 * yet are in the token journal, where a replay reads them (docs/benchmarks.md,
 * fix 42). */
static void hub__tail_push(hub_session *hs, hub_frame *f)
{
    while (hs->tail_n > 0 &&
           (hs->tail_n >= HUB_TAIL_EVENTS || hs->tail_bytes + f->len > HUB_TAIL_BYTES)) {
        hub_frame *old = hs->tail[hs->tail_head];
        hs->tail_bytes -= old->len;
        hub__frame_unref(old);
        hs->tail_head = (hs->tail_head + 1) % HUB_TAIL_EVENTS;
        hs->tail_n--;
    }
    f->refs++;
    hs->tail[(hs->tail_head + hs->tail_n) % HUB_TAIL_EVENTS] = f;
    hs->tail_n++;
    hs->tail_bytes += f->len;
}

static void hub__tail_clear(hub_session *hs)
{
    while (hs->tail_n > 0) {
        hub__frame_unref(hs->tail[hs->tail_head]);
        hs->tail_head = (hs->tail_head + 1) % HUB_TAIL_EVENTS;
        hs->tail_n--;
    }
    hs->tail_bytes = 0;
}

/* Drops the tail of a session nobody watches once its run has stopped
 * (its newest frame is the run's run_stopped): a stream opened later reads
 * the store, which holds all of it, since a run's end leaves nothing in
 * the token journal. Tails of finished runs were most of the memory of
 * sessions nobody watches (docs/benchmarks.md, fix 23). */
static void hub__tail_drop_finished(hub_session *hs)
{
    if (hs->nsubs == 0 && hs->tail_n > 0 && hub__tail_at(hs, hs->tail_n - 1)->run_stopped)
        hub__tail_clear(hs);
}

/* Keeps a local frame that came past a gap, in seq order (reference
 * taken); a seq already held is not kept twice. */
static void hub__hold(hub_session *hs, hub_frame *f)
{
    size_t i = hs->held_n;
    while (i > 0 && hs->held[i - 1]->seq > f->seq) i--;
    if (i > 0 && hs->held[i - 1]->seq == f->seq) return;
    if (hs->held_n == hs->held_cap) {
        hs->held_cap = hs->held_cap ? 2 * hs->held_cap : 16;
        hs->held = xrealloc(hs->held, hs->held_cap * sizeof *hs->held);
    }
    memmove(hs->held + i + 1, hs->held + i, (hs->held_n - i) * sizeof *hs->held);
    f->refs++;
    hs->held[i] = f;
    hs->held_n++;
}

/* ---- owners ---- */

static hub_owner *hub__owner_find(hub *h, const char *name)
{
    for (hub_owner *o = h->owners; o; o = o->next)
        if (strcmp(o->name, name) == 0) return o;
    return NULL;
}

/* Counts one more stream of name, making its entry when it is the first. */
static hub_owner *hub__owner_add(hub *h, const char *name)
{
    hub_owner *o = hub__owner_find(h, name);
    if (!o) {
        o = xcalloc(1, sizeof *o);
        o->name = xstrdup(name);
        o->next = h->owners;
        h->owners = o;
    }
    o->nsubs++;
    return o;
}

/* Counts one stream less; the entry goes with the owner's last stream. */
static void hub__owner_drop(hub *h, hub_owner *o)
{
    if (--o->nsubs > 0) return;
    hub_owner **pp = &h->owners;
    while (*pp != o) pp = &(*pp)->next;
    *pp = o->next;
    free(o->name);
    free(o);
}

/* ---- subscribers ---- */

static void hub__backlog_clear(hub_sub *s)
{
    for (size_t i = s->bl_pos; i < s->bl_n; i++) hub__frame_unref(s->backlog[i]);
    s->bl_pos = s->bl_n = s->bl_bytes = 0;
}

static void hub__backlog_push(hub_sub *s, hub_frame *f)
{
    if (s->bl_pos > 0 && s->bl_pos == s->bl_n) s->bl_pos = s->bl_n = 0;
    if (s->bl_n == s->bl_cap) {
        if (s->bl_pos > 0) {
            memmove(s->backlog, s->backlog + s->bl_pos, (s->bl_n - s->bl_pos) * sizeof f);
            s->bl_n -= s->bl_pos;
            s->bl_pos = 0;
        }
        if (s->bl_n == s->bl_cap) {
            s->bl_cap = s->bl_cap ? 2 * s->bl_cap : 16;
            s->backlog = xrealloc(s->backlog, s->bl_cap * sizeof f);
        }
    }
    f->refs++;
    s->backlog[s->bl_n++] = f;
    s->bl_bytes += f->len;
}

static void hub__sub_free(hub_sub *s)
{
    hub__backlog_clear(s);
    free(s->backlog);
    if (s->pump_timer) event_free(s->pump_timer);
    if (s->has_xlate && s->xlate.on_free) s->xlate.on_free(s->xlate.ud);
    free(s->run_id);
    free(s->follow_run);
    free(s);
}

/* Takes s out of its session and the counts; frees it unless a query
 * still refers to it. how: 0 end the response, 1 drop the connection, 2
 * leave the request alone (not started, the caller answers it). */
static void hub__sub_end(hub_sub *s, int how)
{
    if (s->dead) return;
    s->dead = true;
    hub *h = s->h;
    if (s->prev)
        s->prev->next = s->next;
    else if (s->hs->subs == s)
        s->hs->subs = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->hs->nsubs--;
    h->nsubs--;
    hub__tail_drop_finished(s->hs);
    if (s->owner) hub__owner_drop(h, s->owner);
    s->owner = NULL;
    if (s->streaming) metrics_add(hub__streams, NULL, -1);
    if (s->pump_timer) event_del(s->pump_timer);
    hub__backlog_clear(s);
    http_req *r = s->r;
    s->r = NULL;
    if (r && how == 0) http_stream_end(r);
    if (r && how == 1) http_stream_abort(r);
    if (!s->querying && !s->pinned) hub__sub_free(s);
}

/* The peer went away. */
static void hub__on_close(void *ud)
{
    hub__sub_end(ud, 0);
}

static void hub__start_stream(hub_sub *s)
{
    s->streaming = true;
    metrics_add(hub__streams, NULL, 1);
    if (s->has_xlate && s->xlate.header_name)
        http_reply_header(s->r, s->xlate.header_name, s->xlate.header_value);
    http_stream_start(s->r, s->has_xlate ? s->xlate.content_type : "text/event-stream",
                      hub__on_close, s);
    s->last_write_ms = clock_mono_ms();
}

/* Sends what a translating stream makes of one frame; the stream ends
 * after its translator's last output, or after its run's run_stopped. */
static void hub__write_xlate(hub_sub *s, hub_frame *f)
{
    if (f->seq > s->sent_seq) s->sent_seq = f->seq;
    if (s->follow_run && (!f->run_id || strcmp(f->run_id, s->follow_run) != 0)) return;
    buf out;
    buf_init(&out, HUB__FRAME_MAX);
    int rc = s->xlate.on_event(s->xlate.ud, f->data + f->json_off, f->json_len, &out);
    size_t pending = http_stream_pending(s->r);
    if (out.len > 0 && pending > 0 && pending + out.len > s->h->limit) {
        LOG(LOG_WARN, "disconnecting a slow protocol stream", "session_id=%s request_id=%s",
            s->hs->id, http_req_id(s->r));
        buf_cleanup(&out);
        hub__sub_end(s, 1);
        return;
    }
    if (out.len > 0) {
        http_stream_write(s->r, out.data, out.len);
        s->last_write_ms = clock_mono_ms();
    }
    buf_cleanup(&out);
    if (rc != 0 || ((s->run_scoped || s->follow_run) && f->run_stopped)) hub__sub_end(s, 0);
}

/* Sends one frame by reference, or cuts the subscriber off when its
 * connection already holds more than the limit of unsent bytes. */
static void hub__write(hub_sub *s, hub_frame *f)
{
    if (s->has_xlate) {
        hub__write_xlate(s, f);
        return;
    }
    size_t pending = http_stream_pending(s->r);
    if (pending > 0 && pending + f->len > s->h->limit) {
        LOG(LOG_WARN, "disconnecting a slow event stream subscriber",
            "session_id=%s pending_bytes=%zu last_sent_seq=%lld request_id=%s", s->hs->id, pending,
            (long long)s->sent_seq, http_req_id(s->r));
        hub__sub_end(s, 1);
        return;
    }
    f->refs++;
    if (http_stream_write_ref(s->r, f->data, f->len, hub__frame_release, f) != 0) {
        f->refs--;
        return;
    }
    if (f->seq > s->sent_seq) s->sent_seq = f->seq;
    s->last_write_ms = clock_mono_ms();
    if (s->run_scoped && f->run_stopped) hub__sub_end(s, 0);
}

static void hub__pump_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hub__advance(arg);
}

/* Sends the backlog while the connection keeps up. Returns 0 when the
 * backlog is empty, 1 when the subscriber must wait (a retry is
 * scheduled) or ended. */
static int hub__pump(hub_sub *s)
{
    size_t high = s->h->limit / 2;
    while (s->bl_pos < s->bl_n) {
        hub_frame *f = s->backlog[s->bl_pos];
        size_t pending = http_stream_pending(s->r);
        if (pending > 0 && (pending >= high || pending + f->len > s->h->limit)) {
            if (!s->pump_timer) s->pump_timer = evtimer_new(s->h->base, hub__pump_cb, s);
            struct timeval tv = {0, HUB__PUMP_RETRY_MS * 1000};
            evtimer_add(s->pump_timer, &tv);
            return 1;
        }
        s->bl_pos++;
        s->bl_bytes -= f->len;
        bool send = s->run_scoped ? (s->run_id && f->run_id && strcmp(f->run_id, s->run_id) == 0)
                                  : f->seq > s->sent_seq;
        if (send) hub__write(s, f);
        hub__frame_unref(f);
        if (s->dead) return 1;
    }
    s->bl_pos = s->bl_n = s->bl_bytes = 0;
    return 0;
}

/* ---- reads from the store ---- */

/* A page of events read on a pool thread: for a replaying subscriber
 * (sub), or a catch-up read of a session (sub NULL) whose frames carry
 * their run ids, since run streams pick their events by run. */
typedef struct hub__query {
    hub *h;
    hub_sub *sub;
    char *session_id;
    int64_t after;
    int64_t notified; /* the session's notified mark when the read began */
    hub_frame **frames;
    size_t n, cap;
    int rc;
} hub__query;

/* The run_id of an encoded event, or NULL; a new string. */
static char *hub__run_id_of(const char *json, size_t len)
{
    json_t *o = json_loadb(json, len, 0, NULL);
    const char *id = json_string_value(json_object_get(o, "run_id"));
    char *out = id ? xstrdup(id) : NULL;
    json_decref(o);
    return out;
}

static int hub__query_row(void *ud, int64_t seq, const char *type, const char *json, size_t len)
{
    hub__query *q = ud;
    char *run_id = q->sub && !q->sub->follow_run ? NULL : hub__run_id_of(json, len);
    hub_frame *f = hub__frame_new(seq, type, json, len, run_id);
    free(run_id);
    if (!f) return 0;
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 64;
        q->frames = xrealloc(q->frames, q->cap * sizeof *q->frames);
    }
    q->frames[q->n++] = f;
    return 0;
}

/* On a pool thread: reads one page of events. Touches only the query. */
static void hub__query_work(store *st, void *arg)
{
    hub__query *q = arg;
    q->rc = store_event_after(st, q->session_id, q->after, HUB_PAGE, hub__query_row, q);
}

static void hub__query_free(hub__query *q)
{
    for (size_t i = 0; i < q->n; i++) hub__frame_unref(q->frames[i]);
    free(q->frames);
    free(q->session_id);
    free(q);
}

static void hub__fetch_done(hub__query *q);

/* On the loop: queues the page and goes on. */
static void hub__query_done(void *arg)
{
    hub__query *q = arg;
    hub_sub *s = q->sub;
    if (!s) {
        hub__fetch_done(q);
        return;
    }
    s->querying = false;
    if (s->dead) {
        hub__query_free(q);
        hub__sub_free(s);
        return;
    }
    if (q->rc < 0) {
        LOG(LOG_ERROR, "cannot replay events", "session_id=%s", q->session_id);
        hub__query_free(q);
        hub__sub_end(s, 1);
        return;
    }
    for (size_t i = 0; i < q->n; i++) hub__backlog_push(s, q->frames[i]);
    s->more_in_db = q->n >= HUB_PAGE;
    s->db_checked = true;
    hub__query_free(q);
    hub__advance(s);
}

static void hub__query_start(hub_sub *s)
{
    if (s->h->stopping) {
        hub__sub_end(s, 0);
        return;
    }
    hub__query *q = xcalloc(1, sizeof *q);
    q->h = s->h;
    q->sub = s;
    q->session_id = xstrdup(s->hs->id);
    q->after = s->sent_seq;
    s->querying = true;
    dbpool_submit(s->h->pool, hub__query_work, hub__query_done, q);
}

/* A replaying subscriber has everything up to the session's last
 * delivered frame: it takes live frames from now on. A session that had
 * delivered nothing yet starts at what the subscriber read from the store;
 * events announced meanwhile are read at once. */
static void hub__go_live(hub_sub *s)
{
    hub_session *hs = s->hs;
    s->state = HUB__LIVE;
    if (!hs->known) {
        hs->known = true;
        hs->seq = s->sent_seq;
    }
    if (hs->refetch || hs->notified > hs->seq) hub__fetch(s->h, hs);
}

/* The last frame of a run stream whose run_stopped could not be stored:
 * a comment, since an event frame carries a stored seq. */
static const char hub__unrecorded_note[] =
    ": the database refused a write, so the run stopped; its run_stopped event is stored and "
    "sent on the session's stream once the database takes writes again\n\n";

/*
 * Queues for a replaying subscriber whose store read reached the end of
 * the tables the events that follow from the token journal: up to the
 * last one the session delivered (later ones come live), or all it holds
 * when the session has delivered nothing here yet (its tail was dropped),
 * which then goes live past them. True when it queued some: the journal
 * held the very next one. Otherwise they were stored meanwhile, and the
 * store is read again.
 */
static bool hub__journal_replay(hub_sub *s)
{
    hub_session *hs = s->hs;
    if (!s->h->log || (hs->known && s->sent_seq >= hs->seq)) return false;
    hub__query q = {.h = s->h, .sub = s};
    eventlog_held_after(s->h->log, hs->id, s->sent_seq, hub__query_row, &q);
    bool next = q.n > 0 && q.frames[0]->seq == s->sent_seq + 1;
    for (size_t i = 0; next && i < q.n && (!hs->known || q.frames[i]->seq <= hs->seq); i++)
        hub__backlog_push(s, q.frames[i]);
    for (size_t i = 0; i < q.n; i++) hub__frame_unref(q.frames[i]);
    free(q.frames);
    return next;
}

/*
 * Moves a replaying subscriber forward: sends its backlog, then either
 * reads the next page from the store or serves the frames the tail holds
 * past what was sent, and goes live once nothing is left. Live frames
 * published meanwhile land in the tail, which is why the tail is checked
 * last: nothing falls between the replay and the live stream.
 */
static void hub__advance_pinned(hub_sub *s)
{
    while (!s->dead) {
        if (s->bl_pos < s->bl_n && hub__pump(s) != 0) return;
        if (s->run_scoped) {
            /* What the run committed went out first. */
            if (s->unrecorded && s->has_xlate) {
                buf out;
                buf_init(&out, HUB__FRAME_MAX);
                s->xlate.on_unrecorded(s->xlate.ud, &out);
                if (out.len > 0) http_stream_write(s->r, out.data, out.len);
                buf_cleanup(&out);
                hub__sub_end(s, 0);
            } else if (s->unrecorded) {
                http_stream_write(s->r, hub__unrecorded_note, sizeof hub__unrecorded_note - 1);
                hub__sub_end(s, 0);
            }
            return;
        }
        if (s->more_in_db) {
            hub__query_start(s);
            return;
        }
        hub_session *hs = s->hs;
        if (hs->tail_n > 0 && hub__tail_at(hs, 0)->seq <= s->sent_seq + 1) {
            for (size_t i = 0; i < hs->tail_n; i++) {
                hub_frame *f = hub__tail_at(hs, i);
                if (f->seq > s->sent_seq) hub__backlog_push(s, f);
            }
            if (s->bl_n == 0) {
                hub__go_live(s);
                return;
            }
            continue;
        }
        if (s->db_checked && hub__journal_replay(s)) continue;
        /* With nothing in the tail, the store read must have reached the
         * last frame the session delivered. */
        if (hs->tail_n == 0 && s->db_checked && (!hs->known || s->sent_seq >= hs->seq)) {
            hub__go_live(s);
            return;
        }
        hub__query_start(s);
        return;
    }
}

/* Sending may end the subscriber (cut off, or its run's last event), so it
 * stays pinned until the work is done and is freed here if it ended. */
static void hub__advance(hub_sub *s)
{
    s->pinned++;
    hub__advance_pinned(s);
    if (--s->pinned == 0 && s->dead && !s->querying) hub__sub_free(s);
}

/* A new subscriber of the session, or NULL when the session or the owner
 * already holds its limit of streams. */
static hub_sub *hub__sub_new(hub *h, http_req *r, const char *session_id, const char *owner)
{
    hub_owner *o = owner ? hub__owner_find(h, owner) : NULL;
    if (h->per_owner && o && o->nsubs >= h->per_owner) return NULL;
    hub_session *hs = hub__get(h, session_id);
    if (h->per_session && hs->nsubs >= h->per_session) return NULL;
    hub_sub *s = xcalloc(1, sizeof *s);
    s->h = h;
    s->hs = hs;
    s->owner = owner ? hub__owner_add(h, owner) : NULL;
    s->r = r;
    s->next = hs->subs;
    if (hs->subs) hs->subs->prev = s;
    hs->subs = s;
    hs->nsubs++;
    h->nsubs++;
    return s;
}

int hub_subscribe(hub *h, http_req *r, const char *session_id, const char *owner, int64_t after)
{
    hub_sub *s = hub__sub_new(h, r, session_id, owner);
    if (!s) {
        LOG(LOG_WARN, "refusing an event stream over the limit", "session_id=%s request_id=%s",
            session_id, http_req_id(r));
        return -1;
    }
    s->state = HUB__REPLAY;
    s->sent_seq = after;
    hub__start_stream(s);
    buf b;
    buf_init(&b, 64);
    sse_frame_retry(&b, HUB_RETRY_MS);
    http_stream_write(r, b.data, b.len);
    buf_cleanup(&b);
    hub__advance(s);
    return 0;
}

hub_sub *hub_watch(hub *h, http_req *r, const char *session_id, const char *owner)
{
    hub_sub *s = hub__sub_new(h, r, session_id, owner);
    if (!s) {
        LOG(LOG_WARN, "refusing a run stream over the limit", "session_id=%s request_id=%s",
            session_id, http_req_id(r));
        return NULL;
    }
    s->state = HUB__WATCHING;
    s->run_scoped = true;
    return s;
}

hub_sub *hub_watch_as(hub *h, http_req *r, const char *session_id, const char *owner,
                      const hub_xlate *x)
{
    hub_sub *s = hub_watch(h, r, session_id, owner);
    if (s) {
        s->has_xlate = true;
        s->xlate = *x;
    }
    return s;
}

int hub_follow(hub *h, http_req *r, const char *session_id, const char *owner, const char *run_id,
               const hub_xlate *x)
{
    hub_sub *s = hub__sub_new(h, r, session_id, owner);
    if (!s) {
        LOG(LOG_WARN, "refusing a run stream over the limit", "session_id=%s request_id=%s",
            session_id, http_req_id(r));
        return -1;
    }
    s->state = HUB__REPLAY;
    s->follow_run = xstrdup(run_id);
    s->has_xlate = true;
    s->xlate = *x;
    hub__start_stream(s);
    hub__advance(s);
    return 0;
}

void hub_watch_start(hub_sub *s, const char *run_id)
{
    s->run_id = xstrdup(run_id);
    s->state = HUB__LIVE;
    hub__start_stream(s);
    hub__advance(s);
}

void hub_watch_cancel(hub_sub *s)
{
    hub__sub_end(s, 2);
}

/* Appends f (the session's next seq) to the tail and sends it to the
 * live subscribers. */
static void hub__deliver(hub *h, hub_session *hs, hub_frame *f)
{
    hub__tail_push(hs, f);
    hs->known = true;
    hs->seq = f->seq;
    hub_sub *next;
    for (hub_sub *s = hs->subs; s; s = next) {
        next = s->next;
        if (s->run_scoped) {
            if (s->state == HUB__LIVE && (!f->run_id || strcmp(f->run_id, s->run_id) != 0))
                continue;
            /* Before its start is confirmed a watcher only holds the few
             * events that come before it; it is never ended here, since its
             * start callback still refers to it. */
            if (s->streaming && s->bl_bytes + f->len > h->limit) {
                LOG(LOG_WARN, "disconnecting a slow run stream", "session_id=%s request_id=%s",
                    hs->id, http_req_id(s->r));
                hub__sub_end(s, 1);
                continue;
            }
            hub__backlog_push(s, f);
            if (s->state == HUB__LIVE) hub__advance(s);
        } else if (s->state == HUB__LIVE && f->seq > s->sent_seq) {
            hub__write(s, f);
        }
    }
    hub__tail_drop_finished(hs);
}

/* Delivers the held frames that the session has reached, dropping those
 * it has already delivered. */
static void hub__deliver_held(hub *h, hub_session *hs)
{
    size_t i = 0;
    for (; i < hs->held_n && hs->held[i]->seq <= hs->seq + 1; i++) {
        if (hs->held[i]->seq == hs->seq + 1) hub__deliver(h, hs, hs->held[i]);
        hub__frame_unref(hs->held[i]);
    }
    if (i == 0) return;
    hs->held_n -= i;
    memmove(hs->held, hs->held + i, hs->held_n * sizeof *hs->held);
}

void hub_publish(hub *h, const evt *ev)
{
    if (!ev->json) return;
    hub_session *hs = hub__get_hashed(h, ev->session_id, ev->session_hash);
    /* Read from the store already, after a notification. */
    if (hs->known && ev->seq <= hs->seq) return;
    hub_frame *f =
        hub__frame_new(ev->seq, evt_type_name(ev->type), ev->json, ev->json_len, ev->run_id);
    if (!f) {
        LOG(LOG_ERROR, "an event is too large to stream", "session_id=%s seq=%lld", ev->session_id,
            (long long)ev->seq);
        if (hs->known && ev->seq == hs->seq + 1) hs->seq = ev->seq;
        return;
    }
    if (hs->known && ev->seq > hs->seq + 1) {
        /* Another instance committed the events in between. Subscribers
         * wait for them; a session nobody watches restarts its tail. */
        if (hs->nsubs > 0) {
            hub__hold(hs, f);
            hub__frame_unref(f);
            hub__fetch(h, hs);
            return;
        }
        hub__tail_clear(hs);
    }
    hub__deliver(h, hs, f);
    hub__frame_unref(f);
    hub__deliver_held(h, hs);
}

/* ---- events committed by other instances ---- */

/* Reads the session's events after the last one delivered, unless a read
 * is in flight already or nothing has been delivered yet (a replaying
 * subscriber then reads the store itself). */
static void hub__fetch(hub *h, hub_session *hs)
{
    if (hs->fetch || !hs->known || h->stopping) return;
    hub__query *q = xcalloc(1, sizeof *q);
    q->h = h;
    q->session_id = xstrdup(hs->id);
    q->after = hs->seq;
    q->notified = hs->notified;
    hs->fetch = q;
    hs->refetch = false;
    hs->due = false;
    dbpool_submit(h->pool, hub__query_work, hub__query_done, q);
}

/*
 * Delivers a catch-up page in seq order. A read that found nothing new
 * while no newer notification came settles the notified mark (the events
 * it announced are gone with their session); held frames the store does
 * not lead up to are then delivered as they are. Reads again while there
 * is more to read; a failed read is retried by the ping timer.
 */
static void hub__fetch_done(hub__query *q)
{
    hub *h = q->h;
    hub_session *hs = hub__find(h, q->session_id);
    if (!hs || hs->fetch != q) {
        hub__query_free(q);
        return;
    }
    hs->fetch = NULL;
    if (q->rc < 0) {
        LOG(LOG_WARN, "cannot read the events another instance committed", "session_id=%s",
            q->session_id);
        hub__query_free(q);
        return;
    }
    int64_t before = hs->seq;
    for (size_t i = 0; i < q->n; i++)
        if (q->frames[i]->seq > hs->seq) hub__deliver(h, hs, q->frames[i]);
    hub__deliver_held(h, hs);
    bool progress = hs->seq > before;
    if (!progress) {
        while (hs->held_n > 0) {
            hub__deliver(h, hs, hs->held[0]);
            hub__deliver_held(h, hs);
        }
        if (hs->notified == q->notified && hs->notified > hs->seq) hs->notified = hs->seq;
    }
    bool more = q->n >= HUB_PAGE;
    hub__query_free(q);
    if (hs->nsubs > 0 && (more || hs->refetch || hs->notified > hs->seq || hs->held_n > 0))
        hub__fetch(h, hs);
}

/* Shortly after notifications: reads the sessions they named. The delay
 * gathers a burst into one read, and lets this instance's own events
 * (which it also hears of) be published locally first. */
static void hub__notify_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hub *h = arg;
    h->notify_armed = false;
    for (size_t b = 0; b < HUB__BUCKETS; b++)
        for (hub_session *hs = h->buckets[b]; hs; hs = hs->next) {
            if (!hs->due) continue;
            hs->due = false;
            if (hs->nsubs > 0 && hs->notified > hs->seq) hub__fetch(h, hs);
        }
}

void hub_notify(hub *h, const char *session_id, int64_t seq)
{
    hub_session *hs = hub__find(h, session_id);
    if (!hs) return;
    if (seq > hs->notified) hs->notified = seq;
    if (hs->nsubs == 0 || !hs->known || seq <= hs->seq || hs->due) return;
    hs->due = true;
    if (!h->notify_armed) {
        h->notify_armed = true;
        struct timeval tv = {0, HUB_NOTIFY_DELAY_MS * 1000};
        evtimer_add(h->notify_timer, &tv);
    }
}

void hub_catch_up(hub *h)
{
    for (size_t b = 0; b < HUB__BUCKETS; b++) {
        hub_session *next;
        for (hub_session *hs = h->buckets[b]; hs; hs = next) {
            next = hs->next;
            if (hs->nsubs == 0) {
                /* Only a cache: a later subscriber reads the store. */
                if (!hs->fetch) hub__session_free(h, hs);
                continue;
            }
            hs->refetch = true;
            hub__fetch(h, hs);
        }
    }
}

void hub_run_unrecorded(hub *h, const char *session_id, const char *run_id)
{
    hub_session *hs = hub__find(h, session_id);
    if (!hs) return;
    hub_sub *next;
    for (hub_sub *s = hs->subs; s; s = next) {
        next = s->next;
        if (!s->run_scoped || !s->run_id || strcmp(s->run_id, run_id) != 0) continue;
        s->unrecorded = true;
        /* A stream still waiting to send is ended by its pump. */
        if (!s->pump_timer || !evtimer_pending(s->pump_timer, NULL)) hub__advance(s);
    }
}

void hub_session_deleted(hub *h, const char *session_id)
{
    hub_session *hs = hub__find(h, session_id);
    if (!hs) return;
    hub_sub *next;
    for (hub_sub *s = hs->subs; s; s = next) {
        next = s->next;
        if (s->streaming) hub__sub_end(s, 0);
    }
    /* A run stream still waiting for its start keeps the entry: its start
     * callback (which will report the missing session) still refers to it. */
    if (hs->nsubs == 0) {
        hub__session_free(h, hs);
        return;
    }
    hub__tail_clear(hs);
    for (size_t i = 0; i < hs->held_n; i++) hub__frame_unref(hs->held[i]);
    hs->held_n = 0;
    hs->known = hs->due = hs->refetch = false;
    hs->seq = hs->notified = 0;
    hs->fetch = NULL; /* its answer is dropped */
}

size_t hub_owners(const hub *h, char ***out)
{
    size_t n = 0;
    for (const hub_owner *o = h->owners; o; o = o->next) n++;
    *out = n ? xcalloc(n, sizeof **out) : NULL;
    size_t i = 0;
    for (const hub_owner *o = h->owners; o; o = o->next) (*out)[i++] = xstrdup(o->name);
    return n;
}

size_t hub_end_owner(hub *h, const char *owner)
{
    hub_owner *o = hub__owner_find(h, owner);
    if (!o) return 0;
    size_t ended = 0;
    for (size_t b = 0; b < HUB__BUCKETS && hub__owner_find(h, owner); b++)
        for (hub_session *hs = h->buckets[b]; hs; hs = hs->next) {
            hub_sub *next;
            for (hub_sub *s = hs->subs; s; s = next) {
                next = s->next;
                /* A run stream still waiting for its start is left to its
                 * start callback, which still refers to it. */
                if (s->owner == o && s->streaming) {
                    bool last = o->nsubs == 1;
                    hub__sub_end(s, 0);
                    ended++;
                    if (last) return ended;
                }
            }
        }
    return ended;
}

void hub_close_all(hub *h)
{
    h->stopping = true;
    for (size_t b = 0; b < HUB__BUCKETS; b++)
        for (hub_session *hs = h->buckets[b]; hs; hs = hs->next)
            while (hs->subs) {
                hub_sub *s = hs->subs;
                if (!s->streaming) {
                    http_req *r = s->r;
                    hub__sub_end(s, 2);
                    http_reply_error(r, 503, "unavailable", "the server is shutting down");
                } else {
                    hub__sub_end(s, 0);
                }
            }
}

void hub_shutdown(hub *h)
{
    h->stopping = true;
}

size_t hub_subscriber_count(const hub *h)
{
    return h->nsubs;
}

/* Every second: ": ping" to each stream that has been quiet for 15 s. */
static void hub__ping_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hub *h = arg;
    static const char ping[] = ": ping\n\n";
    int64_t now = clock_mono_ms();
    for (size_t b = 0; b < HUB__BUCKETS; b++)
        for (hub_session *hs = h->buckets[b]; hs; hs = hs->next) {
            for (hub_sub *s = hs->subs; s; s = s->next)
                if (s->streaming && now - s->last_write_ms >= HUB_PING_MS &&
                    http_stream_pending(s->r) == 0) {
                    http_stream_write(s->r, ping, sizeof ping - 1);
                    s->last_write_ms = now;
                }
            /* A catch-up read that failed is tried again. */
            if (hs->nsubs > 0 && !hs->fetch &&
                (hs->refetch || hs->held_n > 0 || hs->notified > hs->seq))
                hub__fetch(h, hs);
        }
}

hub *hub_new(struct event_base *base, dbpool *pool, eventlog *log, size_t subscriber_buffer_bytes)
{
    hub *h = xcalloc(1, sizeof *h);
    h->base = base;
    h->pool = pool;
    h->log = log;
    h->limit = subscriber_buffer_bytes;
    h->ping_timer = event_new(base, -1, EV_PERSIST, hub__ping_cb, h);
    struct timeval tv = {1, 0};
    event_add(h->ping_timer, &tv);
    h->notify_timer = evtimer_new(base, hub__notify_cb, h);
    return h;
}

void hub_set_limits(hub *h, size_t per_session, size_t per_owner)
{
    h->per_session = per_session;
    h->per_owner = per_owner;
}

void hub_free(hub *h)
{
    if (!h) return;
    hub_close_all(h);
    for (size_t b = 0; b < HUB__BUCKETS; b++)
        while (h->buckets[b]) hub__session_free(h, h->buckets[b]);
    event_free(h->ping_timer);
    event_free(h->notify_timer);
    free(h);
}
