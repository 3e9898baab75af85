/*
 * libFuzzer target for the MCP frame reader and message classification.
 *
 * The first two input bytes pick where to split the rest into three feeds,
 * so the fuzzer explores lines and over-long lines cut across feeds. A small
 * cap makes the over-long path reachable. Every line is classified, requests
 * are answered and results turned into text, with the invariants checked;
 * the same bytes fed in one piece must give the same lines.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc tests/fuzz/fuzz_mcp_frame.c \
 *     src/engine/mcp_frame.c src/lib/buf.c src/lib/xmalloc.c -ljansson -o build/fuzz_mcp_frame
 *   build/fuzz_mcp_frame -max_total_time=20 tests/fuzz/corpus/mcp_frame
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mcp_frame.h"

#define FUZZ_CAP 96

/* What the lines of one parse produced, flattened for comparison. */
static int fuzz_on_line(void *ud, const mcp_line *l)
{
    buf *log = ud;
    if (l->toobig) {
        if (l->data || l->len <= FUZZ_CAP || l->head_len > MCP_FRAME_SNIFF) abort();
        if (l->id < -1) abort();
        buf_printf(log, "T%zu:%lld|", l->len, (long long)l->id);
        return 0;
    }
    if (l->len == 0 || l->len > FUZZ_CAP || l->data[l->len] != '\0') abort();
    if (memchr(l->data, '\n', l->len)) abort();
    buf_printf(log, "L%zu:", l->len);
    buf_append(log, l->data, l->len);

    mcp_msg m;
    char err[160];
    int rc = mcp_msg_parse(l->data, l->len, &m, err, sizeof err);
    if ((rc == 0) != (m.kind != MCP_MSG_INVALID)) abort();
    buf_printf(log, "|k%d", (int)m.kind);
    if (m.kind == MCP_MSG_REQUEST) {
        size_t n;
        char *answer = mcp_frame_answer(&m, &n);
        /* One line, ending in its only LF, that parses back as a response. */
        if (n == 0 || answer[n - 1] != '\n' || memchr(answer, '\n', n - 1)) abort();
        mcp_msg back;
        if (mcp_msg_parse(answer, n - 1, &back, err, sizeof err) != 0) abort();
        if (back.kind != MCP_MSG_RESULT && back.kind != MCP_MSG_ERROR) abort();
        mcp_msg_cleanup(&back);
        free(answer);
    } else if (m.kind == MCP_MSG_RESULT) {
        buf text;
        buf_init(&text, 64);
        mcp_frame_result_text(m.result, &text);
        if (text.len > 64) abort();
        buf_cleanup(&text);
    } else if (m.kind == MCP_MSG_ERROR) {
        free(mcp_msg_error_text(&m));
    }
    mcp_msg_cleanup(&m);
    buf_append_char(log, '|');
    return 0;
}

static void fuzz_parse(const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts, buf *log)
{
    mcp_reader r;
    size_t at = 0;
    buf_init(log, SIZE_MAX / 2);
    mcp_reader_init(&r, FUZZ_CAP);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        mcp_reader_feed(&r, (const char *)in + at, end - at, fuzz_on_line, log);
        at = end;
    }
    mcp_reader_cleanup(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    const uint8_t *in = data + 2;
    size_t len = size - 2;
    size_t cuts[2] = {len ? data[0] % (len + 1) : 0, len ? data[1] % (len + 1) : 0};
    if (cuts[0] > cuts[1]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = t;
    }

    /* The sniffer on arbitrary bytes: any answer is a non-negative id or -1. */
    size_t half = len / 2;
    if (mcp_frame_sniff_id((const char *)in, half, (const char *)in + half, len - half) < -1)
        abort();

    buf split, whole;
    fuzz_parse(in, len, cuts, 2, &split);
    fuzz_parse(in, len, NULL, 0, &whole);
    /* How the bytes are split never changes the lines. */
    if (split.len != whole.len || (split.len && memcmp(split.data, whole.data, split.len) != 0))
        abort();
    buf_cleanup(&split);
    buf_cleanup(&whole);
    return 0;
}
