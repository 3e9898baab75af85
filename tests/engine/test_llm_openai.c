/*
 * Tests of engine/llm_openai against the project's mock model server
 * (tests/mock-llm/server.mjs) on a real event loop. scripts/run-engine
 * starts the mock and passes its port in MOCK_LLM_PORT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "engine/llm.h"
#include "engine/llm_plain.h"
#include "engine/llm_stream.h"
#include "lib/loopprio.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/xmalloc.h"

#define MAX_CALLS 32
#define API_KEY   "sk-test-secret-key"

static int mock_port;
static char mock_base[64]; /* http://127.0.0.1:PORT */
static char llm_url[96];   /* <mock_base>/v1 */
static char endpoint[128]; /* <llm_url>/chat/completions */

static struct event_base *base;
static llm *model;
static int pending; /* calls whose on_done has not run yet */

/* What one call saw, copied out of the callbacks. */
typedef struct got {
    buf pieces; /* each piece followed by '|' */
    int npieces;
    int ndone;
    bool ok, retryable;
    int status;
    char *message, *code, *text, *finish;
    int64_t prompt_tokens, completion_tokens, retry_after_ms;
    size_t ncalls;
    char *ids[8], *names[8], *args[8];
    int64_t last_piece_ns, widest_gap_ns; /* between two pieces in a row */
    /* Behaviour asked of the callbacks. */
    llm_call *call;
    bool abort_on_text; /* abort the call from inside on_text */
    bool start_on_text; /* start got[1] from inside on_text */
    bool start_on_done; /* start got[1] from inside on_done */
    struct got *next;   /* for start_on_*: the call to start */
    const llm_request *next_req;
} got;

static got calls[MAX_CALLS];

/* The pieces a call saw, "" before any. */
static const char *pieces_of(const got *g)
{
    return g->pieces.data ? g->pieces.data : "";
}

/* ---- talking to the mock with plain blocking libcurl ---- */

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    buf_append(ud, p, size * n);
    return size * n;
}

/* POSTs (body non-NULL) or GETs a control route; returns the body, parsed. */
static json_t *mock_call(const char *path, const char *body)
{
    char url[160];
    buf out;
    CURL *e = curl_easy_init();

    snprintf(url, sizeof url, "%s%s", mock_base, path);
    buf_init(&out, (size_t)16 << 20);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
    if (body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    curl_easy_cleanup(e);
    json_t *j = json_loads(out.data ? out.data : "", 0, NULL);
    assert_non_null(j);
    buf_cleanup(&out);
    return j;
}

static void mock_script(const char *json_array)
{
    json_decref(mock_call("/__script", json_array));
}

/* ---- callbacks ---- */

static void on_text(void *ud, const char *text, size_t len);
static void on_done(void *ud, const llm_result *r);
static const llm_callbacks cbs = {on_text, on_done};

static void on_text(void *ud, const char *text, size_t len)
{
    got *g = ud;
    assert_int_equal(g->ndone, 0);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (g->npieces > 0 && now - g->last_piece_ns > g->widest_gap_ns)
        g->widest_gap_ns = now - g->last_piece_ns;
    g->last_piece_ns = now;
    g->npieces++;
    buf_append(&g->pieces, text, len);
    buf_append_char(&g->pieces, '|');
    if (g->abort_on_text) {
        g->abort_on_text = false;
        llm_call_abort(model, g->call);
        pending--;
        if (pending == 0) event_base_loopbreak(base);
    }
    if (g->start_on_text) {
        g->start_on_text = false;
        pending++;
        g->next->call = llm_call_start(model, g->next_req, &cbs, g->next);
        assert_non_null(g->next->call);
    }
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void on_done(void *ud, const llm_result *r)
{
    got *g = ud;
    g->ndone++;
    g->ok = r->ok;
    g->retryable = r->retryable;
    g->status = r->http_status;
    g->message = dup_or_null(r->error_message);
    g->code = dup_or_null(r->error_code);
    g->text = dup_or_null(r->text);
    g->finish = dup_or_null(r->finish_reason);
    g->prompt_tokens = r->prompt_tokens;
    g->completion_tokens = r->completion_tokens;
    g->retry_after_ms = r->retry_after_ms;
    g->ncalls = r->ncalls;
    for (size_t i = 0; i < r->ncalls && i < 8; i++) {
        g->ids[i] = xstrdup(r->calls[i].id);
        g->names[i] = xstrdup(r->calls[i].name);
        g->args[i] = xstrdup(r->calls[i].arguments);
    }
    if (g->start_on_done) {
        g->start_on_done = false;
        pending++;
        g->next->call = llm_call_start(model, g->next_req, &cbs, g->next);
        assert_non_null(g->next->call);
    }
    pending--;
    if (pending == 0) event_base_loopbreak(base);
}

/* ---- fixtures ---- */

static json_t *messages;
static json_t *tools;
static llm_request req_plain;
static llm_request req_tools;

static int setup(void **state)
{
    (void)state;
    json_decref(mock_call("/__reset", "{}"));
    /* The server's loop, so that calls are ordered as there. */
    base = loopprio_base_new();
    assert_non_null(base);
    model = llm_openai_new(base, llm_url, API_KEY, "mock-model");
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < MAX_CALLS; i++) buf_init(&calls[i].pieces, (size_t)1 << 20);
    pending = 0;
    messages = json_loads("[{\"role\":\"user\",\"content\":\"Hi\"}]", 0, NULL);
    tools = json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"calc\",\"description\":"
                       "\"Arithmetic\",\"parameters\":{\"type\":\"object\"}}}]",
                       0, NULL);
    req_plain = (llm_request){.messages = messages, .tools = NULL, .max_completion_tokens = -1};
    req_tools = (llm_request){.messages = messages, .tools = tools, .max_completion_tokens = 512};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    llm_free(model);
    event_base_free(base);
    for (int i = 0; i < MAX_CALLS; i++) {
        got *g = &calls[i];
        buf_cleanup(&g->pieces);
        free(g->message);
        free(g->code);
        free(g->text);
        free(g->finish);
        for (int k = 0; k < 8; k++) {
            free(g->ids[k]);
            free(g->names[k]);
            free(g->args[k]);
        }
    }
    json_decref(messages);
    json_decref(tools);
    return 0;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
    event_base_loopbreak(base);
}

