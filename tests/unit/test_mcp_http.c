/* Unit tests for engine/mcp_http: what reaches the server logic from a
 * connection that cannot be made, the caps on requests, the URL shown in
 * messages, and how answer headers and SSE events are read. The exchange
 * with a real server is in tests/scenarios/mcp_http.test.mjs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/mcp_http.c"

typedef struct seen {
    int frames, eofs, closes;
    char how[512];
    char last[512];
} seen;

static void on_frame(void *ud, const char *data, size_t len)
{
    seen *s = ud;
    s->frames++;
    snprintf(s->last, sizeof s->last, "%.*s", (int)len, data);
}

static void on_toobig(void *ud, size_t len, size_t max, int64_t id)
{
    (void)ud;
    (void)len;
    (void)max;
    (void)id;
    fail_msg("no message is too big here");
}

static void on_eof(void *ud)
{
    ((seen *)ud)->eofs++;
}

static void on_closed(void *ud, const char *how)
{
    seen *s = ud;
    s->closes++;
    snprintf(s->how, sizeof s->how, "%s", how);
}

static mcp_transport *new_transport(struct event_base *base, const char *url, seen *s)
{
    char *headers[] = {"Authorization: Bearer t0k3n-unit-test", NULL};
    mcp_server_config cfg = {.name = "remote",
                             .transport = MCP_TRANSPORT_HTTP,
                             .url = (char *)url,
                             .headers = headers,
                             .tls_verify = true,
                             .timeout_ms = 2000};
    mcp_transport *t = mcp_http_new(base, &cfg);
    t->name = "remote";
    t->cb = (mcp_transport_callbacks){on_frame, on_toobig, on_eof, on_closed};
    t->ud = s;
    return t;
}

static const char init_msg[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}\n";
static const char call_msg[] = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\"}\n";

static void test_unreachable_initialize_closes(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    seen s = {0};
    /* Port 1 on loopback: nothing listens there. */
    mcp_transport *t = new_transport(base, "http://user:pw@127.0.0.1:1/mcp?key=x", &s);
    char err[128];
    assert_int_equal(mcp_transport_start(t, err, sizeof err), 0);
    assert_string_equal(t->peer, "url=http://127.0.0.1:1/mcp");
    assert_int_equal(mcp_transport_send(t, init_msg, strlen(init_msg)), 0);
    /* Nothing is reported from within send. */
    assert_int_equal(s.closes, 0);
    for (int i = 0; i < 1000 && s.closes == 0; i++) event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(s.closes, 1);
    assert_int_equal(s.eofs, 1);
    assert_int_equal(s.frames, 0);
    assert_string_equal(
        s.how, "could not be reached at http://127.0.0.1:1/mcp: Couldn't connect to server");
    assert_false(mcp_http_unauthorized(t));
    assert_int_equal(mcp_http_take_rejected(t), -1);
    /* The connection is over: nothing more is taken until start. */
    assert_int_equal(mcp_transport_send(t, call_msg, strlen(call_msg)), -1);
    mcp_transport_free(t);
    event_base_free(base);
}

static void test_unreachable_call_fails_alone(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    seen s = {0};
    mcp_transport *t = new_transport(base, "http://127.0.0.1:1/mcp", &s);
    char err[128];
    assert_int_equal(mcp_transport_start(t, err, sizeof err), 0);
    /* A request other than initialize: only its call fails, as an error
     * answer to its id. */
    assert_int_equal(mcp_transport_send(t, call_msg, strlen(call_msg)), 0);
    for (int i = 0; i < 1000 && s.frames == 0; i++) event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(s.frames, 1);
    assert_int_equal(s.closes, 0);
    assert_string_equal(s.last,
                        "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32000,\"message\":"
                        "\"the MCP server 'remote' could not be reached at "
                        "http://127.0.0.1:1/mcp: Couldn't connect to server\"}}");
    mcp_transport_free(t);
    event_base_free(base);
}

