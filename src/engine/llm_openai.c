/*
 * llm_openai: the streaming HTTP client of both provider kinds, the
 * OpenAI-compatible Chat Completions API and Anthropic's Messages API. The
 * two differ only in their dialect (openai__dialect): the path, the
 * headers, the request body, the stream parser and the error body; the
 * transport below is the same. A URL of plain http:// to an address goes
 * over llm_plain (its own HTTP/1.1 client on the loop, docs/runs.md, The
 * model connection); every other call is a libcurl
 * easy handle on one multi handle driven by the libevent loop through the
 * multi socket interface: libcurl says which sockets to watch and when to
 * wake it (on_socket, on_timer), the loop tells libcurl what happened
 * (on_event, on_timeout). Many calls share one thread and no call blocks.
 *
 * Bytes of a 200 response go through the SSE parser into llm_stream, which
 * reports text pieces as they arrive and keeps the turn; any other status
 * keeps up to 64 KiB of the body for its error message. When a transfer
 * ends, the outcome is decided in one place (openai__outcome) and handed to
 * on_done. Retries, backoff and budgets belong to the engine.
 *
 * A stalled stream is caught by a loop timer per call that every byte
 * that arrives pushes back: libcurl's own low-speed check averages over
 * several seconds and counts whole seconds, this one says exactly "no
 * byte for stall_ms". A byte only notes the time; the timer, armed once,
 * re-arms itself for what is left when it fires early, so a chunk costs a
 * clock read instead of moving a timer in the loop's heap
 * (docs/benchmarks.md, fix 45).
 *
 * Re-entrancy: libcurl forbids removing or adding handles from inside its
 * own callbacks. While the client is inside curl_multi_socket_action
 * (depth > 0), an abort only marks the call and a start only queues it;
 * both are carried out as soon as libcurl returns.
 */
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>
#include <sys/time.h>

#include "core/sse.h"
#include "engine/llm.h"
#include "engine/llm_anthropic_stream.h"
#include "engine/llm_plain.h"
#include "engine/llm_stream.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/redact.h"
#include "lib/xmalloc.h"
#include "version.h"

#define OPENAI_STALL_MS_DEFAULT 30000
#define OPENAI_ERROR_BODY_MAX   (64 * 1024)
/* One SSE event holds one chunk; a chunk may carry a whole call's
 * arguments (1 MiB, more once JSON-escaped) or a long text piece. */
#define OPENAI_SSE_EVENT_MAX    (6 * 1024 * 1024)
#define OPENAI_HEADER_VALUE_MAX 64
#define OPENAI_RECV_BUFFER      4096
/* The most bytes of one call's answer taken in one turn of the loop
 * before it yields (see llm_openai__on_write). */
#define OPENAI_BURST_MAX (16 * 1024)

typedef struct llm_openai llm_openai;

/* What differs between the APIs: the stream parser behind a void pointer,
 * the request body and the reading of an error response. */
typedef struct openai__dialect {
    const char *provider; /* llm.provider */
    const char *path;     /* appended to the base URL */
    void *(*stream_new)(llm_stream_text_cb on_text, void *ud);
    void (*stream_free)(void *s);
    int (*feed)(void *s, const char *data, size_t len);
    int (*state)(const void *s);
    bool (*turn_complete)(const void *s);
    void (*finish)(void *s, llm_result *r);
    void (*http_error)(llm_result *r, int status, const char *url, const char *body, size_t len,
                       int64_t retry_after_ms);
    char *(*body)(const char *model, const llm_request *req, size_t *len);
} openai__dialect;

/* Wrappers that give each parser the dialect's untyped signatures (a call
 * through a cast function pointer would be undefined). */
static void *llm_openai__chat_new(llm_stream_text_cb cb, void *ud)
{
    return llm_stream_new(cb, ud);
}
static void llm_openai__chat_free(void *s)
{
    llm_stream_free(s);
}
static int llm_openai__chat_feed(void *s, const char *d, size_t n)
{
    return llm_stream_feed(s, d, n);
}
static int llm_openai__chat_state(const void *s)
{
    return llm_stream_state(s);
}
static bool llm_openai__chat_complete(const void *s)
{
    return llm_stream_turn_complete(s);
}
static void llm_openai__chat_finish(void *s, llm_result *r)
{
    llm_stream_finish(s, r);
}

static void *llm_openai__msg_new(llm_stream_text_cb cb, void *ud)
{
    return llm_anthropic_stream_new(cb, ud);
}
static void llm_openai__msg_free(void *s)
{
    llm_anthropic_stream_free(s);
}
static int llm_openai__msg_feed(void *s, const char *d, size_t n)
{
    return llm_anthropic_stream_feed(s, d, n);
}
static int llm_openai__msg_state(const void *s)
{
    return llm_anthropic_stream_state(s);
}
static bool llm_openai__msg_complete(const void *s)
{
    return llm_anthropic_stream_turn_complete(s);
}
static void llm_openai__msg_finish(void *s, llm_result *r)
{
    llm_anthropic_stream_finish(s, r);
}