/* Runs the loop until every pending call is done or ms pass; returns
 * true when the time ran out. */
static bool run_loop(int ms)
{
    bool expired = false;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    struct event *t = evtimer_new(base, on_deadline, &expired);
    evtimer_add(t, &tv);
    if (pending > 0) event_base_dispatch(base);
    event_free(t);
    return expired;
}

/* Runs the loop for exactly ms, whatever completes. */
static void run_for(int ms)
{
    bool expired = false;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    struct event *t = evtimer_new(base, on_deadline, &expired);
    evtimer_add(t, &tv);
    while (!expired) event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
}

static void start(got *g, const llm_request *req)
{
    pending++;
    g->call = llm_call_start(model, req, &cbs, g);
    assert_non_null(g->call);
}

/* Starts one call, waits for it, and checks it ended once. */
static got *one_call(const llm_request *req, int ms)
{
    start(&calls[0], req);
    assert_false(run_loop(ms));
    assert_int_equal(calls[0].ndone, 1);
    return &calls[0];
}

/* Starts one call of the plain request on client m as g and waits for it. */
static void call_on(llm *m, got *g)
{
    pending++;
    g->call = llm_call_start(m, &req_plain, &cbs, g);
    assert_non_null(g->call);
    assert_false(run_loop(5000));
}

/* ---- tests ---- */

static void test_plain_text(void **state)
{
    (void)state;
    mock_script("[{\"text\":\"Hello there, world\",\"piece_chars\":5}]");
    got *g = one_call(&req_plain, 5000);
    assert_true(g->ok);
    assert_string_equal(pieces_of(g), "Hello| ther|e, wo|rld|");
    assert_int_equal(g->npieces, 4);
    assert_string_equal(g->text, "Hello there, world");
    assert_string_equal(g->finish, "stop");
    assert_int_equal(g->ncalls, 0);
    assert_int_equal(g->prompt_tokens, 11);
    assert_int_equal(g->completion_tokens, 7);
    assert_null(g->message);

    /* What went over the wire: the headers and the body, byte for byte. */
    json_t *reqs = mock_call("/__requests", NULL);
    assert_int_equal(json_array_size(reqs), 1);
    json_t *r0 = json_array_get(reqs, 0);
    json_t *h = json_object_get(r0, "headers");
    assert_string_equal(json_string_value(json_object_get(r0, "path")), "/v1/chat/completions");
    assert_string_equal(json_string_value(json_object_get(h, "authorization")), "Bearer " API_KEY);
    assert_string_equal(json_string_value(json_object_get(h, "content-type")), "application/json");
    assert_string_equal(json_string_value(json_object_get(h, "accept")), "text/event-stream");
    assert_null(json_object_get(h, "expect"));
    size_t len;
    char *want = llm_stream_request_body("mock-model", &req_plain, &len);
    assert_string_equal(json_string_value(json_object_get(r0, "raw")), want);
    free(want);
    json_decref(reqs);
}

