/*
 * store_approval: the approvals table, one row per tool call that the
 * approval policy asked a person about or a remembered decision answered.
 */
#include <stdio.h>

#include "store/store.h"
#include "store/store_int.h"

#define STORE__ROW store_approval
STORE__DEFINE_ROW(store_approval, approval, "approvals", STORE_APPROVAL_COLUMNS)
enum { STORE_APPROVAL_COLUMNS(STORE__INDEX) };

int store_approval_insert(store *s, const store_approval *row)
{
    return store__insert_row(s, &store__approval_table, row);
}

int store_approval_get(store *s, const char *session_id, const char *id, store_approval *out)
{
    const char *p[] = {id, session_id};
    return store__row(s, &store__approval_table, "WHERE id = ? AND session_id = ?", 2, p, out,
                      "approval", id);
}

#define STORE_APPROVAL_LIST_WHERE                                                                  \
    "WHERE session_id = ? AND (CAST(? AS TEXT) IS NULL OR status = ?) ORDER BY requested_at, id"

int store_approval_list(store *s, const char *session_id, const char *status, store_approval **out,
                        size_t *n)
{
    const char *p[] = {session_id, status, status};
    return store__rows(s, &store__approval_table, STORE_APPROVAL_LIST_WHERE, 3, p, (void **)out, n);
}

int store_approval_list_later(store *s, const char *session_id, db_result **slot)
{
    const char *p[] = {session_id, NULL, NULL};
    return store__rows_later(s, &store__approval_table, STORE_APPROVAL_LIST_WHERE, 3, p, slot);
}

int store_approval_list_take(store *s, db_result *slot, store_approval **out, size_t *n)
{
    return store__rows_take(s, &store__approval_table, slot, (void **)out, n);
}

int store_approval_decide(store *s, const store_approval *row)
{
    static const int set[] = {COL_status, COL_decided_by, COL_decision_reason, COL_remember,
                              COL_decided_ms};
    const char *p[] = {row->id};
    int rc = store__update(s, &store__approval_table, row, set, sizeof set / sizeof set[0],
                           "WHERE id = ? AND status = 'pending'", 1, p);
    if (rc != 0) return rc < 0 ? rc : 0;
    /* Nothing changed: the row is gone, or someone decided it first. */
    store_approval cur = {0};
    int got = store_approval_get(s, row->session_id, row->id, &cur);
    store_approval_cleanup(&cur);
    return got < 0 ? got : STORE_CONFLICT;
}

int store_approval_cancel_run(store *s, const char *run_id, const char *decided_by,
                              const char *reason, int64_t now_ms)
{
    store_num n;
    const char *p[] = {decided_by, reason, store__num_i64(&n, now_ms), run_id};
    return store__exec(s,
                       "UPDATE approvals SET status = 'cancelled', decided_by = ?, "
                       "decision_reason = ?, decided_at = chatplane_ts(?) WHERE run_id = ? AND "
                       "status = 'pending'",
                       4, p);
}
