/*
 * libFuzzer target for engine/llm_anthropic_stream.
 *
 * The input is a Messages response body: it goes through the SSE parser
 * into the stream as the client feeds it, in two feeds split where the
 * first byte says. The same bytes also go to the error-body reader (with a
 * status from the second byte) and, as an OpenAI-form message list when
 * they parse as one, to the request body builder. Every outcome must hold
 * what the engine relies on: text pieces join into the text, calls have
 * ids, names and arguments within the limits, messages are clean one-line
 * UTF-8, and the request body is a JSON object.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_llm_anthropic_stream \
 *     -max_total_time=20 tests/fuzz/corpus/llm_anthropic_stream
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sse.h"
#include "engine/llm_anthropic_stream.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

typedef struct fuzz_state {
    llm_anthropic_stream *stream;
    buf pieces;
} fuzz_state;

static void fuzz_on_text(void *ud, const char *text, size_t len)
{
    fuzz_state *st = ud;
    if (len == 0) abort();
    buf_append(&st->pieces, text, len);
}

static int fuzz_on_event(void *ud, const sse_event *ev)
{
    fuzz_state *st = ud;
    return llm_anthropic_stream_feed(st->stream, ev->data, ev->data_len) == LLM_STREAM_MORE ? 0 : 1;
}

/* A message must be non-empty valid UTF-8 with no control characters. */
static void fuzz_check_message(const char *m)
{
    if (!m || !*m) abort();
    size_t len = strlen(m);
    if (utf8_valid_prefix(m, len) != len) abort();
    for (const unsigned char *p = (const unsigned char *)m; *p; p++)
        if (*p < 0x20 || *p == 0x7f) abort();
}

static void fuzz_check_result(const llm_result *r, const buf *pieces)
{
    if (r->ok) {
        if (!r->text || strlen(r->text) != r->text_len) abort();
        if (r->text_len != pieces->len) abort();
        if (r->text_len && memcmp(r->text, pieces->data, r->text_len) != 0) abort();
        if (r->ncalls > LLM_STREAM_MAX_CALLS || (r->ncalls == 0) != (r->calls == NULL)) abort();
        for (size_t i = 0; i < r->ncalls; i++) {
            const llm_tool_call *c = &r->calls[i];
            if (!*c->id || !*c->name || !*c->arguments) abort();
            if (strlen(c->id) > LLM_STREAM_MAX_NAME || strlen(c->name) > LLM_STREAM_MAX_NAME)
                abort();
        }
        if (r->error_message || r->error_code) abort();
    } else {
        fuzz_check_message(r->error_message);
        if (r->text || r->calls) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    const char *in = (const char *)data + 2;
    size_t len = size - 2;
    size_t cut = len ? data[0] % (len + 1) : 0;

    fuzz_state st;
    sse_parser p;
    llm_result r;
    st.stream = llm_anthropic_stream_new(fuzz_on_text, &st);
    buf_init(&st.pieces, SIZE_MAX / 2);
    sse_parser_init(&p, (size_t)1 << 20, fuzz_on_event, &st);
    if (sse_parser_feed(&p, in, cut) == 0) sse_parser_feed(&p, in + cut, len - cut);
    llm_anthropic_stream_finish(st.stream, &r);
    fuzz_check_result(&r, &st.pieces);
    llm_result_cleanup(&r);
    sse_parser_cleanup(&p);
    llm_anthropic_stream_free(st.stream);
    buf_cleanup(&st.pieces);

    /* The same bytes as an error body. */
    int status = 400 + data[1] % 200;
    llm_anthropic_stream_http_error(&r, status, "http://127.0.0.1:1/v1/messages", in, len, -1);
    fuzz_check_message(r.error_message);
    if (r.ok || r.http_status != status) abort();
    if (status != 429 && r.retryable != (status >= 500 && status != 501 && status != 505)) abort();
    llm_result_cleanup(&r);

    /* And as the messages of a request. */
    json_t *messages = json_loadb(in, len, 0, NULL);
    if (json_is_array(messages)) {
        llm_request req = {.messages = messages,
                           .tools = messages,
                           .max_completion_tokens = (int64_t)data[1] - 128};
        size_t blen;
        char *body = llm_anthropic_stream_request_body("m", &req, &blen);
        json_t *back = json_loadb(body, blen, 0, NULL);
        if (!json_is_object(back) || !json_is_array(json_object_get(back, "messages")) ||
            json_integer_value(json_object_get(back, "max_tokens")) < 1)
            abort();
        json_decref(back);
        free(body);
    }
    json_decref(messages);
    return 0;
}
