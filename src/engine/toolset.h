/*
 * toolset: the tools of every source (built-in tools, MCP servers) in one
 * list, called by the name the model sees.
 *
 * A call ends with exactly one on_done, unless cancelled with
 * tool_call_cancel, after which no callback runs (the source sends MCP
 * notifications/cancelled where it applies). Callbacks run on the loop
 * thread; on_done may run before toolset_call returns.
 */
#ifndef CHATPLANE_TOOLSET_H
#define CHATPLANE_TOOLSET_H

#include "engine/tool.h"

/* A toolset with the built-in tools (calc, clock). */
toolset *toolset_new(struct event_base *base);
void toolset_free(toolset *ts);

/* Adds the demo brain's tools, pretend_delete and sleep, after the built-in
 * ones (docs/runs.md, Demo brain). */
void toolset_add_demo_tools(toolset *ts);

/* The tools, in a stable order. */
size_t toolset_count(const toolset *ts);
const tool_def *toolset_get(const toolset *ts, size_t i);
const tool_def *toolset_find(const toolset *ts, const char *model_name);
/* Returns a reference to a JSON array of the tools in OpenAI form
 * [{"type":"function","function":{"name","description","parameters"}}],
 * shared with other callers until the tools change: read it, never
 * modify it, and json_decref it when done. */
json_t *toolset_openai_tools(toolset *ts);
/* The same, with the tokens the list takes in a request
 * (context_estimate_tokens), counted once per list rather than per run,
 * and in *text a reference to its compact JSON text (a JSON string),
 * written once per list: a request puts it in as it is rather than
 * writing the list again (docs/benchmarks.md, fix 72). */
json_t *toolset_openai_tools_counted(toolset *ts, int64_t *tokens, json_t **text);
/* Returns a new JSON array with one object per MCP server, in configuration
 * order: [{"name","status":"ready|starting|failed|restarting","error","tools"}]
 * ("error" is null unless the last start failed; "tools" counts its tools). */
json_t *toolset_servers_json(const toolset *ts);
/* Restarts the tool server called name now (docs/health.md) and returns
 * its object as toolset_servers_json shows it after the restart began, or
 * NULL when no restartable server has that name. */
json_t *toolset_restart_server(toolset *ts, const char *name);

/* Calls the tool the model named. An unknown name ends at once with an error
 * result. timeout_ms <= 0 uses the source's own time-out. Returns a handle
 * for cancel, or NULL when on_done already ran. */
tool_call *toolset_call(toolset *ts, const char *model_name, const json_t *arguments,
                        int64_t timeout_ms, const tool_callbacks *cb, void *ud);
void tool_call_cancel(tool_call *c);
/* Answers the question of a call in flight (on_input): action is
 * "accept", "decline" or "cancel"; content (accept only, may be NULL) was
 * checked against the question's schema. Nothing happens when the call has
 * no question waiting. */
void tool_call_answer(tool_call *c, const char *action, const json_t *content);

#endif
