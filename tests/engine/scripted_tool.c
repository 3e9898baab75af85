/*
 * scripted_tool: the held tool of scripted_tool.h. Calls wait in a list in
 * the order they started; a cancelled call leaves it without a callback.
 */
#include "scripted_tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

typedef struct held_call {
    tool_call base;
    tool_callbacks cb;
    void *ud;
    struct held_call *next;
} held_call;

struct scripted_tool {
    tool_source base;
    tool_def def;
    held_call *calls; /* in flight, oldest first */
    size_t started, cancelled;
    size_t answers;
    char last_action[16];
    char last_content[1024];
};

static size_t held__count(const tool_source *s)
{
    (void)s;
    return 1;
}

static const tool_def *held__get(const tool_source *s, size_t i)
{
    const scripted_tool *t = (const scripted_tool *)s;
    return i == 0 ? &t->def : NULL;
}

static tool_call *held__call(tool_source *s, size_t i, const json_t *arguments, int64_t timeout_ms,
                             const tool_callbacks *cb, void *ud)
{
    (void)i;
    (void)arguments;
    (void)timeout_ms;
    scripted_tool *t = (scripted_tool *)s;
    held_call *c = xcalloc(1, sizeof *c);
    c->base.source = s;
    c->cb = *cb;
    c->ud = ud;
    held_call **pp = &t->calls;
    while (*pp) pp = &(*pp)->next;
    *pp = c;
    t->started++;
    return &c->base;
}

static void held__unlink(scripted_tool *t, held_call *c)
{
    for (held_call **pp = &t->calls; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            return;
        }
    }
}

static void held__cancel(tool_call *tc)
{
    held_call *c = (held_call *)tc;
    scripted_tool *t = (scripted_tool *)tc->source;
    held__unlink(t, c);
    t->cancelled++;
    free(c);
}

static void held__answer(tool_call *tc, const char *action, const json_t *content)
{
    scripted_tool *t = (scripted_tool *)tc->source;
    t->answers++;
    snprintf(t->last_action, sizeof t->last_action, "%s", action);
    char *text = content ? json_dumps(content, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    snprintf(t->last_content, sizeof t->last_content, "%s", text ? text : "");
    free(text);
}

static void held__free(tool_source *s)
{
    scripted_tool *t = (scripted_tool *)s;
    while (t->calls) {
        held_call *c = t->calls;
        t->calls = c->next;
        free(c);
    }
    free(t->def.name);
    free(t->def.server);
    free(t->def.tool);
    free(t->def.description);
    json_decref(t->def.input_schema);
    free(t);
}

static const tool_source_ops held__ops = {
    .count = held__count,
    .get = held__get,
    .call = held__call,
    .cancel = held__cancel,
    .answer = held__answer,
    .free = held__free,
};

scripted_tool *scripted_tool_new(void)
{
    scripted_tool *t = xcalloc(1, sizeof *t);
    t->base.ops = &held__ops;
    t->def.name = xstrdup("hold");
    t->def.server = xstrdup("test");
    t->def.tool = xstrdup("hold");
    t->def.description = xstrdup("Waits until the test lets it finish.");
    t->def.input_schema = json_pack("{s:s}", "type", "object");
    return t;
}

tool_source *scripted_tool_source(scripted_tool *t)
{
    return &t->base;
}

size_t scripted_tool_started(const scripted_tool *t)
{
    return t->started;
}

size_t scripted_tool_in_flight(const scripted_tool *t)
{
    size_t n = 0;
    for (const held_call *c = t->calls; c; c = c->next) n++;
    return n;
}

size_t scripted_tool_cancelled(const scripted_tool *t)
{
    return t->cancelled;
}

int scripted_tool_finish(scripted_tool *t, tool_status status, const char *text)
{
    held_call *c = t->calls;
    if (!c) return -1;
    t->calls = c->next;
    tool_result r = {.status = status,
                     .text = text,
                     .text_len = strlen(text),
                     .error = status == TOOL_OK ? NULL : text};
    c->cb.on_done(c->ud, &r);
    free(c);
    return 0;
}

int scripted_tool_progress(scripted_tool *t, double progress, double total, const char *message)
{
    held_call *c = t->calls;
    if (!c) return -1;
    c->cb.on_progress(c->ud, progress, total, message);
    return 0;
}

int scripted_tool_ask(scripted_tool *t, const char *message, const char *schema)
{
    held_call *c = t->calls;
    if (!c) return -1;
    json_t *s = json_loads(schema, 0, NULL);
    if (!s) abort();
    c->cb.on_input(c->ud, message, s);
    json_decref(s);
    return 0;
}

size_t scripted_tool_answers(const scripted_tool *t)
{
    return t->answers;
}

const char *scripted_tool_last_action(const scripted_tool *t)
{
    return t->last_action;
}

const char *scripted_tool_last_content(const scripted_tool *t)
{
    return t->last_content;
}
