/*
 * mock_upstream: a model for benchmarks. An OpenAI-compatible streaming
 * Chat Completions endpoint in C, paced by the clock and nothing else, so
 * that it can push tens of thousands of chunks a second on one core and a
 * stream through chatplane and a direct call get the same pacing.
 *
 *   mock_upstream [--port N] [--first-ms F] [--tokens N] [--gap-us G]
 *                 [--chunk-bytes B]
 *
 * Listens on 127.0.0.1 (port 0: a free one) and prints "listening PORT" as
 * its first line. Every POST to a path ending in /chat/completions gets the
 * same answer: the response head and a role chunk at once, token i (a
 * content delta " w<i>", counted from 0) F ms + i * G µs after the request
 * arrived, then a finish chunk, the usage chunk when the request asked for
 * include_usage, and [DONE]. Token events are B bytes long on the wire
 * (default 230, like OpenAI's: the "obfuscation" field pads them, as
 * OpenAI's does). With --gap-us 0 the tokens go out as fast as the
 * connection takes them: a batch per turn of the loop, the next once the
 * previous one was written.
 *
 * Each stream keeps its schedule from the request's arrival, so a timer
 * that fires late sends every token that is due and the stream catches up
 * instead of drifting.
 *
 * The mock shares the machine with the relay it measures, so it spends as
 * little as it can per token: its own HTTP/1.1 on raw sockets (the
 * request's head read by the server's framing rules, net/framing.h), and
 * a token written with one send() when the socket takes it, where a
 * bufferevent armed and disarmed the socket's write event around every
 * write (docs/benchmarks.md, fix 63). The writes of one turn of the loop
 * still leave together, after every timer that was due has run, as they
 * did from evhttp: tokens of streams due together reach the relay
 * together. Bodies come with Content-Length; keep-alive, "Connection:
 * close", "Expect: 100-continue" and HTTP/1.0 (no chunking, closed at the
 * end) are honoured.
 */
/* memmem */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "net/framing.h"

/* Tokens written per turn of the loop when unpaced. */
#define MOCK_BURST 64
/* The largest request (head and body) and the most output held for a
 * client that does not read. */
#define MOCK_IN_MAX   (4u << 20)
#define MOCK_OUT_MAX  (64u << 20)
#define MOCK_HEADERS  64
#define MOCK_READ_MAX 65536
/* The loop's priorities: reads, timers and accepts, then the flush. */
#define MOCK_PRIO_WORK  0
#define MOCK_PRIO_FLUSH 1

typedef struct mock_opts {
    int port;
    int64_t first_us, gap_us;
    long tokens;
    int chunk_bytes;
} mock_opts;

typedef struct mock_conn mock_conn;

typedef struct mock_server {
    mock_opts o;
    struct event_base *base;
    struct event *flush; /* writes what the turn's callbacks queued */
    mock_conn *dirty;    /* connections with output not tried yet */
} mock_server;

/* One client connection, and the answer it is being sent. */
struct mock_conn {
    mock_server *srv;
    const mock_opts *o;
    struct event_base *base;
    evutil_socket_t fd;
    struct event *rd, *wr, *timer;
    buf in;            /* what the client sent and nobody handled yet */
    size_t scanned;    /* bytes of in already searched for a head's end */
    bool continued;    /* "100 Continue" sent for the request in in */
    buf out;           /* what the socket did not take yet */
    buf chunk;         /* the events of one write, before their framing */
    buf wire;          /* one write, framed */
    bool streaming;    /* an answer is under way */
    bool chunked;      /* the answer is chunked (HTTP/1.1) */
    bool close;        /* close once the answer has left */
    bool unpaced_next; /* write the next burst once out is empty */
    int64_t t0_us;     /* when the request arrived */
    long next;         /* the next token to send */
    long prompt_tokens;
    bool usage;
    unsigned long id;
    bool waiting;             /* out waits for the socket's write event */
    mock_conn *dprev, *dnext; /* in srv->dirty while out waits for the flush */
    bool dirty;
};

static int64_t mock_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void mock_undirty(mock_conn *c)
{
    if (!c->dirty) return;
    if (c->dprev)
        c->dprev->dnext = c->dnext;
    else
        c->srv->dirty = c->dnext;
    if (c->dnext) c->dnext->dprev = c->dprev;
    c->dprev = c->dnext = NULL;
    c->dirty = false;
}

