/*
 * scripted_tool: a tool source for tests with one tool, `hold` (server
 * "test"), whose calls stay in flight until the test ends them with
 * scripted_tool_finish or the caller cancels them. It lets a test act while
 * a tool runs, which the built-in tools (they answer before returning)
 * never allow.
 */
#ifndef CHATPLANE_TEST_SCRIPTED_TOOL_H
#define CHATPLANE_TEST_SCRIPTED_TOOL_H

#include <stddef.h>

#include "engine/tool_source.h"

typedef struct scripted_tool scripted_tool;

/* A new source; the toolset it is added to frees it. */
scripted_tool *scripted_tool_new(void);
tool_source *scripted_tool_source(scripted_tool *t);

/* Calls started, calls in flight now, and calls cancelled. */
size_t scripted_tool_started(const scripted_tool *t);
size_t scripted_tool_in_flight(const scripted_tool *t);
size_t scripted_tool_cancelled(const scripted_tool *t);

/* Ends the oldest call in flight with status and text (the error too when
 * status is not TOOL_OK). Returns 0, or -1 when none is in flight. */
int scripted_tool_finish(scripted_tool *t, tool_status status, const char *text);
/* Reports progress of the oldest call in flight (total < 0: unknown;
 * message may be NULL). Returns 0, or -1 when none is in flight. */
int scripted_tool_progress(scripted_tool *t, double progress, double total, const char *message);
/* The oldest call in flight asks a question (on_input) with message and
 * the schema's JSON text. Returns 0, or -1 when none is in flight. */
int scripted_tool_ask(scripted_tool *t, const char *message, const char *schema);
/* How many questions were answered (tool_call_answer), and the last
 * answer: its action and content as compact JSON ("" for none). */
size_t scripted_tool_answers(const scripted_tool *t);
const char *scripted_tool_last_action(const scripted_tool *t);
const char *scripted_tool_last_content(const scripted_tool *t);

#endif