static void test_caps_and_close(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    seen s = {0};
    mcp_transport *t = new_transport(base, "http://127.0.0.1:1/mcp", &s);
    char err[128];
    assert_int_equal(mcp_transport_send(t, call_msg, strlen(call_msg)), -1); /* not started */
    assert_int_equal(mcp_transport_start(t, err, sizeof err), 0);
    mcp_http *h = (mcp_http *)t;
    for (int i = 0; i < MCP_HTTP_MAX_ACTIVE + MCP_HTTP_MAX_WAITING; i++)
        assert_int_equal(mcp_transport_send(t, call_msg, strlen(call_msg)), 0);
    assert_int_equal(h->nactive, MCP_HTTP_MAX_ACTIVE);
    assert_int_equal(h->nwaiting, MCP_HTTP_MAX_WAITING);
    assert_int_equal(mcp_transport_send(t, call_msg, strlen(call_msg)), -1);
    /* A cancellation ends the transfer of the request it names. */
    const char cancel[] = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                          "\"params\":{\"requestId\":2}}\n";
    mcp_transport_close(t);
    assert_int_equal(mcp_transport_start(t, err, sizeof err), 0);
    assert_int_equal(mcp_transport_send(t, call_msg, strlen(call_msg)), 0);
    assert_int_equal(mcp_transport_send(t, cancel, strlen(cancel)), 0);
    assert_int_equal(h->nactive, 1);
    assert_int_equal(h->reqs->id, -1);
    assert_null(h->reqs->next);
    /* close: nothing of the connection calls back afterwards. */
    mcp_transport_close(t);
    assert_null(h->reqs);
    assert_string_equal(t->peer, "");
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(s.frames + s.eofs + s.closes, 0);
    mcp_transport_free(t);
    event_base_free(base);
}

static void test_display_url(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"https://h.example/mcp", "https://h.example/mcp"},
        {"https://u:secret@h.example:8443/a/mcp?token=abc#frag", "https://h.example:8443/a/mcp"},
        {"http://h?x=1", "http://h"},
        {"http://a@b@h/p", "http://h/p"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *d = mcp_http__display(cases[i][0]);
        assert_string_equal(d, cases[i][1]);
        free(d);
    }
}

static void test_headers_and_events(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    seen s = {0};
    mcp_transport *t = new_transport(base, "http://127.0.0.1:1/mcp", &s);
    mcp_http *h = (mcp_http *)t;
    mcp_http__req r = {.t = h, .id = 7};
    char l1[] = "content-type:  text/event-stream; charset=utf-8\r\n";
    char l2[] = "WWW-Authenticate: Bearer realm=\"x\"\r\n";
    char l3[] = "X-Other: 1\r\n";
    mcp_http__on_header(l1, 1, strlen(l1), &r);
    mcp_http__on_header(l2, 1, strlen(l2), &r);
    mcp_http__on_header(l3, 1, strlen(l3), &r);
    assert_string_equal(r.ctype, "text/event-stream; charset=utf-8");
    assert_string_equal(r.auth, "Bearer realm=\"x\"");

    /* Events of an answer stream: each message is queued, other event
     * types and empty data are not; the response to the request's id marks
     * it answered. */
    sse_event note = {.event = "message", .data = "{\"method\":\"n\"}", .data_len = 14};
    sse_event other = {.event = "ping", .data = "{}", .data_len = 2};
    sse_event answer = {.event = "message", .data = "{\"id\":7,\"result\":{}}", .data_len = 20};
    mcp_http__on_sse(&r, &note);
    assert_false(r.answered);
    mcp_http__on_sse(&r, &other);
    mcp_http__on_sse(&r, &answer);
    assert_true(r.answered);
    assert_string_equal(h->items->data, "{\"method\":\"n\"}");
    assert_string_equal(h->items->next->data, "{\"id\":7,\"result\":{}}");
    assert_null(h->items->next->next);
    /* A NUL byte inside an event's data is kept in the copy, so the length
     * given with the message stays true (found by fuzz_mcp_http). */
    sse_event nul = {.event = "message", .data = "{\"a\":1}\0x", .data_len = 9};
    mcp_http__on_sse(&r, &nul);
    mcp_http__item *last = h->items->next->next;
    assert_int_equal(last->len, 9);
    assert_memory_equal(last->data, "{\"a\":1}\0x", 10);
    mcp_transport_free(t);
    event_base_free(base);
}

/* The delay before a resume: the server's retry field within the bounds,
 * else a doubling from the default. */