static void test_request_with_tools(void **state)
{
    (void)state;
    got *g = one_call(&req_tools, 5000);
    assert_true(g->ok);
    assert_string_equal(g->text, "Hello from the mock model.");
    json_t *reqs = mock_call("/__requests", NULL);
    json_t *body = json_object_get(json_array_get(reqs, 0), "body");
    assert_string_equal(json_string_value(json_object_get(body, "model")), "mock-model");
    assert_string_equal(json_string_value(json_object_get(body, "tool_choice")), "auto");
    assert_int_equal(json_integer_value(json_object_get(body, "max_completion_tokens")), 512);
    assert_true(json_equal(json_object_get(body, "tools"), tools));
    assert_true(json_equal(json_object_get(body, "messages"), messages));
    json_decref(reqs);
}

static void test_tool_turn_split_args(void **state)
{
    (void)state;
    mock_script(
        "[{\"tool_calls\":[{\"name\":\"calc\",\"id\":\"call_7\","
        "\"arguments\":{\"expression\":\"12*(3+4)\"}}],\"split_tool_args\":3,"
        "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":42,\"total_tokens\":142}}]");
    got *g = one_call(&req_tools, 5000);
    assert_true(g->ok);
    assert_int_equal(g->npieces, 0);
    assert_string_equal(g->text, "");
    assert_int_equal(g->ncalls, 1);
    assert_string_equal(g->ids[0], "call_7");
    assert_string_equal(g->names[0], "calc");
    assert_string_equal(g->args[0], "{\"expression\":\"12*(3+4)\"}");
    assert_string_equal(g->finish, "tool_calls");
    assert_int_equal(g->prompt_tokens, 100);
    assert_int_equal(g->completion_tokens, 42);
}

static void test_parallel_calls(void **state)
{
    (void)state;
    mock_script("[{\"tool_calls\":[{\"name\":\"calc\",\"id\":\"a\",\"arguments\":{\"expression\":"
                "\"1+1\"}},{\"name\":\"clock\",\"id\":\"b\",\"arguments\":{\"timezone\":\"UTC\"}}],"
                "\"split_tool_args\":4,\"interleave\":true,\"finish_reason\":\"stop\"}]");
    got *g = one_call(&req_tools, 5000);
    assert_true(g->ok);
    assert_int_equal(g->ncalls, 2);
    assert_string_equal(g->ids[0], "a");
    assert_string_equal(g->args[0], "{\"expression\":\"1+1\"}");
    assert_string_equal(g->ids[1], "b");
    assert_string_equal(g->names[1], "clock");
    assert_string_equal(g->args[1], "{\"timezone\":\"UTC\"}");
    assert_string_equal(g->finish, "stop");
}

static void test_ollama_and_vllm_styles(void **state)
{
    (void)state;
    mock_script("[{\"tool_calls\":[{\"name\":\"calc\",\"arguments\":{\"expression\":\"2\"}},"
                "{\"name\":\"clock\",\"arguments\":{}}],\"whole_tool_calls\":true,"
                "\"omit_ids\":true},"
                "{\"tool_calls\":[{\"name\":\"calc\",\"arguments\":{\"expression\":\"3\"}}],"
                "\"split_tool_args\":2,\"omit_ids\":true}]");
    start(&calls[0], &req_tools);
    assert_false(run_loop(5000));
    start(&calls[1], &req_tools);
    assert_false(run_loop(5000));
    assert_true(calls[0].ok);
    assert_int_equal(calls[0].ncalls, 2);
    assert_string_equal(calls[0].ids[0], "call_0");
    assert_string_equal(calls[0].ids[1], "call_1");
    assert_string_equal(calls[0].args[0], "{\"expression\":\"2\"}");
    assert_true(calls[1].ok);
    assert_int_equal(calls[1].ncalls, 1);
    assert_string_equal(calls[1].ids[0], "call_0");
    assert_string_equal(calls[1].args[0], "{\"expression\":\"3\"}");
}

static void test_429_retry_after(void **state)
{
    (void)state;
    mock_script(
        "[{\"status\":429,\"headers\":{\"Retry-After\":\"2\"},\"body\":{\"error\":"
        "{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"param\":null,"
        "\"code\":\"rate_limit_exceeded\"}}},"
        "{\"status\":429,\"headers\":{\"retry-after-ms\":\"1234.5\",\"Retry-After\":\"9\"}},"
        "{\"status\":429,\"body\":{\"error\":{\"message\":\"You exceeded your current "
        "quota\",\"type\":\"insufficient_quota\",\"param\":null,\"code\":"
        "\"insufficient_quota\"}}}]");
    for (int i = 0; i < 3; i++) {
        start(&calls[i], &req_plain);
        assert_false(run_loop(5000));
    }
    char want[256];
    got *g = &calls[0];
    assert_false(g->ok);
    assert_true(g->retryable);
    assert_int_equal(g->status, 429);
    assert_int_equal(g->retry_after_ms, 2000);
    assert_string_equal(g->code, "rate_limit_exceeded");
    snprintf(want, sizeof want, "HTTP 429 from %s: Rate limit reached", endpoint);
    assert_string_equal(g->message, want);
    assert_true(calls[1].retryable);
    assert_int_equal(calls[1].retry_after_ms, 1235);
    assert_false(calls[2].retryable);
    assert_string_equal(calls[2].code, "insufficient_quota");
    assert_int_equal(calls[2].retry_after_ms, -1);
}