static const openai__dialect openai__chat = {
    .provider = "openai",
    .path = "/chat/completions",
    .stream_new = llm_openai__chat_new,
    .stream_free = llm_openai__chat_free,
    .feed = llm_openai__chat_feed,
    .state = llm_openai__chat_state,
    .turn_complete = llm_openai__chat_complete,
    .finish = llm_openai__chat_finish,
    .http_error = llm_stream_http_error,
    .body = llm_stream_request_body,
};

static const openai__dialect openai__messages = {
    .provider = "anthropic",
    .path = "/messages",
    .stream_new = llm_openai__msg_new,
    .stream_free = llm_openai__msg_free,
    .feed = llm_openai__msg_feed,
    .state = llm_openai__msg_state,
    .turn_complete = llm_openai__msg_complete,
    .finish = llm_openai__msg_finish,
    .http_error = llm_anthropic_stream_http_error,
    .body = llm_anthropic_stream_request_body,
};

/* A socket libcurl asked the loop to watch. */
typedef struct openai__sock {
    llm_openai *owner;
    curl_socket_t fd;
    struct event *ev;
    struct openai__sock *prev, *next;
} openai__sock;

struct llm_call {
    llm_openai *owner;
    CURL *easy;         /* NULL for a call on the plain transport */
    llm_plain_call *pc; /* the plain transport's call, until it ends */
    struct curl_slist *headers;
    char *body;
    sse_parser sse;
    void *stream; /* the dialect's parser */
    buf errbody;  /* the body of a non-200 response, truncated at its cap */
    long status;  /* of the last status line, 0 before one came */
    char retry_after_ms[OPENAI_HEADER_VALUE_MAX];
    char retry_after[OPENAI_HEADER_VALUE_MAX];
    struct event *stall;  /* fires after stall_ms without a byte */
    int64_t last_byte_ms; /* when the last byte came (monotonic) */
    bool stall_armed;     /* the stall timer is pending */
    struct event *resume; /* unpauses the transfer after a yield */
    size_t burst;         /* bytes taken in loop turn `turn` */
    unsigned turn;
    bool sse_toobig; /* an event went past OPENAI_SSE_EVENT_MAX */
    bool added;      /* the handle is on the multi handle */
    bool aborted;    /* no callback may run any more; freed when safe */
    bool finishing;  /* on_done is running */
    llm_callbacks cb;
    void *ud;
    char errbuf[CURL_ERROR_SIZE];
    llm_call *prev, *next;
};

struct llm_openai {
    llm base;
    struct event_base *evbase;
    CURLM *multi;
    struct event *timer;
    char *url;         /* <base_url>/chat/completions */
    char *display_url; /* the same without user:password@, for messages */
    const openai__dialect *d;
    /* The request headers of every call: the key ("Authorization: Bearer
     * …" or "x-api-key: …"), anthropic-version and llm.headers; never
     * logged. */
    struct curl_slist *extra;
    char *model;
    int64_t stall_ms;
    int depth;     /* > 0 while inside curl_multi_socket_action */
    unsigned turn; /* counts the calls into libcurl, for bursts */
    /* Calls started or aborted while depth > 0, for settle to add or free:
     * without any, settle walks nothing, so a socket event costs the same
     * with one call in flight as with a thousand. */
    unsigned unsettled;
    llm_call *calls;     /* every call not yet freed */
    openai__sock *socks; /* every watched socket */
    /* Plain HTTP to an address (llm_plain.h), when the URL allows it: the
     * request head up to its Content-Length, the same for every call. */
    llm_plain *plain;
    char *plain_head;
    size_t plain_head_len;
};

static const llm_ops openai_ops;

/* ---- list helpers ---- */

static void llm_openai__link(llm_call **head, llm_call *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head) (*head)->prev = c;
    *head = c;
}

static void llm_openai__unlink(llm_call **head, llm_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* ---- the life of a call ---- */

/* Takes the call off the multi handle and the list and frees it. Only
 * outside libcurl's callbacks. */
static void llm_openai__destroy(llm_call *c)
{
    llm_openai *o = c->owner;

    if (c->added) curl_multi_remove_handle(o->multi, c->easy);
    if (c->pc) llm_plain_cancel(c->pc);
    llm_openai__unlink(&o->calls, c);
    if (c->stall) event_free(c->stall);
    if (c->resume) event_free(c->resume);
    curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->headers);
    free(c->body);
    sse_parser_cleanup(&c->sse);
    c->owner->d->stream_free(c->stream);
    buf_cleanup(&c->errbody);
    free(c);
}

