/*
 * tool_table: a tool source made from a fixed table of tools that chatplane
 * itself implements (the built-in tools, the demo brain's tools). The table
 * gives each tool's name, description, input schema, whether it only reads,
 * and the function that runs it; this file does what every such source
 * does the same way: the tool_defs, the check that the arguments are an
 * object, and the routing of a call to its function.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/tool_source.h"
#include "lib/xmalloc.h"

typedef struct tool_table_source {
    tool_source base;
    struct event_base *evb;
    const tool_table_entry *entries;
    size_t n;
    void (*cancel)(tool_call *c);
    tool_def *defs;
} tool_table_source;

static size_t tool_table__count(const tool_source *s)
{
    return ((const tool_table_source *)s)->n;
}

static const tool_def *tool_table__get(const tool_source *s, size_t i)
{
    const tool_table_source *t = (const tool_table_source *)s;
    return i < t->n ? &t->defs[i] : NULL;
}

static tool_call *tool_table__call(tool_source *s, size_t i, const json_t *arguments,
                                   int64_t timeout_ms, const tool_callbacks *cb, void *ud)
{
    (void)timeout_ms;
    tool_table_source *t = (tool_table_source *)s;
    const tool_table_entry *e = &t->entries[i];
    if (arguments && !json_is_object(arguments)) {
        char *msg = xasprintf("%s: arguments must be a JSON object", e->name);
        tool__done_error(cb, ud, msg);
        free(msg);
        return NULL;
    }
    return e->run(s, t->evb, arguments, cb, ud);
}

static void tool_table__cancel(tool_call *c)
{
    tool_table_source *t = (tool_table_source *)c->source;
    if (t->cancel) t->cancel(c);
}

static void tool_table__free(tool_source *s)
{
    tool_table_source *t = (tool_table_source *)s;
    tool__defs_cleanup(t->defs, t->n);
    free(t->defs);
    free(t);
}

static const tool_source_ops tool_table__ops = {
    .count = tool_table__count,
    .get = tool_table__get,
    .call = tool_table__call,
    .cancel = tool_table__cancel,
    .free = tool_table__free,
};

tool_source *tool__table_new(const tool_table_entry *entries, size_t n, struct event_base *evb,
                             void (*cancel)(tool_call *c))
{
    tool_table_source *t = xcalloc(1, sizeof *t);
    t->base.ops = &tool_table__ops;
    t->evb = evb;
    t->entries = entries;
    t->n = n;
    t->cancel = cancel;
    t->defs = xcalloc(n, sizeof *t->defs);
    for (size_t i = 0; i < n; i++) {
        tool_def *d = &t->defs[i];
        d->name = xstrdup(entries[i].name);
        d->server = xstrdup("builtin");
        d->tool = xstrdup(entries[i].name);
        d->description = xstrdup(entries[i].description);
        /* The schemas are constants of this program: one that does not
         * parse is a programming error caught by the first test. */
        d->input_schema = json_loads(entries[i].schema, 0, NULL);
        if (!d->input_schema) abort();
        d->read_only = entries[i].read_only;
    }
    return &t->base;
}