static void test_503_retryable(void **state)
{
    (void)state;
    mock_script("[{\"status\":503,\"body\":\"upstream unavailable\\n\"}]");
    got *g = one_call(&req_plain, 5000);
    char want[256];
    snprintf(want, sizeof want, "HTTP 503 from %s: upstream unavailable", endpoint);
    assert_false(g->ok);
    assert_true(g->retryable);
    assert_int_equal(g->status, 503);
    assert_string_equal(g->message, want);
    assert_null(g->code);
}

static void test_401_not_retryable(void **state)
{
    (void)state;
    mock_script("[{\"status\":401,\"body\":{\"error\":{\"message\":\"Incorrect API key "
                "provided\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":"
                "\"invalid_api_key\"}}}]");
    got *g = one_call(&req_plain, 5000);
    char want[256];
    snprintf(want, sizeof want, "HTTP 401 from %s: Incorrect API key provided", endpoint);
    assert_false(g->ok);
    assert_false(g->retryable);
    assert_int_equal(g->status, 401);
    assert_string_equal(g->message, want);
    assert_string_equal(g->code, "invalid_api_key");
    assert_null(strstr(g->message, API_KEY));
}

/* An upstream that echoes most of the key, at a place where the length
 * limit cuts it: what is left of it is masked all the same. */
static void test_401_echoes_key_in_part(void **state)
{
    (void)state;
    char pad[1000];
    char script[1400];
    memset(pad, 'x', 985);
    pad[985] = '\0';
    /* The message is the padding, a space and the key; cut at 1000 bytes,
     * 14 bytes of the key would be left. */
    snprintf(script, sizeof script,
             "[{\"status\":401,\"body\":{\"error\":{\"message\":\"%s %s\","
             "\"code\":\"invalid_api_key\"}}}]",
             pad, API_KEY);
    mock_script(script);
    got *g = one_call(&req_plain, 5000);
    char want[1200];
    snprintf(want, sizeof want, "HTTP 401 from %s: %s [redacted]", endpoint, pad);
    assert_false(g->ok);
    assert_string_equal(g->message, want);
    assert_null(strstr(g->message, "sk-test-secret"));
}

/* At start-up, the only model an endpoint lists is the model. */
static void test_only_model(void **state)
{
    (void)state;
    char err[512];
    char want[512];
    char *m = llm_openai_only_model(llm_url, API_KEY, 5000, err, sizeof err);
    assert_non_null(m);
    assert_string_equal(m, "mock-model");
    free(m);

    json_decref(mock_call("/__models", "[\"big\",\"small\"]"));
    assert_null(llm_openai_only_model(llm_url, NULL, 5000, err, sizeof err));
    snprintf(want, sizeof want, "%s/models lists 2 models (big, small)", llm_url);
    assert_string_equal(err, want);

    json_decref(mock_call("/__models", "[]"));
    assert_null(llm_openai_only_model(llm_url, NULL, 5000, err, sizeof err));
    snprintf(want, sizeof want, "%s/models lists no models", llm_url);
    assert_string_equal(err, want);

    json_decref(mock_call("/__models", "{\"status\":401,\"body\":{\"error\":{\"message\":"
                                       "\"bad key\"}}}"));
    assert_null(llm_openai_only_model(llm_url, NULL, 5000, err, sizeof err));
    snprintf(want, sizeof want, "cannot list the models: HTTP 401 from %s/models: bad key",
             llm_url);
    assert_string_equal(err, want);

    /* The password of the URL is not shown. */
    char url[160];
    snprintf(url, sizeof url, "http://user:pw@127.0.0.1:%d/v1/", mock_port);
    assert_null(llm_openai_only_model(url, NULL, 5000, err, sizeof err));
    assert_string_equal(err, want);

    assert_null(llm_openai_only_model("http://127.0.0.1:1/v1", NULL, 5000, err, sizeof err));
    assert_string_equal(err, "cannot list the models of http://127.0.0.1:1/v1/models: "
                             "connection refused");
}

static void test_error_in_stream(void **state)
{
    (void)state;
    mock_script("[{\"text\":\"partial\",\"error_in_stream\":{\"message\":\"Model overloaded\","
                "\"type\":\"server_error\",\"code\":\"overloaded\"}}]");
    got *g = one_call(&req_plain, 5000);
    assert_false(g->ok);
    assert_true(g->retryable);
    assert_int_equal(g->status, 200);
    assert_string_equal(g->message, "the model stream carried an error: Model overloaded");
    assert_string_equal(g->code, "overloaded");
    assert_string_equal(pieces_of(g), "part|ial|");
}

