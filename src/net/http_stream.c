/*
 * http_stream: streamed answers (SSE) of the HTTP server. A stream keeps
 * its response open; its frames gather in a buffer of its own and leave
 * together, one writev per stream, once the loop's due callbacks have run.
 */
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "net/http_int.h"

#define HTTP_STREAM__WRITE_TIMEOUT_S 60
#define HTTP_STREAM__COPY_MAX        4096 /* stream writes up to this size are copied */
/* Dirty streams at which a write flushes them all at once (see below). */
#define HTTP_STREAM__FLUSH_AT 16

/* The peer closed (or the connection failed) before the owner ended the
 * stream. evhttp has detached the request when it failed on its own; when
 * the whole server is being freed it has not, and frees it itself. */
static void http_stream__closed(struct evhttp_connection *evcon, void *arg)
{
    http_req *r = arg;
    if (r->conn) {
        /* The connection is going down: its count ends here. */
        http__conn_closed(evcon, r->conn);
        r->conn = NULL;
    }
    if (r->peer_gone) return;
    r->peer_gone = true;
    r->ev_owned = evhttp_request_get_connection(r->ev) == NULL;
    if (r->on_close) r->on_close(r->close_ud);
}

/* Gives the connection's close callback back to its count. */
static void http_stream__release_close(http_req *r)
{
    if (r->conn)
        evhttp_connection_set_closecb(r->evcon, http__conn_closed, r->conn);
    else
        evhttp_connection_set_closecb(r->evcon, NULL, NULL);
}

/*
 * Writes what evhttp left in the connection's output (a stream's last
 * chunk) at once. evhttp hands it to the bufferevent, whose
 * write event then costs two epoll_ctl calls and a turn of the loop before
 * the bytes leave (docs/benchmarks.md, fix 60); written here, the event is
 * disabled again in the same turn, which libevent's change list turns
 * into no call at all. Whatever the socket does not take stays with the
 * bufferevent, as before, and so does a failure, which it meets again.
 */
static void http_stream__write_now(struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    if (evbuffer_get_length(out) == 0) return;
    (void)evbuffer_write(out, bufferevent_getfd(bev));
    if (evbuffer_get_length(out) == 0) bufferevent_disable(bev, EV_WRITE);
}

static void http_stream__mark_dirty(http_req *r);

void http_stream_start(http_req *r, const char *content_type, http_close_cb on_close, void *ud)
{
    r->status = 200;
    r->streaming = true;
    r->on_close = on_close;
    r->close_ud = ud;
    r->scratch = evbuffer_new();
    http__common_headers(r);
    http_reply_header(r, "Content-Type", content_type);
    http_reply_header(r, "Cache-Control", "no-cache");
    http_reply_header(r, "X-Accel-Buffering", "no");
    /* A stream is the connection's last response, so the changed time-outs
     * below never apply to a later request. */
    http_reply_header(r, "Connection", "close");
    evhttp_send_reply_start(r->ev, 200, "OK");
    const char *te =
        evhttp_find_header(evhttp_request_get_output_headers(r->ev), "Transfer-Encoding");
    r->chunked = te && strcasecmp(te, "chunked") == 0;
    /* The head has been written: its headers are not read again, except
     * that evhttp looks for "Connection: close" when the stream ends. Kept
     * for the stream's life, they were a fifth of an idle stream's memory
     * (docs/benchmarks.md). */
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->ev);
    evhttp_clear_headers(out);
    evhttp_add_header(out, "Connection", "close");
    struct bufferevent *bev = evhttp_connection_get_bufferevent(r->evcon);
    /* No error page of evhttp's can follow on this connection, and the
     * rewrite's look at every write would cost a walk over the whole
     * output buffer per frame, quadratic in a backlog. */
    evbuffer_remove_cb(bufferevent_get_output(bev), http__rewrite_cb, r->srv);
    /* Each event must leave at once, not wait for the ACK of the previous
     * one (Nagle), which a delayed ACK can hold back by tens of ms. */
    int one = 1;
    setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval wtv = {HTTP_STREAM__WRITE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(bev, NULL, &wtv);
    evhttp_connection_set_closecb(r->evcon, http_stream__closed, r);
    /* The head leaves with the stream's first frames, in the flush after
     * the loop's due callbacks (below): a run's first step, of the start
     * priority, sends its model request before it, and head and frames
     * share one writev (docs/benchmarks.md, fix 62). The write event
     * evhttp asked for is disabled in the same turn, which libevent's
     * change list turns into no system call at all. */
    bufferevent_disable(bev, EV_WRITE);
    http_stream__mark_dirty(r);
}