static void mock_free(mock_conn *c)
{
    mock_undirty(c);
    event_free(c->rd);
    event_free(c->wr);
    event_free(c->timer);
    close(c->fd);
    buf_cleanup(&c->in);
    buf_cleanup(&c->out);
    buf_cleanup(&c->chunk);
    buf_cleanup(&c->wire);
    free(c);
}

/* Queues len bytes for the flush at the end of this turn of the loop.
 * Returns -1 when more is queued than a client that does not read may
 * hold (the connection is then freed by the caller). */
static int mock_send(mock_conn *c, const char *p, size_t len)
{
    if (buf_append(&c->out, p, len) != 0) return -1;
    if (!c->dirty && !c->waiting) {
        c->dirty = true;
        c->dprev = NULL;
        c->dnext = c->srv->dirty;
        if (c->dnext) c->dnext->dprev = c;
        c->srv->dirty = c;
        event_active(c->srv->flush, EV_TIMEOUT, 0);
    }
    return 0;
}

static void mock_arm(mock_conn *c, int64_t wait_us);

/* Writes what the socket takes of c->out; once all has left, closes a
 * connection that is to close, or sends the next burst of an unpaced
 * answer. Frees c when the connection broke or closed. */
static void mock_write_out(mock_conn *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->waiting) event_add(c->wr, NULL);
            c->waiting = true;
            return;
        }
        if (n < 0) {
            mock_free(c);
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
    if (c->waiting) event_del(c->wr);
    c->waiting = false;
    if (!c->streaming && c->close) {
        mock_free(c);
        return;
    }
    /* An unpaced answer's next burst goes at the next turn of the loop, as
     * one burst a turn went from evhttp. */
    if (c->unpaced_next) {
        c->unpaced_next = false;
        mock_arm(c, 0);
    }
}

/* The end of a turn's callbacks: every connection's queued output. */
static void mock_on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mock_server *srv = arg;
    while (srv->dirty) {
        mock_conn *c = srv->dirty;
        mock_undirty(c);
        mock_write_out(c);
    }
}

/* Appends what c->chunk holds to c->wire as one piece of the answer (one
 * HTTP chunk when chunked) and empties c->chunk. */
static void mock_frame(mock_conn *c)
{
    if (c->chunk.len == 0) return;
    if (c->chunked) buf_printf(&c->wire, "%zx\r\n", c->chunk.len);
    buf_append(&c->wire, c->chunk.data, c->chunk.len);
    if (c->chunked) buf_append(&c->wire, "\r\n", 2);
    buf_reset(&c->chunk);
}

/* Sends what c->wire holds, in one send() when the socket takes it. */
static int mock_send_wire(mock_conn *c)
{
    int rc = c->wire.len ? mock_send(c, c->wire.data, c->wire.len) : 0;
    buf_reset(&c->wire);
    return rc;
}

static int mock_send_chunk(mock_conn *c)
{
    mock_frame(c);
    return mock_send_wire(c);
}

/* Appends "data: <json>\n\n" for a chunk of this stream whose choices are
 * given, padded with the obfuscation field to pad_to bytes when pad_to is
 * larger than the event. */
static void mock_event(mock_conn *c, const char *choices, const char *usage, int pad_to)
{
    static const char fill[] = "Zx8qK2mPa7LwR4tYc9NbV3sHd6GfJ1uE";
    static const char tail_open[] = ",\"obfuscation\":\"";
    static const char tail_close[] = "\"}\n\n";
    char ev[4096 + 1024];
    int n = snprintf(ev, 1024,
                     "data: {\"id\":\"chatcmpl-bench-%lu\",\"object\":\"chat.completion.chunk\","
                     "\"created\":1735689600,\"model\":\"mock\","
                     "\"choices\":%s,\"usage\":%s%s",
                     c->id, choices, usage, tail_open);
    int pad = pad_to - n - (int)(sizeof tail_close - 1);
    for (int i = 0; i < pad; i++) ev[n++] = fill[i % (int)(sizeof fill - 1)];
    memcpy(ev + n, tail_close, sizeof tail_close - 1);
    n += (int)(sizeof tail_close - 1);
    buf_append(&c->chunk, ev, (size_t)n);
}

