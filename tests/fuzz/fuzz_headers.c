/*
 * libFuzzer target for the request headers the server interprets itself:
 * Last-Event-ID (and the after parameter, read the same way),
 * Authorization, Cookie, Origin against Host, Host for the loopback check,
 * and Content-Type; and the framing rules (net/framing.h) on a whole
 * request head and on a chunked body fed in pieces.
 *
 * The first input byte picks the header; the rest is its value (a NUL
 * splits Origin from Host). Invariants: a parsed Last-Event-ID is a
 * non-negative number, the one its text says; a token taken from
 * Authorization or Cookie fits its buffer, is non-empty and is safe inside
 * a header; an Origin that matches names the Host; a framing verdict is
 * one of the four statuses with a message; the chunk reader never claims
 * more bytes than it was given, and reads the same body the same way
 * whatever the pieces.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_headers -max_total_time=20
 * tests/fuzz/corpus/headers
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/auth.h"
#include "net/framing.h"
#include "net/http.h"
#include "net/validate.h"

static void fuzz_token_ok(const char *t, size_t cap)
{
    size_t n = strlen(t);
    if (n == 0 || n >= cap || !auth_token_wellformed(t)) abort();
    for (size_t i = 0; i < n; i++)
        if (t[i] == '\r' || t[i] == '\n' || t[i] == ' ' || t[i] == ';') abort();
}

static void fuzz_head(const char *p, size_t len)
{
    size_t end = framing_head_end(p, len, 0);
    if (end > len) abort();
    /* Resuming after a shorter length without an end finds the same end. */
    if (end && framing_head_end(p, len, end - 1) != end) abort();
    if (!end) end = len;
    framing_header h[64];
    int n = framing_split(p, end, h, 64);
    if (n < -1 || n > 64) abort();
    if (n < 0) return;
    framing_verdict v;
    framing_check(h, n, 1024, &v);
    if (v.status != 0 && v.status != 400 && v.status != 413 && v.status != 501) abort();
    if (v.status && (!v.code || !v.message[0])) abort();
}

/* The result of reading p whole, then in pieces of step bytes. */
static int fuzz_chunks(const char *p, size_t len, size_t step, size_t *at)
{
    framing_chunks c;
    framing_chunks_init(&c, 4096);
    char err[160];
    *at = 0;
    while (*at < len) {
        size_t k = len - *at < step ? len - *at : step, used = 0;
        int rc = framing_chunks_feed(&c, p + *at, k, &used, err, sizeof err);
        if (used > k) abort();
        if (rc == FRAMING_BAD && !err[0]) abort();
        if (rc != FRAMING_MORE) {
            *at += rc == FRAMING_DONE ? used : 0;
            return rc;
        }
        *at += k;
    }
    return FRAMING_MORE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384) return 0;
    char *v = malloc(size);
    memcpy(v, data + 1, size - 1);
    v[size - 1] = '\0';
    char out[AUTH_PRESENTED_MAX], err[256];
    switch (data[0] % 8) {
    case 0: {
        int64_t n = -1;
        if (validate_query_int("Last-Event-ID", v, 0, INT64_MAX, &n, err, sizeof err) == 0) {
            if (n < 0) abort();
            /* Leading zeros or a sign may differ; the value may not. */
            if (strtoll(v, NULL, 10) != n) abort();
        } else if (!err[0]) {
            abort();
        }
        break;
    }
    case 1:
        if (auth_bearer(v, out, sizeof out) == 0) fuzz_token_ok(out, sizeof out);
        break;
    case 2:
        if (auth_cookie(v, AUTH_COOKIE, out, sizeof out) == 0) fuzz_token_ok(out, sizeof out);
        break;
    case 3: {
        size_t ol = strlen(v);
        const char *host = ol + 1 < size - 1 ? v + ol + 1 : "";
        if (auth_origin_matches(v, host) && !strstr(v, "://")) abort();
        break;
    }
    case 4:
        (void)auth_host_is_loopback(v);
        break;
    case 6:
        fuzz_head((const char *)data + 1, size - 1);
        break;
    case 7: {
        size_t whole, pieces;
        int a = fuzz_chunks((const char *)data + 1, size - 1, size, &whole);
        int b = fuzz_chunks((const char *)data + 1, size - 1, 1 + data[0] / 8 % 7, &pieces);
        if (a != b || (a == FRAMING_DONE && whole != pieces)) abort();
        break;
    }
    default:
        (void)http_is_json_type(v);
        (void)auth_path_needs_token(v);
        break;
    }
    free(v);
    return 0;
}
