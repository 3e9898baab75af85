/*
 * libFuzzer target for HTTP routing and query parsing: the request target
 * as evhttp hands it over (evhttp_uri_parse, the path and the query), the
 * route table with the API's routes, the percent-decoding of parameters,
 * and the query values the handlers read (limit, after, before, run_id).
 *
 * The first input byte picks the method; the rest is the request target.
 * Invariants: a match names a target and no Allow list, its parameters are
 * non-empty NUL-free strings; no match leaves no parameters; the
 * percent-decoding agrees with evhttp's.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_route -max_total_time=20 tests/fuzz/corpus/route
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "net/route.h"
#include "net/validate.h"

static const char *const fuzz_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};

/* The routes of src/net/api*.c, each target its own index. */
static const char *const fuzz_routes[][2] = {
    {"POST", "/api/sessions"},
    {"GET", "/api/sessions"},
    {"GET", "/api/sessions/{id}"},
    {"PATCH", "/api/sessions/{id}"},
    {"DELETE", "/api/sessions/{id}"},
    {"GET", "/api/sessions/{id}/messages"},
    {"GET", "/api/sessions/{id}/tools"},
    {"GET", "/api/sessions/{id}/runs"},
    {"GET", "/api/runs/{id}"},
    {"POST", "/api/sessions/{id}/runs"},
    {"POST", "/api/sessions/{id}/stop"},
    {"POST", "/api/sessions/{id}/continue"},
    {"GET", "/api/sessions/{id}/events"},
    {"POST", "/api/brain/stream"},
    {"POST", "/api/brain/unified/consult/stream"},
    {"GET", "/api/info"},
    {"GET", "/api/modes"},
    {"PUT", "/api/modes/{name}"},
    {"GET", "/healthz"},
    {"GET", "/metrics"},
    {"POST", "/api/login"},
    {"POST", "/api/logout"},
};
#define FUZZ_NROUTES (sizeof fuzz_routes / sizeof fuzz_routes[0])

static route_table *fuzz_table;
static int fuzz_targets[FUZZ_NROUTES];

static void fuzz_query(const char *q)
{
    struct evkeyvalq h;
    TAILQ_INIT(&h);
    if (evhttp_parse_query_str(q, &h) == 0) {
        char err[256];
        int64_t v;
        const char *limit = evhttp_find_header(&h, "limit");
        if (limit && validate_query_int("limit", limit, 1, 200, &v, err, sizeof err) == 0 &&
            (v < 1 || v > 200))
            abort();
        const char *after = evhttp_find_header(&h, "after");
        if (after && validate_query_int("after", after, 0, INT64_MAX, &v, err, sizeof err) == 0 &&
            v < 0)
            abort();
        (void)evhttp_find_header(&h, "before");
        (void)evhttp_find_header(&h, "run_id");
    }
    evhttp_clear_headers(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192) return 0;
    if (!fuzz_table) {
        fuzz_table = route_table_new();
        for (size_t i = 0; i < FUZZ_NROUTES; i++)
            if (route_add(fuzz_table, fuzz_routes[i][0], fuzz_routes[i][1], &fuzz_targets[i]) != 0)
                abort();
    }
    const char *method = fuzz_methods[data[0] % (sizeof fuzz_methods / sizeof fuzz_methods[0])];
    char *target = malloc(size);
    memcpy(target, data + 1, size - 1);
    target[size - 1] = '\0';

    /* The path as the server reads it: from the parsed URI, else "/". */
    struct evhttp_uri *uri = evhttp_uri_parse_with_flags(target, EVHTTP_URI_NONCONFORMANT);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path) path = "/";
    route_match m;
    route_find(fuzz_table, method, path, &m);
    if (m.target) {
        if (m.allow[0]) abort();
        if ((int *)m.target < fuzz_targets || (int *)m.target >= fuzz_targets + FUZZ_NROUTES)
            abort();
        for (int i = 0; i < m.nparams; i++)
            if (!m.values[i][0] || !m.names[i][0]) abort();
    } else if (m.nparams != 0) {
        abort();
    }
    route_match_cleanup(&m);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    if (q) fuzz_query(q);
    if (uri) evhttp_uri_free(uri);

    /* The raw bytes as a path too, as a request target evhttp might pass. */
    route_find(fuzz_table, method, target, &m);
    route_match_cleanup(&m);
    /* The decoding agrees with evhttp's, which the server used before it
     * had a router of its own, wherever that one holds no NUL. */
    char *dec = route_decode(target, strlen(target));
    size_t evlen = 0;
    char *evdec = evhttp_uridecode(target, 0, &evlen);
    if (dec && strlen(dec) > strlen(target)) abort();
    if (evdec && strlen(evdec) == evlen && (!dec || strcmp(dec, evdec) != 0)) abort();
    if (dec && (!evdec || strlen(evdec) != evlen)) abort();
    free(evdec);
    free(dec);
    free(target);
    return 0;
}
