/*
 * libFuzzer target for the endpoint event of the HTTP+SSE transport of the
 * MCP client: a URL a server sends, resolved against the URL of its event
 * stream, and taken only on the same origin.
 *
 * The first byte of the input picks the event stream's URL; the rest is
 * the event's data, resolved directly and as an "endpoint" event of the
 * stream. Checks: a URL taken has no space or control character and the
 * scheme, host and port of the event stream's; one refused leaves an
 * error that says why; the event refused ends the stream with a reason.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_mcp_endpoint tests/fuzz/corpus/mcp_endpoint
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mcp_http.c"

static const char *const fuzz_bases[] = {
    "http://127.0.0.1:8080/sse",
    "https://mcp.example.com/v1/sse?key=1",
    "http://[::1]/a/b/c",
    "http://user:pw@h:80/",
};
#define FUZZ_NBASES (sizeof fuzz_bases / sizeof fuzz_bases[0])

static mcp_http *fuzz_transport(size_t i)
{
    static mcp_http *ts[FUZZ_NBASES];
    if (ts[i]) return ts[i];
    char *headers[] = {NULL};
    mcp_server_config cfg = {.name = "fuzz",
                             .transport = MCP_TRANSPORT_SSE,
                             .url = (char *)fuzz_bases[i],
                             .headers = headers,
                             .tls_verify = true,
                             .timeout_ms = 1000};
    log_min_level = LOG_OFF;
    ts[i] = (mcp_http *)mcp_http_new(event_base_new(), &cfg);
    return ts[i];
}

/* Whether part what of the URLs a and b is the same, the port made
 * explicit. */
static bool fuzz_same(const char *a, const char *b, CURLUPart what)
{
    CURLU *ua = curl_url(), *ub = curl_url();
    char *x = NULL, *y = NULL;
    bool same = curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
                curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK &&
                curl_url_get(ua, what, &x, CURLU_DEFAULT_PORT) == CURLUE_OK &&
                curl_url_get(ub, what, &y, CURLU_DEFAULT_PORT) == CURLUE_OK &&
                strcasecmp(x, y) == 0;
    curl_free(x);
    curl_free(y);
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

static void fuzz_check_taken(const char *base, const char *url)
{
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) abort();
    if (!fuzz_same(base, url, CURLUPART_SCHEME) || !fuzz_same(base, url, CURLUPART_HOST) ||
        !fuzz_same(base, url, CURLUPART_PORT))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    size_t which = data[0] % FUZZ_NBASES;
    const char *base = fuzz_bases[which];
    const char *ref = (const char *)data + 1;
    size_t len = size - 1;

    char err[256] = "";
    char *url = mcp_http_endpoint(base, ref, len, err, sizeof err);
    if (url) {
        fuzz_check_taken(base, url);
        free(url);
    } else if (!*err || !memchr(err, '\0', sizeof err)) {
        abort();
    }

    /* The same data as the stream's endpoint event. */
    mcp_http *t = fuzz_transport(which);
    mcp_http__req *r = mcp_http__req_new(t, MCP_HTTP__LISTEN, -1);
    char *copy = xmalloc(len + 1);
    memcpy(copy, ref, len);
    copy[len] = '\0';
    sse_event ev = {.event = "endpoint", .data = copy, .data_len = len};
    int rc = mcp_http__on_sse(r, &ev);
    if (rc == 0) {
        if (!t->endpoint) abort();
        fuzz_check_taken(base, t->endpoint);
    } else if (!r->why || strncmp(r->why, "sent an endpoint that cannot be used: ", 38) != 0) {
        abort();
    }
    free(t->endpoint);
    t->endpoint = NULL;
    free(copy);
    mcp_http__req_free(r);
    mcp_http__items_free(t);
    return 0;
}