static void mock_token(mock_conn *c, long i)
{
    char choices[160];
    snprintf(choices, sizeof choices,
             "[{\"index\":0,\"delta\":{\"content\":\" w%ld\"},\"logprobs\":null,"
             "\"finish_reason\":null}]",
             i);
    mock_event(c, choices, "null", c->o->chunk_bytes);
}

/* The answer has been handed to the socket: the connection closes once it
 * has left, or its next request is read (by the caller: mock_handle). */
static int mock_answered(mock_conn *c)
{
    c->streaming = false;
    /* The flush closes it once the answer has left. */
    if (c->close) event_del(c->rd);
    return 0;
}

/* Writes the finish chunk, the usage and [DONE], and ends the answer. */
static int mock_finish(mock_conn *c)
{
    mock_event(c, "[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]",
               "null", 0);
    if (c->usage) {
        char usage[160];
        snprintf(usage, sizeof usage,
                 "{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"total_tokens\":%ld}",
                 c->prompt_tokens, c->o->tokens, c->prompt_tokens + c->o->tokens);
        mock_event(c, "[]", usage, 0);
    }
    buf_append(&c->chunk, "data: [DONE]\n\n", 14);
    mock_frame(c);
    if (c->chunked) buf_append(&c->wire, "0\r\n\r\n", 5);
    if (mock_send_wire(c) < 0) return -1;
    return mock_answered(c);
}

static void mock_arm(mock_conn *c, int64_t wait_us)
{
    if (wait_us < 0) wait_us = 0;
    struct timeval tv = {(time_t)(wait_us / 1000000), (suseconds_t)(wait_us % 1000000)};
    evtimer_add(c->timer, &tv);
}

/* Sends every token that is due (or a burst when unpaced), then waits for
 * the next one, or finishes. Returns -1 when the connection broke. */
static int mock_send_due(mock_conn *c)
{
    const mock_opts *o = c->o;
    if (o->gap_us == 0) {
        for (int k = 0; k < MOCK_BURST && c->next < o->tokens; k++) mock_token(c, c->next++);
        if (c->next == o->tokens) return mock_finish(c);
        if (mock_send_chunk(c) < 0) return -1;
        /* The next burst once this one has left the socket's buffer. */
        c->unpaced_next = true;
        return 0;
    }
    int64_t now = mock_now_us();
    while (c->next < o->tokens && c->t0_us + o->first_us + c->next * o->gap_us <= now)
        mock_token(c, c->next++);
    if (c->next == o->tokens) return mock_finish(c);
    if (mock_send_chunk(c) < 0) return -1;
    mock_arm(c, c->t0_us + o->first_us + c->next * o->gap_us - now);
    return 0;
}

static void mock_handle(mock_conn *c);

/* Sends what is due; once the answer has ended, reads the next request. */
static void mock_go_on(mock_conn *c)
{
    if (mock_send_due(c) < 0)
        mock_free(c);
    else if (!c->streaming)
        mock_handle(c);
}

static void mock_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mock_go_on(arg);
}

static void mock_on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mock_write_out(arg);
}

/* A whole answer with a JSON body (an error). */
static int mock_reply(mock_conn *c, int status, const char *reason, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                     "%zu\r\n%s\r\n",
                     status, reason, strlen(body), c->close ? "Connection: close\r\n" : "");
    if (mock_send(c, head, (size_t)n) < 0 || mock_send(c, body, strlen(body)) < 0) return -1;
    return mock_answered(c);
}

static bool mock_header_is(const framing_header *h, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (h->name_len != nl || strncasecmp(h->name, name, nl) != 0) return false;
    /* A token in a comma-separated value, as Connection's. */
    for (size_t i = 0; i + vl <= h->value_len; i++)
        if (strncasecmp(h->value + i, value, vl) == 0) return true;
    return false;
}

