/*
 * tool_source: what a provider of tools implements to join a toolset (the
 * built-in tools here, an MCP server later). Private to the tool module and
 * its sources; the engine sees only tool.h and toolset.h.
 *
 * A source owns its tool_defs; the list may change between calls on the
 * loop thread (an MCP server announcing new tools), so the toolset asks the
 * source every time instead of keeping a copy, and a tool_def pointer is
 * valid only until the source changes its list.
 */
#ifndef CHATPLANE_TOOL_SOURCE_H
#define CHATPLANE_TOOL_SOURCE_H

#include "engine/toolset.h"

typedef struct tool_source tool_source;

typedef struct tool_source_ops {
    size_t (*count)(const tool_source *s);
    const tool_def *(*get)(const tool_source *s, size_t i);
    /* Calls tool i of the source, under the rules of toolset_call: one
     * on_done (possibly before returning, then the result is NULL), or a
     * handle that cancel accepts until on_done has run. */
    tool_call *(*call)(tool_source *s, size_t i, const json_t *arguments, int64_t timeout_ms,
                       const tool_callbacks *cb, void *ud);
    /* Cancels a call in flight; no callback runs for it afterwards. */
    void (*cancel)(tool_call *c);
    /* Optional: answers the question of a call in flight (on_input). */
    void (*answer)(tool_call *c, const char *action, const json_t *content);
    void (*free)(tool_source *s);
    /* Optional: a new JSON object describing the source for GET /api/info
     * (an MCP server: {"name","status","error","tools"}); NULL: nothing. */
    json_t *(*info)(const tool_source *s);
    /* Optional: starts the source again now (an MCP server: a new
     * connection), at a person's request. */
    void (*restart)(tool_source *s);
} tool_source_ops;

/* Every source starts with this. */
struct tool_source {
    const tool_source_ops *ops;
};

/* Every source's call handle starts with this, so tool_call_cancel finds
 * the source that made it. */
struct tool_call {
    tool_source *source;
};

/* Adds a source after the ones already there; the toolset takes it over and
 * frees it in toolset_free. A tool whose name an earlier source already
 * offers is hidden (toolset_find returns the first). */
void toolset_add_source(toolset *ts, tool_source *src);

/* The source of the built-in tools calc and clock; their calls finish
 * before returning. */
tool_source *tool_builtin_new(struct event_base *base);

/* The source of the demo brain's tools pretend_delete (not read-only, touches
 * nothing) and sleep (read-only, a timer on base that cancel stops). */
tool_source *tool_demo_new(struct event_base *base);

/*
 * The name the model sees for tool `tool` of MCP server `server`:
 * "<server>__<tool>", every character outside [A-Za-z0-9_-] replaced by '_'
 * (a UTF-8 sequence counts as one character), cut to 64 bytes. A NULL server
 * gives the bare sanitized tool name. Returns a new string; caller frees.
 */
char *tool_model_name(const char *server, const char *tool);

/* Ends a call at once with an error result whose text and error are msg. */
void tool__done_error(const tool_callbacks *cb, void *ud, const char *msg);

/* Ends a call at once with an ok result whose text is text. */
void tool__done_ok(const tool_callbacks *cb, void *ud, const char *text);

/* Frees what the n tool_defs of defs hold (not defs itself). */
void tool__defs_cleanup(tool_def *defs, size_t n);

/* One tool of a table source (tool_table.c). run is called with arguments
 * that are an object or NULL, under the rules of tool_source_ops.call. */
typedef struct tool_table_entry {
    const char *name;
    const char *description;
    const char *schema; /* the input schema as JSON text */
    bool read_only;
    tool_call *(*run)(tool_source *s, struct event_base *evb, const json_t *args,
                      const tool_callbacks *cb, void *ud);
} tool_table_entry;

/* A source of the n tools of entries (a static table that outlives it);
 * cancel (NULL when every call finishes before returning) cancels the
 * handles the run functions return. */
tool_source *tool__table_new(const tool_table_entry *entries, size_t n, struct event_base *evb,
                             void (*cancel)(tool_call *c));

#endif
