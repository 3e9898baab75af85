/*
 * store_input: the inputs table, one row per form a tool server asked a
 * person to fill in during a tool call.
 */
#include <stdio.h>

#include "store/store.h"
#include "store/store_int.h"

#define STORE__ROW store_input
STORE__DEFINE_ROW(store_input, input, "inputs", STORE_INPUT_COLUMNS)
enum { STORE_INPUT_COLUMNS(STORE__INDEX) };

int store_input_insert(store *s, const store_input *row)
{
    return store__insert_row(s, &store__input_table, row);
}

int store_input_get(store *s, const char *session_id, const char *id, store_input *out)
{
    const char *p[] = {id, session_id};
    return store__row(s, &store__input_table, "WHERE id = ? AND session_id = ?", 2, p, out, "input",
                      id);
}

int store_input_list(store *s, const char *session_id, const char *status, store_input **out,
                     size_t *n)
{
    const char *p[] = {session_id, status, status};
    return store__rows(s, &store__input_table,
                       "WHERE session_id = ? AND (CAST(? AS TEXT) IS NULL OR status = ?) ORDER "
                       "BY requested_at, id",
                       3, p, (void **)out, n);
}

int store_input_answer(store *s, const store_input *row)
{
    static const int set[] = {COL_status, COL_content, COL_answered_by, COL_answered_ms};
    const char *p[] = {row->id};
    int rc = store__update(s, &store__input_table, row, set, sizeof set / sizeof set[0],
                           "WHERE id = ? AND status = 'pending'", 1, p);
    if (rc != 0) return rc < 0 ? rc : 0;
    /* Nothing changed: the row is gone, or someone answered it first. */
    store_input cur = {0};
    int got = store_input_get(s, row->session_id, row->id, &cur);
    store_input_cleanup(&cur);
    return got < 0 ? got : STORE_CONFLICT;
}

int store_input_cancel_run(store *s, const char *run_id, const char *answered_by, int64_t now_ms)
{
    store_num n;
    const char *p[] = {answered_by, store__num_i64(&n, now_ms), run_id};
    return store__exec(s,
                       "UPDATE inputs SET status = 'cancelled', answered_by = ?, answered_at = "
                       "chatplane_ts(?) WHERE run_id = ? AND status = 'pending'",
                       3, p);
}