/* A body that ends after the finish reason without [DONE] is a complete
 * turn, and so is one whose connection breaks or stalls right after it. */
static void test_finish_without_done(void **state)
{
    (void)state;
    llm_openai_set_stall_timeout_ms(model, 500);
    /* The whole body but [DONE]; role, "abc" and the finish chunk, then the
     * socket is destroyed; the same, then silence. */
    mock_script("[{\"text\":\"abc\",\"no_done\":true},"
                "{\"text\":\"abc\",\"cut_after\":3},"
                "{\"text\":\"abc\",\"stall_after\":3}]");
    for (int i = 0; i < 3; i++) {
        start(&calls[i], &req_plain);
        assert_false(run_loop(5000));
        assert_int_equal(calls[i].ndone, 1);
        assert_true(calls[i].ok);
        assert_string_equal(calls[i].text, "abc");
        assert_string_equal(calls[i].finish, "stop");
    }
    /* Only the first got as far as the usage chunk. */
    assert_int_equal(calls[0].prompt_tokens, 11);
    assert_int_equal(calls[1].prompt_tokens, -1);
    assert_int_equal(calls[2].prompt_tokens, -1);
}

/* A NUL byte in a chunk fails the call for good, not as retryable. */
static void test_nul_byte(void **state)
{
    (void)state;
    mock_script("[{\"chunks\":[{\"content\":\"ok\"},"
                "\"{\\\"choices\\\":[{\\\"index\\\":0,\\\"delta\\\":{\\\"content\\\":"
                "\\\"a\\u0000b\\\"}}]}\"]}]");
    got *g = one_call(&req_plain, 5000);
    assert_false(g->ok);
    assert_false(g->retryable);
    assert_int_equal(g->status, 200);
    assert_string_equal(g->message, "the model stream sent a chunk with a NUL byte (at byte 44)");
    assert_string_equal(pieces_of(g), "ok|");
}

static void test_no_done(void **state)
{
    (void)state;
    mock_script("[{\"text\":\"abc\",\"finish_reason\":null,\"no_done\":true}]");
    got *g = one_call(&req_plain, 5000);
    assert_false(g->ok);
    assert_true(g->retryable);
    assert_int_equal(g->status, 200);
    assert_string_equal(g->message, "the model stream ended before [DONE]");
}

static void test_cut_connection(void **state)
{
    (void)state;
    mock_script("[{\"text\":\"one two three four\",\"cut_after\":3}]");
    got *g = one_call(&req_plain, 5000);
    char want[256];
    snprintf(want, sizeof want, "the connection to %s broke: ", endpoint);
    assert_false(g->ok);
    assert_true(g->retryable);
    assert_int_equal(g->status, 0);
    assert_memory_equal(g->message, want, strlen(want));
    /* The role chunk and two pieces came before the cut. */
    assert_string_equal(pieces_of(g), "one |two |");
}

/* The port each model request came from, oldest first (n of them). */
static void request_ports(int *ports, size_t n)
{
    json_t *reqs = mock_call("/__requests", NULL);
    assert_int_equal(json_array_size(reqs), n);
    for (size_t i = 0; i < n; i++)
        ports[i] = (int)json_integer_value(json_object_get(json_array_get(reqs, i), "port"));
    json_decref(reqs);
}

/* Calls one after another go over one connection. */
static void test_connection_kept_for_the_next_call(void **state)
{
    (void)state;
    mock_script("[{\"text\":\"one\"},{\"text\":\"two\"},{\"status\":429,"
                "\"headers\":{\"Retry-After\":\"1\"}},{\"text\":\"four\"}]");
    const char *want[] = {"one", "two", NULL, "four"};
    for (int i = 0; i < 4; i++) {
        start(&calls[i], &req_plain);
        assert_false(run_loop(5000));
        assert_int_equal(calls[i].ndone, 1);
        assert_int_equal(calls[i].ok, want[i] != NULL);
        if (want[i]) assert_string_equal(calls[i].text, want[i]);
    }
    assert_int_equal(calls[2].status, 429);
    assert_int_equal(calls[2].retry_after_ms, 1000);
    int ports[4];
    request_ports(ports, 4);
    /* An error answer with its length leaves the connection usable too. */
    for (int i = 1; i < 4; i++) assert_int_equal(ports[i], ports[0]);
}

/* A kept connection that the server closed meanwhile is replaced by a new
 * one, and the call does not notice. */
