/*
 * tool: tool sources behind one interface (built-in tools now, MCP servers
 * next), gathered in a toolset that the engine calls by the name the model
 * sees.
 *
 * A call ends with exactly one on_done, unless cancelled with
 * tool_call_cancel, after which no callback runs (the source sends MCP
 * notifications/cancelled where it applies). Callbacks run on the loop
 * thread; on_done may run before toolset_call returns.
 */
#ifndef CHATPLANE_TOOL_H
#define CHATPLANE_TOOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define TOOL_RESULT_MAX (1u << 20) /* the most result text kept (1 MiB) */

typedef enum tool_status { TOOL_OK, TOOL_ERROR, TOOL_TIMEOUT, TOOL_CANCELLED } tool_status;
/* "ok", "error", "timeout", "cancelled" */
const char *tool_status_name(tool_status s);

typedef struct tool_def {
    char *name;   /* as offered to the model: "calc", "fs__read_file" */
    char *server; /* "builtin" or the MCP server's configured name */
    char *tool;   /* the tool's own name */
    char *description;
    json_t *input_schema; /* owned reference */
} tool_def;

typedef struct tool_result {
    tool_status status;
    const char *text; /* result text ("" for none); for errors the error text */
    size_t text_len;
    const char *error; /* NULL unless status != TOOL_OK */
} tool_result;

typedef struct tool_callbacks {
    void (*on_progress)(void *ud, double progress, double total, const char *message);
    void (*on_done)(void *ud, const tool_result *r);
} tool_callbacks;

typedef struct toolset toolset;
typedef struct tool_call tool_call;

/* A toolset with the built-in tools (calc, clock). */
toolset *toolset_new(struct event_base *base);
void toolset_free(toolset *ts);

/* The tools, in a stable order. */
size_t toolset_count(const toolset *ts);
const tool_def *toolset_get(const toolset *ts, size_t i);
const tool_def *toolset_find(const toolset *ts, const char *model_name);
/* Returns a new JSON array of the tools in OpenAI form
 * [{"type":"function","function":{"name","description","parameters"}}]. */
json_t *toolset_openai_tools(const toolset *ts);
/* Returns a new JSON array with one object per MCP server, in configuration
 * order: [{"name","status":"ready|starting|failed|restarting","error","tools"}]
 * ("error" is null unless the last start failed; "tools" counts its tools). */
json_t *toolset_servers_json(const toolset *ts);

/* Calls the tool the model named. An unknown name ends at once with an error
 * result. timeout_ms <= 0 uses the source's own time-out. Returns a handle
 * for cancel, or NULL when on_done already ran. */
tool_call *toolset_call(toolset *ts, const char *model_name, const json_t *arguments,
                        int64_t timeout_ms, const tool_callbacks *cb, void *ud);
void tool_call_cancel(tool_call *c);

#endif