/* Starts the streaming answer to a request whose body is body. */
static int mock_start(mock_conn *c, const char *body, size_t blen)
{
    static unsigned long served;
    const mock_opts *o = c->o;
    c->streaming = true;
    c->t0_us = mock_now_us();
    c->id = ++served;
    c->next = 0;
    c->prompt_tokens = (long)(blen / 4) + 1;
    c->usage = memmem(body, blen, "\"include_usage\":true", 20) != NULL;
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: "
                     "no-cache\r\n%s%s\r\n",
                     c->chunked ? "Transfer-Encoding: chunked\r\n" : "",
                     c->close ? "Connection: close\r\n" : "");
    /* The head and the role chunk leave together. */
    buf_append(&c->wire, head, (size_t)n);
    mock_event(c,
               "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
               "\"logprobs\":null,\"finish_reason\":null}]",
               "null", 0);
    if (mock_send_chunk(c) < 0) return -1;
    if (o->gap_us > 0 || o->first_us > 0) {
        mock_arm(c, o->first_us);
        return 0;
    }
    return mock_send_due(c);
}

/*
 * Handles the requests complete in c->in, one at a time, until one starts
 * an answer that takes a while or no whole request is left. Returns -1
 * when the connection is to be closed now.
 */
static int mock_handle_one(mock_conn *c)
{
    size_t head_len = framing_head_end(c->in.data, c->in.len, c->scanned);
    if (head_len == 0) {
        c->scanned = c->in.len;
        return 1;
    }
    framing_header h[MOCK_HEADERS];
    int nh = framing_split(c->in.data, head_len, h, MOCK_HEADERS);
    if (nh < 0) {
        c->close = true;
        return mock_reply(c, 400, "Bad Request", "{\"error\":{\"message\":\"bad headers\"}}") < 0
                   ? -1
                   : 1;
    }
    framing_verdict v;
    framing_check(h, nh, MOCK_IN_MAX, &v);
    if (v.status != 0 || v.chunked) {
        c->close = true;
        return mock_reply(c, 400, "Bad Request",
                          "{\"error\":{\"message\":\"a body with Content-Length only\"}}") < 0
                   ? -1
                   : 1;
    }
    size_t clen = 0;
    bool ka11 = true;
    for (int i = 0; i < nh; i++) {
        if (h[i].name_len == 14 && strncasecmp(h[i].name, "Content-Length", 14) == 0)
            clen = (size_t)strtoull(h[i].value, NULL, 10);
        if (mock_header_is(&h[i], "Connection", "close")) ka11 = false;
    }
    for (int i = 0; i < nh && !c->continued && c->in.len < head_len + clen; i++)
        if (mock_header_is(&h[i], "Expect", "100-continue")) {
            c->continued = true;
            if (mock_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0) return -1;
        }
    if (c->in.len < head_len + clen) return 1; /* the body is still coming */

    /* The request line: METHOD SP TARGET SP VERSION. */
    const char *line = c->in.data, *eol = memchr(line, '\n', head_len);
    const char *sp1 = memchr(line, ' ', (size_t)(eol - line));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    bool http10 = sp2 && eol - sp2 >= 9 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0;
    c->chunked = !http10;
    c->close = http10 || !ka11;
    c->continued = false;
    static const char suffix[] = "/chat/completions";
    size_t tl = sp2 ? (size_t)(sp2 - sp1 - 1) : 0;
    const char *q = sp2 ? memchr(sp1 + 1, '?', tl) : NULL;
    if (q) tl = (size_t)(q - sp1 - 1);
    bool post = sp1 && sp1 - line == 4 && memcmp(line, "POST", 4) == 0;
    bool route = sp2 && tl >= sizeof suffix - 1 &&
                 memcmp(sp1 + 1 + tl - (sizeof suffix - 1), suffix, sizeof suffix - 1) == 0;
    /* The request is taken out of in before it is answered; the body is
     * read from a copy that lives as long as this call. */
    char *body = xmalloc(clen + 1);
    memcpy(body, c->in.data + head_len, clen);
    body[clen] = 0;
    buf_consume(&c->in, head_len + clen);
    c->scanned = 0;
    int rc;
    if (!post || !route)
        rc = mock_reply(c, 404, "Not Found",
                        "{\"error\":{\"message\":\"no such route\",\"type\":\"not_found\"}}");
    else
        rc = mock_start(c, body, clen);
    free(body);
    return rc < 0 ? -1 : 0;
}

