/*
 * objects_export: a whole session as one JSON document (docs/api.md,
 * Export): the session and its messages, runs and tool executions, each
 * list oldest first, as the API shows them.
 */
#include "store/objects.h"

static json_t *objects_export__reversed(json_t *items)
{
    json_t *out = json_array();
    for (size_t i = json_array_size(items); i-- > 0;)
        json_array_append(out, json_array_get(items, i));
    json_decref(items);
    return out;
}

int objects_export(store *st, const char *id, const char *owner, json_t **out)
{
    store_session ses = {0};
    int rc = store_session_get(st, id, owner, &ses);
    if (rc < 0) return rc;
    store_message *ms = NULL;
    store_run *rs = NULL;
    store_tool_exec *ts = NULL;
    size_t nm = 0, nr = 0, nt = 0;
    rc = store_message_list(st, id, &ms, &nm);
    if (rc == 0) rc = store_run_list(st, id, &rs, &nr);
    if (rc == 0) rc = store_tool_exec_list(st, id, NULL, &ts, &nt);
    if (rc == 0) {
        json_t *messages = json_array(), *runs = json_array(), *execs = json_array();
        for (size_t i = 0; i < nm; i++) json_array_append_new(messages, objects_message(&ms[i]));
        for (size_t i = 0; i < nr; i++) json_array_append_new(runs, objects_run(&rs[i]));
        for (size_t i = 0; i < nt; i++) json_array_append_new(execs, objects_tool_exec(&ts[i]));
        /* store_run_list is newest first, as GET …/runs answers. */
        *out = json_pack("{s:o, s:o, s:o, s:o}", "session",
                         objects_session(&ses, nr ? &rs[0] : NULL), "messages", messages, "runs",
                         objects_export__reversed(runs), "tool_executions", execs);
    }
    store_message_list_free(ms, nm);
    store_run_list_free(rs, nr);
    store_tool_exec_list_free(ts, nt);
    store_session_cleanup(&ses);
    return rc;
}
