/*
 * transcript: a conversation as a Markdown document (docs/api.md, Export),
 * made from the JSON export of a session: {"session", "messages", "runs",
 * "tool_executions"} with the objects of the API, each list oldest first.
 * Pure: the caller reads the rows.
 */
#ifndef CHATPLANE_TRANSCRIPT_H
#define CHATPLANE_TRANSCRIPT_H

#include <jansson.h>

/* Returns the document (caller frees), or NULL when export is not an
 * object with those members. */
char *transcript_markdown(const json_t *export);

#endif