/* Starts the stall timer of a call for ms. */
static void llm_openai__stall_in(llm_call *c, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(c->stall, &tv);
    c->stall_armed = true;
}

/* A byte came (or the call began): the call stalls stall_ms from now. */
static void llm_openai__arm_stall(llm_call *c)
{
    c->last_byte_ms = clock_mono_ms();
    if (!c->stall_armed) llm_openai__stall_in(c, c->owner->stall_ms);
}

/* Hands a text piece from llm_stream to the caller unless the call was
 * aborted meanwhile (possibly by an earlier piece of the same feed). */
static void llm_openai__on_text(void *ud, const char *text, size_t len)
{
    llm_call *c = ud;
    if (!c->aborted && c->cb.on_text) c->cb.on_text(c->ud, text, len);
}

/* One SSE event: its data is one chunk, an error object, or [DONE]. Stops
 * the parse once the stream is done or failed. */
static int llm_openai__on_sse(void *ud, const sse_event *ev)
{
    llm_call *c = ud;
    if (c->aborted) return 1;
    return c->owner->d->feed(c->stream, ev->data, ev->data_len) == LLM_STREAM_MORE ? 0 : 1;
}

/* Takes n bytes of the body of either transport's call; false ends the
 * transfer. */
static bool llm_openai__body(llm_call *c, const char *ptr, size_t n)
{
    if (c->status != 200) {
        size_t room = c->errbody.cap - c->errbody.len;
        buf_append(&c->errbody, ptr, n < room ? n : room);
        return true;
    }
    if (c->owner->d->state(c->stream) == LLM_STREAM_DONE) return true;
    if (sse_parser_feed(&c->sse, ptr, n) == SSE_ERR_TOOBIG) {
        c->sse_toobig = true;
        return false;
    }
    return !c->aborted && c->owner->d->state(c->stream) != LLM_STREAM_FAILED;
}

/*
 * libcurl's write callback. Returning less than it was given ends the
 * transfer (CURLE_WRITE_ERROR), which is how an aborted call, an oversized
 * event and a failed stream stop reading at once.
 */
static size_t llm_openai__on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    llm_call *c = ud;
    size_t n = size * nmemb;

    if (c->aborted) return 0;
    llm_openai__arm_stall(c);
    if (c->status != 200 || c->owner->d->state(c->stream) == LLM_STREAM_DONE)
        return llm_openai__body(c, ptr, n) ? n : 0;
    /* A model that sends faster than the loop relays would have libcurl
     * read (and this parse) a long burst in one turn, every token of it
     * queued before the first one's commit could be published. Past
     * OPENAI_BURST_MAX bytes in a turn the call pauses, leaving this
     * piece to libcurl, and resumes on the next turn of the loop, after
     * the commits that came back meanwhile went out. */
    if (c->turn != c->owner->turn) {
        c->turn = c->owner->turn;
        c->burst = 0;
    }
    if (c->burst >= OPENAI_BURST_MAX) {
        static const struct timeval now = {0, 0};
        evtimer_add(c->resume, &now);
        return CURL_WRITEFUNC_PAUSE;
    }
    c->burst += n;
    return llm_openai__body(c, ptr, n) ? n : 0;
}

/* Copies a header's value, trimmed, when the line is "name: value". */
static bool llm_openai__header_value(const char *line, size_t len, const char *name, char *out,
                                     size_t outsz)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0) return false;
    const char *v = line + nl + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t n = (size_t)(end - v);
    if (n >= outsz) n = outsz - 1;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

/*
 * libcurl's header callback: the status of each status line (a 1xx
 * response is followed by another, which starts the headers afresh) and
 * the Retry-After headers.
 */
static size_t llm_openai__on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    llm_call *c = ud;
    size_t n = size * nmemb;

    llm_openai__arm_stall(c);
    if (n > 5 && strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = memchr(line, ' ', n);
        c->status = 0;
        if (sp) {
            for (const char *p = sp + 1; p < line + n && *p >= '0' && *p <= '9'; p++)
                c->status = c->status * 10 + (*p - '0');
        }
        c->retry_after[0] = c->retry_after_ms[0] = '\0';
        return n;
    }
    if (!llm_openai__header_value(line, n, "retry-after-ms", c->retry_after_ms,
                                  sizeof c->retry_after_ms))
        llm_openai__header_value(line, n, "retry-after", c->retry_after, sizeof c->retry_after);
    return n;
}

/* The text of a transport failure: the OS's reason when there is one,
 * libcurl's message otherwise. */
static const char *llm_openai__why(llm_call *c, CURLcode code)
{
    if (!c->easy) return c->errbuf[0] ? c->errbuf : curl_easy_strerror(code);
    long oserr = 0;
    curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &oserr);
    if (code == CURLE_COULDNT_CONNECT && oserr == ECONNREFUSED) return "connection refused";
    if (c->errbuf[0]) return c->errbuf;
    return curl_easy_strerror(code);
}

