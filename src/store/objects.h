/*
 * objects: the JSON objects of the API (docs/api.md, Objects), built from
 * store rows in one place so that the HTTP API, the engine and the command
 * line show the same shapes. The members and their order come from the row
 * lists of store.h. Each returns a new reference.
 */
#ifndef CHATPLANE_OBJECTS_H
#define CHATPLANE_OBJECTS_H

#include <jansson.h>

#include "core/mode.h"
#include "store/store.h"

/* {"id","title","mode","status","active_run_id","last_seq","created_at",
 *  "updated_at","last_run"}; last_run may be NULL (encodes as null). */
json_t *objects_session(const store_session *s, const store_run *last_run);
/* {"id","session_id","mode","status","stop_reason","stop_detail",
 *  "recovery_suggestion","actions","wrapped_up","limits","usage",
 *  "started_at","ended_at","continues"} */
json_t *objects_run(const store_run *r);
/* {"id","session_id","run_id","role","content","tool_calls","tool_call_id",
 *  "partial","created_at"} */
json_t *objects_message(const store_message *m);
/* {"id","session_id","run_id","step","server","tool","arguments","status",
 *  "result","error","started_at","finished_at","duration_ms"} */
json_t *objects_tool_exec(const store_tool_exec *t);
/* {"id","session_id","run_id","execution_id","step","server","tool",
 *  "arguments","reason","status","decided_by","decision_reason","remember",
 *  "requested_at","decided_at","expires_at"} */
json_t *objects_approval(const store_approval *a);
/* The input object (docs/api.md, Inputs). */
json_t *objects_input(const store_input *a);
/* {"name","description","limits","guard","approval"} */
json_t *objects_mode(const mode *m);

/* The session id of owner (NULL: any) as one document, {"session",
 * "messages", "runs", "tool_executions"}, each list oldest first. Returns 0
 * and sets *out, or a store error (STORE_NOT_FOUND for another owner's). */
int objects_export(store *st, const char *id, const char *owner, json_t **out);

#endif
