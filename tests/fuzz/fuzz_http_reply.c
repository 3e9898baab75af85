/*
 * libFuzzer target for core/http_reply, the parser of a model server's
 * HTTP response.
 *
 * The first two input bytes pick where to split the rest into three feeds,
 * so the fuzzer explores lines, chunk sizes and CRs carried between feeds.
 * The same bytes fed whole must give the same status, headers, body and
 * outcome; the body never holds more bytes than came in, and a refusal
 * always has its reason.
 *
 *   build/fuzz/tests/fuzz/fuzz_http_reply -max_total_time=20 tests/fuzz/corpus/http_reply
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_reply.h"

typedef struct fuzz_log {
    buf out;
    size_t body;
} fuzz_log;

static void fuzz_on_status(void *ud, int status)
{
    fuzz_log *log = ud;
    if (status < 200 || status > 999) abort();
    buf_printf(&log->out, "S%d|", status);
}

static void fuzz_on_header(void *ud, const char *n, size_t nl, const char *v, size_t vl)
{
    fuzz_log *log = ud;
    if (nl == 0 || nl + vl > HTTP_REPLY_LINE_MAX) abort();
    buf_printf(&log->out, "H%zu:%zu|", nl, vl);
    buf_append(&log->out, n, nl);
    buf_append(&log->out, v, vl);
}

static bool fuzz_on_body(void *ud, const char *d, size_t n)
{
    fuzz_log *log = ud;
    log->body += n;
    buf_append(&log->out, d, n);
    /* Stop on some bytes so that early stops are exercised too. */
    return !(n > 0 && d[0] == '!');
}

static const http_reply_cb fuzz_cb = {fuzz_on_status, fuzz_on_header, fuzz_on_body};

/* Parses in[0..len) in feeds ending at each cut, then the end of the
 * connection; returns the outcome and the bytes taken. */
static int fuzz_parse(const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts,
                      fuzz_log *log, size_t *taken)
{
    http_reply r;
    size_t at = 0, used = 0;
    int rc = HTTP_REPLY_MORE;

    buf_init(&log->out, SIZE_MAX / 2);
    log->body = 0;
    http_reply_init(&r, &fuzz_cb, log);
    for (size_t i = 0; i <= ncuts && rc == HTTP_REPLY_MORE; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        rc = http_reply_feed(&r, (const char *)in + at, end - at, &used);
        if (used > end - at) abort();
        at += used;
    }
    if (rc == HTTP_REPLY_MORE) rc = http_reply_eof(&r) == HTTP_REPLY_DONE ? 10 : 11;
    if ((rc == HTTP_REPLY_BAD || rc == 11) && !r.error) abort();
    if (log->body > len) abort();
    buf_printf(&log->out, "|rc%d", rc);
    http_reply_cleanup(&r);
    *taken = at;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    const uint8_t *in = data + 2;
    size_t len = size - 2;
    size_t cuts[2] = {data[0] % (len + 1), data[1] % (len + 1)};
    if (cuts[0] > cuts[1]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = t;
    }
    fuzz_log split, whole;
    size_t taken_split, taken_whole;
    int rc_split = fuzz_parse(in, len, cuts, 2, &split, &taken_split);
    int rc_whole = fuzz_parse(in, len, NULL, 0, &whole, &taken_whole);
    /* Where a piece ends never changes the outcome, except where a body
     * piece begins (the stop byte '!' is seen per piece). */
    if (rc_split != HTTP_REPLY_STOPPED && rc_whole != HTTP_REPLY_STOPPED &&
        (rc_split != rc_whole || taken_split != taken_whole || split.out.len != whole.out.len ||
         memcmp(split.out.data, whole.out.data, split.out.len) != 0))
        abort();
    buf_cleanup(&split.out);
    buf_cleanup(&whole.out);
    return 0;
}
