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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "lib/xmalloc.h"

/* Tokens written per turn of the loop when unpaced. */
#define MOCK_BURST 64

typedef struct mock_opts {
    int port;
    int64_t first_us, gap_us;
    long tokens;
    int chunk_bytes;
} mock_opts;

typedef struct mock_stream {
    const mock_opts *o;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *timer;
    struct evbuffer *out;
    int64_t t0_us; /* when the request arrived */
    long next;     /* the next token to send */
    long prompt_tokens;
    bool usage;
    unsigned long id;
} mock_stream;

static int64_t mock_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Appends "data: <json>\n\n" for a chunk of this stream whose choices are
 * given, padded with the obfuscation field to pad_to bytes when pad_to is
 * larger than the event. */
static void mock_chunk(mock_stream *m, const char *choices, const char *usage, int pad_to)
{
    static const char fill[] = "Zx8qK2mPa7LwR4tYc9NbV3sHd6GfJ1uE";
    static const char tail_open[] = ",\"obfuscation\":\"";
    static const char tail_close[] = "\"}\n\n";
    char ev[4096 + 1024];
    int n = snprintf(ev, 1024,
                     "data: {\"id\":\"chatcmpl-bench-%lu\",\"object\":\"chat.completion.chunk\","
                     "\"created\":1735689600,\"model\":\"mock\","
                     "\"choices\":%s,\"usage\":%s%s",
                     m->id, choices, usage, tail_open);
    int pad = pad_to - n - (int)(sizeof tail_close - 1);
    for (int i = 0; i < pad; i++) ev[n++] = fill[i % (int)(sizeof fill - 1)];
    memcpy(ev + n, tail_close, sizeof tail_close - 1);
    n += (int)(sizeof tail_close - 1);
    evbuffer_add(m->out, ev, (size_t)n);
}

static void mock_token(mock_stream *m, long i)
{
    char choices[160];
    snprintf(choices, sizeof choices,
             "[{\"index\":0,\"delta\":{\"content\":\" w%ld\"},\"logprobs\":null,"
             "\"finish_reason\":null}]",
             i);
    mock_chunk(m, choices, "null", m->o->chunk_bytes);
}

static void mock_free(mock_stream *m)
{
    if (m->timer) event_free(m->timer);
    evbuffer_free(m->out);
    free(m);
}

/* The client went away mid-stream: evhttp frees the request. */
static void mock_on_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    mock_free(arg);
}

/* Writes the finish chunk, the usage and [DONE], and ends the response. */
static void mock_finish(mock_stream *m)
{
    mock_chunk(m, "[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]",
               "null", 0);
    if (m->usage) {
        char usage[160];
        snprintf(usage, sizeof usage,
                 "{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"total_tokens\":%ld}",
                 m->prompt_tokens, m->o->tokens, m->prompt_tokens + m->o->tokens);
        mock_chunk(m, "[]", usage, 0);
    }
    evbuffer_add(m->out, "data: [DONE]\n\n", 14);
    evhttp_send_reply_chunk(m->req, m->out);
    evhttp_connection_set_closecb(m->evcon, NULL, NULL);
    evhttp_send_reply_end(m->req);
    mock_free(m);
}

static void mock_unpaced(struct evhttp_connection *evcon, void *arg);

/* Sends every token that is due (or a burst when unpaced), then waits for
 * the next one, or finishes. */
static void mock_send_due(mock_stream *m)
{
    const mock_opts *o = m->o;
    if (o->gap_us == 0) {
        for (int k = 0; k < MOCK_BURST && m->next < o->tokens; k++) mock_token(m, m->next++);
        if (m->next == o->tokens) {
            mock_finish(m);
            return;
        }
        evhttp_send_reply_chunk_with_cb(m->req, m->out, mock_unpaced, m);
        return;
    }
    int64_t now = mock_now_us();
    while (m->next < o->tokens && m->t0_us + o->first_us + m->next * o->gap_us <= now)
        mock_token(m, m->next++);
    if (m->next == o->tokens) {
        mock_finish(m);
        return;
    }
    if (evbuffer_get_length(m->out) > 0) evhttp_send_reply_chunk(m->req, m->out);
    int64_t wait = m->t0_us + o->first_us + m->next * o->gap_us - now;
    struct timeval tv = {(time_t)(wait / 1000000), (suseconds_t)(wait % 1000000)};
    evtimer_add(m->timer, &tv);
}

static void mock_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mock_send_due(arg);
}

/* The previous burst left the output buffer: the next one. */
static void mock_unpaced(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    mock_send_due(arg);
}

static void mock_reply(struct evhttp_request *req, int status, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Not Found", b);
    evbuffer_free(b);
}

static void mock_on_request(struct evhttp_request *req, void *arg)
{
    static unsigned long served;
    const mock_opts *o = arg;
    const char *uri = evhttp_request_get_uri(req);
    size_t ul = strcspn(uri, "?");
    static const char suffix[] = "/chat/completions";
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST || ul < sizeof suffix - 1 ||
        memcmp(uri + ul - (sizeof suffix - 1), suffix, sizeof suffix - 1) != 0) {
        mock_reply(req, 404, "{\"error\":{\"message\":\"no such route\",\"type\":\"not_found\"}}");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);

    mock_stream *m = xcalloc(1, sizeof *m);
    m->o = o;
    m->req = req;
    m->evcon = evhttp_request_get_connection(req);
    m->out = evbuffer_new();
    m->t0_us = mock_now_us();
    m->id = ++served;
    m->prompt_tokens = (long)(blen / 4) + 1;
    m->usage = body && memmem(body, blen, "\"include_usage\":true", 20) != NULL;
    if (o->gap_us > 0)
        m->timer = evtimer_new(evhttp_connection_get_base(m->evcon), mock_on_timer, m);

    /* Small writes must leave at once, not wait for the peer's ACK. */
    int one = 1;
    evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(m->evcon));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_send_reply_start(req, 200, "OK");
    evhttp_connection_set_closecb(m->evcon, mock_on_close, m);
    mock_chunk(
        m,
        "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
        "\"finish_reason\":null}]",
        "null", 0);
    if (o->gap_us > 0 || o->first_us > 0) {
        evhttp_send_reply_chunk(req, m->out);
        int64_t wait = o->first_us;
        struct timeval tv = {(time_t)(wait / 1000000), (suseconds_t)(wait % 1000000)};
        if (!m->timer)
            m->timer = evtimer_new(evhttp_connection_get_base(m->evcon), mock_on_timer, m);
        evtimer_add(m->timer, &tv);
        return;
    }
    mock_send_due(m);
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
    struct evhttp *http = evhttp_new(base);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(http, mock_on_request, &o);
    /* evhttp's own bind listens with a backlog of 128; a thousand streams
     * starting together need more. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sl) != 0 || listen(fd, 4096) != 0 ||
        !evhttp_accept_socket_with_handle(http, fd)) {
        fprintf(stderr, "mock_upstream: cannot listen on 127.0.0.1:%d: %s\n", o.port,
                strerror(errno));
        return 1;
    }
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    printf("listening %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    event_base_dispatch(base);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
