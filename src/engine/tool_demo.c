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

#define DEMO_TOOL__PATH_MAX  1024
#define DEMO_TOOL__SLEEP_MAX 30

/* A sleep in flight: its timer, and whom to tell when it rings. */
typedef struct demo_tool_sleep {
    tool_call base;
    struct event *timer;
    tool_callbacks cb;
    void *ud;
    int seconds;
} demo_tool_sleep;

static tool_call *tool_demo__delete(tool_source *s, struct event_base *evb, const json_t *args,
                                    const tool_callbacks *cb, void *ud)
{
    (void)s;
    (void)evb;
    const char *path = json_string_value(json_object_get(args, "path"));
    if (!path || !*path) {
        tool__done_error(cb, ud, "pretend_delete: missing string argument 'path'");
        return NULL;
    }
    if (strlen(path) > DEMO_TOOL__PATH_MAX) {
        tool__done_error(cb, ud, "pretend_delete: argument 'path' is longer than 1024 bytes");
        return NULL;
    }
    char *text = xasprintf("deleted %s (pretend)", path);
    tool__done_ok(cb, ud, text);
    free(text);
    return NULL;
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
    tool__done_ok(&cb, ud, text);
}

static tool_call *tool_demo__sleep(tool_source *s, struct event_base *evb, const json_t *args,
                                   const tool_callbacks *cb, void *ud)
{
    const json_t *v = json_object_get(args, "seconds");
    double secs = json_is_number(v) ? json_number_value(v) : -1;
    if (!json_is_number(v) || secs != floor(secs) || secs < 1 || secs > DEMO_TOOL__SLEEP_MAX) {
        tool__done_error(cb, ud, "sleep: argument 'seconds' must be a whole number from 1 to 30");
        return NULL;
    }
    demo_tool_sleep *c = xcalloc(1, sizeof *c);
    c->base.source = s;
    c->cb = *cb;
    c->ud = ud;
    c->seconds = (int)secs;
    c->timer = evtimer_new(evb, tool_demo__on_timer, c);
    struct timeval tv = {.tv_sec = c->seconds, .tv_usec = 0};
    evtimer_add(c->timer, &tv);
    return &c->base;
}

/* Only a sleep outlives its call: cancelling it stops the timer. */
static void tool_demo__cancel(tool_call *c)
{
    tool_demo__sleep_free((demo_tool_sleep *)c);
}

static const tool_table_entry tool_demo__tools[] = {
    {"pretend_delete",
     "Pretends to delete a file: touches nothing and says what it would have deleted. Not "
     "read-only, so a person is asked before it runs.",
     "{\"type\": \"object\", \"properties\": {\"path\": {\"type\": \"string\", "
     "\"description\": \"The file to delete\"}}, \"required\": [\"path\"]}",
     false, tool_demo__delete},
    {"sleep", "Waits the given number of seconds (1 to 30), then says so.",
     "{\"type\": \"object\", \"properties\": {\"seconds\": {\"type\": \"integer\", "
     "\"minimum\": 1, \"maximum\": 30}}, \"required\": [\"seconds\"]}",
     true, tool_demo__sleep},
};

tool_source *tool_demo_new(struct event_base *base)
{
    return tool__table_new(tool_demo__tools, sizeof tool_demo__tools / sizeof tool_demo__tools[0],
                           base, tool_demo__cancel);
}
