/*
 * GET /api/health and POST /api/mcp/{name}/restart (docs/health.md).
 *
 * The health says what is wrong with the server, if
 * anything, from what it already saw: the model's calls of the last five
 * minutes, the tool servers' states, the store's answer to a ping and its
 * commit times, and the runs active and stopped in the last hour. Cheap
 * enough to poll every few seconds: one ping on a read thread, the rest
 * from memory.
 */
#include <stdlib.h>
#include <string.h>

#include "core/health.h"
#include "core/timefmt.h"
#include "lib/clock.h"
#include "lib/metrics.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"

static json_t *api_health__time_or_null(int64_t ms)
{
    if (!ms) return json_null();
    char t[TIMEFMT_LEN];
    timefmt_rfc3339(ms, t);
    return json_string(t);
}

/* Model provider i of the chain: its five-minute window and its circuit. */
static json_t *api_health__llm(llm_chain *c, size_t i, int64_t now, health_state *state)
{
    const health_window *w = llm_chain_health(c, i);
    const llm *m = llm_chain_model(c, i);
    bool open = llm_chain_resting(c, i, clock_mono_ms());
    int64_t req, err;
    health_window_counts(w, now, &req, &err);
    int64_t p50 = health_window_first_token_p50(w, now);
    *state = health_window_state(w, now, open);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(llm_chain_name(c, i)));
    json_object_set_new(o, "kind", json_string(m->provider));
    json_object_set_new(o, "model", json_string(m->model ? m->model : ""));
    json_object_set_new(o, "state", json_string(health_state_name(*state)));
    json_object_set_new(o, "circuit", json_string(open ? "open" : "closed"));
    json_object_set_new(o, "last_error",
                        w->last_error_ms ? json_string(w->last_error) : json_null());
    json_object_set_new(o, "last_ok_at", api_health__time_or_null(w->last_ok_ms));
    json_object_set_new(o, "requests_5m", json_integer(req));
    json_object_set_new(o, "errors_5m", json_integer(err));
    json_object_set_new(o, "first_token_ms_p50", p50 >= 0 ? json_integer(p50) : json_null());
    return o;
}

/* The tool servers, as /api/info has them, in the health's words. */
static json_t *api_health__mcp(api *a, int *not_ready)
{
    json_t *servers = toolset_servers_json(a->d.tools);
    json_t *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(servers, i, s)
    {
        const char *status = json_string_value(json_object_get(s, "status"));
        json_t *transport = json_object_get(s, "transport");
        json_t *o = json_object();
        json_object_set(o, "name", json_object_get(s, "name"));
        json_object_set_new(o, "transport",
                            transport ? json_incref(transport) : json_string("stdio"));
        json_object_set_new(o, "state", json_string(status ? status : "failed"));
        json_t *restarts = json_object_get(s, "restarts");
        json_object_set_new(o, "restarts", restarts ? json_incref(restarts) : json_integer(0));
        json_t *last = json_object_get(s, "last_error");
        if (!last) last = json_object_get(s, "error");
        json_object_set_new(o, "last_error", last ? json_incref(last) : json_null());
        json_object_set(o, "tools", json_object_get(s, "tools"));
        json_array_append_new(out, o);
        if (!status || strcmp(status, "ready") != 0) (*not_ready)++;
    }
    json_decref(servers);
    return out;
}

static json_t *api_health__runs(api *a, int64_t now)
{
    int64_t counts[STOP__COUNT];
    health_stops_counts(engine_stops(a->d.engine), now, counts);
    json_t *stopped = json_object();
    for (int r = 0; r < STOP__COUNT; r++)
        if (counts[r])
            json_object_set_new(stopped, stop_reason_name((stop_reason)r), json_integer(counts[r]));
    json_t *o = json_object();
    json_object_set_new(o, "active", json_integer((json_int_t)engine_active_count(a->d.engine)));
    json_object_set_new(o, "stopped_1h", stopped);
    return o;
}

static void api_health__ping(store *st, api__job *j)
{
    j->num = store_ping(st) == 0;
    j->arg = xstrdup(db_get_kind(store_db(st)) == DB_SQLITE ? "sqlite" : "postgres");
}

static void api_health__reply(api__job *j)
{
    api *a = j->a;
    int64_t now = clock_wall_ms();
    llm_chain *chain = engine_chain(a->d.engine);
    size_t n = chain ? llm_chain_size(chain) : 0;
    health_state *llm_states = xcalloc(n ? n : 1, sizeof *llm_states);
    int not_ready = 0;
    json_t *providers = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(providers, api_health__llm(chain, i, now, &llm_states[i]));
    json_t *mcp = api_health__mcp(a, &not_ready);
    bool store_up = j->num != 0;
    json_t *st = json_object();
    json_object_set_new(st, "backend", json_string(j->arg ? j->arg : "sqlite"));
    json_object_set_new(st, "state", json_string(store_up ? "ok" : "down"));
    double p99 = metrics_histogram_quantile(a->d.store_commit, 0.99);
    json_object_set_new(st, "commit_ms_p99", json_real(p99 >= 0 ? p99 * 1000.0 : 0.0));

    json_t *o = json_object();
    json_object_set_new(
        o, "status",
        json_string(health_state_name(health_overall(store_up, llm_states, (int)n, not_ready))));
    free(llm_states);
    json_object_set_new(o, "checked_at", api_health__time_or_null(now));
    json_object_set_new(o, "llm", providers);
    json_object_set_new(o, "mcp", mcp);
    json_object_set_new(o, "store", st);
    json_object_set_new(o, "runs", api_health__runs(a, now));
    http_reply_json(j->r, 200, o);
    api__job_free(j);
}

static void api_health__get(http_req *r, void *ud)
{
    api__job *j = api__job_new(ud, r, NULL, api_health__ping);
    j->then = api_health__reply;
    api__job_submit(j);
}

/* ---- POST /api/mcp/{name}/restart ---- */

static void api_health__restart(http_req *r, void *ud)
{
    api *a = ud;
    if (http_req_auth_on(r) && !http_req_admin(r)) {
        http_reply_error(r, 403, "forbidden", "only an admin token may restart tool servers");
        return;
    }
    const char *name = http_req_param(r, "name");
    json_t *o = toolset_restart_server(a->d.tools, name);
    if (!o) {
        http_reply_error(r, 404, "not_found", "no tool server '%.80s'", name);
        return;
    }
    http_reply_json(r, 202, o);
}

void api__register_health(http_server *s, api *a)
{
    http_route(s, "GET", "/api/health", api_health__get, a);
    http_route(s, "POST", "/api/mcp/{name}/restart", api_health__restart, a);
}
