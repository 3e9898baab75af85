/*
 * libFuzzer target for engine/llm_stream.
 *
 * The input is a model response body: it goes through the SSE parser into
 * llm_stream as the client feeds it, in two feeds split where the first
 * byte says. The same bytes also go to the error-body parser (with a status
 * taken from the second byte), to the model-list reader and, cut at the
 * first NUL, to the Retry-After parser. Every outcome must hold the invariants the engine relies
 * on: text pieces join into the text, calls have ids (unique), names and arguments, limits hold,
 * and messages are clean one-line UTF-8.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_DEFAULT_SOURCE -Isrc \
 *     tests/fuzz/fuzz_llm_stream.c src/engine/llm_stream.c src/engine/llm.c \
 *     src/core/sse.c src/lib/buf.c src/lib/xmalloc.c src/lib/log.c -ljansson \
 *     -o build/fuzz_llm_stream
 *   build/fuzz_llm_stream -max_total_time=20 tests/fuzz/corpus/llm_stream
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sse.h"
#include "engine/llm_stream.h"
#include "lib/xmalloc.h"

typedef struct fuzz_state {
    llm_stream *stream;
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
    return llm_stream_feed(st->stream, ev->data, ev->data_len) == LLM_STREAM_MORE ? 0 : 1;
}

/* A message must be valid UTF-8 with no control characters. */
static void fuzz_check_message(const char *m)
{
    const unsigned char *p = (const unsigned char *)m;
    if (!m || !*m) abort();
    while (*p) {
        size_t n;
        if (*p < 0x20 || *p == 0x7f) abort();
        if (*p < 0x80)
            n = 1;
        else if ((*p & 0xE0) == 0xC0)
            n = 2;
        else if ((*p & 0xF0) == 0xE0)
            n = 3;
        else if ((*p & 0xF8) == 0xF0)
            n = 4;
        else
            abort();
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80) abort();
        }
        p += n;
    }
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
            if (strlen(c->arguments) > LLM_STREAM_MAX_ARGS) abort();
            for (size_t k = 0; k < i; k++) {
                if (strcmp(r->calls[k].id, c->id) == 0) abort();
            }
        }
        if (r->error_message || r->error_code) abort();
    } else {
        fuzz_check_message(r->error_message);
        if (r->text || r->calls) abort();
    }
    if (r->retry_after_ms < -1 || r->retry_after_ms > LLM_STREAM_MAX_RETRY_AFTER_MS) abort();
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
    st.stream = llm_stream_new(fuzz_on_text, &st);
    buf_init(&st.pieces, SIZE_MAX / 2);
    sse_parser_init(&p, (size_t)1 << 20, fuzz_on_event, &st);
    if (sse_parser_feed(&p, in, cut) == 0) sse_parser_feed(&p, in + cut, len - cut);
    llm_stream_finish(st.stream, &r);
    fuzz_check_result(&r, &st.pieces);
    llm_result_cleanup(&r);
    sse_parser_cleanup(&p);
    llm_stream_free(st.stream);
    buf_cleanup(&st.pieces);

    /* The same bytes as an error body. */
    int status = 400 + data[1] % 200;
    llm_stream_http_error(&r, status, "http://127.0.0.1:1/v1/chat/completions", in, len, -1);
    fuzz_check_message(r.error_message);
    if (r.ok || r.http_status != status) abort();
    llm_result_cleanup(&r);

    /* And as a model list: one usable id, or a clean reason. */
    char why[LLM_STREAM_MODELS_ERR_MAX] = "";
    char *model = llm_stream_only_model(in, len, why, sizeof why);
    if (model ? why[0] != '\0' || strlen(model) > LLM_STREAM_MAX_NAME : why[0] == '\0') abort();
    if (!model) fuzz_check_message(why);
    free(model);

    /* And as Retry-After values: the text up to the first NUL, and the
     * rest after it. */
    char *a = xstrndup(in, len);
    size_t alen = strlen(a);
    char *b = alen < len ? xstrndup(in + alen + 1, len - alen - 1) : NULL;
    int64_t now = (int64_t)data[0] * 1000003 * 1000;
    int64_t v1 = llm_stream_retry_after_ms(a, b, now);
    int64_t v2 = llm_stream_retry_after_ms(NULL, a, now);
    if (v1 < -1 || v1 > LLM_STREAM_MAX_RETRY_AFTER_MS) abort();
    if (v2 < -1 || v2 > LLM_STREAM_MAX_RETRY_AFTER_MS) abort();
    free(a);
    free(b);
    return 0;
}
