/*
 * tool: what a tool is, what a call reports, and the handles of a call;
 * the sources that offer tools implement engine/tool_source.h, and the
 * engine calls them through a toolset (engine/toolset.h).
 */
#ifndef CHATPLANE_TOOL_H
#define CHATPLANE_TOOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define TOOL_RESULT_MAX (1u << 20) /* the most result text kept (1 MiB) */

/* TOOL_DENIED is never a source's answer: the engine records it for a call
 * the approval policy or a person refused (docs/runs.md, Approvals). */
typedef enum tool_status {
    TOOL_OK,
    TOOL_ERROR,
    TOOL_TIMEOUT,
    TOOL_CANCELLED,
    TOOL_DENIED
} tool_status;
/* "ok", "error", "timeout", "cancelled", "denied" */
const char *tool_status_name(tool_status s);

typedef struct tool_def {
    char *name;   /* as offered to the model: "calc", "fs__read_file" */
    char *server; /* "builtin" or the MCP server's configured name */
    char *tool;   /* the tool's own name */
    char *description;
    json_t *input_schema; /* owned reference */
    json_t *annotations;  /* the MCP tool's annotations (owned), or NULL */
    bool read_only;       /* annotations say readOnlyHint: true, or a read-only built-in */
} tool_def;

typedef struct tool_result {
    tool_status status;
    const char *text; /* result text ("" for none); for errors the error text */
    size_t text_len;
    const char *error; /* NULL unless status != TOOL_OK */
    /* The tool server's connection ended during the call (it crashed or
     * was killed): the call may be repeated once it is back (docs/runs.md,
     * Repairs). */
    bool server_lost;
} tool_result;

typedef struct tool_callbacks {
    void (*on_progress)(void *ud, double progress, double total, const char *message);
    void (*on_done)(void *ud, const tool_result *r);
    /* Optional: the tool's server asks a person to fill in a form (MCP
     * elicitation, form mode; docs/runs.md, Questions) whose schema
     * core/elicit accepted. The caller answers with tool_call_answer, at
     * once or later; the call's own time-out stands still until then.
     * Without it, every question is declined. Strings are borrowed. */
    void (*on_input)(void *ud, const char *message, const json_t *schema);
} tool_callbacks;

typedef struct toolset toolset;
typedef struct tool_call tool_call;

#endif