static void test_retry_delay(void **state)
{
    (void)state;
    const int64_t cases[][3] = {
        {300, 1, 300},  {300, 5, 300},   {0, 1, 100},   {60000, 1, 10000},
        {-1, 1, 1000},  {-1, 2, 2000},   {-1, 3, 4000}, {-1, 4, 8000},
        {-1, 5, 10000}, {-1, 60, 10000}, {100, 1, 100}, {10000, 2, 10000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(mcp_http_retry_delay(cases[i][0], (int)cases[i][1]), cases[i][2]);
}

/* The endpoint event of the HTTP+SSE transport: relative and absolute
 * URLs resolved against the event stream's, and only its origin taken. */
static void test_endpoint(void **state)
{
    (void)state;
    const char *base = "http://127.0.0.1:8080/mcp/sse?k=v";
    const char *ok[][2] = {
        {"/messages?sessionId=ab-12", "http://127.0.0.1:8080/messages?sessionId=ab-12"},
        {"messages?x=1", "http://127.0.0.1:8080/mcp/messages?x=1"},
        {"../m", "http://127.0.0.1:8080/m"},
        {"http://127.0.0.1:8080/other", "http://127.0.0.1:8080/other"},
        {"HTTP://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"},
        {"//127.0.0.1:8080/p", "http://127.0.0.1:8080/p"},
        {"?sessionId=1", "http://127.0.0.1:8080/mcp/sse?sessionId=1"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *u = mcp_http_endpoint(base, ok[i][0], strlen(ok[i][0]), err, sizeof err);
        assert_non_null(u);
        assert_string_equal(u, ok[i][1]);
        free(u);
    }
    /* The default port of the scheme is the same origin as none. */
    char *u = mcp_http_endpoint("https://h/sse", "https://h:443/m", 15, err, sizeof err);
    assert_non_null(u);
    free(u);

    const char *bad[][2] = {
        {"http://evil.example/m", "http://evil.example/m is not on the origin of the event stream "
                                  "http://127.0.0.1:8080/mcp/sse"},
        {"http://127.0.0.1:8081/m",
         "http://127.0.0.1:8081/m is not on the origin of the event stream "
         "http://127.0.0.1:8080/mcp/sse"},
        {"https://127.0.0.1:8080/m",
         "https://127.0.0.1:8080/m is not on the origin of the event stream "
         "http://127.0.0.1:8080/mcp/sse"},
        {"//evil.example:8080/p",
         "http://evil.example:8080/p is not on the origin of the event stream "
         "http://127.0.0.1:8080/mcp/sse"},
        {"", "it is empty"},
        {"/a b", "it has a space or a control character"},
        {"/a\x01", "it has a space or a control character"},
        {"javascript:alert(1)", "it is not a URL (Unsupported URL scheme)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_null(mcp_http_endpoint(base, bad[i][0], strlen(bad[i][0]), err, sizeof err));
        assert_string_equal(err, bad[i][1]);
    }
    /* A NUL byte inside is a control character, not the end. */
    assert_null(mcp_http_endpoint(base, "/m\0http://evil/", 15, err, sizeof err));
    assert_string_equal(err, "it has a space or a control character");
    char *longer = xmalloc(MCP_HTTP_ENDPOINT_MAX + 2);
    memset(longer, 'a', MCP_HTTP_ENDPOINT_MAX + 1);
    longer[MCP_HTTP_ENDPOINT_MAX + 1] = '\0';
    assert_null(mcp_http_endpoint(base, longer, MCP_HTTP_ENDPOINT_MAX + 1, err, sizeof err));
    assert_string_equal(err, "it is longer than 2048 bytes");
    free(longer);
}

/* The endpoint event on the event stream of an HTTP+SSE server: taken, or
 * refused with the reason that ends the stream; POSTs wait for it. */
static void test_endpoint_event(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    char *headers[] = {NULL};
    mcp_server_config cfg = {.name = "old",
                             .transport = MCP_TRANSPORT_SSE,
                             .url = "http://127.0.0.1:1/sse",
                             .headers = headers,
                             .tls_verify = true,
                             .timeout_ms = 2000};
    mcp_http *h = (mcp_http *)mcp_http_new(base, &cfg);
    assert_true(h->legacy);
    assert_int_equal(mcp_transport_start(&h->base, NULL, 0), 0);
    /* The event stream is opened at start; a message waits for the endpoint. */
    assert_non_null(h->listen);
    assert_int_equal(mcp_transport_send(&h->base, "{\"id\":1,\"method\":\"initialize\"}", 31), 0);
    mcp_http__req *post = h->reqs->next;
    assert_false(mcp_http__ready(post));

    sse_event ev = {.event = "endpoint", .data = "/messages?sessionId=s1", .data_len = 22};
    assert_int_equal(mcp_http__on_sse(h->listen, &ev), 0);
    assert_string_equal(h->endpoint, "http://127.0.0.1:1/messages?sessionId=s1");
    assert_true(mcp_http__ready(post));
    assert_null(h->items); /* not a message */

    sse_event bad = {.event = "endpoint", .data = "http://127.0.0.2:1/m", .data_len = 20};
    assert_int_not_equal(mcp_http__on_sse(h->listen, &bad), 0);
    assert_string_equal(h->listen->why,
                        "sent an endpoint that cannot be used: http://127.0.0.2:1/m is not on the "
                        "origin of the event stream http://127.0.0.1:1/sse");
    assert_string_equal(h->endpoint, "http://127.0.0.1:1/messages?sessionId=s1");
    mcp_transport_close(&h->base);
    assert_null(h->endpoint);
    assert_null(h->listen);
    mcp_transport_free(&h->base);
    event_base_free(base);
}

/* A message over the cap on the event stream of an HTTP+SSE server: its
 * call cannot be told from the others, so the connection ends. */
static void test_event_stream_toobig(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    char *headers[] = {NULL};
    mcp_server_config cfg = {.name = "old",
                             .transport = MCP_TRANSPORT_SSE,
                             .url = "http://127.0.0.1:1/sse",
                             .headers = headers,
                             .tls_verify = true,
                             .timeout_ms = 2000};
    mcp_http *h = (mcp_http *)mcp_http_new(base, &cfg);
    assert_int_equal(mcp_transport_start(&h->base, NULL, 0), 0);
    mcp_http__req *r = h->listen;
    mcp_http__easy(h, r); /* for its status, 0: it never ran */
    r->toobig = true;
    r->seen = MCP_LINE_MAX + 1;
    assert_false(mcp_http__finished(h, r, CURLE_WRITE_ERROR));
    assert_null(h->reqs);
    assert_false(h->open);
    mcp_http__item *it = h->items;
    assert_int_equal(it->kind, MCP_HTTP__TOOBIG);
    assert_int_equal(it->len, MCP_LINE_MAX + 1);
    assert_int_equal(it->id, -1);
    assert_int_equal(it->next->kind, MCP_HTTP__EOF);
    assert_int_equal(it->next->next->kind, MCP_HTTP__CLOSED);
    assert_string_equal(it->next->next->data, "sent a message over the cap on its event stream");
    mcp_transport_free(&h->base);
    event_base_free(base);
}

/* Whether a stream cut before its response is resumed: with the id of its
 * last event, in the server's delay, as a GET, a bounded number of times
 * in a row; an event seen starts the count again. */
static void test_resume_decision(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    seen s = {0};
    mcp_transport *t = new_transport(base, "http://127.0.0.1:1/mcp", &s);
    mcp_http *h = (mcp_http *)t;
    assert_int_equal(mcp_transport_start(t, NULL, 0), 0);

    /* Without an event id there is nothing to resume from. */
    mcp_http__req *r = mcp_http__req_new(h, MCP_HTTP__POST, 4);
    mcp_http__enqueue(h, r);
    r->added = true;
    h->nwaiting--;
    h->nactive++;
    r->body = MCP_HTTP__SSE;
    sse_parser_init(&r->sse, 1024, mcp_http__on_sse, r);
    const char *part = "data: {\"method\":\"notifications/progress\"}\n\n";
    assert_int_equal(sse_parser_feed(&r->sse, part, strlen(part)), 0);
    assert_false(mcp_http__again(h, r));

    const char *more = "id: ev-1\nretry: 250\ndata: {\"method\":\"n\"}\n\n";
    assert_int_equal(sse_parser_feed(&r->sse, more, strlen(more)), 0);
    r->attempts = 0;
    assert_true(mcp_http__again(h, r));
    assert_int_equal(r->kind, MCP_HTTP__RESUME);
    assert_string_equal(r->last_id, "ev-1");
    assert_int_equal(r->retry_ms, 250);
    assert_true(r->delayed);
    assert_false(r->added);
    assert_int_equal(r->attempts, 1);
    assert_int_equal(h->nactive, 0);
    assert_int_equal(h->nwaiting, 1);
    assert_false(mcp_http__ready(r));

    /* The GET that resumes carries the id, asks for a stream, no body. */
    mcp_http__easy(h, r);
    char *all = NULL;
    for (struct curl_slist *l = r->hdrs; l; l = l->next) {
        char *next = xasprintf("%s%s|", all ? all : "", l->data);
        free(all);
        all = next;
    }
    assert_string_equal(all, "Authorization: Bearer t0k3n-unit-test|Accept: text/event-stream|"
                             "Last-Event-ID: ev-1|");
    free(all);
    mcp_http__reset(r);

    /* Up to MCP_HTTP_RESUME_MAX attempts in a row bring nothing. */
    for (int i = 2; i <= MCP_HTTP_RESUME_MAX; i++) {
        r->added = true;
        h->nwaiting--;
        h->nactive++;
        assert_true(mcp_http__again(h, r));
        assert_int_equal(r->attempts, i);
    }
    r->added = true;
    h->nwaiting--;
    h->nactive++;
    assert_false(mcp_http__again(h, r));
    /* An event seen on the stream starts the count again. */
    sse_event ev = {.event = "message", .data = "{}", .data_len = 2};
    mcp_http__on_sse(r, &ev);
    assert_int_equal(r->attempts, 0);
    assert_true(mcp_http__again(h, r));
    mcp_transport_close(t);
    mcp_transport_free(t);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreachable_initialize_closes),
        cmocka_unit_test(test_unreachable_call_fails_alone),
        cmocka_unit_test(test_caps_and_close),
        cmocka_unit_test(test_display_url),
        cmocka_unit_test(test_headers_and_events),
        cmocka_unit_test(test_retry_delay),
        cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_endpoint_event),
        cmocka_unit_test(test_event_stream_toobig),
        cmocka_unit_test(test_resume_decision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
