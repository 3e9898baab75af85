/*
 * libFuzzer target for the SSE parser.
 *
 * The first input byte picks where to split the rest into two feeds, so the
 * fuzzer explores state carried between feeds (a CR at the end of one feed,
 * a partial BOM or line). A small cap makes the size limits reachable. The
 * callback checks the invariants every dispatched event must hold, and the
 * same bytes fed in one piece must give the same events.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc tests/fuzz/fuzz_sse.c \
 *     src/core/sse.c src/lib/buf.c src/lib/xmalloc.c -o build/fuzz_sse
 *   build/fuzz_sse -max_total_time=20 tests/fuzz/corpus/sse
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sse.h"

#define FUZZ_CAP 64

/* The events of one parse, flattened into one buffer for comparison. */
typedef struct fuzz_log {
    buf out;
    int count;
} fuzz_log;

static int fuzz_on_event(void *ud, const sse_event *ev)
{
    fuzz_log *log = ud;
    size_t elen = strlen(ev->event);
    size_t ilen = strlen(ev->id);

    if (ev->data_len > FUZZ_CAP || elen > FUZZ_CAP || ilen > FUZZ_CAP) abort();
    /* An event field may start with a NUL byte, so elen may be 0 here. */
    if (ev->data[ev->data_len] != '\0') abort();
    if (memchr(ev->event, '\r', elen) || memchr(ev->event, '\n', elen)) abort();
    if (memchr(ev->data, '\r', ev->data_len)) abort();
    log->count++;
    buf_printf(&log->out, "%zu:%s|%zu:%s|%zu:", elen, ev->event, ilen, ev->id, ev->data_len);
    buf_append(&log->out, ev->data, ev->data_len);
    /* Stop on some events so that early return is exercised too. */
    return ev->data_len == 7 ? 99 : 0;
}

/* Parses in[0..len) as feeds ending at each cut; returns the feed result. */
static int fuzz_parse(const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts,
                      fuzz_log *log)
{
    sse_parser p;
    size_t at = 0;
    int rc = 0;

    buf_init(&log->out, SIZE_MAX / 2);
    log->count = 0;
    sse_parser_init(&p, FUZZ_CAP, fuzz_on_event, log);
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        rc = sse_parser_feed(&p, (const char *)in + at, end - at);
        at = end;
    }
    if (rc == 0 && (p.retry_ms < -1)) abort();
    sse_parser_cleanup(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t cuts[2] = {data[0] % (size - 1), data[1] % (size - 1)};
    const uint8_t *in = data + 2;
    size_t len = size - 2;
    if (cuts[0] > len) cuts[0] = len;
    if (cuts[1] > len) cuts[1] = len;
    if (cuts[0] > cuts[1]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = t;
    }

    fuzz_log split, whole;
    int rc_split = fuzz_parse(in, len, cuts, 2, &split);
    int rc_whole = fuzz_parse(in, len, NULL, 0, &whole);
    /* How the bytes are split never changes the outcome. */
    if (rc_split != rc_whole || split.count != whole.count || split.out.len != whole.out.len ||
        (split.out.len && memcmp(split.out.data, whole.out.data, split.out.len) != 0))
        abort();
    buf_cleanup(&split.out);
    buf_cleanup(&whole.out);
    return 0;
}
