/*
 * tool_demo: the tools the demo brain adds to the built-in ones, so that the
 * approval flow and a stop during a tool call can be tried without a model
 * or a tool server (docs/runs.md, Demo brain).
 *
 *   pretend_delete {"path": "…"}  not read-only, so the default policy asks
 *                                 before it runs; it touches nothing and its
 *                                 result says so: "deleted PATH (pretend)"
 *   sleep {"seconds": 1..30}      read-only; waits on a libevent timer, so
 *                                 the loop goes on meanwhile and a stop
 *                                 cancels the wait
 */
#include <event2/event.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tool_source.h"
#include "lib/xmalloc.h"

#define DEMO_TOOL__PATH_MAX   1024
#define DEMO_TOOL__SLEEP_MAX  30

enum { DEMO_TOOL__DELETE, DEMO_TOOL__SLEEP, DEMO_TOOL__N };

typedef struct demo_tool_source {
    tool_source base;
    struct event_base *evb;
    tool_def defs[DEMO_TOOL__N];
} demo_tool_source;

/* A sleep in flight: its timer, and whom to tell when it rings. */
typedef struct demo_tool_sleep {
    tool_call base;
    struct event *timer;
    tool_callbacks cb;
    void *ud;
    int seconds;
} demo_tool_sleep;

static size_t tool_demo__count(const tool_source *s)
{
    (void)s;
    return DEMO_TOOL__N;
}

static const tool_def *tool_demo__get(const tool_source *s, size_t i)
{
    const demo_tool_source *d = (const demo_tool_source *)s;
    return i < DEMO_TOOL__N ? &d->defs[i] : NULL;
}

static void tool_demo__done_ok(const tool_callbacks *cb, void *ud, const char *text)
{
    tool_result r = {.status = TOOL_OK, .text = text, .text_len = strlen(text)};
    cb->on_done(ud, &r);
}

static void tool_demo__delete(const json_t *args, const tool_callbacks *cb, void *ud)
{
    const char *path = json_string_value(json_object_get(args, "path"));
    if (!path || !*path) {
        tool__done_error(cb, ud, "pretend_delete: missing string argument 'path'");
        return;
    }
    if (strlen(path) > DEMO_TOOL__PATH_MAX) {
        tool__done_error(cb, ud, "pretend_delete: argument 'path' is longer than 1024 bytes");
        return;
    }
    char *text = xasprintf("deleted %s (pretend)", path);
    tool_demo__done_ok(cb, ud, text);
    free(text);
}

static void tool_demo__sleep_free(demo_tool_sleep *c)
{
    event_free(c->timer);
    free(c);
}

static void tool_demo__on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    demo_tool_sleep *c = arg;
    char text[48];
    snprintf(text, sizeof text, "slept %d second%s", c->seconds, c->seconds == 1 ? "" : "s");
    tool_callbacks cb = c->cb;
    void *ud = c->ud;
    /* Freed before on_done: the handle is no longer valid once it ran. */
    tool_demo__sleep_free(c);
    tool_demo__done_ok(&cb, ud, text);
}

static tool_call *tool_demo__sleep(demo_tool_source *s, const json_t *args, const tool_callbacks *cb,
                                   void *ud)
{
    const json_t *v = json_object_get(args, "seconds");
    double secs = json_is_number(v) ? json_number_value(v) : -1;
    if (!json_is_number(v) || secs != floor(secs) || secs < 1 || secs > DEMO_TOOL__SLEEP_MAX) {
        tool__done_error(cb, ud, "sleep: argument 'seconds' must be a whole number from 1 to 30");
        return NULL;
    }
    demo_tool_sleep *c = xcalloc(1, sizeof *c);
    c->base.source = &s->base;
    c->cb = *cb;
    c->ud = ud;
    c->seconds = (int)secs;
    c->timer = evtimer_new(s->evb, tool_demo__on_timer, c);
    struct timeval tv = {.tv_sec = c->seconds, .tv_usec = 0};
    evtimer_add(c->timer, &tv);
    return &c->base;
}

static tool_call *tool_demo__call(tool_source *s, size_t i, const json_t *arguments,
                                  int64_t timeout_ms, const tool_callbacks *cb, void *ud)
{
    (void)timeout_ms;
    const char *name = i == DEMO_TOOL__DELETE ? "pretend_delete" : "sleep";
    if (arguments && !json_is_object(arguments)) {
        char *msg = xasprintf("%s: arguments must be a JSON object", name);
        tool__done_error(cb, ud, msg);
        free(msg);
        return NULL;
    }
    if (i == DEMO_TOOL__DELETE) {
        tool_demo__delete(arguments, cb, ud);
        return NULL;
    }
    return tool_demo__sleep((demo_tool_source *)s, arguments, cb, ud);
}

/* Only a sleep outlives its call: cancelling it stops the timer. */
static void tool_demo__cancel(tool_call *c)
{
    tool_demo__sleep_free((demo_tool_sleep *)c);
}

static void tool_demo__free(tool_source *s)
{
    demo_tool_source *d = (demo_tool_source *)s;
    for (size_t i = 0; i < DEMO_TOOL__N; i++) {
        free(d->defs[i].name);
        free(d->defs[i].server);
        free(d->defs[i].tool);
        free(d->defs[i].description);
        json_decref(d->defs[i].input_schema);
    }
    free(d);
}

static const tool_source_ops demo_tool__ops = {
    .count = tool_demo__count,
    .get = tool_demo__get,
    .call = tool_demo__call,
    .cancel = tool_demo__cancel,
    .free = tool_demo__free,
};

static void tool_demo__def(tool_def *d, const char *name, const char *description, json_t *schema,
                           bool read_only)
{
    d->name = xstrdup(name);
    d->server = xstrdup("builtin");
    d->tool = xstrdup(name);
    d->description = xstrdup(description);
    d->input_schema = schema;
    d->read_only = read_only;
}

tool_source *tool_demo_new(struct event_base *base)
{
    demo_tool_source *d = xcalloc(1, sizeof *d);
    d->base.ops = &demo_tool__ops;
    d->evb = base;
    tool_demo__def(&d->defs[DEMO_TOOL__DELETE], "pretend_delete",
                   "Pretends to delete a file: touches nothing and says what it would have "
                   "deleted. Not read-only, so a person is asked before it runs.",
                   json_pack("{s:s, s:{s:{s:s, s:s}}, s:[s]}", "type", "object", "properties",
                             "path", "type", "string", "description", "The file to delete",
                             "required", "path"),
                   false);
    tool_demo__def(&d->defs[DEMO_TOOL__SLEEP], "sleep",
                   "Waits the given number of seconds (1 to 30), then says so.",
                   json_pack("{s:s, s:{s:{s:s, s:i, s:i}}, s:[s]}", "type", "object", "properties",
                             "seconds", "type", "integer", "minimum", 1, "maximum",
                             DEMO_TOOL__SLEEP_MAX, "required", "seconds"),
                   true);
    return &d->base;
}