/* Writes the failure of a transfer that libcurl ended with an error. */
static void llm_openai__transport_failure(llm_call *c, CURLcode code, llm_result *r)
{
    const char *url = c->owner->display_url;
    const char *why = llm_openai__why(c, code);

    switch (code) {
    case CURLE_COULDNT_CONNECT:
        llm_stream_fail(r, true, 0, NULL, "could not connect to %s: %s", url, why);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        llm_stream_fail(r, true, 0, NULL, "could not resolve the host of %s: %s", url, why);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        llm_stream_fail(r, true, 0, NULL, "timed out waiting for %s: %s", url, why);
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        llm_stream_fail(r, false, 0, NULL, "the model URL %s cannot be used: %s", url, why);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        llm_stream_fail(r, false, 0, NULL, "TLS verification of %s failed: %s", url, why);
        break;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        llm_stream_fail(r, true, 0, NULL, "the connection to %s broke: %s", url, why);
        break;
    default:
        llm_stream_fail(r, true, 0, NULL, "the request to %s failed: %s", url, why);
        break;
    }
}

/*
 * Decides the outcome of a finished transfer, most specific first: what
 * the stream itself said (an error object, a cap, [DONE] or a finish
 * reason — a stream that completed its turn succeeded even if the
 * connection broke after it), then the
 * HTTP status, then the transport error, then a body that ended early.
 */
static void llm_openai__outcome(llm_call *c, CURLcode code, llm_result *r)
{
    const openai__dialect *d = c->owner->d;
    int state = d->state(c->stream);

    if (c->sse_toobig) {
        llm_stream_fail(r, false, 200, NULL, "an event of the model stream from %s exceeded %d MiB",
                        c->owner->display_url, OPENAI_SSE_EVENT_MAX >> 20);
    } else if (c->status == 200 && (state != LLM_STREAM_MORE || d->turn_complete(c->stream))) {
        d->finish(c->stream, r);
        if (!r->ok) r->http_status = 200;
    } else if (c->status != 0 && c->status != 200) {
        int64_t wait =
            llm_stream_retry_after_ms(c->retry_after_ms[0] ? c->retry_after_ms : NULL,
                                      c->retry_after[0] ? c->retry_after : NULL, clock_wall_ms());
        d->http_error(r, (int)c->status, c->owner->display_url, c->errbody.data, c->errbody.len,
                      wait);
    } else if (code != CURLE_OK) {
        llm_openai__transport_failure(c, code, r);
    } else {
        d->finish(c->stream, r);
        if (!r->ok) r->http_status = (int)c->status;
    }
}

/* Hands the outcome to on_done and frees the call; the call's handle
 * leaves the multi handle first. Outside libcurl's callbacks only. */
static void llm_openai__finish(llm_call *c, llm_result *r)
{
    if (c->added) {
        curl_multi_remove_handle(c->owner->multi, c->easy);
        c->added = false;
    }
    if (!r->ok) {
        /* The upstream parts were masked before they were cut to length
         * (llm_stream); this pass catches what the transport added, such
         * as libcurl's error text. */
        redact_in_place(&r->error_message);
        redact_in_place(&r->error_code);
        LOG(LOG_DEBUG, "model call failed", "retryable=%d status=%d", r->retryable, r->http_status);
    } else if (r->dropped_calls) {
        LOG(LOG_WARN, "the model sent more tool calls than a turn keeps; the rest were dropped",
            "kept=%zu dropped=%zu", r->ncalls, r->dropped_calls);
    }
    c->finishing = true;
    c->cb.on_done(c->ud, r);
    llm_result_cleanup(r);
    llm_openai__destroy(c);
}

/* Writes a duration for messages: "30 s", "1.5 s". */
static const char *llm_openai__duration(char out[32], int64_t ms)
{
    if (ms % 1000 == 0)
        snprintf(out, 32, "%lld s", (long long)(ms / 1000));
    else
        snprintf(out, 32, "%.3g s", (double)ms / 1000.0);
    return out;
}

/* Reports every transfer libcurl has finished. Runs outside libcurl's
 * callbacks, so on_done may start and abort calls. */
static void llm_openai__check_done(llm_openai *o)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(o->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        llm_call *c = (llm_call *)priv;
        if (!c || c->aborted) continue;

        llm_result r;
        llm_openai__outcome(c, code, &r);
        llm_openai__finish(c, &r);
    }
}

/* A call went stall_ms without a byte: it fails as a retryable time-out.
 * Runs from the loop, outside libcurl. */