static void mock_handle(mock_conn *c)
{
    /* A connection to be closed takes no request after its answer. */
    while (!c->streaming && !c->close && c->in.len > 0) {
        int rc = mock_handle_one(c);
        if (rc < 0) {
            mock_free(c);
            return;
        }
        if (rc > 0) break;
    }
}

static void mock_on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    mock_conn *c = arg;
    char tmp[MOCK_READ_MAX];
    ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0 || buf_append(&c->in, tmp, (size_t)n) != 0) {
        /* The client went away (mid-stream or between requests), or sent
         * more than a request may hold. */
        mock_free(c);
        return;
    }
    if (!c->streaming) mock_handle(c);
}

static void mock_on_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    mock_server *srv = arg;
    struct event_base *base = srv->base;
    for (int k = 0; k < 64; k++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        /* Small writes must leave at once, not wait for the peer's ACK. */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        mock_conn *c = xcalloc(1, sizeof *c);
        c->srv = srv;
        c->o = &srv->o;
        c->base = base;
        c->fd = fd;
        buf_init(&c->in, MOCK_IN_MAX);
        buf_init(&c->out, MOCK_OUT_MAX);
        buf_init(&c->chunk, MOCK_OUT_MAX);
        buf_init(&c->wire, MOCK_OUT_MAX);
        c->rd = event_new(base, fd, EV_READ | EV_PERSIST, mock_on_read, c);
        c->wr = event_new(base, fd, EV_WRITE | EV_PERSIST, mock_on_write, c);
        c->timer = evtimer_new(base, mock_on_timer, c);
        event_priority_set(c->rd, MOCK_PRIO_WORK);
        event_priority_set(c->wr, MOCK_PRIO_WORK);
        event_priority_set(c->timer, MOCK_PRIO_WORK);
        event_add(c->rd, NULL);
    }
}

static void mock_usage(void)
{
    fprintf(stderr, "usage: mock_upstream [--port N] [--first-ms F] [--tokens N] [--gap-us G] "
                    "[--chunk-bytes B]\n");
    exit(2);
}

static int64_t mock_arg(int argc, char **argv, int *i, int64_t lo, int64_t hi)
{
    if (*i + 1 >= argc) mock_usage();
    char *end = NULL;
    errno = 0;
    long long v = strtoll(argv[++*i], &end, 10);
    if (errno || !end || *end || v < lo || v > hi) mock_usage();
    return v;
}

int main(int argc, char **argv)
{
    mock_opts o = {
        .port = 0, .first_us = 20000, .gap_us = 10000, .tokens = 100, .chunk_bytes = 230};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0)
            o.port = (int)mock_arg(argc, argv, &i, 0, 65535);
        else if (strcmp(argv[i], "--first-ms") == 0)
            o.first_us = mock_arg(argc, argv, &i, 0, 600000) * 1000;
        else if (strcmp(argv[i], "--tokens") == 0)
            o.tokens = (long)mock_arg(argc, argv, &i, 1, 100000000);
        else if (strcmp(argv[i], "--gap-us") == 0)
            o.gap_us = mock_arg(argc, argv, &i, 0, 60000000);
        else if (strcmp(argv[i], "--chunk-bytes") == 0)
            o.chunk_bytes = (int)mock_arg(argc, argv, &i, 0, 4096);
        else
            mock_usage();
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    /* Two priorities: the flush after everything else of a turn (libevent
     * gives a new event the lower of two, so each is set). */
    event_base_priority_init(base, 2);
    mock_server srv = {.o = o, .base = base};
    srv.flush = event_new(base, -1, 0, mock_on_flush, &srv);
    event_priority_set(srv.flush, MOCK_PRIO_FLUSH);
    /* A thousand streams starting together need a long backlog. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sl) != 0 || listen(fd, 4096) != 0) {
        fprintf(stderr, "mock_upstream: cannot listen on 127.0.0.1:%d: %s\n", o.port,
                strerror(errno));
        return 1;
    }
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    printf("listening %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    struct event *accept_ev = event_new(base, fd, EV_READ | EV_PERSIST, mock_on_accept, &srv);
    event_priority_set(accept_ev, MOCK_PRIO_WORK);
    event_add(accept_ev, NULL);
    event_base_dispatch(base);
    event_free(accept_ev);
    event_free(srv.flush);
    event_base_free(base);
    return 0;
}
