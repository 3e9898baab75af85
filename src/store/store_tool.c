/*
 * store_tool: the tool_executions table, one row per tool call a run made.
 */
#include "store/store.h"
#include "store/store_int.h"

#define STORE__ROW store_tool_exec
STORE__DEFINE_ROW(store_tool_exec, tool_exec, "tool_executions", STORE_TOOL_EXEC_COLUMNS)
enum { STORE_TOOL_EXEC_COLUMNS(STORE__INDEX) };

int store_tool_exec_insert(store *s, const store_tool_exec *row)
{
    store_params p;
    store__params_init(&p);
    store__params_row(&p, &store__tool_exec_table, row);
    /* A tool still running has no duration yet. */
    if (!row->finished_ms) p.v[COL_duration_ms] = NULL;
    int rc = store__insert(s, &store__tool_exec_table, &p, NULL, NULL);
    store__params_cleanup(&p);
    return rc;
}

int store_tool_exec_finish(store *s, const store_tool_exec *row)
{
    static const int set[] = {COL_status, COL_result, COL_error, COL_finished_ms, COL_duration_ms};
    const char *p[] = {row->id};
    int rc = store__update(s, &store__tool_exec_table, row, set, sizeof set / sizeof set[0],
                           "WHERE id = ?", 1, p);
    return store__changed_one(s, rc, "tool execution", row->id);
}

int store_tool_exec_list(store *s, const char *session_id, const char *run_id,
                         store_tool_exec **out, size_t *n)
{
    const char *p[] = {session_id, run_id, run_id};
    return store__rows(s, &store__tool_exec_table,
                       "WHERE session_id = ? AND (CAST(? AS TEXT) IS NULL OR run_id = ?) ORDER BY "
                       "started_at, step, id",
                       3, p, (void **)out, n);
}