static void llm_openai__on_stall(evutil_socket_t fd, short what, void *arg)
{
    llm_call *c = arg;
    llm_openai *o = c->owner;
    llm_result r;
    char dur[32];
    (void)fd;
    (void)what;

    c->stall_armed = false;
    if (c->aborted || c->finishing) return;
    /* Bytes came since the timer was armed: it waits out the rest. */
    int64_t idle = clock_mono_ms() - c->last_byte_ms;
    if (idle < o->stall_ms) {
        llm_openai__stall_in(c, o->stall_ms - idle);
        return;
    }
    if (o->d->turn_complete(c->stream) && c->status == 200) {
        /* The answer is complete; only the end of the body is missing. */
        o->d->finish(c->stream, &r);
    } else if (c->status) {
        llm_stream_fail(&r, true, 0, NULL, "the model stream from %s stalled: no data for %s",
                        o->display_url, llm_openai__duration(dur, o->stall_ms));
    } else {
        llm_stream_fail(&r, true, 0, NULL, "timed out waiting for %s: no response in %s",
                        o->display_url, llm_openai__duration(dur, o->stall_ms));
    }
    llm_openai__finish(c, &r);
}

/* Adds queued calls and frees aborted ones, once libcurl has returned. */
static void llm_openai__settle(llm_openai *o)
{
    llm_call *next;
    if (o->unsettled == 0) return;
    o->unsettled = 0;
    for (llm_call *c = o->calls; c; c = next) {
        next = c->next;
        if (c->aborted) llm_openai__destroy(c);
    }
    for (llm_call *c = o->calls; c; c = next) {
        next = c->next;
        /* A plain transport's call (no easy handle) was sent when it began. */
        if (c->added || c->finishing || !c->easy) continue;
        if (curl_multi_add_handle(o->multi, c->easy) == CURLM_OK) {
            c->added = true;
            continue;
        }
        llm_result r;
        llm_stream_fail(&r, true, 0, NULL, "the request to %s could not be queued", o->display_url);
        llm_openai__finish(c, &r);
        next = o->calls; /* on_done may have aborted the call saved in next */
    }
}

/* Tells libcurl about a socket event or a time-out, then reports. */
static void llm_openai__action(llm_openai *o, curl_socket_t fd, int ev_bitmask)
{
    int running = 0;

    o->depth++;
    o->turn++;
    curl_multi_socket_action(o->multi, fd, ev_bitmask, &running);
    o->depth--;
    llm_openai__settle(o);
    llm_openai__check_done(o);
}

/* The loop has turned since a call yielded: its transfer goes on, the
 * piece it paused on first (libcurl hands it back inside curl_easy_pause). */
static void llm_openai__on_resume(evutil_socket_t fd, short what, void *arg)
{
    llm_call *c = arg;
    llm_openai *o = c->owner;
    (void)fd;
    (void)what;

    if (c->aborted || c->finishing) return;
    o->depth++;
    o->turn++;
    curl_easy_pause(c->easy, CURLPAUSE_CONT);
    o->depth--;
    llm_openai__settle(o);
    llm_openai__check_done(o);
}

/* ---- the plain transport (llm_plain.h) ---- */

/* Around the plain transport's callbacks, as around libcurl's: a call that
 * a callback aborts is freed once the transport has returned. */
static void llm_openai__plain_enter(void *ud)
{
    llm_openai *o = ud;
    o->depth++;
    o->turn++;
}

static void llm_openai__plain_leave(void *ud)
{
    llm_openai *o = ud;
    o->depth--;
    llm_openai__settle(o);
}

static void llm_openai__plain_status(void *ud, int status)
{
    llm_call *c = ud;
    llm_openai__arm_stall(c);
    c->status = status;
}

static void llm_openai__plain_header(void *ud, const char *name, size_t nl, const char *value,
                                     size_t vl)
{
    llm_call *c = ud;
    char *out = NULL;
    if (nl == 14 && strncasecmp(name, "retry-after-ms", nl) == 0)
        out = c->retry_after_ms;
    else if (nl == 11 && strncasecmp(name, "retry-after", nl) == 0)
        out = c->retry_after;
    if (!out) return;
    if (vl >= OPENAI_HEADER_VALUE_MAX) vl = OPENAI_HEADER_VALUE_MAX - 1;
    memcpy(out, value, vl);
    out[vl] = '\0';
}

static bool llm_openai__plain_body(void *ud, const char *data, size_t len)
{
    llm_call *c = ud;
    if (c->aborted) return false;
    llm_openai__arm_stall(c);
    return llm_openai__body(c, data, len);
}

/* The plain call ended: the outcome is decided as for libcurl's, from the
 * libcurl code that names the same failure. */