/*
 * Stream frames are not handed to evhttp one by one. Each write frames the
 * data (chunked when evhttp chose that coding) into the request's own
 * buffer and marks the stream dirty; once the loop has run the callbacks
 * that are due (typically the publication of one committed batch), one
 * flush writes each dirty stream's frames with a single writev straight to
 * its socket. Handing every frame to the bufferevent instead would cost a
 * loop iteration and two epoll_ctl calls per frame (the write event is
 * armed when data arrives and disarmed once it is written), and one
 * syscall per frame where a batch holds several. Only what the socket does
 * not take at once goes to the bufferevent, which then writes it with its
 * write time-out as before; frames never overtake it, since the direct
 * write happens only while its output is empty.
 *
 * The flush runs after the callbacks that were ready when the first frame
 * was made, and under load those are a pass over hundreds of streams,
 * 10 to 30 ms of reading the model's pieces: every frame made early in the
 * pass waited for its end. Once HTTP_STREAM__FLUSH_AT streams are dirty, a
 * write flushes them at once. A stream at work has one frame in such a
 * pass, so this costs no extra writev; what it changes is how long the
 * frames wait (docs/benchmarks.md, fix 75).
 */
void http__undirty(http_req *r)
{
    if (!r->is_dirty) return;
    if (r->dirty_prev) {
        r->dirty_prev->dirty_next = r->dirty_next;
    } else {
        r->srv->dirty = r->dirty_next;
    }
    if (r->dirty_next) r->dirty_next->dirty_prev = r->dirty_prev;
    r->dirty_prev = r->dirty_next = NULL;
    r->is_dirty = false;
    r->srv->ndirty--;
}

static void http_stream__mark_dirty(http_req *r)
{
    if (r->is_dirty) return;
    http_server *s = r->srv;
    if (!s->dirty) event_active(s->flush_ev, EV_WRITE, 0);
    r->dirty_prev = NULL;
    r->dirty_next = s->dirty;
    if (s->dirty) s->dirty->dirty_prev = r;
    s->dirty = r;
    r->is_dirty = true;
    s->ndirty++;
}

/* Moves the stream's framed bytes towards its socket (see above). What
 * the connection's output holds while its write event is off (the head
 * http_stream_start left there) goes first, in the same writev. */
static void http_stream__push(http_req *r)
{
    http__undirty(r);
    if (r->peer_gone) {
        evbuffer_drain(r->scratch, evbuffer_get_length(r->scratch));
        return;
    }
    struct bufferevent *bev = evhttp_connection_get_bufferevent(r->evcon);
    struct evbuffer *out = bufferevent_get_output(bev);
    bool writing = bufferevent_get_enabled(bev) & EV_WRITE;
    if (!writing && evbuffer_get_length(out) > 0) evbuffer_add_buffer(out, r->scratch);
    struct evbuffer *now = evbuffer_get_length(out) > 0 ? out : r->scratch;
    if (evbuffer_get_length(now) == 0) return;
    if (!writing) {
        /* A failure other than EAGAIN leaves the bytes in place; the
         * bufferevent meets the same error on its own write and reports
         * the closed connection through evhttp as usual. */
        (void)evbuffer_write(now, bufferevent_getfd(bev));
        if (evbuffer_get_length(now) == 0) return;
    }
    evbuffer_add_buffer(out, r->scratch);
    if (!writing) bufferevent_enable(bev, EV_WRITE);
}

void http__flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_server *s = arg;
    while (s->dirty) http_stream__push(s->dirty);
}

/* Copies a chunk (its size line, data and CRLF) into out as one piece of
 * room: one call of the buffer instead of three for every small frame
 * (docs/benchmarks.md, fix 87). False when out cannot give the room, and
 * nothing was written. */