static void test_connection_closed_while_idle_is_replaced(void **state)
{
    (void)state;
    mock_script("[{\"text\":\"one\"},{\"text\":\"two\"},{\"text\":\"three\"}]");
    start(&calls[0], &req_plain);
    assert_false(run_loop(5000));
    /* The loop does not run between the close and the next call, so the
     * client finds out only when it uses the connection. */
    json_decref(mock_call("/__drop_idle", "{}"));
    start(&calls[1], &req_plain);
    assert_false(run_loop(5000));
    start(&calls[2], &req_plain);
    assert_false(run_loop(5000));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(calls[i].ndone, 1);
        assert_true(calls[i].ok);
    }
    assert_string_equal(calls[1].text, "two");
    assert_string_equal(calls[2].text, "three");
    int ports[3];
    request_ports(ports, 3);
    assert_int_not_equal(ports[1], ports[0]);
    assert_int_equal(ports[2], ports[1]);
}

static void test_stalled_stream(void **state)
{
    (void)state;
    llm_openai_set_stall_timeout_ms(model, 1000);
    mock_script("[{\"text\":\"slow and then nothing\",\"stall_after\":2}]");
    got *g = one_call(&req_plain, 6000);
    char want[256];
    snprintf(want, sizeof want, "the model stream from %s stalled: no data for 1 s", endpoint);
    assert_false(g->ok);
    assert_true(g->retryable);
    assert_int_equal(g->status, 0);
    assert_string_equal(g->message, want);
    assert_string_equal(pieces_of(g), "slow|");
}

/* Bytes that keep coming, each within the stall time, never stall a call
 * that lasts longer than it: the timer waits out the time since the last
 * byte, however often it has to look again. */
static void test_slow_stream_within_the_stall_time(void **state)
{
    (void)state;
    llm_openai_set_stall_timeout_ms(model, 300);
    mock_script("[{\"text\":\"twenty characters...\",\"piece_chars\":4,\"delay_ms\":120}]");
    int64_t t0 = clock_mono_ns();
    got *g = one_call(&req_plain, 6000);
    assert_true(g->ok);
    assert_string_equal(pieces_of(g), "twen|ty c|hara|cter|s...|");
    /* The role, five pieces, the finish and [DONE] at least: eight events
     * 120 ms apart, over twice the stall time in all. */
    assert_true(clock_mono_ns() - t0 >= 700 * 1000000LL);
}

/* A stall is counted from the last byte, not from when the call began or
 * the timer was armed: the stall time passes in full after it. */
static void test_stall_counts_from_the_last_byte(void **state)
{
    (void)state;
    llm_openai_set_stall_timeout_ms(model, 400);
    mock_script("[{\"text\":\"abcdefgh\",\"piece_chars\":2,\"delay_ms\":100,\"stall_after\":4}]");
    got *g = one_call(&req_plain, 6000);
    assert_false(g->ok);
    assert_true(g->retryable);
    assert_string_equal(pieces_of(g), "ab|cd|ef|");
    /* Timed from the last byte, the stall comes 400 ms after the last
     * piece, give or take the loop's turn and the clock's millisecond;
     * timed from the start it would come 100 ms after it. */
    assert_true(clock_mono_ns() - g->last_piece_ns >= 380 * 1000000LL);
}

static void test_connection_refused(void **state)
{
    (void)state;
    llm *dead = llm_openai_new(base, "http://127.0.0.1:1/v1/", NULL, "m");
    call_on(dead, &calls[0]);
    assert_false(calls[0].ok);
    assert_true(calls[0].retryable);
    assert_int_equal(calls[0].status, 0);
    assert_string_equal(calls[0].message, "could not connect to "
                                          "http://127.0.0.1:1/v1/chat/completions: "
                                          "connection refused");
    llm_free(dead);
}

/* localhost is the machine's own address: a model listening on
 * 127.0.0.1 answers, and a port nobody listens on is refused on both of
 * its addresses with the first one's reason. */
static void test_localhost(void **state)
{
    (void)state;
    mock_script("[{\"text\":\"hi local\"}]");
    char url[96];
    snprintf(url, sizeof url, "http://localhost:%d/v1", mock_port);
    llm *local = llm_openai_new(base, url, NULL, "m");
    call_on(local, &calls[0]);
    assert_true(calls[0].ok);
    assert_string_equal(calls[0].text, "hi local");
    json_t *reqs = mock_call("/__requests", NULL);
    json_t *h = json_object_get(json_array_get(reqs, 0), "headers");
    char host[32];
    snprintf(host, sizeof host, "localhost:%d", mock_port);
    assert_string_equal(json_string_value(json_object_get(h, "host")), host);
    json_decref(reqs);
    llm_free(local);

    llm *dead = llm_openai_new(base, "http://localhost:1/v1", NULL, "m");
    call_on(dead, &calls[1]);
    assert_false(calls[1].ok);
    assert_true(calls[1].retryable);
    assert_string_equal(calls[1].message, "could not connect to "
                                          "http://localhost:1/v1/chat/completions: "
                                          "connection refused");
    llm_free(dead);
}