static void llm_openai__plain_end(void *ud, int code, const char *why)
{
    llm_call *c = ud;
    c->pc = NULL;
    if (c->aborted || c->finishing) return;
    CURLcode cc = code == LLM_PLAIN_OK        ? CURLE_OK
                  : code == LLM_PLAIN_CONNECT ? CURLE_COULDNT_CONNECT
                  : code == LLM_PLAIN_BROKEN  ? CURLE_RECV_ERROR
                  : code == LLM_PLAIN_BAD     ? CURLE_WEIRD_SERVER_REPLY
                                              : CURLE_WRITE_ERROR;
    snprintf(c->errbuf, sizeof c->errbuf, "%s", why ? why : "");
    llm_result r;
    llm_openai__outcome(c, cc, &r);
    llm_openai__finish(c, &r);
}

static const llm_plain_cb openai__plain_cb = {
    .on_status = llm_openai__plain_status,
    .on_header = llm_openai__plain_header,
    .on_body = llm_openai__plain_body,
    .on_end = llm_openai__plain_end,
    .enter = llm_openai__plain_enter,
    .leave = llm_openai__plain_leave,
};

/* Sends a call's request on the plain transport: the fixed head, its
 * length, the body. The transport writes it from the loop, so this is
 * safe from inside any callback. */
static void llm_openai__plain_post(llm_openai *o, llm_call *c, size_t body_len)
{
    char len[48];
    int ln = snprintf(len, sizeof len, "Content-Length: %zu\r\n\r\n", body_len);
    size_t n = o->plain_head_len + (size_t)ln + body_len;
    char *req = xmalloc(n);
    memcpy(req, o->plain_head, o->plain_head_len);
    memcpy(req + o->plain_head_len, len, (size_t)ln);
    memcpy(req + o->plain_head_len + (size_t)ln, c->body, body_len);
    free(c->body);
    c->body = NULL;
    c->pc = llm_plain_post(o->plain, req, n, &openai__plain_cb, c, o);
}

/* The head of every plain request up to its Content-Length, or NULL when
 * a header cannot go on the wire as it is (libcurl then sends them). */
static char *llm_openai__plain_head(const llm_openai *o, const char *path, size_t *len)
{
    buf b;
    buf_init(&b, 1 << 20);
    buf_printf(&b,
               "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: chatplane/" CHATPLANE_VERSION
               "\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n",
               path, llm_plain_host(o->plain));
    for (const struct curl_slist *h = o->extra; h; h = h->next) {
        if (strpbrk(h->data, "\r\n") || !strchr(h->data, ':')) {
            buf_cleanup(&b);
            return NULL;
        }
        buf_append_str(&b, h->data);
        buf_append_str(&b, "\r\n");
    }
    return buf_detach(&b, len);
}

/* ---- libevent <-> libcurl ---- */

static void llm_openai__on_event(evutil_socket_t fd, short what, void *arg)
{
    int mask =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    llm_openai__action(arg, fd, mask);
}

static void llm_openai__on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    llm_openai__action(arg, CURL_SOCKET_TIMEOUT, 0);
}

static void llm_openai__sock_free(llm_openai *o, openai__sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        o->socks = s->next;
    if (s->next) s->next->prev = s->prev;
    event_free(s->ev);
    free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what libcurl wants, or stop. */
static int llm_openai__on_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
    llm_openai *o = ud;
    openai__sock *s = sockp;
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(o->multi, fd, NULL);
            llm_openai__sock_free(o, s);
        }
        return 0;
    }
    if (!s) {
        s = xcalloc(1, sizeof *s);
        s->owner = o;
        s->fd = fd;
        s->next = o->socks;
        if (o->socks) o->socks->prev = s;
        o->socks = s;
        curl_multi_assign(o->multi, fd, s);
    } else {
        event_free(s->ev);
    }
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                 ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    s->ev = event_new(o->evbase, fd, kind, llm_openai__on_event, o);
    event_add(s->ev, NULL);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: one loop timer, re-armed as libcurl asks. */
static int llm_openai__on_timer(CURLM *multi, long timeout_ms, void *ud)
{
    llm_openai *o = ud;
    (void)multi;

    if (timeout_ms < 0) {
        evtimer_del(o->timer);
    } else {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(o->timer, &tv);
    }
    return 0;
}

/* ---- the provider ---- */

/* Configures the easy handle of a call. */
static void llm_openai__setup(llm_openai *o, llm_call *c, size_t body_len)
{
    CURL *e = c->easy;

    c->headers = curl_slist_append(c->headers, "Content-Type: application/json");
    c->headers = curl_slist_append(c->headers, "Accept: text/event-stream");
    c->headers = curl_slist_append(c->headers, "Expect:");
    for (const struct curl_slist *h = o->extra; h; h = h->next)
        c->headers = curl_slist_append(c->headers, h->data);

    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "chatplane/" CHATPLANE_VERSION);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    /* A model stream comes in small pieces; libcurl's default 16 KiB
     * receive buffer per call was most of a run's memory. */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, OPENAI_RECV_BUFFER);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->stall_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, llm_openai__on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, llm_openai__on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
}