static bool http_stream__copy_chunk(struct evbuffer *out, const char *head, size_t hlen,
                                    const void *data, size_t len)
{
    struct evbuffer_iovec v;
    size_t n = hlen + len + 2;
    if (evbuffer_reserve_space(out, (ev_ssize_t)n, &v, 1) != 1 || v.iov_len < n) return false;
    char *p = v.iov_base;
    memcpy(p, head, hlen);
    if (len) memcpy(p + hlen, data, len);
    memcpy(p + hlen + len, "\r\n", 2);
    v.iov_len = n;
    return evbuffer_commit_space(out, &v, 1) == 0;
}

/* Frames data into the stream's buffer: by reference when release is set
 * and the frame is large, else as a copy (a small copy costs less than a
 * reference's bookkeeping). */
static int http_stream__frame(http_req *r, const void *data, size_t len,
                              void (*release)(const void *, size_t, void *), void *arg)
{
    if (r->peer_gone) return -1;
    if (len == 0 || r->head) {
        if (release) release(data, len, arg);
        return 0;
    }
    bool copy = !release || len <= HTTP_STREAM__COPY_MAX;
    if (r->chunked) {
        /* The chunk's size in hex, written by hand: a printf per frame
         * showed in profiles of many streams. */
        char head[2 * sizeof len + 2];
        size_t at = sizeof head;
        head[--at] = '\n';
        head[--at] = '\r';
        size_t v = len;
        do {
            head[--at] = "0123456789abcdef"[v & 15];
            v >>= 4;
        } while (v);
        if (copy && http_stream__copy_chunk(r->scratch, head + at, sizeof head - at, data, len)) {
            if (release) release(data, len, arg);
            goto written;
        }
        evbuffer_add(r->scratch, head + at, sizeof head - at);
    }
    if (!copy) {
        evbuffer_add_reference(r->scratch, data, len, release, arg);
    } else {
        evbuffer_add(r->scratch, data, len);
        if (release) release(data, len, arg);
    }
    if (r->chunked) evbuffer_add(r->scratch, "\r\n", 2);
written:
    http_stream__mark_dirty(r);
    if (r->srv->ndirty >= HTTP_STREAM__FLUSH_AT) http__flush_cb(-1, 0, r->srv);
    return 0;
}

int http_stream_write(http_req *r, const void *data, size_t len)
{
    return http_stream__frame(r, data, len, NULL, NULL);
}

int http_stream_write_ref(http_req *r, const void *data, size_t len,
                          void (*release)(const void *data, size_t len, void *arg), void *arg)
{
    return http_stream__frame(r, data, len, release, arg);
}

size_t http_stream_pending(const http_req *r)
{
    if (r->peer_gone) return 0;
    return evbuffer_get_length(r->scratch) +
           evbuffer_get_length(bufferevent_get_output(evhttp_connection_get_bufferevent(r->evcon)));
}

void http_stream_end(http_req *r)
{
    if (!r->peer_gone) {
        http_stream__release_close(r);
        struct bufferevent *bev = evhttp_connection_get_bufferevent(r->evcon);
        struct evbuffer *out = bufferevent_get_output(bev);
        /* A chunked answer's end is its last chunk, which evhttp adds to
         * the output with a callback for when it is written (it ends the
         * request and closes the connection). With nothing else queued,
         * the frames not yet sent go before it and all leave in one write
         * here; the callback then runs from the loop as the write event
         * would have run it. */
        bool direct = r->chunked && evbuffer_get_length(out) == 0;
        if (direct) {
            http__undirty(r);
            evbuffer_add_buffer(out, r->scratch);
        } else {
            http_stream__push(r);
        }
        evhttp_send_reply_end(r->ev);
        if (direct) {
            http_stream__write_now(bev);
            if (evbuffer_get_length(out) == 0)
                bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
        }
    } else {
        http_stream__push(r);
        /* Detached: this frees the request. */
        if (r->ev_owned) evhttp_send_reply_end(r->ev);
    }
    http__log(r);
    http__req_free(r);
}

void http_stream_abort(http_req *r)
{
    if (!r->peer_gone) {
        http_stream__release_close(r);
        evhttp_connection_free(r->evcon);
    } else if (r->ev_owned) {
        evhttp_send_reply_end(r->ev);
    }
    http__log(r);
    http__req_free(r);
}
