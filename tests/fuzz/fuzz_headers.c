/*
 * libFuzzer target for the request headers the server interprets itself:
 * Last-Event-ID (and the after parameter, read the same way),
 * Authorization, Cookie, Origin against Host, Host for the loopback check,
 * and Content-Type.
 *
 * The first input byte picks the header; the rest is its value (a NUL
 * splits Origin from Host). Invariants: a parsed Last-Event-ID is a
 * non-negative number, the one its text says; a token taken from
 * Authorization or Cookie fits its buffer, is non-empty and is safe inside
 * a header; an Origin that matches names the Host.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_headers -max_total_time=20
 * tests/fuzz/corpus/headers
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/auth.h"
#include "net/http.h"
#include "net/validate.h"

static void fuzz_token_ok(const char *t, size_t cap)
{
    size_t n = strlen(t);
    if (n == 0 || n >= cap || !auth_token_wellformed(t)) abort();
    for (size_t i = 0; i < n; i++)
        if (t[i] == '\r' || t[i] == '\n' || t[i] == ' ' || t[i] == ';') abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384) return 0;
    char *v = malloc(size);
    memcpy(v, data + 1, size - 1);
    v[size - 1] = '\0';
    char out[AUTH_PRESENTED_MAX], err[256];
    switch (data[0] % 6) {
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
    default:
        (void)http_is_json_type(v);
        (void)auth_path_needs_token(v);
        break;
    }
    free(v);
    return 0;
}