/*
 * Starts a call: builds the body, sets up the handle and puts it on the
 * multi handle (or queues it while inside libcurl). The first bytes go out
 * on the next turn of the loop. Returns NULL after calling on_done only
 * when libcurl cannot make or take the handle.
 */
static llm_call *llm_openai__start(llm *p, const llm_request *req, const llm_callbacks *cb,
                                   void *ud)
{
    llm_openai *o = (llm_openai *)p;
    llm_call *c = xcalloc(1, sizeof *c);
    size_t body_len;

    c->owner = o;
    c->cb = *cb;
    c->ud = ud;
    c->body = o->d->body(o->model, req, &body_len);
    c->stream = o->d->stream_new(llm_openai__on_text, c);
    sse_parser_init(&c->sse, OPENAI_SSE_EVENT_MAX, llm_openai__on_sse, c);
    buf_init(&c->errbody, OPENAI_ERROR_BODY_MAX);
    c->stall = evtimer_new(o->evbase, llm_openai__on_stall, c);
    llm_openai__link(&o->calls, c);
    if (o->plain) {
        llm_openai__arm_stall(c);
        llm_openai__plain_post(o, c, body_len);
        return c;
    }
    c->easy = curl_easy_init();
    c->resume = evtimer_new(o->evbase, llm_openai__on_resume, c);

    if (c->easy) {
        llm_openai__setup(o, c, body_len);
        llm_openai__arm_stall(c);
        if (o->depth > 0) {
            o->unsettled++; /* added by openai__settle */
            return c;
        }
        if (curl_multi_add_handle(o->multi, c->easy) == CURLM_OK) {
            c->added = true;
            return c;
        }
    }
    llm_result r;
    llm_stream_fail(&r, true, 0, NULL, "the request to %s could not be set up", o->display_url);
    llm_openai__finish(c, &r);
    return NULL;
}

/* Aborts a call: no callback runs afterwards. Freed at once, or right
 * after libcurl returns when called from inside one of its callbacks. */
static void llm_openai__abort(llm_call *c)
{
    if (c->finishing || c->aborted) return;
    c->aborted = true;
    if (c->owner->depth == 0)
        llm_openai__destroy(c);
    else
        c->owner->unsettled++;
}

/* Frees the client and every call in flight, without callbacks. Not to be
 * called from inside a callback of this client. */
static void llm_openai__free(llm *p)
{
    llm_openai *o = (llm_openai *)p;

    while (o->calls) llm_openai__destroy(o->calls);
    llm_plain_free(o->plain);
    free(o->plain_head);
    curl_multi_cleanup(o->multi);
    while (o->socks) llm_openai__sock_free(o, o->socks);
    event_free(o->timer);
    free(o->url);
    free(o->display_url);
    curl_slist_free_all(o->extra);
    free(o->model);
    free(o);
}

static const llm_ops openai_ops = {
    .start = llm_openai__start,
    .abort = llm_openai__abort,
    .free = llm_openai__free,
};

/* libcurl's global set-up, once, on the main thread before any transfer. */
static void llm_openai__curl_init(void)
{
    static bool curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = true;
    }
}

/* The URL without "user:password@", so that messages never carry it. */
static char *llm_openai__display_url(const char *url)
{
    const char *scheme = strstr(url, "://");
    if (!scheme) return xstrdup(url);
    const char *host = scheme + 3;
    const char *end = host + strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *q = host; q < end; q++) {
        if (*q == '@') at = q;
    }
    if (!at) return xstrdup(url);
    return xasprintf("%.*s%s", (int)(host - url), url, at + 1);
}

/* The headers every call sends besides the fixed ones: the key in the
 * dialect's form, anthropic-version, then llm.headers (whose values join
 * the secret registry: gateways put keys there too). */
static struct curl_slist *llm_openai__extra_headers(const llm_http_options *opt)
{
    struct curl_slist *h = NULL;
    bool anthropic = opt->kind == LLM_KIND_ANTHROPIC;
    const char *key = opt->api_key;
    if (key && *key) {
        char *line = anthropic ? xasprintf("x-api-key: %s", key)
                               : xasprintf("Authorization: Bearer %s", key);
        h = curl_slist_append(h, line);
        free(line);
    }
    if (anthropic) {
        char *line =
            xasprintf("anthropic-version: %s", opt->anthropic_version && *opt->anthropic_version
                                                   ? opt->anthropic_version
                                                   : LLM_ANTHROPIC_VERSION);
        h = curl_slist_append(h, line);
        free(line);
    }
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)opt->headers, name, v)
    {
        const char *value = json_string_value(v);
        if (!value) continue;
        redact_register(value);
        char *line = xasprintf("%s: %s", name, value);
        h = curl_slist_append(h, line);
        free(line);
    }
    return h;
}