/* The URL in messages never carries a password. */
static void test_userinfo_hidden(void **state)
{
    (void)state;
    mock_script("[{\"status\":404}]");
    char url[160];
    snprintf(url, sizeof url, "http://user:pw@127.0.0.1:%d/v1", mock_port);
    llm *p = llm_openai_new(base, url, NULL, "m");
    call_on(p, &calls[0]);
    char want[256];
    snprintf(want, sizeof want, "HTTP 404 from %s: mock error 404", endpoint);
    assert_string_equal(calls[0].message, want);
    assert_false(calls[0].retryable);
    llm_free(p);
}

/* Aborting from inside on_text: no callback afterwards, not even on_done. */
static void test_abort_inside_callback(void **state)
{
    (void)state;
    mock_script("[{\"text\":\"a fairly long answer that keeps coming\",\"delay_ms\":20}]");
    calls[0].abort_on_text = true;
    start(&calls[0], &req_plain);
    assert_false(run_loop(5000));
    run_for(1200);
    assert_int_equal(calls[0].npieces, 1);
    assert_int_equal(calls[0].ndone, 0);
    assert_string_equal(pieces_of(&calls[0]), "a fa|");
}

/* A call aborted from inside a callback leaves the others in flight alone:
 * they stream on to their end. */
static void test_abort_inside_callback_spares_the_others(void **state)
{
    (void)state;
    mock_script("[{\"text\":\"stopped early on\",\"delay_ms\":20},"
                "{\"text\":\"the other one goes on\",\"delay_ms\":20}]");
    calls[0].abort_on_text = true;
    start(&calls[0], &req_plain);
    start(&calls[1], &req_plain);
    assert_false(run_loop(5000));
    assert_int_equal(calls[0].ndone, 0);
    assert_int_equal(calls[1].ndone, 1);
    assert_true(calls[1].ok);
    /* Which script each got depends on which request the mock read first. */
    assert_true(strcmp(calls[1].text, "the other one goes on") == 0 ||
                strcmp(calls[1].text, "stopped early on") == 0);
    assert_int_equal(calls[1].npieces, (int)(strlen(calls[1].text) + 3) / 4);
}

static void on_abort_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    got *g = arg;
    llm_call_abort(model, g->call);
    pending--;
}

/* Aborting from the loop in the middle of a stream, then using the client
 * again: the next call is unaffected. */
static void test_abort_mid_stream(void **state)
{
    (void)state;
    mock_script("[{\"text\":\"0123456789012345678901234567890123456789\",\"delay_ms\":50},"
                "{\"text\":\"after\"}]");
    start(&calls[0], &req_plain);
    struct timeval tv = {0, 180 * 1000};
    struct event *t = evtimer_new(base, on_abort_timer, &calls[0]);
    evtimer_add(t, &tv);
    run_for(900);
    event_free(t);
    int seen = calls[0].npieces;
    assert_true(seen >= 1 && seen < 10);
    assert_int_equal(calls[0].ndone, 0);
    assert_int_equal(pending, 0);

    got *g = &calls[1];
    start(g, &req_plain);
    assert_false(run_loop(5000));
    assert_true(g->ok);
    assert_string_equal(g->text, "after");
    run_for(300);
    assert_int_equal(calls[0].npieces, seen);
    assert_int_equal(calls[0].ndone, 0);
}

/* Starting the next call from inside on_text and from inside on_done. */
static void test_start_inside_callbacks(void **state)
{
    (void)state;
    mock_script("[{\"text\":\"first\"},{\"text\":\"second\"},{\"text\":\"third\"}]");
    calls[0].start_on_text = true;
    calls[0].next = &calls[1];
    calls[0].next_req = &req_plain;
    calls[1].start_on_done = true;
    calls[1].next = &calls[2];
    calls[1].next_req = &req_plain;
    start(&calls[0], &req_plain);
    assert_false(run_loop(5000));
    for (int i = 0; i < 3; i++) {
        assert_true(calls[i].ok);
        assert_int_equal(calls[i].ndone, 1);
    }
    assert_string_equal(calls[0].text, "first");
    assert_string_equal(calls[1].text, "second");
    assert_string_equal(calls[2].text, "third");
}

/* Twenty calls at once on one loop, each streaming its own text. */
static void test_twenty_concurrent(void **state)
{
    (void)state;
    buf script;
    buf_init(&script, 1 << 16);
    buf_append_char(&script, '[');
    for (int i = 0; i < 20; i++)
        buf_printf(&script, "%s{\"text\":\"reply number %d of twenty\",\"delay_ms\":15}",
                   i ? "," : "", i);
    buf_append_char(&script, ']');
    mock_script(script.data);
    buf_cleanup(&script);

    for (int i = 0; i < 20; i++) start(&calls[i], &req_plain);
    assert_false(run_loop(10000));

    bool seen[20] = {false};
    for (int i = 0; i < 20; i++) {
        got *g = &calls[i];
        int n = -1;
        assert_int_equal(g->ndone, 1);
        assert_true(g->ok);
        assert_int_equal(sscanf(g->text, "reply number %d of twenty", &n), 1);
        assert_true(n >= 0 && n < 20);
        assert_false(seen[n]);
        seen[n] = true;
        /* The pieces of each call joined are its own text. */
        buf joined;
        buf_init(&joined, 1 << 10);
        for (const char *p = pieces_of(g); *p; p++)
            if (*p != '|') buf_append_char(&joined, *p);
        assert_string_equal(joined.data, g->text);
        buf_cleanup(&joined);
    }
    json_t *reqs = mock_call("/__requests", NULL);
    assert_int_equal(json_array_size(reqs), 20);
    json_decref(reqs);
}

