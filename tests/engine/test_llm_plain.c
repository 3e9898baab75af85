/*
 * Tests of engine/llm_plain's place on the loop (docs/architecture.md, The
 * loop's priorities), against a model played by the test itself on a
 * loopback socket, so that it decides exactly when each byte arrives: the
 * request leaves before the loop turns, and a call waiting for its first
 * piece is read before the calls already streaming.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "engine/llm_plain.h"
#include "lib/loopprio.h"
#include "lib/xmalloc.h"

static const char request[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: model\r\n"
                              "Content-Length: 2\r\n\r\n{}";
static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n";

typedef struct fixture {
    struct event_base *base;
    int listen_fd;
    char url[64];
    llm_plain *plain;
} fixture;

/* The order in which the calls' bodies came, as call letters. */
static char order[16];
static size_t norder;

typedef struct call_state {
    char letter;
    int ended;
    int code; /* the last end's LLM_PLAIN_ code */
} call_state;

static bool on_body(void *ud, const char *data, size_t len)
{
    (void)data;
    (void)len;
    call_state *cs = ud;
    if (norder + 1 < sizeof order) order[norder++] = cs->letter;
    return true;
}

static void on_end(void *ud, int code, const char *why)
{
    (void)why;
    call_state *cs = ud;
    cs->ended++;
    cs->code = code;
}

static const llm_plain_cb cbs = {.on_body = on_body, .on_end = on_end};

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    f->base = loopprio_base_new();
    assert_non_null(f->base);
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->listen_fd, 8), 0);
    socklen_t len = sizeof sa;
    getsockname(f->listen_fd, (struct sockaddr *)&sa, &len);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/v1", ntohs(sa.sin_port));
    f->plain = llm_plain_new(f->base, f->url, NULL);
    assert_non_null(f->plain);
    norder = 0;
    memset(order, 0, sizeof order);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    llm_plain_free(f->plain);
    close(f->listen_fd);
    event_base_free(f->base);
    free(f);
    return 0;
}

static llm_plain_call *post(fixture *f, call_state *cs)
{
    char *req = xmalloc(sizeof request - 1);
    memcpy(req, request, sizeof request - 1);
    return llm_plain_post(f->plain, req, sizeof request - 1, &cbs, cs, NULL);
}

/* The model's side of the connection the transport opened last. */
static int accept_model(fixture *f)
{
    struct pollfd p = {.fd = f->listen_fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 2000), 1);
    int fd = accept(f->listen_fd, NULL, NULL);
    assert_true(fd >= 0);
    return fd;
}

/* Reads the request off the model's side, as a model does before it
 * answers: a close with bytes unread would be a reset, not a close. */
static void take_request(int fd)
{
    char got[256];
    size_t have = 0;
    while (have < sizeof request - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 2000), 1);
        ssize_t n = recv(fd, got + have, sizeof got - have, 0);
        assert_true(n > 0);
        have += (size_t)n;
    }
    assert_int_equal(have, sizeof request - 1);
}

static void send_all(int fd, const char *s)
{
    size_t len = strlen(s);
    assert_int_equal(send(fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* One turn of the loop after the bytes sent to the transport have landed
 * in its sockets (loopback delivers them within the send). */
static void turn(fixture *f)
{
    event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/* Posts call a and returns the model's side of its connection, with the
 * request read off it. */
static int open_call(fixture *f, call_state *a)
{
    post(f, a);
    int m = accept_model(f);
    take_request(m);
    return m;
}

/* Turns the loop until call a has ended, at most 50 times. */
static void wait_ended(fixture *f, const call_state *a)
{
    for (int i = 0; i < 50 && a->ended == 0; i++) turn(f);
}

/* The request is on the model's side before the loop has turned once:
 * under load a turn of the loop lasts tens of milliseconds, and the
 * model's answer starts only when its request arrives. */
static void test_request_leaves_before_the_loop_turns(void **state)
{
    fixture *f = *state;
    call_state a = {'a', 0, -1};
    post(f, &a);
    int m = accept_model(f);
    char got[256];
    ssize_t n = recv(m, got, sizeof got, MSG_DONTWAIT);
    assert_int_equal(n, (ssize_t)(sizeof request - 1));
    assert_memory_equal(got, request, sizeof request - 1);
    close(m);
}

/* A call waiting for its first piece is read before a call already
 * streaming, even when the streaming call's piece came first. */
static void test_first_piece_goes_before_streams(void **state)
{
    fixture *f = *state;
    call_state a = {'a', 0, -1}, b = {'b', 0, -1};
    post(f, &a);
    int ma = accept_model(f);
    send_all(ma, head);
    send_all(ma, "5\r\nfirst\r\n");
    for (int i = 0; i < 50 && norder == 0; i++) turn(f);
    assert_int_equal(norder, 1);
    assert_int_equal(order[0], 'a');

    post(f, &b);
    int mb = accept_model(f);
    /* a's next piece lands first, then b's head and first piece. */
    send_all(ma, "4\r\nnext\r\n");
    send_all(mb, head);
    send_all(mb, "5\r\nfirst\r\n");
    for (int i = 0; i < 50 && norder < 3; i++) turn(f);
    assert_int_equal(norder, 3);
    assert_string_equal(order, "aba");

    send_all(ma, "0\r\n\r\n");
    send_all(mb, "0\r\n\r\n");
    for (int i = 0; i < 50 && (a.ended == 0 || b.ended == 0); i++) turn(f);
    assert_int_equal(a.ended, 1);
    assert_int_equal(b.ended, 1);
    close(ma);
    close(mb);
}

/* A refused connection is still reported from the loop, never from
 * inside llm_plain_post, even though the request is now tried at once. */
static void test_refused_is_reported_from_the_loop(void **state)
{
    fixture *f = *state;
    /* A port nobody listens on: the fixture's, once closed. */
    close(f->listen_fd);
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    call_state a = {'a', 0, -1};
    post(f, &a);
    assert_int_equal(a.ended, 0);
    wait_ended(f, &a);
    assert_int_equal(a.ended, 1);
    assert_int_equal(norder, 0);
}

/* A close that lands with the last piece, before the loop looks, is seen:
 * the edge that reported the piece also covered the close, and no other
 * edge comes for it. */
static void test_close_behind_the_last_piece_is_seen(void **state)
{
    fixture *f = *state;
    call_state a = {'a', 0, -1};
    int m = open_call(f, &a);
    send_all(m, head);
    send_all(m, "5\r\nfirst\r\n");
    for (int i = 0; i < 50 && norder == 0; i++) turn(f);
    assert_int_equal(norder, 1);

    send_all(m, "4\r\nnext\r\n");
    close(m);
    wait_ended(f, &a);
    assert_int_equal(a.ended, 1);
    assert_int_equal(a.code, LLM_PLAIN_BROKEN);
    assert_string_equal(order, "aa");
}

/* A reply without a length ends at the close, also when the whole of it
 * and the close are there at the loop's first look. */
static void test_reply_that_ends_at_the_close(void **state)
{
    fixture *f = *state;
    call_state a = {'a', 0, -1};
    int m = open_call(f, &a);
    send_all(m, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                "Connection: close\r\n\r\ndata: [DONE]\n\n");
    close(m);
    wait_ended(f, &a);
    assert_int_equal(a.ended, 1);
    assert_int_equal(a.code, LLM_PLAIN_OK);
    assert_string_equal(order, "a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_leaves_before_the_loop_turns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_piece_goes_before_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_is_reported_from_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_behind_the_last_piece_is_seen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_that_ends_at_the_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
