/*
 * libFuzzer target for what the HTTP transport of the MCP client reads from
 * a server: answer header lines and the events of an SSE answer.
 *
 * The input is header lines up to the first empty line, then an answer
 * body read as an SSE stream of request id 1. Checks: the kept header
 * values fit their buffers, and every queued message is the NUL-terminated
 * data of one event, never longer than the event cap.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_mcp_http tests/fuzz/corpus/mcp_http
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mcp_http.c"

#define FUZZ_CAP 256

static mcp_http *fuzz_transport(void)
{
    static mcp_http *t;
    if (t) return t;
    char *headers[] = {NULL};
    mcp_server_config cfg = {.name = "fuzz",
                             .transport = MCP_TRANSPORT_HTTP,
                             .url = "http://127.0.0.1:1/mcp",
                             .headers = headers,
                             .tls_verify = true,
                             .timeout_ms = 1000};
    log_min_level = LOG_OFF;
    t = (mcp_http *)mcp_http_new(event_base_new(), &cfg);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mcp_http *t = fuzz_transport();
    mcp_http__req r = {.t = t, .id = 1};
    const char *p = (const char *)data, *end = p + size;
    /* Header lines, each with its line ending, as libcurl hands them over. */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        char *line = xmalloc(n + 1); /* the bytes as they are, NULs included */
        memcpy(line, p, n);
        line[n] = '\0';
        mcp_http__on_header(line, 1, n, &r);
        free(line);
        p += n;
        if (n <= 2 && (n == 1 || p[-2] == '\r')) break;
    }
    if (strlen(r.ctype) >= sizeof r.ctype || strlen(r.auth) >= sizeof r.auth) abort();
    sse_parser_init(&r.sse, FUZZ_CAP, mcp_http__on_sse, &r);
    sse_parser_feed(&r.sse, p, (size_t)(end - p));
    sse_parser_cleanup(&r.sse);
    for (mcp_http__item *it = t->items; it; it = it->next) {
        if (it->kind != MCP_HTTP__FRAME || it->len > FUZZ_CAP) abort();
        if (it->data[it->len] != '\0') abort();
    }
    mcp_http__items_free(t);
    return 0;
}
