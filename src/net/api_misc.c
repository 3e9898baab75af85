/* The server-wide routes: /api/info, the modes, /healthz, /metrics, and the
 * page with its files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/http.h>

#include "store/objects.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/metrics.h"
#include "lib/xmalloc.h"
#include "net/api_int.h"
#include "net/page.h"
#include "version.h"

#define API__STATIC_MAX (16u << 20)

/* ---- GET /api/info ---- */

static void api__info(http_req *r, void *ud)
{
    api *a = ud;
    json_t *o = json_object();
    json_object_set_new(o, "version", json_string(CHATPLANE_VERSION));
    json_t *l = json_object();
    json_object_set_new(l, "provider", json_string(a->d.model->provider));
    json_object_set_new(l, "model", json_string(a->d.model->model ? a->d.model->model : ""));
    json_object_set_new(o, "llm", l);
    json_t *tools = json_array();
    for (size_t i = 0; i < toolset_count(a->d.tools); i++) {
        const tool_def *t = toolset_get(a->d.tools, i);
        json_t *td = json_object();
        json_object_set_new(td, "name", json_string(t->name));
        json_object_set_new(td, "server", json_string(t->server));
        json_object_set_new(td, "description", json_string(t->description ? t->description : ""));
        json_array_append_new(tools, td);
    }
    json_object_set_new(o, "tools", tools);
    /* Each MCP server's state (docs/api.md, GET /api/info), so a server
     * that failed to start is visible with its reason. */
    json_object_set_new(o, "servers", toolset_servers_json(a->d.tools));
    json_object_set_new(o, "auth", json_boolean(http_req_auth_on(r)));
    http_reply_json(r, 200, o);
}

/* ---- GET /api/modes, PUT /api/modes/{name} ---- */

static void api__modes(http_req *r, void *ud)
{
    api *a = ud;
    json_t *list = json_array();
    for (size_t i = 0; i < engine_mode_count(a->d.engine); i++)
        json_array_append_new(list, objects_mode(engine_mode_at(a->d.engine, i)));
    json_t *o = json_object();
    json_object_set_new(o, "modes", list);
    http_reply_json(r, 200, o);
}

typedef struct api__mode_put {
    api *a;
    http_req *r;
    mode m;
    int64_t now_ms;
} api__mode_put;

static int api__mode_apply(store *s, void *arg)
{
    api__mode_put *p = arg;
    return store_mode_put(s, &p->m, p->now_ms);
}

static void api__mode_done(void *arg, evt *ev, int status)
{
    (void)ev;
    api__mode_put *p = arg;
    if (status < 0 || p->a->stopping) {
        http_reply_error(p->r, 503, "unavailable", "the mode could not be stored");
        free(p);
        return;
    }
    engine_put_mode(p->a->d.engine, &p->m);
    http_reply_json(p->r, 200, objects_mode(&p->m));
    free(p);
}

static void api__mode_put_route(http_req *r, void *ud)
{
    api *a = ud;
    if (http_req_auth_on(r) && !http_req_admin(r)) {
        http_reply_error(r, 403, "forbidden", "only an admin token may edit modes");
        return;
    }
    json_t *body = api__body(a, r, &validate_mode_put);
    if (!body) return;
    const char *name = http_req_param(r, "name");
    const mode *cur = engine_mode(a->d.engine, name);
    if (!cur) {
        json_decref(body);
        http_reply_error(r, 404, "not_found", "no mode %s", name);
        return;
    }
    api__mode_put *p = xcalloc(1, sizeof *p);
    p->a = a;
    p->r = r;
    p->m = *cur;
    p->now_ms = clock_wall_ms();
    char err[256];
    const json_t *limits = json_object_get(body, "limits");
    const json_t *guard_obj = json_object_get(body, "guard");
    const char *desc = validate_get_string(body, "description");
    if ((json_is_object(limits) &&
         mode_limits_apply_json(&p->m.limits, limits, "limits", err, sizeof err) != 0) ||
        (json_is_object(guard_obj) &&
         mode_guard_apply_json(&p->m.guard, guard_obj, "guard", err, sizeof err) != 0)) {
        json_decref(body);
        free(p);
        http_reply_error(r, 400, "bad_request", "%s", err);
        return;
    }
    if (desc) snprintf(p->m.description, sizeof p->m.description, "%s", desc);
    /* The schema let only a known policy through. */
    approval_policy_parse(validate_get_string(body, "approval"), &p->m.approval);
    json_decref(body);
    eventlog_op op = {api__mode_apply, api__mode_done, p, NULL, NULL, NULL};
    eventlog_submit(a->d.log, &op);
}