llm *llm_http_new(struct event_base *base, const llm_http_options *opt)
{
    llm_openai__curl_init();

    llm_openai *o = xcalloc(1, sizeof *o);
    const char *base_url = opt->base_url;
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/') n--;

    o->d = opt->kind == LLM_KIND_ANTHROPIC ? &openai__messages : &openai__chat;
    o->base.ops = &openai_ops;
    o->base.provider = o->d->provider;
    o->model = xstrdup(opt->model ? opt->model : "");
    o->base.model = o->model;
    o->evbase = base;
    o->url = xasprintf("%.*s%s", (int)n, base_url, o->d->path);
    o->display_url = llm_openai__display_url(o->url);
    o->extra = llm_openai__extra_headers(opt);
    /* The key and the URL's password join the secret registry (the runtime
     * registers them too; a client made on its own must not leak either). */
    if (opt->api_key) redact_register(opt->api_key);
    redact_register_url(base_url);
    o->stall_ms = OPENAI_STALL_MS_DEFAULT;
    o->timer = evtimer_new(base, llm_openai__on_timeout, o);
    char *path = NULL;
    o->plain = llm_plain_new(base, o->url, &path);
    if (o->plain) {
        o->plain_head = llm_openai__plain_head(o, path, &o->plain_head_len);
        if (!o->plain_head) {
            llm_plain_free(o->plain);
            o->plain = NULL;
        }
    }
    free(path);
    o->multi = curl_multi_init();
    curl_multi_setopt(o->multi, CURLMOPT_SOCKETFUNCTION, llm_openai__on_socket);
    curl_multi_setopt(o->multi, CURLMOPT_SOCKETDATA, o);
    curl_multi_setopt(o->multi, CURLMOPT_TIMERFUNCTION, llm_openai__on_timer);
    curl_multi_setopt(o->multi, CURLMOPT_TIMERDATA, o);
    return &o->base;
}

llm *llm_openai_new(struct event_base *base, const char *base_url, const char *api_key,
                    const char *model)
{
    llm_http_options opt = {
        .kind = LLM_KIND_OPENAI, .base_url = base_url, .api_key = api_key, .model = model};
    return llm_http_new(base, &opt);
}

void llm_openai_set_stall_timeout_ms(llm *p, int64_t ms)
{
    if (p && p->ops == &openai_ops && ms > 0) ((llm_openai *)p)->stall_ms = ms;
}

/* ---- the model list, at start-up ---- */

#define OPENAI_MODELS_BODY_MAX (1024 * 1024)

static size_t llm_openai__collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    /* Past the cap the transfer ends: no model list is that long. */
    return buf_append(ud, ptr, n) == 0 ? n : 0;
}

char *llm_openai_only_model(const char *base_url, const char *api_key, int64_t timeout_ms,
                            char *err, size_t errlen)
{
    llm_openai__curl_init();
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/') n--;
    char *url = xasprintf("%.*s/models", (int)n, base_url);
    char *shown = llm_openai__display_url(url);
    char *auth = api_key && *api_key ? xasprintf("Authorization: Bearer %s", api_key) : NULL;
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    char errbuf[CURL_ERROR_SIZE] = "";
    char why[LLM_STREAM_MODELS_ERR_MAX];
    char *model = NULL;
    long status = 0;
    buf body;

    if (auth) headers = curl_slist_append(headers, auth);
    buf_init(&body, OPENAI_MODELS_BODY_MAX);
    CURL *e = curl_easy_init();
    if (!e) {
        snprintf(err, errlen, "cannot list the models of %s: libcurl failed", shown);
        goto out;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "chatplane/" CHATPLANE_VERSION);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, llm_openai__collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode code = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (code != CURLE_OK) {
        long oserr = 0;
        curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &oserr);
        const char *reason = code == CURLE_COULDNT_CONNECT && oserr == ECONNREFUSED
                                 ? "connection refused"
                             : code == CURLE_WRITE_ERROR ? "the answer exceeded 1 MiB"
                             : errbuf[0]                 ? errbuf
                                                         : curl_easy_strerror(code);
        snprintf(err, errlen, "cannot list the models of %s: %s", shown, reason);
    } else if (status != 200) {
        llm_result r;
        llm_stream_http_error(&r, (int)status, shown, body.data, body.len, -1);
        snprintf(err, errlen, "cannot list the models: %s", r.error_message);
        llm_result_cleanup(&r);
    } else if (!(model = llm_stream_only_model(body.data, body.len, why, sizeof why))) {
        snprintf(err, errlen, "%s %s", shown, why);
    }
    curl_easy_cleanup(e);
out:
    buf_cleanup(&body);
    curl_slist_free_all(headers);
    free(auth);
    free(shown);
    free(url);
    return model;
}