/* Freeing the client with calls in flight runs no callback. */
static void test_free_with_calls_in_flight(void **state)
{
    (void)state;
    mock_script("[{\"text\":\"never finished\",\"stall_after\":1},{\"text\":\"x\","
                "\"first_delay_ms\":2000}]");
    start(&calls[0], &req_plain);
    start(&calls[1], &req_plain);
    run_for(300);
    llm_free(model);
    model = llm_openai_new(base, llm_url, NULL, "m");
    run_for(200);
    assert_int_equal(calls[0].ndone, 0);
    assert_int_equal(calls[1].ndone, 0);
}

/*
 * An answer that comes as a burst (the mock writes it with one write):
 * the pieces of the first read are handed over, then the connection is
 * left unread for LLM_PLAIN_FIRST_PAUSE_US, then the rest comes, whole and
 * in order. libcurl (CHATPLANE_LLM_TRANSPORT=curl) does not pause.
 */
static void test_burst_pauses_after_first_piece(void **state)
{
    (void)state;
    enum { N = 1500 };
    buf frames, want;
    buf_init(&frames, (size_t)1 << 20);
    buf_init(&want, (size_t)1 << 20);
    for (int i = 0; i < N; i++) {
        char piece[16];
        snprintf(piece, sizeof piece, "w%d ", i);
        buf_printf(&frames,
                   "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
                   "\"delta\":{\"content\":\"%s\"},\"finish_reason\":null}]}\n\n",
                   piece);
        buf_printf(&want, "%s|", piece);
    }
    json_t *raw = json_pack("[{s:[{s:s}]}]", "chunks", "__raw", frames.data);
    char *text = json_dumps(raw, 0);
    mock_script(text);
    free(text);
    json_decref(raw);
    got *g = one_call(&req_plain, 5000);
    assert_true(g->ok);
    assert_int_equal(g->npieces, N);
    assert_string_equal(pieces_of(g), want.data);
    const char *transport = getenv("CHATPLANE_LLM_TRANSPORT");
    if (!transport || strcmp(transport, "curl") != 0)
        assert_true(g->widest_gap_ns >= (int64_t)LLM_PLAIN_FIRST_PAUSE_US * 1000);
    buf_cleanup(&frames);
    buf_cleanup(&want);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const char *port = getenv("MOCK_LLM_PORT");
    if (!port || atoi(port) <= 0) {
        fprintf(stderr, "test_llm_openai: MOCK_LLM_PORT is not set; run it through "
                        "scripts/run-engine, which starts tests/mock-llm/server.mjs\n");
        return 1;
    }
    mock_port = atoi(port);
    snprintf(mock_base, sizeof mock_base, "http://127.0.0.1:%d", mock_port);
    snprintf(llm_url, sizeof llm_url, "%s/v1", mock_base);
    snprintf(endpoint, sizeof endpoint, "%s/chat/completions", llm_url);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    const struct CMUnitTest tests[] = {
        T(test_plain_text),
        T(test_request_with_tools),
        T(test_tool_turn_split_args),
        T(test_parallel_calls),
        T(test_ollama_and_vllm_styles),
        T(test_429_retry_after),
        T(test_503_retryable),
        T(test_401_not_retryable),
        T(test_error_in_stream),
        T(test_finish_without_done),
        T(test_nul_byte),
        T(test_401_echoes_key_in_part),
        T(test_only_model),
        T(test_no_done),
        T(test_cut_connection),
        T(test_stalled_stream),
        T(test_slow_stream_within_the_stall_time),
        T(test_stall_counts_from_the_last_byte),
        T(test_connection_refused),
        T(test_localhost),
        T(test_userinfo_hidden),
        T(test_abort_inside_callback),
        T(test_abort_inside_callback_spares_the_others),
        T(test_abort_mid_stream),
        T(test_start_inside_callbacks),
        T(test_twenty_concurrent),
        T(test_free_with_calls_in_flight),
        T(test_burst_pauses_after_first_piece),
        T(test_connection_kept_for_the_next_call),
        T(test_connection_closed_while_idle_is_replaced),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
