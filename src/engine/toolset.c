/*
 * toolset: the tools of every source in one list, found by the name the
 * model sees. The toolset only routes: each call goes to the source that
 * offers the tool, and each handle back to the source that made it.
 */
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/jsonw.h"
#include "engine/tool_source.h"
#include "lib/xmalloc.h"

struct toolset {
    struct event_base *base;
    tool_source **sources;
    size_t nsources;
    json_t *openai;        /* the last list toolset_openai_tools built, shared */
    int64_t openai_tokens; /* its context_estimate_tokens */
    json_t *openai_text;   /* its compact JSON text, as a JSON string, shared; NULL until asked */
};

toolset *toolset_new(struct event_base *base)
{
    toolset *ts = xcalloc(1, sizeof *ts);
    ts->base = base;
    toolset_add_source(ts, tool_builtin_new(base));
    return ts;
}

void toolset_add_demo_tools(toolset *ts)
{
    toolset_add_source(ts, tool_demo_new(ts->base));
}

void toolset_add_source(toolset *ts, tool_source *src)
{
    ts->sources = xrealloc(ts->sources, (ts->nsources + 1) * sizeof *ts->sources);
    ts->sources[ts->nsources++] = src;
}

void toolset_free(toolset *ts)
{
    if (!ts) return;
    for (size_t i = 0; i < ts->nsources; i++) ts->sources[i]->ops->free(ts->sources[i]);
    free(ts->sources);
    json_decref(ts->openai);
    json_decref(ts->openai_text);
    free(ts);
}

size_t toolset_count(const toolset *ts)
{
    size_t n = 0;
    for (size_t i = 0; i < ts->nsources; i++) n += ts->sources[i]->ops->count(ts->sources[i]);
    return n;
}

const tool_def *toolset_get(const toolset *ts, size_t i)
{
    for (size_t s = 0; s < ts->nsources; s++) {
        size_t n = ts->sources[s]->ops->count(ts->sources[s]);
        if (i < n) return ts->sources[s]->ops->get(ts->sources[s], i);
        i -= n;
    }
    return NULL;
}

/* Finds the first tool named model_name: its source and its index there. */
static int toolset__locate(const toolset *ts, const char *model_name, tool_source **src,
                           size_t *index)
{
    if (!model_name) return -1;
    for (size_t s = 0; s < ts->nsources; s++) {
        tool_source *source = ts->sources[s];
        size_t n = source->ops->count(source);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(source->ops->get(source, i)->name, model_name) == 0) {
                *src = source;
                *index = i;
                return 0;
            }
        }
    }
    return -1;
}

const tool_def *toolset_find(const toolset *ts, const char *model_name)
{
    tool_source *src;
    size_t i;
    if (toolset__locate(ts, model_name, &src, &i) < 0) return NULL;
    return src->ops->get(src, i);
}

/* True when list names exactly the tools the toolset offers now, each
 * with the same description and the very same schema object: list holds a
 * reference to each schema, so a schema freed by its source cannot have
 * left its address to a new one. */
static bool toolset__openai_current(const toolset *ts, const json_t *list)
{
    size_t k = 0, n = toolset_count(ts);
    for (size_t i = 0; i < n; i++) {
        const tool_def *d = toolset_get(ts, i);
        if (toolset_find(ts, d->name) != d) continue;
        const json_t *fn = json_object_get(json_array_get(list, k++), "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        const char *desc = json_string_value(json_object_get(fn, "description"));
        if (!name || strcmp(name, d->name) != 0 ||
            (desc != d->description &&
             (!desc || !d->description || strcmp(desc, d->description))) ||
            json_object_get(fn, "parameters") != d->input_schema)
            return false;
    }
    return k == json_array_size(list);
}

/* A hidden duplicate name is left out, as toolset_find would never reach
 * it. Every run asks for the list as it starts, and it changes only when a
 * tool server's tools do: one list is shared by the runs until then
 * (docs/benchmarks.md, fix 44). */
json_t *toolset_openai_tools(toolset *ts)
{
    if (ts->openai && toolset__openai_current(ts, ts->openai)) return json_incref(ts->openai);
    json_t *tools = json_array();
    size_t n = toolset_count(ts);
    for (size_t i = 0; i < n; i++) {
        const tool_def *d = toolset_get(ts, i);
        if (toolset_find(ts, d->name) != d) continue;
        json_t *fn = json_object();
        json_object_set_new(fn, "name", json_string(d->name));
        json_object_set_new(fn, "description", json_string(d->description));
        json_object_set(fn, "parameters", d->input_schema);
        json_t *tool = json_object();
        json_object_set_new(tool, "type", json_string("function"));
        json_object_set_new(tool, "function", fn);
        json_array_append_new(tools, tool);
    }
    json_decref(ts->openai);
    ts->openai = json_incref(tools);
    ts->openai_tokens = context_estimate_tokens(tools);
    json_decref(ts->openai_text);
    ts->openai_text = NULL;
    return tools;
}

json_t *toolset_openai_tools_counted(toolset *ts, int64_t *tokens, json_t **text)
{
    json_t *tools = toolset_openai_tools(ts);
    *tokens = ts->openai_tokens;
    if (!ts->openai_text) {
        char *t = jsonw_dumps(tools, JSON_COMPACT);
        ts->openai_text = t ? json_string_nocheck(t) : json_null();
        free(t);
    }
    *text = json_incref(ts->openai_text);
    return tools;
}

json_t *toolset_servers_json(const toolset *ts)
{
    json_t *list = json_array();
    for (size_t i = 0; i < ts->nsources; i++) {
        const tool_source *src = ts->sources[i];
        json_t *o = src->ops->info ? src->ops->info(src) : NULL;
        if (o) json_array_append_new(list, o);
    }
    return list;
}

json_t *toolset_restart_server(toolset *ts, const char *name)
{
    for (size_t i = 0; i < ts->nsources; i++) {
        tool_source *src = ts->sources[i];
        if (!src->ops->info || !src->ops->restart) continue;
        json_t *o = src->ops->info(src);
        const char *n = json_string_value(json_object_get(o, "name"));
        bool match = n && strcmp(n, name) == 0;
        json_decref(o);
        if (!match) continue;
        src->ops->restart(src);
        return src->ops->info(src);
    }
    return NULL;
}

tool_call *toolset_call(toolset *ts, const char *model_name, const json_t *arguments,
                        int64_t timeout_ms, const tool_callbacks *cb, void *ud)
{
    tool_source *src;
    size_t i;
    if (toolset__locate(ts, model_name, &src, &i) < 0) {
        char *msg = xasprintf("unknown tool '%s'", model_name ? model_name : "");
        tool__done_error(cb, ud, msg);
        free(msg);
        return NULL;
    }
    return src->ops->call(src, i, arguments, timeout_ms, cb, ud);
}

void tool_call_cancel(tool_call *c)
{
    if (c) c->source->ops->cancel(c);
}

void tool_call_answer(tool_call *c, const char *action, const json_t *content)
{
    if (c && c->source->ops->answer) c->source->ops->answer(c, action, content);
}