/* ---- GET /healthz ---- */

static void api__health_work(store *st, api__job *j)
{
    j->body = json_object();
    if (store_ping(st) == 0) {
        json_object_set_new(j->body, "status", json_string("ok"));
        return;
    }
    j->status = 503;
    json_object_set_new(j->body, "status", json_string("unavailable"));
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string("unavailable"));
    json_object_set_new(err, "message", json_string("the database does not answer"));
    json_object_set_new(j->body, "error", err);
}

static void api__health(http_req *r, void *ud)
{
    api *a = ud;
    /* An instance that does not hear the others would serve stale streams. */
    if (a->d.healthy && !a->d.healthy(a->d.ud)) {
        json_t *o =
            json_pack("{s:s,s:{s:s,s:s}}", "status", "unavailable", "error", "code", "unavailable",
                      "message", "the connection that listens to other instances is down");
        http_reply_json(r, 503, o);
        return;
    }
    api__job_submit(api__job_new(ud, r, NULL, api__health_work));
}

/* ---- GET /metrics ---- */

static void api__metrics(http_req *r, void *ud)
{
    (void)ud;
    buf b;
    buf_init(&b, 1u << 20);
    metrics_render(&b);
    http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    buf_cleanup(&b);
}

/* ---- the page ---- */

static const char *api__content_type(const char *path)
{
    static const char *const types[][2] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(dot, types[i][0]) == 0) return types[i][1];
    return "application/octet-stream";
}

/* True when the decoded path stays inside the web root: no "..", no
 * backslash, no NUL, no empty or hidden segment. */
static bool api__safe_path(const char *p)
{
    if (*p != '/' || strchr(p, '\\')) return false;
    for (const char *s = p; *s;) {
        s++;
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 && e) return false;
        if (n > 0 && s[0] == '.') return false;
        s += n;
    }
    return true;
}

/* Answers a file of the page built into the binary, or 304 when the
 * browser's copy is current. */
static void api__embedded(http_req *r, const char *path)
{
    const page_file *f = page_find(path);
    if (!f) {
        http_reply_error(r, 404, "not_found", "no file %s", path);
        return;
    }
    http_reply_header(r, "ETag", f->etag);
    http_reply_header(r, "Cache-Control", "no-cache");
    if (page_etag_matches(http_req_header(r, "If-None-Match"), f->etag)) {
        http_reply(r, 304, NULL, NULL, 0);
        return;
    }
    http_reply(r, 200, api__content_type(f->path), f->data, f->len);
}

static void api__static(http_req *r, void *ud)
{
    api *a = ud;
    const char *raw = http_req_path(r);
    if (!a->web_root) {
        api__embedded(r, raw);
        return;
    }
    size_t dlen = 0;
    char *path = evhttp_uridecode(raw, 0, &dlen);
    if (!path || strlen(path) != dlen || !api__safe_path(path)) {
        free(path);
        http_reply_error(r, 404, "not_found", "no file %s", raw);
        return;
    }
    char *data;
    size_t len;
    int rc = page_read_file(a->web_root, path, API__STATIC_MAX, &data, &len);
    if (rc != 0) {
        free(path);
        http_reply_error(r, 404, "not_found", "no file %s", raw);
        return;
    }
    http_reply_header(r, "Cache-Control", "no-cache");
    http_reply(r, 200, api__content_type(path[strlen(path) - 1] == '/' ? "index.html" : path), data,
               len);
    free(data);
    free(path);
}

void api__register_misc(http_server *s, api *a)
{
    http_route(s, "GET", "/api/info", api__info, a);
    http_route(s, "GET", "/api/modes", api__modes, a);
    http_route(s, "PUT", "/api/modes/{name}", api__mode_put_route, a);
    http_route(s, "GET", "/healthz", api__health, a);
    http_route(s, "GET", "/metrics", api__metrics, a);
    http_set_fallback(s, api__static, a);
}
